//! A network past one Linux bridge's 1,023 ports: containers whose
//! addresses are in different blocks of the subnet are on different
//! bridges of one segment (hooks/src/segment.rs), and reach each other, the
//! gateway, published ports and the world as on one bridge; icc=false holds
//! across the bridges; the neighbour entries between host and containers
//! are permanent; an ARP request stops at the primary bridge, which
//! answers it. The 1,100-container test runs a network past the wall
//! itself. All in a sandbox.

use minirun_tests::{net_left, Sandbox, BEYOND, LEFTOVERS};

/// Four containers of one /16: `p` on the primary bridge (10.77.0.10),
/// `w` on secondary 4 (10.77.4.10: the subnet's fifth block of 256)
/// serving HTTP and published on 8080, `s` and `t` on secondary 8
/// (10.77.8.10-11).
fn across_bridges(icc: bool, call_ip_hooks: &str) -> minirun_tests::Output {
    let sb = Sandbox::new(&format!("segment-{icc}-{call_ip_hooks}"));
    let web = sb.bundle("w", &["/bin/httpd", "-f", "-p", "80", "-h", "/etc"], |_| {});
    let b = sb.bundle("s", &["/bin/sleep", "1000"], |_| {});
    let www = sb.dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "beyond\n").unwrap();
    let out = sb.run(&format!(
        r#"{LEFTOVERS}{BEYOND}
        ip link set lo up
        f=/proc/sys/net/bridge/bridge-nf-call-iptables
        if [ -e $f ]; then echo {call_ip_hooks} > $f; elif [ {call_ip_hooks} = 1 ]; then exit 77; fi
        # a host address that is not the bridge's, and a namespace beyond
        # the host with no route back to the containers' subnet
        beyond {www}
        M="$MINIRUN"
        $M network create -o icc={icc} --subnet 10.77.0.0/16 wide >/dev/null || exit 1
        $M run -d --bundle {web} --net wide --ip 10.77.0.10 $ID-p || exit 2
        $M run -d --bundle {web} --net wide --ip 10.77.4.10 -p 8080:80 $ID-w || exit 3
        $M run -d --bundle {b} --net wide --ip 10.77.8.10 $ID-s || exit 4
        $M run -d --bundle {web} --net wide --ip 10.77.8.11 $ID-t || exit 5
        echo "bridges: $(ip -o link show type bridge | wc -l)"
        sec=$(ip -o link show master $(ip -o link show type bridge | grep -o 'mr[0-9a-f]*b4' | head -1) | wc -l)
        echo "on-secondary-4: $sec"
        reach() {{ $M exec $1 timeout 3 wget -qO- http://$2/hostname >/dev/null 2>&1 && echo reached || echo blocked; }}
        # w's ARP request for p is answered by the primary: it floods w's
        # own bridge and stops there, so s (another secondary) sees none
        spid=$($M state $ID-s | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$')
        nsenter -t $spid -n nft add table arp seen
        nsenter -t $spid -n nft add chain arp seen in '{{ type filter hook input priority 0; }}'
        nsenter -t $spid -n nft add rule arp seen in counter
        echo "w-p-first: $($M exec $ID-w ping -c1 -W2 10.77.0.10 >/dev/null 2>&1 && echo reached || echo blocked)"
        echo "arp-at-s: $(nsenter -t $spid -n nft list chain arp seen in | grep -o 'packets [0-9]*' | grep -o '[0-9]*')"
        echo "s-w: $(reach $ID-s 10.77.4.10)"
        echo "s-p: $(reach $ID-s 10.77.0.10)"
        echo "p-w: $(reach $ID-p 10.77.4.10)"
        echo "s-t: $(reach $ID-s 10.77.8.11)"
        echo "w-s-ping: $($M exec $ID-w ping -c1 -W2 10.77.8.10 >/dev/null 2>&1 && echo reached || echo blocked)"
        echo "s-gateway: $($M exec $ID-s ping -c1 -W2 10.77.0.1 >/dev/null 2>&1 && echo reached || echo blocked)"
        echo "s-published: $(reach $ID-s 198.51.100.2:8080)"
        echo "p-published: $(reach $ID-p 198.51.100.2:8080)"
        echo "beyond-published: $(ip netns exec beyond busybox wget -qO- http://198.51.100.2:8080/hostname >/dev/null 2>&1 && echo reached || echo blocked)"
        echo "host-w: $(timeout 3 busybox wget -qO- http://10.77.4.10/hostname >/dev/null 2>&1 && echo reached || echo blocked)"
        echo "s-beyond: $($M exec $ID-s timeout 3 wget -qO- http://198.51.100.1:8080/index.html 2>&1)"
        echo "gateway-entry: $($M exec $ID-s ip neigh show 10.77.0.1 | grep -c PERMANENT)"
        echo "host-entry: $(ip neigh show 10.77.8.10 | grep -c PERMANENT)"
        $M delete -f $ID-p; $M delete -f $ID-w; $M delete -f $ID-s; $M delete -f $ID-t
        $M network rm wide >/dev/null
        beyond_gone
        leftovers
        "#,
        web = web.display(),
        b = b.display(),
        www = www.display(),
    ));
    if out.code != 77 {
        assert_eq!(net_left(&out), "", "{out:?}");
        sb.assert_clean();
    }
    out
}

fn check_across_bridges(icc: bool) {
    for call_ip_hooks in ["1", "0"] {
        let out = across_bridges(icc, call_ip_hooks);
        if out.code == 77 {
            eprintln!("no br_netfilter here: only the bridge-level way is tested");
            continue;
        }
        let direct = if icc { "reached" } else { "blocked" };
        let why = format!("icc={icc}, bridge-nf-call-iptables={call_ip_hooks}: {out:?}");
        assert_eq!(out.field("bridges"), "3", "{why}");
        assert_eq!(
            out.field("on-secondary-4"),
            "2",
            "the container and the link: {why}"
        );
        assert_eq!(out.field("arp-at-s"), "0", "{why}");
        for pair in ["w-p-first", "s-w", "s-p", "p-w", "s-t", "w-s-ping"] {
            assert_eq!(out.field(pair), direct, "{pair}: {why}");
        }
        for reached in [
            "s-gateway",
            "s-published",
            "p-published",
            "beyond-published",
            "host-w",
        ] {
            assert_eq!(out.field(reached), "reached", "{reached}: {why}");
        }
        assert_eq!(out.field("s-beyond"), "beyond", "{why}");
        assert_eq!(out.field("gateway-entry"), "1", "{why}");
        assert_eq!(out.field("host-entry"), "1", "{why}");
    }
}

#[test]
fn a_network_spans_bridges() {
    check_across_bridges(true);
}

#[test]
fn icc_false_holds_across_bridges() {
    check_across_bridges(false);
}

/// Neighbour solicitations on a dual-stack network of several bridges cross
/// only the link toward their target (firewall `nd_up`/`nd_local`): with
/// `p` on the primary, `a` on secondary 4, `b` and `b2` on secondary 8 and
/// `o` on secondary 12, a's NS for b never reaches o, and b's for its
/// neighbour b2 never leaves secondary 8; everything still reaches
/// everything, the gateway and the host over IPv6. NS are counted by their
/// target at each observer's eth0 (netdev ingress counters in its namespace);
/// a container's MLD report and router solicitation reach no other
/// container.
#[test]
fn neighbour_solicitations_cross_only_the_link_to_their_target() {
    let sb = Sandbox::new("segment-nd");
    let b = sb.bundle("s", &["/bin/sleep", "1000"], |_| {});
    let out = sb.run(&format!(
        r#"{LEFTOVERS}
        ip link set lo up
        M="$MINIRUN"
        RS="import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.sendto(bytes([133, 0, 0, 0, 0, 0, 0, 0]), ('ff02::2', 0, 0, socket.if_nametoindex('eth0')))"
        $M network create --ipv6 --subnet 10.78.0.0/16 --subnet fd78::/64 six >/dev/null || exit 1
        run() {{ $M run -d --bundle {b} --net six --ip $2 --ip6 $3 $ID-$1 </dev/null >/dev/null || exit 2; }}
        run p 10.78.0.10 fd78::10
        run a 10.78.4.10 fd78::4:10
        run b 10.78.8.10 fd78::8:10
        run b2 10.78.8.11 fd78::8:11
        run o 10.78.12.10 fd78::12:10
        pid() {{ $M state $ID-$1 | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$'; }}
        # NS for b (fd78::8:10) and for b2 (fd78::8:11), by target, at p, b2 and o
        for c in p b2 o; do
            n="nsenter -t $(pid $c) -n nft"
            $n add table netdev seen
            $n add chain netdev seen in "{{ type filter hook ingress device eth0 priority 0; }}"
            $n add counter netdev seen b
            $n add counter netdev seen b2
            $n add rule netdev seen in icmpv6 type nd-neighbor-solicit @th,64,128 0xfd780000000000000000000000080010 counter name b
            $n add rule netdev seen in icmpv6 type nd-neighbor-solicit @th,64,128 0xfd780000000000000000000000080011 counter name b2
            $n add counter netdev seen mld
            # from a (10.78.4.10): the host's own reports do reach them
            $n add rule netdev seen in ether saddr 02:42:0a:4e:04:0a icmpv6 type {{ mld-listener-report, mld2-listener-report }} counter name mld
            $n add counter netdev seen rs
            $n add rule netdev seen in ether saddr 02:42:0a:4e:04:0a icmpv6 type nd-router-solicit counter name rs
        done
        seen() {{ nsenter -t $(pid $1) -n nft list counter netdev seen $2 | grep -o 'packets [0-9]*' | grep -o '[0-9]*$'; }}
        ping6() {{ $M exec $ID-$1 ping -6 -c1 -W2 $2 >/dev/null 2>&1 && echo reached || echo blocked; }}
        echo "a-b: $(ping6 a fd78::8:10)"
        echo "o-saw-a-b: $(seen o b)"
        echo "b2-saw-a-b: $([ $(seen b2 b) -gt 0 ] && echo yes || echo no)"
        echo "b-b2: $(ping6 b fd78::8:11)"
        echo "o-saw-b-b2: $(seen o b2)"
        echo "p-saw-b-b2: $(seen p b2)"
        # a new address joins its solicited-node group: the report goes to
        # the bridge, not to the other containers
        nsenter -t $(pid a) -n ip -6 addr add fd78::4:99/64 dev eth0 nodad
        sleep 1
        echo "mld-at-others: $(( $(seen p mld) + $(seen b2 mld) + $(seen o mld) ))"
        nsenter -t $(pid a) -n ip -6 addr del fd78::4:99/64 dev eth0
        # a router solicitation is for the host (minirun's bridge sends no
        # advertisements, and nobody behind a container port may)
        nsenter -t $(pid a) -n python3 -c "$RS"
        sleep 0.2
        echo "rs-at-others: $(( $(seen p rs) + $(seen b2 rs) + $(seen o rs) ))"
        echo "p-o: $(ping6 p fd78::12:10)"
        echo "o-a: $(ping6 o fd78::4:10)"
        echo "a-gateway: $(ping6 a fd78::1)"
        echo "host-b: $(busybox ping -6 -c1 -W2 fd78::8:10 >/dev/null 2>&1 && echo reached || echo blocked)"
        for c in p a b b2 o; do $M delete -f $ID-$c; done
        $M network rm six >/dev/null
        leftovers
        "#,
        b = b.display(),
    ));
    out.ok();
    for (field, want) in [
        ("a-b", "reached"),
        ("o-saw-a-b", "0"),
        ("b2-saw-a-b", "yes"),
        ("b-b2", "reached"),
        ("o-saw-b-b2", "0"),
        ("p-saw-b-b2", "0"),
        ("mld-at-others", "0"),
        ("rs-at-others", "0"),
        ("p-o", "reached"),
        ("o-a", "reached"),
        ("a-gateway", "reached"),
        ("host-b", "reached"),
    ] {
        assert_eq!(out.field(field), want, "{field}: {out:?}");
    }
    assert_eq!(net_left(&out), "", "{out:?}");
    sb.assert_clean();
}

/// Past the wall every bridge network of Docker, podman and the CNI bridge
/// plugin meets at 1,023 containers: 1,100 on a user network, the last
/// reaching the first by name and the gateway, the host's entries for them
/// all permanent, and nothing left once they are deleted. (bench/ runs
/// 4,000 on the default network and on a user network.)
#[test]
fn eleven_hundred_containers_on_one_network() {
    let sb = Sandbox::new("wall");
    // No hostname: the first 12 characters of the id (the number first),
    // distinct as Docker's and podman's are; containers sharing a hostname
    // would each need a hosts file of their own.
    let no_hostname = |c: &mut serde_json::Value| {
        c.as_object_mut().unwrap().remove("hostname");
    };
    let web = sb.bundle(
        "w",
        &["/bin/httpd", "-f", "-p", "80", "-h", "/etc"],
        no_hostname,
    );
    let b = sb.bundle("s", &["/bin/sleep", "100000"], no_hostname);
    let out = sb.run(&format!(
        r#"{LEFTOVERS}
        M="$MINIRUN"
        $M network create --subnet 10.78.0.0/16 crowd >/dev/null || exit 1
        $M run -d --net crowd -b {web} 1-$ID || exit 2
        # two at a time: the hook's locks keep concurrent attaches apart
        seq 2 1100 | xargs -P2 -I% sh -c '$0 run -d --net crowd -b {b} %-$1 || echo "run %-$1 failed"' "$M" $ID
        echo "running: $($M list -q | wc -l)"
        echo "bridges: $(ip -o link show type bridge | wc -l)"
        echo "last-first: $($M exec 1100-$ID timeout 5 wget -qO- http://1-$ID/hostname >/dev/null 2>&1 && echo reached || echo blocked)"
        echo "last-gateway: $($M exec 1100-$ID ping -c1 -W2 10.78.0.1 >/dev/null 2>&1 && echo reached || echo blocked)"
        echo "permanent: $(ip neigh show nud permanent | wc -l)"
        echo "learnt: $(ip neigh show | grep -vc PERMANENT)"
        echo "hosts-lines: $($M exec 1-$ID grep -c 'minirun container' /etc/hosts)"
        seq 1 1100 | xargs -P2 -I% sh -c '$0 delete -f %-$1 || echo "delete %-$1 failed"' "$M" $ID
        $M network rm crowd >/dev/null
        leftovers
        "#,
        web = web.display(),
        b = b.display(),
    ));
    assert!(!out.stdout.contains("failed"), "{out:?}");
    assert_eq!(out.field("running"), "1100", "{out:?}");
    // Addresses 2-1,101 of the subnet: its first five blocks of 256.
    assert_eq!(out.field("bridges"), "5", "{out:?}");
    assert_eq!(out.field("last-first"), "reached", "{out:?}");
    assert_eq!(out.field("last-gateway"), "reached", "{out:?}");
    assert_eq!(out.field("permanent"), "1100", "{out:?}");
    assert_eq!(out.field("learnt"), "0", "{out:?}");
    assert_eq!(out.field("hosts-lines"), "1100", "{out:?}");
    assert_eq!(net_left(&out), "", "{out:?}");
    sb.assert_clean();
}

/// A user network's containers share its hosts file; one whose hostname is
/// already a name there gets a file of its own, kept in step; the names of
/// a container that leaves go from both.
#[test]
fn names_through_the_shared_hosts_file() {
    let sb = Sandbox::new("sharedhosts");
    // No hostname: the first 12 characters of the id, as Docker's.
    let b = sb.bundle("s", &["/bin/sleep", "1000"], |c| {
        c.as_object_mut().unwrap().remove("hostname");
    });
    let same = sb.bundle("same", &["/bin/sleep", "1000"], |c| {
        c["hostname"] = "twin".into();
    });
    let out = sb.run(&format!(
        r#"{LEFTOVERS}
        M="$MINIRUN"
        $M network create --subnet 10.79.0.0/24 names >/dev/null || exit 1
        $M run -d --net names --ip 10.79.0.10 -b {same} $ID-a || exit 2
        $M run -d --net names --ip 10.79.0.11 -b {same} $ID-b || exit 3
        $M run -d --net names --ip 10.79.0.12 -b {b} c-$ID || exit 4
        echo "a-self: $($M exec $ID-a hostname -i)"
        echo "b-self: $($M exec $ID-b hostname -i)"
        echo "c-to-b: $($M exec c-$ID ping -c1 -W2 $ID-b >/dev/null && echo ok)"
        echo "b-to-c: $($M exec $ID-b ping -c1 -W2 c-$ID >/dev/null && echo ok)"
        $M run -d --net names --ip 10.79.0.13 -b {b} d-$ID || exit 5
        echo "b-to-later: $($M exec $ID-b ping -c1 -W2 d-$ID >/dev/null && echo ok)"
        echo "private: $(ls $MINIRUN_NET_DIR/networks/names.private)"
        echo "links: $(stat -c %h $MINIRUN_NET_DIR/networks/names.hosts)"
        $M delete -f c-$ID
        echo "a-to-gone: $($M exec $ID-a grep -c c-$ID /etc/hosts)"
        echo "b-to-gone: $($M exec $ID-b grep -c c-$ID /etc/hosts)"
        $M delete -f $ID-a; $M delete -f $ID-b; $M delete -f d-$ID
        $M network rm names >/dev/null
        leftovers
        "#,
        b = b.display(),
        same = same.display(),
    ));
    assert_eq!(out.field("a-self"), "10.79.0.10", "{out:?}");
    assert_eq!(out.field("b-self"), "10.79.0.11", "its own file: {out:?}");
    for key in ["c-to-b", "b-to-c", "b-to-later"] {
        assert_eq!(out.field(key), "ok", "{key}: {out:?}");
    }
    assert_eq!(out.field("private"), format!("{}-b", sb.id), "{out:?}");
    // The network's name, a's, c's and d's links.
    assert_eq!(out.field("links"), "4", "{out:?}");
    assert_eq!(out.field("a-to-gone"), "0", "{out:?}");
    assert_eq!(out.field("b-to-gone"), "0", "{out:?}");
    assert_eq!(net_left(&out), "", "{out:?}");
    sb.assert_clean();
}
