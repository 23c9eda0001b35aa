//! IPv6 on minirun's networks, as a Docker 28 user meets it: dual-stack
//! networks (addresses, routes, names of both families, no router
//! advertisements taken), masquerade of IPv6 leaving the subnet, published
//! ports over IPv6 from outside, from the host and hairpin, isolation,
//! internal networks and icc=false for IPv6, the default network when its
//! definition asks for IPv6, macvlan with IPv6, anti-spoofing of IPv6
//! sources and neighbour advertisements, 20 concurrent attaches, bad input,
//! and nothing left for either family. The sandbox is the host
//! (198.51.100.2 and 2001:db8:1::2 on `h0`); `client`, behind a veth with a
//! route to the host only, is the outside world. Documentation addresses,
//! inside the sandbox only.

use minirun_tests::{net_left, repo_dir, Sandbox, LEFTOVERS};

/// The client namespace, reached over IPv4 and IPv6; `client` runs in it,
/// `serve6 PORT` there answers each connection with the peer's address.
const WORLD: &str = r#"
mount -t tmpfs tmpfs /run
ip link set lo up
ip netns add client
ip link add h0 type veth peer name c0
ip link set c0 netns client
ip addr add 198.51.100.2/24 dev h0
ip -6 addr add 2001:db8:1::2/64 dev h0 nodad
ip link set h0 up
ip -n client addr add 198.51.100.1/24 dev c0
ip -n client -6 addr add 2001:db8:1::1/64 dev c0 nodad
ip -n client link set c0 up
ip -n client link set lo up
client() { ip netns exec client "$@"; }
serve6() { client python3 -c "
import socket,sys
s=socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind(('::',int(sys.argv[1]))); s.listen(); print('serving',flush=True)
c,a=s.accept(); c.sendall((a[0]+chr(10)).encode()); c.close()" "$1"; }
fetch() { timeout 5 busybox wget -qO- "http://$1/" 2>/dev/null || echo "fetch $1 failed"; }
world_down() { ip link del h0; ip netns del client; }
"#;

fn web(sb: &Sandbox) -> std::path::PathBuf {
    sb.bundle(
        "web",
        &[
            "/bin/sh",
            "-c",
            "echo served > /tmp/index.html; exec httpd -f -p 8080 -h /tmp",
        ],
        |_| {},
    )
}

fn sleeper(sb: &Sandbox) -> std::path::PathBuf {
    sb.bundle("s", &["/bin/sleep", "1000"], |_| {})
}

#[test]
fn a_dual_stack_network_end_to_end() {
    let sb = Sandbox::new("v6dual");
    let (w, s) = (web(&sb), sleeper(&sb));
    let out = sb.run(&format!(
        r#"{LEFTOVERS}{WORLD}
        M="$MINIRUN"
        $M network create --ipv6 --subnet 10.86.0.0/24 --subnet fd86::/64 --gateway fd86::1 six >/dev/null || exit 1
        sysctl -qw net.ipv6.conf.all.forwarding=0
        $M run -d --bundle {w} --net six -p 8080:8080 -p '[2001:db8:1::2]:8081:8080' $ID-w 2>$T/run.err || exit 2
        echo "forwarding: $(cat /proc/sys/net/ipv6/conf/all/forwarding) $(grep -c 'turned on IPv6 forwarding' $T/run.err)"
        $M run -d --bundle {s} --net six --ip6 fd86::99 --alias db $ID-s || exit 3
        # the container's side
        $M exec $ID-s ip -6 addr show dev eth0 | grep -o 'inet6 [^ ]*' | sort | tr '\n' ' '; echo
        echo "route6: $($M exec $ID-s ip -6 route show default | cut -d' ' -f1-3)"
        echo "tentative: $($M exec $ID-s ip -6 addr show dev eth0 | grep -c tentative)"
        echo "hosts: $($M exec $ID-w grep -c "^fd86::99[[:space:]]*db\|^fd86::99[[:space:]].*db" /etc/hosts)"
        # between containers by name, ICMPv6 and TCP over IPv6
        echo "ping6: $($M exec $ID-s ping -6 -c1 -W2 $ID-w >/dev/null && echo ok)"
        W6=$($M exec $ID-w ip -6 -o addr show dev eth0 scope global | awk '{{print $4}}' | cut -d/ -f1)
        echo "tcp6: $($M exec $ID-s timeout 5 wget -qO- "http://[$W6]:8080/")"
        echo "gw6: $($M exec $ID-s ping -c1 -W2 fd86::1 >/dev/null && echo ok)"
        # outbound, masqueraded to the host's address
        serve6 9000 > $T/serve.out & server=$!
        for i in $(seq 100); do grep -q serving $T/serve.out && break; sleep 0.02; done
        echo "peer: $($M exec $ID-s timeout 5 nc 2001:db8:1::1 9000 </dev/null)"
        wait $server
        # published ports over IPv6
        echo "outside6: $(client sh -c "$(declare -f fetch); fetch '[2001:db8:1::2]:8080'")"
        echo "outside4: $(client sh -c "$(declare -f fetch); fetch 198.51.100.2:8080")"
        echo "outside6-addr: $(client sh -c "$(declare -f fetch); fetch '[2001:db8:1::2]:8081'")"
        echo "host6: $(fetch '[2001:db8:1::2]:8080')"
        echo "hairpin6: $($M exec $ID-s timeout 5 wget -qO- 'http://[2001:db8:1::2]:8080/')"
        echo "self-hairpin6: $($M exec $ID-w timeout 5 wget -qO- 'http://[2001:db8:1::2]:8080/')"
        echo "localhost4: $(fetch 127.0.0.1:8080)"
        echo "loopback6: $(timeout 5 busybox wget -qO- 'http://[::1]:8080/' 2>&1 | grep -o 'refused')"
        # network connect --ip6: a container of the default network joins.
        $M run -d --bundle {s} --net bridge $ID-c || exit 4
        $M network connect --ip6 fd86::77 six $ID-c || exit 5
        echo "connected6: $($M exec $ID-c ip -6 -o addr show dev eth1 scope global | awk '{{print $4}}')"
        echo "connected-ping6: $($M exec $ID-c ping -6 -c1 -W2 $ID-s >/dev/null && echo ok)"
        $M network disconnect six $ID-c || exit 6
        echo "disconnected: $($M exec $ID-c ip -o link show eth1 2>/dev/null | wc -l)"
        $M delete -f $ID-c
        $M network inspect six > $T/inspect.json
        $M delete -f $ID-w; $M delete -f $ID-s
        $M network rm six >/dev/null
        world_down
        leftovers
        "#,
        w = w.display(),
        s = s.display(),
    ));
    assert!(out.stdout.contains("forwarding: 1 1\n"), "{out:?}");
    assert!(
        out.stdout
            .contains("inet6 fd86::99/64 inet6 fe80::42:aff:fe56:3/64 \n"),
        "{out:?}"
    );
    assert_eq!(out.field("route6"), "default via fd86::1", "{out:?}");
    assert_eq!(out.field("tentative"), "0", "{out:?}");
    assert_eq!(out.field("hosts"), "1", "{out:?}");
    assert_eq!(out.field("ping6"), "ok", "{out:?}");
    assert_eq!(out.field("tcp6"), "served", "{out:?}");
    assert_eq!(out.field("gw6"), "ok", "{out:?}");
    assert_eq!(out.field("peer"), "2001:db8:1::2", "masqueraded: {out:?}");
    for key in [
        "outside6",
        "outside4",
        "outside6-addr",
        "host6",
        "hairpin6",
        "self-hairpin6",
        "localhost4",
    ] {
        assert_eq!(out.field(key), "served", "{key}: {out:?}");
    }
    assert_eq!(out.field("loopback6"), "refused", "{out:?}");
    assert_eq!(out.field("connected6"), "fd86::77/64", "{out:?}");
    assert_eq!(out.field("connected-ping6"), "ok", "{out:?}");
    assert_eq!(out.field("disconnected"), "0", "{out:?}");
    assert_eq!(net_left(&out), "", "{out:?}");
    let inspect: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.dir.join("inspect.json")).unwrap()).unwrap();
    assert_eq!(inspect[0]["EnableIPv6"], true);
    assert_eq!(inspect[0]["IPAM"]["Config"][1]["Subnet"], "fd86::/64");
    assert_eq!(
        inspect[0]["Containers"][format!("{}-s", sb.id)]["IPv6Address"],
        "fd86::99/64"
    );
    sb.assert_clean();
}

