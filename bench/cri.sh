#!/bin/bash
# bench/cri.sh — a pod through containerd's CRI as the kubelet starts one:
# RunPodSandbox (with a hostPort) + CreateContainer + StartContainer, timed
# together, with minirun as the runtime handler and minirun-net as the CNI
# plugin, against runc with the reference plugins (bridge + host-local +
# portmap). Two containerd 1.6 instances of the same configuration but for
# these, in the bench's sandbox, pods alternating between them. Prints JSON.
# Needs $T, $MINIRUN_BIN, $MINIRUN_NET, $CRI_CLIENT, $CNI_PATH, $PODS.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PODS=${PODS:-20}
mkdir -p /var/lib/cni && mount -t tmpfs tmpfs /var/lib/cni
source "$here/../tests/scripts/containerd-cri.sh"
cri_images || exit 1
cri_containerd cri-minirun minirun "$MINIRUN_BIN" \
    '{"cniVersion":"1.0.0","name":"k8s-pod-network","plugins":[{"type":"minirun-net","network":"bridge","capabilities":{"portMappings":true}}]}' || exit 1
cri_containerd cri-runc runc "$(command -v runc)" \
    '{"cniVersion":"1.0.0","name":"refnet","plugins":[{"type":"bridge","bridge":"cni0","isGateway":true,"ipMasq":true,"hairpinMode":true,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.88.0.0/16"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"'"$T"'/ipam"}},{"type":"portmap","snat":true,"capabilities":{"portMappings":true}}]}' \
    "$CNI_PATH/bridge" "$CNI_PATH/host-local" "$CNI_PATH/portmap" || exit 1

# pod KIND I: RunPodSandbox + CreateContainer + StartContainer; prints ms.
pod() {
    local kind=$1 i=$2 sock=/run/cri-$1.sock port=$((40000 + $2 * 2))
    local t0 t1 id ip c
    [ "$kind" = runc ] && port=$((port + 1))
    t0=$(date +%s%N)
    read -r id ip < <(CRI_HANDLER=$kind "$CRI_CLIENT" "$sock" run-pod "$kind$i" /bench-cri "$port:80") || return 1
    c=$("$CRI_CLIENT" "$sock" create "$id" srv /bench-cri "$port:80" -- /bin/sleep 1000) || return 1
    "$CRI_CLIENT" "$sock" start "$c" || return 1
    t1=$(date +%s%N)
    echo "$id" >> "$T/pods-$kind"
    echo $(( (t1 - t0) / 1000 ))
}

minirun_us=() runc_us=()
for i in $(seq "$PODS"); do
    for kind in $([ $((i % 2)) = 1 ] && echo minirun runc || echo runc minirun); do
        us=$(pod "$kind" "$i") || { tail -20 "$T/cri-$kind/containerd.log" >&2; exit 1; }
        if [ "$kind" = minirun ]; then minirun_us+=("$us"); else runc_us+=("$us"); fi
    done
done
for kind in minirun runc; do
    while read -r id; do
        "$CRI_CLIENT" "/run/cri-$kind.sock" stop-pod "$id" && "$CRI_CLIENT" "/run/cri-$kind.sock" remove-pod "$id"
    done < "$T/pods-$kind"
done
kill %1 %2 2>/dev/null
wait 2>/dev/null
python3 - "${minirun_us[*]}" "${runc_us[*]}" <<'PY'
import json, statistics, sys
m = [int(x) / 1000 for x in sys.argv[1].split()]
r = [int(x) / 1000 for x in sys.argv[2].split()]
s = lambda v: {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}
print(json.dumps({"minirun": s(m), "runc": s(r)}))
PY
