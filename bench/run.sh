#!/bin/bash
# bench/run.sh — the benchmarks, in one command (as root):
#   lifecycle (run; create/start/delete; the unshare floor and the config
#   floor, bench/config_floor.c; peak RSS; the phases of minirun's run, from
#   MINIRUN_TRACE) of minirun, runc and crun; network attach/detach with one published port,
#   minirun-net against the CNI plugins (bridge + host-local + portmap), for
#   containers 1..BENCH_CONTAINERS; TCP throughput to a container directly and
#   through a published port; `docker run --rm` with minirun, runc and crun
#   as Docker's runtimes (a dockerd of the sandbox's own), succeeding and
#   refused at create; attach, detach and throughput with anti-spoofing and
#   without; overlay networks on two hosts with etcd (bench/overlay.sh).
#   minirun-net as a CNI plugin against the reference plugins, pods 1..300.
#   a pod through containerd's CRI with minirun + minirun-net and with runc +
#   the CNI plugins; attach on a dual-stack network against an IPv4 one and
#   TCP over IPv6, direct and through a published port.
#   `run -d -p A-B:A-B` for 1 to 65,535 ports against Docker with and without
#   its userland proxy.
#   4,000 containers on one network (the default and a user-defined one)
#   against the CNI bridge plugin, which stops at a bridge's 1,023 ports.
#   4,000 on one dual-stack network, reaching each other over IPv6.
#   BENCH_ONLY=lifecycle|attach|data|spoof|ipv6|ports|wall|wall6|docker|overlay|cni|cri runs one part.
# Installs what it needs from Debian (runc, crun, containernetworking-plugins,
# iptables, iperf3, gnuplot-nox, time), builds minirun in release mode, runs
# everything in a sandbox of fresh mount, network and pid namespaces, and
# writes bench/out/{results.json,attach.csv,attach.png,report.md}.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
[ "$(id -u)" = 0 ] || { echo "bench/run.sh: run as root" >&2; exit 1; }

pkgs=(runc crun containernetworking-plugins iptables iperf3 gnuplot-nox time python3 util-linux iproute2 gcc)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
bash "$top/tests/deps.sh"

echo "== building minirun (release)"
bash "$top/build.sh" --release --quiet
# The linker places these functions first (runtime/build.rs); names that no
# longer match (changed code, another rustc) cost memory, so say how many do.
listed=$(wc -l <"$top/runtime/hot-functions.txt")
found=$(nm -P --defined-only "$top/target/release/minirun" | awk '{ print $1 }' | sort |
    comm -12 - <(sort "$top/runtime/hot-functions.txt") | wc -l)
echo "runtime/hot-functions.txt: $found of $listed functions in the binary (bench/hot-functions/record.sh renews the list)"
out=$here/out
mkdir -p "$out"
bash "$top/bundles/build.sh" "$out/bundles" >/dev/null

export BENCH_OUT=$out BUNDLES=$out/bundles
export MINIRUN=$top/target/release/minirun MINIRUN_NET=$top/target/release/minirun-net
export CONFIG_FLOOR=$out/config_floor
gcc -O2 -Wall -Werror -o "$CONFIG_FLOOR" "$here/config_floor.c"
echo "== running (sandboxed)"
unshare --mount --net --pid --fork --kill-child --mount-proc --propagation private bash -euo pipefail -c '
    mount -t tmpfs tmpfs /run
    # crun refuses a hybrid cgroup layout: hide the v2 half, here only.
    mount -t tmpfs tmpfs /sys/fs/cgroup/unified 2>/dev/null || true
    export MINIRUN_NET_DIR=/run/minirun/net MINIRUN_NET_CONFIG_DIR=/run/minirun/networks
    ip link set lo up
    python3 '"$here"'/bench.py
    echo "left in the sandbox: $(ip -o link | grep -vc ": lo:") links besides lo, $(nft list ruleset | grep -c "^table") nftables tables"
'
# What the clients of the sandbox left in the host's cgroup tree goes with it.
for d in /sys/fs/cgroup/*/bench-cri /sys/fs/cgroup/*/ovbench; do
    if [ -d "$d" ]; then find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true; fi
done
python3 "$here/report.py" "$out"
