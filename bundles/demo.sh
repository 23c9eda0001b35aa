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
bash "$top/build.sh" --release --quiet
bin=$top/target/release/minirun
echo "== building bundles"
bash "$here/build.sh" "$here/out"

export MINIRUN="$bin --root /run/minirun-demo"
export HELLO=$here/out/hello SLEEPER=$here/out/sleeper WEB=$here/out/web TOP=$top
unshare --mount --net --pid --fork --kill-child --mount-proc --propagation private bash -euo pipefail -c '
    # The sandbox stands in for the host: its own /run, network definitions
    # kept under it, and a network namespace with nothing but lo.
    mount -t tmpfs tmpfs /run
    export MINIRUN_NET_CONFIG_DIR=/run/minirun-demo/networks
    ip link set lo up

    echo "== minirun run $HELLO (a generated id, fresh namespaces, bridge networking)"
    $MINIRUN run "$HELLO"

    echo "== a web server and a client on the default bridge network"
    $MINIRUN run -d -p 8080:8080 -b "$WEB" web-1
    $MINIRUN run -d -b "$SLEEPER" client-1
    web_ip=$($MINIRUN state web-1 | sed -n "s/.*\"ipAddress\": \"\(.*\)\".*/\1/p")
    echo "web-1 has $web_ip; state shows:"
    $MINIRUN state web-1 | sed -n "/\"network\"/,/}/p"
    echo "-- client-1: ping $web_ip, then fetch http://$web_ip:8080/"
    $MINIRUN exec client-1 ping -c 2 "$web_ip"
    $MINIRUN exec client-1 wget -qO- "http://$web_ip:8080/"
    echo "-- the sandbox host: http://127.0.0.1:8080/ (the published port)"
    busybox wget -qO- http://127.0.0.1:8080/
    echo "-- the host side: the bridge, its veths, minirun'"'"'s nftables table"
    ip -br link show master minirun0
    nft list table inet minirun

    echo "== a user-defined network: containers find each other by name"
    $MINIRUN network create --subnet 10.77.0.0/24 shop
    $MINIRUN run -d --net shop --alias api -b "$WEB" shop-web
    $MINIRUN run -d --net shop -b "$SLEEPER" shop-client
    $MINIRUN network ls
    echo "-- shop-client: fetch http://api:8080/ (an alias of shop-web)"
    $MINIRUN exec shop-client wget -qO- http://api:8080/
    echo "-- client-1 on the default network cannot reach shop-web"
    $MINIRUN exec client-1 ping -c 1 -W 1 10.77.0.2 >/dev/null 2>&1 && echo "reached (unexpected)" || echo "blocked"
    $MINIRUN delete -f shop-web
    $MINIRUN delete -f shop-client
    $MINIRUN network rm shop

    echo "== IPv6: a dual-stack network, names of both families, a port published on both"
    $MINIRUN network create --ipv6 --subnet 10.78.0.0/24 --subnet fd78::/64 six
    $MINIRUN run -d --net six -p 8081:8080 -b "$WEB" six-web
    $MINIRUN run -d --net six -b "$SLEEPER" six-client
    echo "-- six-client: its addresses, and the lines for six-web in /etc/hosts"
    $MINIRUN exec six-client ip addr show dev eth0 | grep inet
    $MINIRUN exec six-client grep six-web /etc/hosts
    echo "-- six-client: ping -6 six-web, then fetch http://[fd78::2]:8080/"
    $MINIRUN exec six-client ping -6 -c 2 six-web
    $MINIRUN exec six-client wget -qO- "http://[fd78::2]:8080/"
    echo "-- the sandbox host: http://[fd78::1]:8081/ (the port, published on IPv6 too)"
    busybox wget -qO- "http://[fd78::1]:8081/"
    $MINIRUN delete -f six-web
    $MINIRUN delete -f six-client
    $MINIRUN network rm six

    echo "== two hosts sharing an overlay network through etcd"
    # Inside the sandbox: an underlay bridge with etcd on 10.99.0.1, and two
    # "hosts", each a network namespace with its own state and agent
    # (tests/scripts/cluster.sh, what the overlay tests use).
    mkdir -p /run/cluster-demo
    (
        export T=/run/cluster-demo MINIRUN_BIN=${MINIRUN%% *} MINIRUN_NET=$(dirname ${MINIRUN%% *})/minirun-net BUNDLE=$WEB ID=demo CGROUP_PARENT=
        source "$TOP/tests/scripts/cluster.sh"
        cluster_up 2 > /dev/null
        echo "-- host1: minirun cluster join --store $STORE --advertise 10.99.0.11 (host2 likewise), then minirun-net agent"
        mr 1 cluster ls
        echo "-- host1: minirun network create -d overlay --subnet 10.200.0.0/16 app"
        mr 1 network create -d overlay --subnet 10.200.0.0/16 app > /dev/null
        mr 2 network ls | grep -e NAME -e app
        echo "-- host1: a web server (alias db); host2: a client"
        mr 1 run -d --net app --alias db -b "$(bundle db1)" db1
        mr 2 run -d --net app -b "$(bundle web1)" web1
        mr 2 network inspect app | grep -e "\"Name\"" -e IPv4Address -e "\"Host\""
        echo "-- host2: web1 fetches http://db:8080/ across the VXLAN"
        mr 2 exec web1 wget -qO- http://db:8080/
        mr 1 delete -f db1; mr 2 delete -f web1
        mr 1 network rm app > /dev/null
        for h in 1 2; do mr $h cluster leave > /dev/null; done
        cluster_down
    )

    echo "== create / start / state / kill / delete of a long-running container"
    (cd "$SLEEPER" && $MINIRUN create --net none --pid-file /run/sleeper.pid sleeper)
    echo "created, init pid $(cat /run/sleeper.pid)"
    $MINIRUN start sleeper
    $MINIRUN list
    $MINIRUN kill sleeper KILL
    for i in $(seq 50); do $MINIRUN state sleeper | grep -q stopped && break; sleep 0.1; done
    $MINIRUN delete sleeper
    $MINIRUN delete -f web-1
    $MINIRUN delete -f client-1
    echo "== after delete: containers, links, nftables rules (all empty but lo)"
    $MINIRUN list
    ip -br link
    nft list ruleset
'