#[test]
fn an_ipv6_only_network() {
    let sb = Sandbox::new("v6only");
    let (w, s) = (web(&sb), sleeper(&sb));
    let out = sb.run(&format!(
        r#"{LEFTOVERS}{WORLD}
        M="$MINIRUN"
        $M network create --ipv6 --ipv4=false --subnet fd87::/64 only6 >/dev/null || exit 1
        $M run -d --bundle {w} --net only6 -p 8080:8080 $ID-w 2>/dev/null || exit 2
        $M run -d --bundle {s} --net only6 $ID-s || exit 3
        echo "ipv4: $($M exec $ID-s ip -4 -o addr show dev eth0 | wc -l) $($M exec $ID-s ip -4 route | wc -l)"
        echo "ipv6: $($M exec $ID-s ip -6 -o addr show dev eth0 scope global | awk '{{print $4}}')"
        echo "hosts4: $($M exec $ID-s grep -c '^10\.\|^172\.' /etc/hosts)"
        echo "ping6: $($M exec $ID-s ping -6 -c1 -W2 $ID-w >/dev/null && echo ok)"
        echo "bridge4: $(ip -4 -o addr show dev $(ls /sys/class/net | grep '^mr-') | wc -l)"
        echo "tcp6-by-address: $($M exec $ID-s timeout 5 wget -qO- http://[fd87::2]:8080/)"
        serve6 9000 > $T/serve.out & server=$!
        for i in $(seq 100); do grep -q serving $T/serve.out && break; sleep 0.02; done
        echo "peer: $($M exec $ID-s timeout 5 nc 2001:db8:1::1 9000 </dev/null)"
        wait $server
        echo "outside6: $(client sh -c "$(declare -f fetch); fetch '[2001:db8:1::2]:8080'")"
        echo "outside4: $(client sh -c "$(declare -f fetch); fetch 198.51.100.2:8080")"
        echo "nft4: $(nft list set inet minirun subnets | grep -c elements)"
        # The MAC is the address's last 32 bits: a clash is passed over when
        # picking, refused when asked for.
        $M run -d --bundle {s} --net only6 --ip6 fd87::1:0:0:4 $ID-m1 >/dev/null || exit 4
        $M run -d --bundle {s} --net only6 $ID-m2 >/dev/null || exit 5
        echo "passed-over: $($M exec $ID-m2 ip -6 -o addr show dev eth0 scope global | awk '{{print $4}}')"
        $M run -d --bundle {s} --net only6 --ip6 fd87::9:0:0:4 $ID-m3 2>&1 >/dev/null | head -1
        $M run -d --bundle {s} --net only6 --ip6 fd87::9:0:0:1 $ID-m4 2>&1 >/dev/null | head -1
        $M delete -f $ID-m1; $M delete -f $ID-m2
        $M run -d --bundle {s} --net only6 -p 127.0.0.1:9090:80 $ID-x 2>&1 >/dev/null | head -1
        $M run -d --bundle {s} --net only6 --ip 10.0.0.5 $ID-y 2>&1 >/dev/null | head -1
        $M network inspect only6 > $T/inspect.json
        $M delete -f $ID-w; $M delete -f $ID-s
        $M network rm only6 >/dev/null
        world_down
        leftovers
        "#,
        w = w.display(),
        s = s.display(),
    ));
    assert_eq!(out.field("ipv4"), "0 0", "{out:?}");
    assert_eq!(out.field("ipv6"), "fd87::3/64", "{out:?}");
    assert_eq!(out.field("hosts4"), "0", "{out:?}");
    assert_eq!(out.field("ping6"), "ok", "{out:?}");
    assert_eq!(out.field("bridge4"), "0", "{out:?}");
    assert_eq!(out.field("tcp6-by-address"), "served", "{out:?}");
    assert_eq!(out.field("peer"), "2001:db8:1::2", "{out:?}");
    assert_eq!(out.field("outside6"), "served", "{out:?}");
    assert_eq!(
        out.field("outside4"),
        "fetch 198.51.100.2:8080 failed",
        "{out:?}"
    );
    assert_eq!(out.field("nft4"), "0", "{out:?}");
    assert_eq!(out.field("passed-over"), "fd87::5/64", "{out:?}");
    assert!(
        out.stdout.contains("--ip6 fd87::9:0:0:4: on an IPv6-only network a container's MAC is the last 32 bits of its address, and fd87::1:0:0:4 has the same ones"),
        "{out:?}"
    );
    // The bridge's MAC comes from the gateway's address the same way.
    assert!(
        out.stdout.contains("--ip6 fd87::9:0:0:1: on an IPv6-only network a container's MAC is the last 32 bits of its address, and fd87::1 has the same ones"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("network only6 has no IPv4: nothing is published on an IPv4 host address"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("--ip 10.0.0.5: network only6 has no IPv4 subnet"),
        "{out:?}"
    );
    assert_eq!(net_left(&out), "", "{out:?}");
    let inspect: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.dir.join("inspect.json")).unwrap()).unwrap();
    assert_eq!(inspect[0]["EnableIPv4"], false);
    assert_eq!(inspect[0]["IPAM"]["Config"][0]["Subnet"], "fd87::/64");
    assert_eq!(
        inspect[0]["Containers"][format!("{}-w", sb.id)]["IPv4Address"],
        ""
    );
    sb.assert_clean();
}

