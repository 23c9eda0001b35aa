#!/bin/bash
# bench/attach-scale.sh [N] — how attach and detach of minirun-net scale with
# the number of containers already attached, each with one published port.
#
# Like the CNI measurement in ../shared/reference/anchors.md: per "container" a
# network namespace with one process in it (`ip netns exec`), then one
# `minirun-net attach` (bridge + veth + address + route + lease + one published
# TCP port + /etc files) timed on its own; after N, each `detach`. Runs in a
# sandbox of fresh network and mount namespaces; prints median milliseconds per
# bucket of container numbers, and writes every sample to bench/out/.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
n=${1:-300}
[ "$(id -u)" = 0 ] || { echo "attach-scale.sh: run as root" >&2; exit 1; }
(cd "$top" && cargo build --release --quiet -p minirun-net)
mkdir -p "$here/out"
export NET_BIN=$top/target/release/minirun-net N=$n OUT=$here/out/attach-scale.csv
unshare --mount --net --pid --fork --kill-child --mount-proc --propagation private bash -euo pipefail -c '
    mount -t tmpfs tmpfs /run
    export MINIRUN_NET_DIR=/run/minirun/net MINIRUN_NET_CONFIG_DIR=/run/minirun/networks
    work=/run/bench; mkdir -p $work
    ip link set lo up
    ms() { echo "scale=3; ($2 - $1) * 1000 / 1" | bc; }
    echo "container,attach_ms,detach_ms" > $OUT.tmp
    declare -a pids attach
    for i in $(seq $N); do
        ip netns add ns$i
        mkdir -p $work/b$i/rootfs/etc
        echo "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},\"hostname\":\"c$i\"}" > $work/b$i/config.json
        ip netns exec ns$i sleep 3600 & pids[$i]=$!
        # ip enters the namespace, then execs sleep: wait for the sleep.
        until [ "$(cat /proc/${pids[$i]}/comm 2>/dev/null)" = sleep ]; do sleep 0.001; done
        state="{\"id\":\"c$i\",\"pid\":${pids[$i]},\"bundle\":\"$work/b$i\",\"annotations\":{\"org.minirun.net.mode\":\"bridge\",\"org.minirun.net.ports\":\"$((20000 + i)):80\"}}"
        t0=$EPOCHREALTIME
        echo "$state" | $NET_BIN attach
        t1=$EPOCHREALTIME
        attach[$i]=$(ms $t0 $t1)
    done
    for i in $(seq $N); do
        t0=$EPOCHREALTIME
        echo "{\"id\":\"c$i\",\"pid\":0,\"bundle\":\"$work/b$i\"}" | $NET_BIN detach
        t1=$EPOCHREALTIME
        echo "$i,${attach[$i]},$(ms $t0 $t1)" >> $OUT.tmp
        kill ${pids[$i]}; ip netns del ns$i
    done
    echo "left after detach: $(ip -o link | grep -vc ": lo:") links, $(nft list ruleset | wc -l) nft lines"
    mv $OUT.tmp $OUT
'
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
bucket() { awk -F, -v lo=$1 -v hi=$2 -v col=$3 'NR>1 && $1>=lo && $1<=hi {print $col}' "$here/out/attach-scale.csv" | median; }
echo "| containers | attach ms (median) | detach ms (median) |"
echo "|---|---:|---:|"
for b in "1 10" "91 110" "281 300"; do
    set -- $b
    [ "$1" -le "$n" ] || continue
    echo "| $1-$2 | $(bucket $1 $2 2) | $(bucket $1 $2 3) |"
done
