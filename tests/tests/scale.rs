//! A network past one Linux bridge's 1,023 ports: containers whose
//! addresses are in different blocks of the subnet are on different
//! bridges of one segment (hooks/src/segment.rs), and reach each other, the
//! gateway, published ports and the world as on one bridge; icc=false holds
//! across the bridges; the neighbour entries between host and containers
//! are permanent. The 1,100-container test runs a network past the wall
//! itself. All in a sandbox.

use minirun_tests::{net_left, Sandbox, LEFTOVERS};

/// Three containers of one /16: `p` on the primary bridge (10.77.0.10),
/// `w` on secondary 1 (10.77.4.10, address 1,034 of the subnet) serving
/// HTTP and published on 8080, `s` and `t` on secondary 2 (10.77.8.10-11).
fn across_bridges(icc: bool, call_ip_hooks: &str) -> minirun_tests::Output {
    let sb = Sandbox::new(&format!("segment-{icc}-{call_ip_hooks}"));
    let web = sb.bundle("w", &["/bin/httpd", "-f", "-p", "80", "-h", "/etc"], |_| {});
    let b = sb.bundle("s", &["/bin/sleep", "1000"], |_| {});
    let www = sb.dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "beyond\n").unwrap();
    let out = sb.run(&format!(
        r#"{LEFTOVERS}
        ip link set lo up
        f=/proc/sys/net/bridge/bridge-nf-call-iptables
        if [ -e $f ]; then echo {call_ip_hooks} > $f; elif [ {call_ip_hooks} = 1 ]; then exit 77; fi
        mount -t tmpfs tmpfs /run
        # a host address that is not the bridge's, and a namespace beyond
        # the host with no route back to the containers' subnet
        ip netns add beyond
        ip link add out0 type veth peer name out1
        ip link set out1 netns beyond
        ip addr add 198.51.100.2/24 dev out0 && ip link set out0 up
        ip -n beyond addr add 198.51.100.1/24 dev out1 && ip -n beyond link set out1 up
        ip netns exec beyond busybox httpd -f -p 198.51.100.1:8080 -h {www} & httpd=$!
        M="$MINIRUN"
        $M network create -o icc={icc} --subnet 10.77.0.0/16 wide >/dev/null || exit 1
        $M run -d --bundle {web} --net wide --ip 10.77.0.10 $ID-p || exit 2
        $M run -d --bundle {web} --net wide --ip 10.77.4.10 -p 8080:80 $ID-w || exit 3
        $M run -d --bundle {b} --net wide --ip 10.77.8.10 $ID-s || exit 4
        $M run -d --bundle {web} --net wide --ip 10.77.8.11 $ID-t || exit 5
        echo "bridges: $(ip -o link show type bridge | wc -l)"
        sec=$(ip -o link show master $(ip -o link show type bridge | grep -o 'mr[0-9a-f]*b1' | head -1) | wc -l)
        echo "on-secondary-1: $sec"
        reach() {{ $M exec $1 timeout 3 wget -qO- http://$2/hostname >/dev/null 2>&1 && echo reached || echo blocked; }}
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
        kill $httpd; wait $httpd 2>/dev/null
        ip link del out0; ip netns del beyond
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
            out.field("on-secondary-1"),
            "2",
            "the container and the link: {why}"
        );
        for pair in ["s-w", "s-p", "p-w", "s-t", "w-s-ping"] {
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

/// Past the wall every bridge network of Docker, podman and the CNI bridge
/// plugin meets at 1,023 containers: 1,100 on the default network, the
/// last reaching the first and the gateway, the host's entries for them
/// all permanent, and nothing left once they are deleted.
#[test]
fn eleven_hundred_containers_on_one_network() {
    let sb = Sandbox::new("wall");
    let web = sb.bundle("w", &["/bin/httpd", "-f", "-p", "80", "-h", "/etc"], |_| {});
    let b = sb.bundle("s", &["/bin/sleep", "100000"], |_| {});
    let out = sb.run(&format!(
        r#"{LEFTOVERS}
        M="$MINIRUN"
        $M run -d --net bridge -b {web} $ID-1 || exit 1
        first=$($M state $ID-1 | sed -n 's/.*"ipAddress": "\(.*\)".*/\1/p')
        # two at a time: the hook's locks keep concurrent attaches apart
        seq 2 1100 | xargs -P2 -I% sh -c '$0 run -d --net bridge -b {b} $1-% || echo "run $1-% failed"' "$M" $ID
        echo "running: $($M list -q | wc -l)"
        echo "bridges: $(ip -o link show type bridge | wc -l)"
        echo "last-first: $($M exec $ID-1100 timeout 5 wget -qO- http://$first/hostname >/dev/null 2>&1 && echo reached || echo blocked)"
        echo "last-gateway: $($M exec $ID-1100 ping -c1 -W2 172.20.0.1 >/dev/null 2>&1 && echo reached || echo blocked)"
        echo "permanent: $(ip neigh show dev minirun0 nud permanent | wc -l)"
        echo "learnt: $(ip neigh show dev minirun0 | grep -vc PERMANENT)"
        seq 1 1100 | xargs -P2 -I% sh -c '$0 delete -f $1-% || echo "delete $1-% failed"' "$M" $ID
        leftovers
        "#,
        web = web.display(),
        b = b.display(),
    ));
    assert!(!out.stdout.contains("failed"), "{out:?}");
    assert_eq!(out.field("running"), "1100", "{out:?}");
    assert_eq!(out.field("bridges"), "2", "{out:?}");
    assert_eq!(out.field("last-first"), "reached", "{out:?}");
    assert_eq!(out.field("last-gateway"), "reached", "{out:?}");
    assert_eq!(out.field("permanent"), "1100", "{out:?}");
    assert_eq!(out.field("learnt"), "0", "{out:?}");
    assert_eq!(net_left(&out), "", "{out:?}");
    sb.assert_clean();
}