#[test]
fn networks_are_isolated_internal_and_icc_false_for_ipv6_too() {
    let sb = Sandbox::new("v6iso");
    let (w, s) = (web(&sb), sleeper(&sb));
    let out = sb.run(&format!(
        r#"{LEFTOVERS}{WORLD}
        M="$MINIRUN"
        $M network create --ipv6 --subnet 10.85.1.0/24 --subnet fd85:1::/64 one >/dev/null || exit 1
        $M network create --ipv6 --subnet 10.85.2.0/24 --subnet fd85:2::/64 two >/dev/null || exit 2
        $M network create --ipv6 --internal --subnet 10.85.3.0/24 --subnet fd85:3::/64 inner >/dev/null || exit 3
        $M network create --ipv6 -o icc=false --subnet 10.85.4.0/24 --subnet fd85:4::/64 lonely >/dev/null || exit 4
        $M run -d --bundle {w} --net one $ID-a || exit 5
        $M run -d --bundle {s} --net two $ID-b || exit 6
        $M run -d --bundle {s} --net inner $ID-i || exit 7
        $M run -d --bundle {w} --net lonely -p 8090:8080 $ID-l1 || exit 8
        $M run -d --bundle {s} --net lonely $ID-l2 || exit 9
        A6=$($M exec $ID-a ip -6 -o addr show dev eth0 scope global | awk '{{print $4}}' | cut -d/ -f1)
        L6=$($M exec $ID-l1 ip -6 -o addr show dev eth0 scope global | awk '{{print $4}}' | cut -d/ -f1)
        echo "cross: $($M exec $ID-b ping -6 -c1 -W1 $A6 >/dev/null 2>&1 && echo reached || echo blocked)"
        echo "internal-out: $($M exec $ID-i ping -6 -c1 -W1 2001:db8:1::1 >/dev/null 2>&1 && echo reached || echo blocked)"
        echo "internal-route6: $($M exec $ID-i ip -6 route show default | wc -l)"
        echo "icc: $($M exec $ID-l2 ping -6 -c1 -W1 $L6 >/dev/null 2>&1 && echo reached || echo blocked)"
        echo "icc-published: $($M exec $ID-l2 timeout 5 wget -qO- 'http://[2001:db8:1::2]:8090/')"
        echo "reach-out: $($M exec $ID-b ping -6 -c1 -W2 2001:db8:1::1 >/dev/null 2>&1 && echo reached || echo blocked)"
        for c in a b i l1 l2; do $M delete -f $ID-$c; done
        $M network rm one two inner lonely >/dev/null
        world_down
        leftovers
        "#,
        w = w.display(),
        s = s.display(),
    ));
    assert_eq!(out.field("cross"), "blocked", "{out:?}");
    assert_eq!(out.field("internal-out"), "blocked", "{out:?}");
    assert_eq!(out.field("internal-route6"), "0", "{out:?}");
    assert_eq!(out.field("icc"), "blocked", "{out:?}");
    assert_eq!(out.field("icc-published"), "served", "{out:?}");
    assert_eq!(out.field("reach-out"), "reached", "{out:?}");
    assert_eq!(net_left(&out), "", "{out:?}");
    sb.assert_clean();
}

