#!/bin/bash
# bench/hot-functions/record.sh — writes runtime/hot-functions.txt (as root).
#
# Builds the release binary, then runs a container's lifecycle under
# hot-trace (trace.c: a breakpoint on every function of the binary, through the
# re-exec and the clone of the init, until the init execs the user's program):
# `run` of a /bin/true bundle, then create, state, start and delete. The names
# of the functions that ran, in the order they first ran, become the list the
# linker places first (runtime/build.rs). Run it again after changing what a
# lifecycle runs; a stale list only costs memory.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "record.sh: run as root" >&2; exit 1; }

work=$(mktemp -d /tmp/minirun-hot.XXXXXX)
trap 'rm -rf "$work"' EXIT
gcc -O2 -Wall -Werror -o "$work/hot-trace" "$here/trace.c"
# As the README, the demo and bench build it: the names of functions depend on
# the features cargo unifies over the packages it builds.
bash "$top/build.sh" --release --quiet
bin=$top/target/release/minirun
nm -P --defined-only "$bin" | awk '$2 ~ /^[tTwW]$/ { print $3, $1 }' >"$work/symbols"
[ -s "$work/symbols" ] || { echo "record.sh: $bin has no symbol table (strip?)" >&2; exit 1; }

bash "$top/bundles/build.sh" "$work/bundles" >/dev/null
bundle=$work/bundles/hello
python3 - "$bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
with open(path) as f:
    config = json.load(f)
config["process"]["args"] = ["/bin/true"]
config.pop("annotations", None)
with open(path, "w") as f:
    json.dump(config, f)
PY

# In a sandbox of its own: the containers' namespaces hang off a fresh
# network and mount namespace, and their state stays in $work.
export work bin bundle
unshare --mount --net --propagation private bash -euo pipefail -c '
    trace() { "$work/hot-trace" "$work/symbols" "$bin" "$work/trace" -- "$bin" --root "$work/state" "$@" >/dev/null; }
    trace run --bundle "$bundle" hot-run
    trace create --bundle "$bundle" hot-csd &
    for _ in $(seq 200); do
        "$bin" --root "$work/state" state hot-csd 2>/dev/null | grep -q "\"created\"" && break
        sleep 0.05
    done
    trace state hot-csd
    trace start hot-csd
    wait
    trace delete hot-csd
'
awk '!seen[$0]++' "$work/trace" >"$top/runtime/hot-functions.txt"
echo "record.sh: $(wc -l <"$top/runtime/hot-functions.txt") functions written to runtime/hot-functions.txt"
