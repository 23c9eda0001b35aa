#!/bin/bash
# bench/overlay.sh — overlay networks on a cluster of two hosts in the bench's
# sandbox (tests/scripts/cluster.sh: the sandbox is the underlay, etcd on
# 10.99.0.1, each host a network namespace), three figures side by side:
#   - attach and detach of the hook onto an overlay network (its etcd round
#     trips included) against a local bridge network, interleaved;
#   - TCP throughput (iperf3, 3 x 3 s, one stream and four, interleaved) and
#     ping latency between
#     containers on the two hosts across the overlay, against the same two
#     hosts' namespaces over the underlay directly;
#   - the time from `minirun run -d` on host 2 until a container on host 1
#     has the new container in its /etc/hosts, and reaches it by name.
# Prints JSON on stdout. Needs $T, $MINIRUN_BIN, $MINIRUN_NET, $BUNDLE, $ID.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../tests/scripts/cluster.sh"
RUNS=${BENCH_OVERLAY_ATTACH:-40}

cluster_up 2 >&2 || exit 1
mr 1 network create --subnet 10.160.0.0/16 lan >/dev/null
mr 1 network create -d overlay --subnet 10.161.0.0/16 ov >/dev/null
# One container of the overlay on host 1 first: the series measures a
# network already present on the host, as the bridge side does.
mr 1 run -d --net ov --bundle "$(bundle anchor1)" "$ID-anchor1" >/dev/null
mr 1 run -d --net lan --bundle "$(bundle anchor2)" "$ID-anchor2" >/dev/null
attach=$(on 1 python3 "$here/overlay_attach.py" "$T/attach" "$RUNS") || exit 1

# Data path: a container on each host; servers in the far container and in
# the far host's namespace.
mr 2 run -d --net ov --bundle "$(bundle far)" "$ID-far" >/dev/null
far_ip=$(ip_of 2 "$ID-far")
pid_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])' < <(mr "$1" state "$2"); }
far_pid=$(pid_of 2 "$ID-far")
near_pid=$(pid_of 1 "$ID-anchor1")
nsenter -t "$far_pid" -n iperf3 -s -D -p 5201 -I "$T/iperf-far.pid" --logfile "$T/iperf-far.log"
on 2 iperf3 -s -D -p 5202 -I "$T/iperf-host.pid" --logfile "$T/iperf-host.log"
sleep 0.5
gbps() { python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9)'; }
declare -A runs
# One TCP stream, then four at once (the underlay and the overlay alike).
for i in 1 2 3; do
    for streams in 1 4; do
        for kind in $([ $((i % 2)) = 1 ] && echo overlay underlay || echo underlay overlay); do
            if [ $kind = overlay ]; then
                g=$(nsenter -t "$near_pid" -n iperf3 -J -c "$far_ip" -p 5201 -t 3 -P $streams | gbps)
            else
                g=$(on 1 iperf3 -J -c 10.99.0.12 -p 5202 -t 3 -P $streams | gbps)
            fi
            runs[$kind$streams]+="$g "
        done
    done
done
rtt() { awk -F/ '/min\/avg\/max/ {print $4}'; }
overlay_rtt=$(nsenter -t "$near_pid" -n busybox ping -c 50 -i 0.02 -q "$far_ip" | rtt)
underlay_rtt=$(on 1 busybox ping -c 50 -i 0.02 -q 10.99.0.12 | rtt)

# Visibility: run on host 2, watch host 1's container's hosts file.
hosts_file=$T/h1/net/files/$ID-anchor1/hosts
visible=()
for i in 1 2 3 4 5; do
    name=$ID-seen$i
    b=$(bundle "seen$i")
    t0=$(date +%s%N)
    mr 2 run -d --net ov --bundle "$b" "$name" >/dev/null
    t1=$(date +%s%N)
    until grep -q "$name" "$hosts_file"; do sleep 0.002; done
    t2=$(date +%s%N)
    mr 1 exec "$ID-anchor1" ping -c1 -W1 "$name" >/dev/null || echo "seen$i: not reachable by name" >&2
    visible+=("$(( (t1 - t0) / 1000 )) $(( (t2 - t1) / 1000 ))")
done

for c in anchor1 anchor2; do mr 1 delete -f "$ID-$c"; done
mr 2 delete -f "$ID-far"
for i in 1 2 3 4 5; do mr 2 delete -f "$ID-seen$i"; done
kill "$(cat "$T/iperf-far.pid")" "$(cat "$T/iperf-host.pid")" 2>/dev/null
mr 1 network rm lan ov >/dev/null
for h in 1 2; do mr "$h" cluster leave >/dev/null; done
cluster_down

python3 - "$attach" "${runs[overlay1]}|${runs[underlay1]}|${runs[overlay4]}|${runs[underlay4]}" "$overlay_rtt" "$underlay_rtt" "${visible[@]}" <<'PY'
import json, statistics, sys
attach = json.loads(sys.argv[1])
o1, u1, o4, u4 = ([float(x) for x in part.split()] for part in sys.argv[2].split("|"))
vis = [tuple(int(x) / 1000 for x in v.split()) for v in sys.argv[5:]]
print(json.dumps({
    "attach_ms": attach,
    "throughput_gbps": {"overlay": statistics.median(o1), "underlay": statistics.median(u1),
                        "overlay_4_streams": statistics.median(o4), "underlay_4_streams": statistics.median(u4),
                        "runs": {"overlay": o1, "underlay": u1, "overlay_4": o4, "underlay_4": u4}},
    "rtt_ms": {"overlay": float(sys.argv[3]), "underlay": float(sys.argv[4])},
    "visible_ms": {"run": statistics.median(v[0] for v in vis),
                   "after_run": statistics.median(v[1] for v in vis),
                   "samples": vis},
}, indent=2))
PY