#[test]
fn a_container_cannot_forge_ipv6_or_route_for_others() {
    let sb = Sandbox::new("v6spoof");
    let s = sleeper(&sb);
    let out = sb.run(&format!(
        r#"{LEFTOVERS}
        ip link set lo up
        S="python3 {spoof}"
        $MINIRUN network create --ipv6 --subnet 10.84.0.0/24 --subnet fd84::/64 guarded6 >/dev/null || exit 1
        $MINIRUN network create --ipv6 --subnet 10.84.1.0/24 --subnet fd84:1::/64 -o anti_spoofing=false open6 >/dev/null || exit 1
        pid() {{ $MINIRUN state $1 | sed -n 's/.*"pid": \([0-9]*\).*/\1/p'; }}
        inside() {{ c=$1; shift; nsenter -n -t $(pid $c) "$@"; }}
        mac() {{ inside $1 ip -o link show eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2; }}
        ip6() {{ inside $1 ip -6 -o addr show eth0 scope global | awk '{{print $4}}' | cut -d/ -f1; }}
        for net in guarded6 open6; do
            for c in a b c; do $MINIRUN run -d --net $net --bundle {s} $ID-$net-$c >/dev/null || exit 2; done
            A=$ID-$net-a; B=$ID-$net-b; C=$ID-$net-c
            ip -6 route > $T/host-routes.before; inside $C ip -6 route > $T/c-routes.before
            MA=$(mac $A); MB=$(mac $B); MC=$(mac $C); IA=$(ip6 $A); IB=$(ip6 $B); IC=$(ip6 $C)
            PA=$(pid $A)
            from_a() {{ nsenter -n -t $PA $S "$@"; }}
            inside $C $S listen 3 > $T/c.out & listener=$!
            for i in $(seq 100); do grep -q listening $T/c.out && break; sleep 0.02; done
            from_a udp $MA $IA $MC $IC own6
            from_a udp $MA $IB $MC $IC forged-ip6
            from_a udp $MB $IA $MC $IC forged-mac6
            from_a na6 $MA $IA $IB
            from_a ra $MA
            from_a redirect $MA
            from_a dhcp6 $MA
            wait $listener
            sed -e "s/$IA/A6/g; s/$IB/B6/g; s/$MA/mac-A/g; s/$MB/mac-B/g" $T/c.out \
                | grep -E '^(udp6 |na6 B6 mac-A|ra |redirect |dhcp6 )' | grep -E ' (A6|B6|mac-A|mac-B)( |$)' | sort | sed "s/^/$net: /"
            sleep 0.5
            ip -6 route | diff $T/host-routes.before - >/dev/null && echo "$net host routes: unchanged"
            inside $C ip -6 route | diff $T/c-routes.before - >/dev/null && echo "$net container routes: unchanged"
            for c in a b c; do $MINIRUN delete -f $ID-$net-$c; done
        done
        $MINIRUN network rm guarded6 open6 >/dev/null
        leftovers
        "#,
        spoof = repo_dir().join("tests/scripts/spoof.py").display(),
        s = s.display(),
    ));
    let seen: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.contains("unchanged"))
        .take_while(|l| *l != "--left--")
        .collect();
    // Guarded: only its own; open: the forgeries arrive (the test sends
    // what it says), router frames on neither.
    assert_eq!(
        seen,
        [
            "guarded6: udp6 A6 mac-A own6",
            "open6: na6 B6 mac-A",
            "open6: udp6 A6 mac-A own6",
            "open6: udp6 A6 mac-B forged-mac6",
            "open6: udp6 B6 mac-A forged-ip6",
        ],
        "{out:?}"
    );
    for net in ["guarded6", "open6"] {
        for routes in ["host", "container"] {
            let line = format!("{net} {routes} routes: unchanged\n");
            assert!(out.stdout.contains(&line), "{line}{out:?}");
        }
    }
    assert_eq!(net_left(&out), "", "{out:?}");
}

