//! Published ports. The sandbox is the host (198.51.100.2 on `h0`); a second
//! namespace, `client`, behind a veth is the outside world (198.51.100.1).
//! Documentation addresses, inside the sandbox only.

use minirun_tests::{net_left, Sandbox, LEFTOVERS};

/// Makes the client namespace and a foreign nftables table (which must come
/// through untouched); `foreign` prints that table.
const WORLD: &str = r#"
mount -t tmpfs tmpfs /run
ip link set lo up
ip netns add client
ip link add h0 type veth peer name c0
ip link set c0 netns client
ip addr add 198.51.100.2/24 dev h0 && ip link set h0 up
ip -n client addr add 198.51.100.1/24 dev c0 && ip -n client link set c0 up && ip -n client link set lo up
nft add table inet foreign
nft add chain inet foreign input '{ type filter hook input priority 10; }'
nft add rule inet foreign input tcp dport 22 counter accept
# A host firewall that tracks connections: conntrack is live before any
# container exists.
nft add rule inet foreign input ct state established,related accept
foreign() { nft list table inet foreign | grep -v packets; }
foreign > $T/foreign-before
client() { ip netns exec client "$@"; }
fetch() { busybox wget -qO- "http://$1/index.html" 2>/dev/null || echo "fetch $1 failed"; }
# busybox has no UDP netcat: python3 sends from a fixed source port, and
# receives in a container's network namespace (udp_recv PID PORT).
udp_send() { ip netns exec client python3 -c "import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(('',40000)); s.sendto(sys.argv[1].encode(),('198.51.100.2',int(sys.argv[2])))" "$1" "$2"; }
udp_recv() { nsenter -t $1 -n python3 -c "import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('',int(sys.argv[1]))); s.settimeout(5); print(s.recv(100).decode())" "$2"; }
world_down() { ip link del h0; ip netns del client; foreign | diff $T/foreign-before - && echo foreign-untouched; nft delete table inet foreign; }
"#;

fn web(sb: &Sandbox, name: &str, script: &str) -> std::path::PathBuf {
    sb.bundle(name, &["/bin/sh", "-c", script], |_| {})
}

#[test]
fn a_published_port_is_reached_from_outside_the_host_localhost_and_containers() {
    let sb = Sandbox::new("publish");
    let a = web(&sb, "a", "exec httpd -f -p 80 -h /www");
    let b = sb.bundle("b", &["/bin/sleep", "100"], |_| {});
    let out = sb.run(&format!(
        r#"{LEFTOVERS}{WORLD}
        $MINIRUN run -d -p 8080:80 -b {a} $ID-a || exit 1
        $MINIRUN run -d --net bridge -b {b} $ID-b || exit 1
        echo "client: $(client sh -c 'busybox wget -qO- http://198.51.100.2:8080/index.html')"
        echo "host address: $(fetch 198.51.100.2:8080)"
        echo "localhost: $(fetch 127.0.0.1:8080)"
        echo "gateway: $(fetch 172.20.0.1:8080)"
        echo "other container: $($MINIRUN exec $ID-b wget -qO- http://198.51.100.2:8080/index.html)"
        echo "hairpin: $($MINIRUN exec $ID-a wget -qO- http://198.51.100.2:8080/index.html)"
        echo "loopback from a container: $($MINIRUN exec $ID-b sh -c 'nc -w 1 127.0.0.1 8080 </dev/null && echo open || echo closed')"
        $MINIRUN delete -f $ID-a; $MINIRUN delete -f $ID-b
        echo "after delete: $(fetch 127.0.0.1:8080)"
        world_down
        leftovers
        "#,
        a = a.display(),
        b = b.display()
    ));
    let page = "hello from a minirun container";
    for line in [
        format!("client: {page}"),
        format!("host address: {page}"),
        format!("localhost: {page}"),
        format!("gateway: {page}"),
        format!("other container: {page}"),
        format!("hairpin: {page}"),
        "loopback from a container: closed".to_string(),
        "after delete: fetch 127.0.0.1:8080 failed".to_string(),
        "foreign-untouched".to_string(),
    ] {
        assert!(
            out.stdout.contains(&format!("{line}\n")),
            "want {line:?}: {out:?}"
        );
    }
    assert_eq!(net_left(&out), "", "{out:?}");
    sb.assert_clean();
}

