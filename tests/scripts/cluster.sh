# tests/scripts/cluster.sh — a cluster of minirun hosts inside one sandbox,
# sourced by the overlay tests (and the bench and the demo).
#
# The sandbox's own network namespace is the underlay: a bridge `ul0` with
# 10.99.0.1/24, where etcd (Debian's, data in $T/etcd) listens. Each host is
# a network namespace of its own (a holder process) joined to ul0 by a veth,
# with the underlay address 10.99.0.1N and its own state: minirun's root,
# the network hook's directories and the cluster configuration under $T/hN.
# `on N cmd` runs a command on host N, `mr N args` runs minirun there.
#
# Needs: $T (a private directory), $MINIRUN_BIN, $MINIRUN_NET, $BUNDLE (a
# busybox bundle to copy), $ID (the tests' prefix for cgroups).

STORE=etcd://10.99.0.1:2379
declare -A HOLDER AGENT
# Commands started in the background by a scenario (`wait` alone would also
# wait for etcd, the agents and the hosts).
JOBS=()

etcd_start() {
    etcd --name store --data-dir "$T/etcd" \
        --listen-client-urls http://10.99.0.1:2379 --advertise-client-urls http://10.99.0.1:2379 \
        --listen-peer-urls http://127.0.0.1:2380 >>"$T/etcd.log" 2>&1 &
    ETCD=$!
    for _ in $(seq 100); do
        curl -s --max-time 1 http://10.99.0.1:2379/health 2>/dev/null | grep -q true && return 0
        sleep 0.1
    done
    echo "etcd did not start" >&2
    tail -20 "$T/etcd.log" >&2
    return 1
}

# (Every kill and wait may fail harmlessly: `|| true` keeps callers under
# `set -e`, as the demo is, going.)
etcd_stop() {
    kill "$ETCD" 2>/dev/null || true
    wait "$ETCD" 2>/dev/null || true
}

# Host N's environment: its own state, network and cluster files.
on() {
    local h=$1
    shift
    nsenter -t "${HOLDER[$h]}" -n env \
        MINIRUN_NET_DIR="$T/h$h/net" MINIRUN_NET_CONFIG_DIR="$T/h$h/networks" \
        MINIRUN_CLUSTER_CONFIG="$T/h$h/cluster.json" MINIRUN_NET_BIN="$MINIRUN_NET" "$@"
}

mr() {
    local h=$1
    shift
    on "$h" "$MINIRUN_BIN" --root "$T/h$h/state" "$@"
}

host_add() {
    local h=$1
    unshare --net sleep 100000 &
    HOLDER[$h]=$!
    local own
    own=$(readlink /proc/self/ns/net)
    while [ "$(readlink "/proc/${HOLDER[$h]}/ns/net" 2>/dev/null)" = "$own" ]; do sleep 0.005; done
    ip link add "ul-h$h" type veth peer name eth0 netns "/proc/${HOLDER[$h]}/ns/net"
    ip link set "ul-h$h" master ul0 up
    on "$h" sh -c "ip link set lo up && ip addr add 10.99.0.1$h/24 dev eth0 && ip link set eth0 up"
    mkdir -p "$T/h$h"
}

agent_start() {
    local h=$1
    # nsenter forks: the agent's own pid comes from inside.
    on "$h" sh -c "echo \$\$ > $T/agent$h.pid; exec $MINIRUN_NET agent" >>"$T/agent$h.log" 2>&1 &
    wait_for 5 "[ -s $T/agent$h.pid ]"
    AGENT[$h]=$(cat "$T/agent$h.pid")
}

# cluster_up N: the underlay, etcd, and N hosts joined with a lease TTL of
# $TTL seconds (default 5), each running its agent.
cluster_up() {
    ip link set lo up
    # A bridge takes the lowest MAC of its ports unless given one: a host
    # leaving would change it under the others' ARP caches.
    ip link add ul0 address 02:99:00:00:00:01 type bridge
    ip addr add 10.99.0.1/24 dev ul0
    ip link set ul0 up
    etcd_start || return 1
    local h
    for h in $(seq "$1"); do
        host_add "$h"
        mr "$h" cluster join --store "$STORE" --advertise "10.99.0.1$h" --name "host$h" --ttl "${TTL:-5}" >/dev/null || return 1
        agent_start "$h"
    done
    for h in $(seq "$1"); do
        wait_for 10 "[ -s $T/h$h/net/cluster/lease ]" || { echo "agent of host $h has no lease" >&2; cat "$T/agent$h.log" >&2; return 1; }
    done
}