#[test]
fn concurrent_ipv6_attaches_the_default_network_and_macvlan() {
    let sb = Sandbox::new("v6many");
    let s = sleeper(&sb);
    let out = sb.run(&format!(
        r#"{LEFTOVERS}
        ip link set lo up
        M="$MINIRUN"
        $M network create --ipv6 many >/dev/null || exit 1
        for i in $(seq 20); do $M run -d --bundle {s} --net many $ID-$i >/dev/null 2>$T/err-$i & done
        wait
        cat $T/err-* | head -5
        $M network inspect many > $T/many.json
        for i in $(seq 20); do $M delete -f $ID-$i; done
        # The default network, asked for IPv6 by its definition.
        $M run -d --bundle {s} --net bridge $ID-d0 >/dev/null || exit 2
        python3 -c "
import json,sys; p=sys.argv[1]; c=json.load(open(p)); c['enableIPv6']=True; json.dump(c,open(p,'w'))" $MINIRUN_NET_CONFIG_DIR/bridge.json
        $M run -d --bundle {s} --net bridge $ID-d1 >/dev/null || exit 3
        echo "default6: $($M exec $ID-d1 ip -6 -o addr show dev eth0 scope global | awk '{{print $4}}')"
        echo "default-def: $(grep -o '"subnet6": "[^"]*"' $MINIRUN_NET_CONFIG_DIR/bridge.json)"
        # Rebuilt from the records, the IPv4-only container's first: the
        # network keeps its IPv6 subnet.
        nft flush ruleset; $MINIRUN_NET reload 2>/dev/null
        echo "reloaded6: $(nft list set inet minirun subnets6 | grep -c '::/64')"
        $M delete -f $ID-d0; $M delete -f $ID-d1
        # macvlan: the containers are on the parent's segment, both families.
        ip link add par0 type veth peer name par1; ip link set par0 up; ip link set par1 up
        $M network create -d macvlan -o parent=par0 --ipv6 --subnet 10.83.0.0/24 --subnet fd83::/64 mv >/dev/null || exit 4
        $M run -d --bundle {s} --net mv --ip6 fd83::20 $ID-m1 >/dev/null || exit 5
        $M run -d --bundle {s} --net mv $ID-m2 >/dev/null || exit 6
        echo "macvlan6: $($M exec $ID-m1 ip -6 -o addr show dev eth0 scope global | awk '{{print $4}}') $($M exec $ID-m1 ip -6 route show default | cut -d' ' -f1-3)"
        echo "macvlan-ping6: $($M exec $ID-m2 ping -6 -c1 -W2 $ID-m1 >/dev/null && echo ok)"
        $M delete -f $ID-m1; $M delete -f $ID-m2
        $M network rm many mv >/dev/null
        ip link del par0
        leftovers
        "#,
        s = s.display(),
    ));
    let many: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.dir.join("many.json")).unwrap()).unwrap();
    let subnet = many[0]["IPAM"]["Config"][1]["Subnet"]
        .as_str()
        .unwrap_or_else(|| panic!("{many}\n{out:?}"))
        .to_string();
    assert!(
        subnet.starts_with("fd") && subnet.ends_with("::/64"),
        "{subnet}"
    );
    let mut addresses: Vec<String> = many[0]["Containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["IPv6Address"].as_str().unwrap().to_string())
        .collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 20, "{addresses:?}\n{out:?}");
    let default6 = out.field("default6");
    assert!(
        default6.starts_with("fd") && default6.ends_with("/64"),
        "{out:?}"
    );
    assert!(out.field("default-def").contains("::/64"), "{out:?}");
    assert_eq!(out.field("reloaded6"), "1", "{out:?}");
    assert_eq!(
        out.field("macvlan6"),
        "fd83::20/64 default via fd83::1",
        "{out:?}"
    );
    assert_eq!(out.field("macvlan-ping6"), "ok", "{out:?}");
    assert_eq!(net_left(&out), "", "{out:?}");
    sb.assert_clean();
}