#[test]
fn udp_ranges_host_ip_and_a_picked_port() {
    let sb = Sandbox::new("publish2");
    let a = web(
        &sb,
        "a",
        "httpd -p 80 -h /www && httpd -p 81 -h /www && exec sleep 100",
    );
    let out = sb.run(&format!(
        r#"{LEFTOVERS}{WORLD}
        # A UDP "connection" from the client before the port is published: its
        # conntrack entry has no DNAT and must be flushed by attach.
        udp_send early 5353
        $MINIRUN run -d -p 9000-9001:80-81 -p 5353:5000/udp -p 127.0.0.1:7070:80 -p 80 -b {a} $ID || exit 1
        udp_recv $($MINIRUN state $ID | sed -n 's/.*"pid": \([0-9]*\).*/\1/p') 5000 > $T/udp.txt 2>&1 & receiver=$!
        sleep 0.3
        echo "range: $(client busybox wget -qO- http://198.51.100.2:9000/index.html) / $(client busybox wget -qO- http://198.51.100.2:9001/index.html)"
        echo "host ip, from the host: $(fetch 127.0.0.1:7070)"
        echo "host ip, from the client: $(client busybox wget -qO- http://198.51.100.2:7070/index.html 2>/dev/null || echo refused)"
        picked=$($MINIRUN state $ID | tr -d ' \n' | sed -n 's/.*{{"hostPort":\([0-9]*\),"containerPort":80,"protocol":"tcp"}}.*/\1/p')
        echo "picked: $picked $(fetch 127.0.0.1:$picked)"
        udp_send hello-udp 5353
        wait $receiver
        $MINIRUN delete -f $ID
        world_down
        leftovers
        "#,
        a = a.display()
    ));
    let page = "hello from a minirun container";
    assert!(
        out.stdout.contains(&format!("range: {page} / {page}\n")),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains(&format!("host ip, from the host: {page}\n")),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("host ip, from the client: refused\n"),
        "{out:?}"
    );
    let picked = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("picked: "))
        .unwrap_or_default();
    assert!(
        picked.ends_with(page) && !picked.starts_with(' '),
        "an omitted host port is picked and shown by state: {out:?}"
    );
    let udp = std::fs::read_to_string(sb.dir.join("udp.txt")).unwrap_or_default();
    assert_eq!(
        udp, "hello-udp\n",
        "the UDP datagram after publishing reaches the container: {out:?}"
    );
    assert!(out.stdout.contains("foreign-untouched\n"), "{out:?}");
    assert_eq!(net_left(&out), "", "{out:?}");
    sb.assert_clean();
}

#[test]
fn conflicts_and_bad_specs_are_refused_and_leave_nothing() {
    let sb = Sandbox::new("publish3");
    let a = web(&sb, "a", "exec httpd -f -p 80 -h /www");
    let out = sb.run(&format!(
        r#"{LEFTOVERS}{WORLD}
        busybox nc -l -p 7000 >/dev/null & holder=$!
        $MINIRUN run -d -p 8080:80 -b {a} $ID-a || exit 1
        for spec in 8080:80 7000:80 192.0.2.1:8081:80 0:80 8000-8001:80 80/sctp; do
            $MINIRUN run -d -p $spec -b {a} $ID-x 2>&1; echo "rc=$?"
        done
        $MINIRUN list -q
        $MINIRUN delete -f $ID-a
        kill $holder
        world_down
        leftovers
        "#,
        a = a.display()
    ));
    let expected = [
        format!(
            "port 8080:80/tcp: host port 8080/tcp is already published by container {}-a",
            sb.id
        ),
        "port 7000:80/tcp: host port 7000/tcp is in use by a process of the host".to_string(),
        "port 192.0.2.1:8081:80/tcp: host IP 192.0.2.1 is not an address of this host".to_string(),
        "-p: port spec \"0:80\": host port 0 is outside 1-65535".to_string(),
        "-p: port spec \"8000-8001:80\": the host range has 2 ports and the container range 1"
            .to_string(),
        "-p: port spec \"80/sctp\": unknown protocol \"sctp\" (tcp or udp)".to_string(),
    ];
    let lines: Vec<&str> = out.stdout.lines().collect();
    for (i, want) in expected.iter().enumerate() {
        let (msg, rc) = (
            lines.get(2 * i).copied().unwrap_or(""),
            lines.get(2 * i + 1).copied().unwrap_or(""),
        );
        assert!(
            msg.starts_with("minirun: ") && msg.contains(want.as_str()),
            "want {want:?}: {out:?}"
        );
        assert_eq!(rc, "rc=1", "{out:?}");
    }
    assert_eq!(
        lines.get(12).copied(),
        Some(&*format!("{}-a", sb.id)),
        "only a was left running: {out:?}"
    );
    assert!(out.stdout.contains("foreign-untouched\n"), "{out:?}");
    assert_eq!(net_left(&out), "", "{out:?}");
    sb.assert_clean();
}