# wait_for SECONDS 'condition': true once the condition holds.
wait_for() {
    local until=$((SECONDS + $1))
    while ! eval "$2"; do
        [ $SECONDS -ge $until ] && return 1
        sleep 0.05
    done
}

# listening HOST CONTAINER PORT_HEX: waits until a process of the container
# listens on that TCP port (as /proc/net/tcp writes it, 5000 is 1388; busybox's
# nc listens on IPv6's any address, in tcp6), so a client started next does
# not race the server's start.
listening() {
    wait_for 10 "mr $1 exec $2 sh -c \"cat /proc/net/tcp /proc/net/tcp6 | grep -q ':$3 0*:0000 0A'\"" ||
        echo "listening: nothing on port 0x$3 of $2 after 10 s" >&2
}

# bundle NAME: a copy of $BUNDLE for a container, its cgroup under
# $CGROUP_PARENT (default /$ID, which the tests remove; empty: the runtime's
# default place).
bundle() {
    local dir=$T/bundles/$1
    mkdir -p "$T/bundles"
    cp -a "$BUNDLE" "$dir"
    python3 - "$dir/config.json" "${CGROUP_PARENT-/$ID}" "$1" <<'PY'
import json, sys
path, parent, name = sys.argv[1:4]
c = json.load(open(path))
if parent:
    c["linux"]["cgroupsPath"] = f"{parent}/{name}"
c.get("annotations", {}).pop("org.minirun.net.mode", None)
json.dump(c, open(path, "w"))
PY
    echo "$dir"
}

# ip_of N CONTAINER: its address on eth0.
ip_of() {
    mr "$1" exec "$2" ip -o -4 addr show eth0 | awk '{print $4}' | cut -d/ -f1
}

# The cluster's keys in etcd (decoded), one per line.
etcd_keys() {
    curl -s --max-time 2 -X POST http://10.99.0.1:2379/v3/kv/range \
        -d "{\"key\":\"$(printf /minirun/ | base64)\",\"range_end\":\"$(printf /minirun0 | base64)\",\"keys_only\":true}" |
        python3 -c 'import sys, json, base64; [print(base64.b64decode(k["key"]).decode()) for k in json.load(sys.stdin).get("kvs", [])]'
}

# What host N still has of minirun: links but lo and eth0, the firewall,
# records, leases.
host_leftovers() {
    on "$1" ip -o link show | grep -v -e ': lo:' -e ': eth0@' | cut -d: -f2
    on "$1" nft list ruleset
    ls "$T/h$1/net/containers" 2>/dev/null
    ls "$T/h$1/net/networks"/*/ 2>/dev/null | grep '^[0-9]'
    true
}

# kill_host N: the host dies: its agent, its containers' processes and its
# namespace, with nothing of minirun running its teardown.
kill_host() {
    local h=$1 id pid
    kill -9 "${AGENT[$h]}" 2>/dev/null || true
    for id in $(ls "$T/h$h/state" 2>/dev/null); do
        pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("pid", 0))' "$T/h$h/state/$id/state.json" 2>/dev/null)
        if [ -n "$pid" ] && [ "$pid" != 0 ]; then kill -9 "$pid" 2>/dev/null || true; fi
    done
    kill -9 "${HOLDER[$h]}" 2>/dev/null || true
    wait "${HOLDER[$h]}" 2>/dev/null || true
}

# cluster_down: the agents, hosts, etcd and the underlay go (containers must
# have been deleted first).
cluster_down() {
    local h
    for h in "${!AGENT[@]}"; do kill "${AGENT[$h]}" 2>/dev/null || true; done
    for h in "${!HOLDER[@]}"; do
        kill "${HOLDER[$h]}" 2>/dev/null || true
        wait "${HOLDER[$h]}" 2>/dev/null || true
    done
    etcd_stop
    ip link del ul0 2>/dev/null || true
}
