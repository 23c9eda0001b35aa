#!/bin/bash
# bundles/demo.sh — builds minirun and a busybox bundle, then runs containers in a
# sandbox of fresh network and mount namespaces standing in for the host (the
# machine's own network and /run are never touched).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (containers need namespaces)" >&2; exit 1; }
bash "$top/tests/deps.sh"

echo "== building minirun"
(cd "$top" && cargo build --release --workspace --quiet)
bin=$top/target/release/minirun
echo "== building bundles"
bash "$here/build.sh" "$here/out"

export MINIRUN="$bin --root /run/minirun-demo"
export HELLO=$here/out/hello SLEEPER=$here/out/sleeper
unshare --mount --net --pid --fork --kill-child --mount-proc --propagation private bash -euo pipefail -c '
    mount -t tmpfs tmpfs /run
    echo "== minirun run $HELLO (a generated id, fresh namespaces)"
    $MINIRUN run "$HELLO"
    echo "== create / start / state / kill / delete of a long-running container"
    (cd "$SLEEPER" && $MINIRUN create --pid-file /run/sleeper.pid sleeper)
    echo "created, init pid $(cat /run/sleeper.pid)"
    $MINIRUN start sleeper
    $MINIRUN list
    $MINIRUN state sleeper
    $MINIRUN kill sleeper KILL
    for i in $(seq 50); do $MINIRUN state sleeper | grep -q stopped && break; sleep 0.1; done
    $MINIRUN delete sleeper
    echo "== after delete:"; $MINIRUN list
'