#[test]
fn reload_brings_publishing_back_after_a_flush() {
    let sb = Sandbox::new("publish4");
    let a = web(&sb, "a", "exec httpd -f -p 80 -h /www");
    let out = sb.run(&format!(
        r#"{LEFTOVERS}{WORLD}
        $MINIRUN run -d -p 8080:80 -b {a} $ID || exit 1
        nft flush ruleset
        echo "flushed: $(client busybox wget -qO- http://198.51.100.2:8080/index.html 2>/dev/null || echo unreachable)"
        $MINIRUN_NET reload 2>&1
        echo "reloaded: $(client busybox wget -qO- http://198.51.100.2:8080/index.html)"
        $MINIRUN delete -f $ID
        ip link del h0; ip netns del client
        leftovers
        "#,
        a = a.display()
    ));
    assert!(
        out.stdout.starts_with(
            "flushed: unreachable\nminirun-net: firewall rebuilt; published ports of 1 container(s) restored\nreloaded: hello from a minirun container\n"
        ),
        "{out:?}"
    );
    assert_eq!(net_left(&out), "", "{out:?}");
    sb.assert_clean();
}

/// Every port of the host: one run, one claim, one interval element, and
/// after it another container's `-p 30000:80` is refused.
#[test]
fn every_port_of_the_host_is_one_range() {
    let sb = Sandbox::new("allports");
    let w = web(
        &sb,
        "w",
        "mkdir /www; echo every-port > /www/index.html; for p in 1 32768 65535; do httpd -p $p -h /www; done; exec sleep 1000",
    );
    let s = sb.bundle("s", &["/bin/sleep", "1000"], |_| {});
    let out = sb.run(&format!(
        r#"{LEFTOVERS}{WORLD}
        $MINIRUN run -d -p 1-65535:1-65535 --bundle {w} $ID-all || exit 1
        for p in 1 32768 65535; do echo "port $p: $(client busybox wget -qO- http://198.51.100.2:$p/index.html)"; done
        echo "claims: $(ls $MINIRUN_NET_DIR/ports | tr '\n' ' ')"
        echo "elements: $(nft list map inet minirun publish_range | grep -c '1-65535')"
        echo "record: $(wc -c < $MINIRUN_NET_DIR/containers/$ID-all.json)"
        $MINIRUN run -d -p 30000:80 --bundle {s} $ID-late 2>&1 | tail -1
        $MINIRUN delete -f $ID-all
        echo "after: $(ls $MINIRUN_NET_DIR/ports | wc -l)"
        world_down
        leftovers
        "#,
        w = w.display(),
        s = s.display(),
    ));
    for p in [1, 32768, 65535] {
        assert_eq!(out.field(&format!("port {p}")), "every-port", "{out:?}");
    }
    assert_eq!(out.field("claims"), "tcp-1-65535-any ", "{out:?}");
    assert_eq!(out.field("elements"), "1", "{out:?}");
    let record: usize = out.field("record").trim().parse().unwrap();
    assert!(record < 4096, "{record} bytes: {out:?}");
    assert!(
        out.stdout.contains(&format!(
            "host port 30000/tcp is already published by container {}-all",
            sb.id
        )),
        "{out:?}"
    );
    assert_eq!(out.field("after"), "0", "{out:?}");
    assert_eq!(net_left(&out), "", "{out:?}");
    sb.assert_clean();
}