/// A host upgraded from a minirun before IPv6 has an `ip minirun` table
/// and no `inet` one: the next attach rebuilds the firewall from the
/// records, so the containers already running keep their published ports.
#[test]
fn the_table_of_an_older_minirun_is_migrated_by_the_next_attach() {
    let sb = Sandbox::new("v6migrate");
    let (w, s) = (web(&sb), sleeper(&sb));
    let out = sb.run(&format!(
        r#"{LEFTOVERS}
        ip link set lo up
        M="$MINIRUN"
        $M run -d --bundle {w} -p 8080:8080 $ID-old || exit 1
        echo "before: $(timeout 5 busybox wget -qO- http://127.0.0.1:8080/)"
        # What an older minirun left: its own table, none of today's.
        nft delete table inet minirun
        nft add table ip minirun
        nft add chain ip minirun postrouting '{{ type nat hook postrouting priority srcnat; }}'
        $M run -d --bundle {s} --net bridge $ID-new || exit 2
        echo "tables: $(nft list tables | grep minirun | sort | tr '\n' ' ')"
        echo "after: $(timeout 5 busybox wget -qO- http://127.0.0.1:8080/)"
        $M delete -f $ID-new; $M delete -f $ID-old
        leftovers
        "#,
        w = w.display(),
        s = s.display(),
    ));
    assert_eq!(out.field("before"), "served", "{out:?}");
    assert_eq!(
        out.field("tables"),
        "table bridge minirun table inet minirun ",
        "{out:?}"
    );
    assert_eq!(out.field("after"), "served", "{out:?}");
    assert_eq!(net_left(&out), "", "{out:?}");
    sb.assert_clean();
}

#[test]
fn bad_ipv6_input_gets_one_clear_error_and_leaves_nothing() {
    let sb = Sandbox::new("v6bad");
    let s = sleeper(&sb);
    let out = sb.run(&format!(
        r#"{LEFTOVERS}
        ip link set lo up
        M="$MINIRUN"
        try() {{ "$@" >/dev/null 2>$T/err; echo "rc=$? $(cat $T/err)"; }}
        try $M network create --ipv6 --subnet fd42::/129 a
        try $M network create --ipv6 --subnet fd42::/64 --gateway fd43::1 b
        try $M network create --ipv4=false c
        try $M network create --subnet fd42::/64 d
        $M network create --subnet 10.82.0.0/24 four >/dev/null || exit 1
        try $M run -d --bundle {s} --net four -p '[2001:db8::1]:8080:80' $ID-x
        try $M run -d --bundle {s} --net four --ip6 fd42::5 $ID-y
        try $M run -d --bundle {s} -p '[::1]:8080:80' $ID-z
        try $M network create --gateway fd42::1 e
        try $M run -d --bundle {s} -p '[::ffff:10.1.2.3]:8080:80' $ID-v
        $M network create --ipv6 --subnet 10.82.1.0/24 --subnet fd82::/64 six >/dev/null || exit 2
        try $M run -d --bundle {s} --net six --ip6 fd83::5 $ID-w
        $M network rm four six >/dev/null
        ls $MINIRUN_NET_CONFIG_DIR | grep -v '^bridge.json$'
        leftovers
        "#,
        s = s.display(),
    ));
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("rc="))
        .collect();
    let expected = [
        "network create --ipv6 --subnet fd42::/129",
        "subnet \"fd42::/129\" is not an IPv6 CIDR such as fd42:1::/64",
        "gateway fd43::1 is not a host address of subnet fd42::/64",
        "--ipv4=false needs --ipv6",
        "subnet fd42::/64 is IPv6: add --ipv6",
        "network four has no IPv6: nothing is published on an IPv6 host address",
        "--ip6 fd42::5: network four has no IPv6 subnet",
        "IPv6 has no route_localnet",
        "gateway fd42::1 is IPv6: add --ipv6",
        "is an IPv4 address written as IPv6: write 10.1.2.3",
        "--ip6 fd83::5: not an address for a container on network six (subnet fd82::/64, gateway fd82::1)",
    ];
    assert_eq!(lines.len(), expected.len() - 1, "{out:?}");
    for (line, want) in lines.iter().zip(expected.iter().skip(1)) {
        assert!(line.starts_with("rc=1 "), "{line}\n{out:?}");
        assert!(line.contains(want), "{want:?} in {line}\n{out:?}");
        assert_eq!(line.matches("minirun").count(), 1, "one error: {line}");
    }
    assert!(!out.stdout.contains(".json\n"), "{out:?}");
    assert_eq!(net_left(&out), "", "{out:?}");
    sb.assert_clean();
}
