//! Networking: Docker's four modes through minirun and through the
//! `minirun-net` hook under runc. Each test's "host" is its sandbox's own
//! network namespace; traffic goes only to addresses inside it.

use std::fs;

use minirun_tests::{net_left as left, Output, Sandbox, BEYOND, LEFTOVERS, NETNS_HOLDER};
use serde_json::{json, Value};

fn state_json(sb: &Sandbox, file: &str) -> Value {
    let path = sb.dir.join(file);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", path.display()))
}

fn server(sb: &Sandbox, name: &str) -> std::path::PathBuf {
    sb.bundle(
        name,
        &["/bin/httpd", "-f", "-p", "8080", "-h", "/www"],
        |_| {},
    )
}

#[test]
fn two_bridge_containers_reach_each_other_and_the_gateway() {
    let sb = Sandbox::new("bridge2");
    let a = server(&sb, "a");
    // The second asks through the annotation rather than --net.
    let b = sb.bundle("b", &["/bin/sleep", "100"], |c| {
        c["annotations"] = json!({"org.minirun.net.mode": "bridge"});
    });
    let out = sb.run(&format!(
        r#"{LEFTOVERS}
        $MINIRUN run -d --net bridge -b {a} $ID-a || exit 1
        $MINIRUN run -d -b {b} $ID-b || exit 1
        $MINIRUN state $ID-a > $T/a.json; $MINIRUN state $ID-b > $T/b.json
        ipa=$(sed -n 's/.*"ipAddress": "\(.*\)".*/\1/p' $T/a.json)
        gw=$(sed -n 's/.*"gateway": "\(.*\)".*/\1/p' $T/a.json)
        $MINIRUN exec $ID-b sh -c "ping -c1 -W2 $gw >/dev/null && echo gateway-ok; ping -c1 -W2 $ipa >/dev/null && echo peer-ok; wget -qO- http://$ipa:8080/index.html"
        $MINIRUN exec $ID-a sh -c 'ls /sys/class/net | tr "\n" " "; echo; ip -o -4 addr show eth0 | awk "{{print \$4}}"; cat /sys/class/net/eth0/address; ip route | grep default; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags' > $T/inside-a.txt
        $MINIRUN exec $ID-a cat /etc/hosts /etc/hostname > $T/etc-a.txt
        ip -o link show master minirun0 | wc -l
        # Each container a permanent neighbour of the host, until it goes.
        ip neigh show dev minirun0 nud permanent | grep -c "lladdr 02:42"
        $MINIRUN delete -f $ID-a
        ip neigh show dev minirun0 nud permanent | grep -c "lladdr 02:42"
        $MINIRUN delete -f $ID-b
        leftovers
        "#,
        a = a.display(),
        b = b.display()
    ));
    let sa = state_json(&sb, "a.json");
    let sb_state = state_json(&sb, "b.json");
    let (na, nb) = (&sa["network"], &sb_state["network"]);
    assert_eq!(na["mode"], "bridge", "{sa}");
    assert_eq!(nb["mode"], "bridge", "{sb_state}");
    let ip_a = na["ipAddress"].as_str().unwrap_or_default().to_string();
    assert!(ip_a.starts_with("172.20.0."), "{sa}");
    assert_ne!(na["ipAddress"], nb["ipAddress"]);
    assert_eq!(na["gateway"], "172.20.0.1");
    assert_eq!(na["prefixLen"], 16);
    assert_eq!(na["interface"], "eth0");
    assert_eq!(na["bridge"], "minirun0");
    assert!(
        na["hostInterface"]
            .as_str()
            .unwrap_or("")
            .starts_with("veth"),
        "{sa}"
    );
    assert!(
        out.stdout
            .starts_with("gateway-ok\npeer-ok\nhello from a minirun container\n2\n2\n1\n"),
        "{out:?}"
    );
    let inside = fs::read_to_string(sb.dir.join("inside-a.txt")).unwrap();
    let octets: Vec<u8> = ip_a.split('.').map(|o| o.parse().unwrap()).collect();
    let mac = format!(
        "02:42:{:02x}:{:02x}:{:02x}:{:02x}",
        octets[0], octets[1], octets[2], octets[3]
    );
    assert_eq!(na["macAddress"], mac.as_str());
    assert_eq!(
        inside,
        format!("eth0 lo \n{ip_a}/16\n{mac}\ndefault via 172.20.0.1 dev eth0 \nunknown\n0x9\n"),
        "exactly lo (up) and eth0, with the address, MAC and default route"
    );
    let etc = fs::read_to_string(sb.dir.join("etc-a.txt")).unwrap();
    assert!(
        etc.contains(&format!("{ip_a}\thello {}-a\n", sb.id)),
        "{etc}"
    );
    assert!(etc.ends_with("hello\n"), "{etc}");
    assert_eq!(
        fs::read_to_string(a.join("rootfs/etc/hosts")).unwrap(),
        "",
        "the rootfs's own file is not rewritten"
    );
    assert_eq!(left(&out), "", "{out:?}");
    sb.assert_clean();
}

#[test]
fn host_none_and_container_modes() {
    let sb = Sandbox::new("modes");
    let links = "ls /sys/class/net | tr '\\n' ' '; echo; cat /sys/class/net/lo/operstate";
    let host = sb.bundle("host", &["/bin/sh", "-c", links], |_| {});
    let none = sb.bundle("none", &["/bin/sh", "-c", links], |_| {});
    let srv = sb.bundle(
        "srv",
        &["/bin/httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/www"],
        |_| {},
    );
    let joiner = sb.bundle(
        "joiner",
        &[
            "/bin/sh",
            "-c",
            "wget -qO- http://127.0.0.1:8080/index.html; ip -o -4 addr show eth0 | awk '{print $4}'",
        ],
        |_| {},
    );
    let out = sb.run(&format!(
        r#"{LEFTOVERS}
        ip link add sandbox-dummy type bridge
        echo "host: $($MINIRUN run --net host -b {host} $ID-h | head -1)"
        echo "none: $($MINIRUN run --network none -b {none} $ID-n | tr '\n' ' ')"
        $MINIRUN run -d --net bridge -b {srv} $ID-s || exit 1
        $MINIRUN state $ID-s > $T/s.json
        $MINIRUN run --net container:$ID-s -b {joiner} $ID-j > $T/joiner.txt; echo joiner=$?
        $MINIRUN state $ID-s | grep -q running && echo server-still-running
        $MINIRUN delete -f $ID-s
        ip link del sandbox-dummy
        leftovers
        "#,
        host = host.display(),
        none = none.display(),
        srv = srv.display(),
        joiner = joiner.display()
    ));
    assert!(
        out.stdout.contains("host: lo sandbox-dummy \n"),
        "host mode sees the host's interfaces: {out:?}"
    );
    assert!(
        out.stdout.contains("none: lo  unknown "),
        "none has only lo, up: {out:?}"
    );
    let s = state_json(&sb, "s.json");
    let joined = fs::read_to_string(sb.dir.join("joiner.txt")).unwrap();
    assert_eq!(
        joined,
        format!(
            "hello from a minirun container\n{}/16\n",
            s["network"]["ipAddress"].as_str().unwrap_or("?")
        ),
        "container:<id> shares the address and reaches its loopback server: {out:?}"
    );
    assert!(
        out.stdout.contains("joiner=0\nserver-still-running\n"),
        "{out:?}"
    );
    assert_eq!(left(&out), "", "{out:?}");
    sb.assert_clean();
}

#[test]
fn the_hook_works_under_runc_and_crun() {
    // runc runs it as prestart, crun as createRuntime: the two places a user
    // may put it.
    for (runtime, stage) in [("runc", "prestart"), ("crun", "createRuntime")] {
        let sb = Sandbox::new(&format!("net{runtime}"));
        let b = sb.bundle("b", &["/bin/sleep", "100"], |c| {
            let hook = |verb: &str| {
                json!({
                    "path": minirun_tests::bin("minirun-net"),
                    "args": ["minirun-net", verb],
                    "env": [
                        format!("MINIRUN_NET_DIR={}", sb.dir.join("net").display()),
                        format!("MINIRUN_NET_CONFIG_DIR={}", sb.dir.join("networks").display()),
                    ]
                })
            };
            c["hooks"] = json!({stage: [hook("attach")], "poststop": [hook("detach")]});
            c["annotations"] = json!({"org.minirun.net.mode": "bridge"});
        });
        let out = sb.run(&format!(
            r#"{LEFTOVERS}
            # crun refuses this machine's hybrid cgroup layout; hide the v2 half
            # in the sandbox's own mount namespace.
            mount -t tmpfs tmpfs /sys/fs/cgroup/unified 2>/dev/null
            R="{runtime} --root $T/{runtime}-state"
            cd {b} && $R run -d $ID >/dev/null 2>&1 </dev/null || {{ echo {runtime}-failed; exit 1; }}
            $R exec $ID sh -c 'ls /sys/class/net | tr "\n" " "; echo; ip -o -4 addr show eth0 | awk "{{print \$4}}"'
            cat $MINIRUN_NET_DIR/containers/$ID.json > $T/record.json
            busybox ping -c1 -W2 $(sed -n 's/.*"ipAddress": "\(.*\)".*/\1/p' $T/record.json) >/dev/null && echo reachable-from-host
            $R delete -f $ID
            leftovers
            "#,
            b = b.display()
        ));
        let record = state_json(&sb, "record.json");
        let ip = record["ipAddress"].as_str().unwrap_or("?");
        assert!(
            out.stdout
                .starts_with(&format!("eth0 lo \n{ip}/16\nreachable-from-host\n")),
            "{runtime}: {out:?}"
        );
        assert_eq!(left(&out), "", "{runtime}: {out:?}");
    }
}

#[test]
fn a_killed_container_leaves_nothing_after_delete() {
    let sb = Sandbox::new("netkill");
    let b = sb.bundle("b", &["/bin/sleep", "100"], |_| {});
    let out = sb.run(&format!(
        r#"{LEFTOVERS}
        $MINIRUN run -d --net bridge -b {b} $ID || exit 1
        kill -9 $($MINIRUN state $ID | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
        for i in $(seq 100); do $MINIRUN state $ID | grep -q stopped && break; sleep 0.02; done
        $MINIRUN delete $ID; echo delete=$?
        $MINIRUN delete -f $ID 2>/dev/null; echo again=$?
        echo '{{"id":"'$ID'","pid":0,"status":"stopped","bundle":"{b}"}}' | $MINIRUN_NET detach; echo detach-again=$?
        leftovers
        "#,
        b = b.display()
    ));
    assert!(
        out.stdout
            .starts_with("delete=0\nagain=0\ndetach-again=0\n"),
        "{out:?}"
    );
    assert_eq!(left(&out), "", "{out:?}");
    sb.assert_clean();
}

/// A veth pair made but not configured goes with the failed attach (the
/// hook alone, as runc and crun run it): here the host end's IPv6 cannot be
/// turned off, its sysctls read-only.
#[test]
fn a_veth_pair_left_unconfigured_is_deleted() {
    let sb = Sandbox::new("netveth");
    let b = sb.bundle("b", &["/bin/sleep", "100"], |_| {});
    let out = sb.run(&format!(
        r#"{LEFTOVERS}{NETNS_HOLDER}
        $MINIRUN run -d --net bridge -b {b} $ID-a || exit 1
        C=/proc/sys/net/ipv6/conf
        mount --bind $C $C && mount -o remount,bind,ro $C || exit 2
        # the hook alone, as runc or crun call it: nothing after it cleans up
        netns_holder holder
        echo '{{"id":"'$ID-b'","pid":'$holder',"bundle":"{b}","annotations":{{"org.minirun.net.mode":"bridge"}}}}' | $MINIRUN_NET attach 2>$T/err; echo "run: $?"
        echo "veths: $(ip -o link show type veth | wc -l)"
        kill $holder; wait $holder 2>/dev/null
        umount $C
        echo "said: $(grep -c 'turning off IPv6 on veth' $T/err)"
        $MINIRUN delete -f $ID-a
        leftovers
        "#,
        b = b.display()
    ));
    assert_eq!(out.field("run"), "1", "{out:?}");
    assert_eq!(out.field("said"), "1", "{out:?}");
    assert_eq!(out.field("veths"), "1", "{out:?}");
    assert_eq!(left(&out), "", "{out:?}");
    sb.assert_clean();
}

#[test]
fn twenty_concurrent_containers_get_twenty_addresses() {
    let sb = Sandbox::new("net20");
    let b = sb.bundle("b", &["/bin/sleep", "100"], |_| {});
    let out = sb.run(&format!(
        r#"{LEFTOVERS}
        for i in $(seq 20); do $MINIRUN create --net bridge -b {b} $ID-$i & done; wait
        for i in $(seq 20); do $MINIRUN state $ID-$i | sed -n 's/.*"ipAddress": "\(.*\)".*/\1/p'; done > $T/ips.txt
        ip -o link show | grep -c ': veth'
        for i in $(seq 20); do $MINIRUN delete -f $ID-$i & done; wait
        leftovers
        "#,
        b = b.display()
    ));
    let ips = fs::read_to_string(sb.dir.join("ips.txt")).unwrap();
    let mut list: Vec<&str> = ips.lines().collect();
    assert_eq!(list.len(), 20, "{ips}\n{out:?}");
    list.sort();
    list.dedup();
    assert_eq!(list.len(), 20, "addresses are distinct: {ips}");
    assert!(out.stdout.starts_with("20\n"), "{out:?}");
    assert_eq!(left(&out), "", "{out:?}");
    sb.assert_clean();
}

#[test]
fn the_default_subnet_steps_around_host_routes() {
    let sb = Sandbox::new("netsubnet");
    let b = sb.bundle(
        "b",
        &[
            "/bin/sh",
            "-c",
            "ip -o -4 addr show eth0 | awk '{print $4}'",
        ],
        |_| {},
    );
    let out = sb.run(&format!(
        r#"{LEFTOVERS}
        ip link add taken type bridge && ip addr add 172.20.9.9/16 dev taken && ip link set taken up
        $MINIRUN run --net bridge -b {b} $ID
        cat $MINIRUN_NET_CONFIG_DIR/bridge.json | tr -d ' \n'; echo
        ip link del taken
        leftovers
        "#,
        b = b.display()
    ));
    assert!(out.stdout.starts_with("172.21.0.2/16\n"), "{out:?}");
    assert!(
        out.stdout
            .contains(r#""subnet":"172.21.0.0/16","gateway":"172.21.0.1""#),
        "{out:?}"
    );
    assert_eq!(left(&out), "", "{out:?}");
}

/// Runs `script` after writing `network` as the default network's definition;
/// each failure must be one clear line, a non-zero exit and nothing left.
fn refused(name: &str, network: Option<Value>, script: &str) -> (Output, String) {
    let sb = Sandbox::new(name);
    if let Some(n) = network {
        fs::create_dir_all(sb.dir.join("networks")).unwrap();
        fs::write(sb.dir.join("networks/bridge.json"), n.to_string()).unwrap();
    }
    let b = sb.bundle("b", &["/bin/sleep", "100"], |_| {});
    let out = sb.run(&format!(
        "{LEFTOVERS}\nB={}\n{script}\necho rc=$?\n$MINIRUN list -q\nleftovers",
        b.display()
    ));
    sb.assert_clean();
    let l = left(&out).to_string();
    (out, l)
}

#[test]
fn bad_network_input_is_refused_and_leaves_nothing() {
    let net = |subnet: &str, gateway: &str| {
        Some(json!({"name": "bridge", "bridge": "minirun0", "subnet": subnet, "gateway": gateway}))
    };
    let cases: Vec<(&str, Option<Value>, &str, &str)> = vec![
        ("badmode", None, "$MINIRUN run -d --net overlay -b $B $ID", "--net \"overlay\": neither a mode (bridge, host, none, container:<id>) nor a network"),
        ("noctr", None, "$MINIRUN run -d --net container:ghost -b $B $ID", "--net container:ghost: no container \"ghost\" under this --root"),
        ("stopped", None, "$MINIRUN create -b $B $ID-x && $MINIRUN run -d --net container:$ID-x -b $B $ID; r=$?; $MINIRUN delete -f $ID-x; (exit $r)", "is created, not running"),
        ("badcidr", net("172.20.0.0/33", "172.20.0.1"), "$MINIRUN run -d --net bridge -b $B $ID", "not an IPv4 CIDR"),
        ("overlap", net("10.77.0.0/16", "10.77.0.1"), "ip link add taken type bridge && ip addr add 10.77.1.1/24 dev taken && ip link set taken up; $MINIRUN run -d --net bridge -b $B $ID; r=$?; ip link del taken; (exit $r)", "subnet 10.77.0.0/16 overlaps the host's route to 10.77.1.0/24"),
        ("exhausted", net("10.78.0.0/30", "10.78.0.1"), "$MINIRUN run -d --net bridge -b $B $ID-1 || exit 9; $MINIRUN run -d --net bridge -b $B $ID; r=$?; $MINIRUN delete -f $ID-1; (exit $r)", "network bridge is full: 10.78.0.0/30 has no free address"),
        ("badstate", None, "echo '{' | $MINIRUN_NET attach", "minirun-net: the OCI state on stdin is not valid"),
        ("gonepid", None, "echo '{\"id\":\"x\",\"pid\":999999,\"bundle\":\"'$B'\"}' | $MINIRUN_NET attach", "container x: process 999999 is gone"),
        ("hostns", None, "echo '{\"id\":\"x\",\"pid\":'$$',\"bundle\":\"'$B'\"}' | $MINIRUN_NET attach", "container x has no network namespace of its own"),
    ];
    for (name, network, script, message) in cases {
        let (out, left) = refused(name, network, script);
        let errors: Vec<&str> = out.stderr.lines().collect();
        assert!(
            errors.len() == 1 && errors[0].contains(message),
            "{name}: want one line with {message:?}: {out:?}"
        );
        assert!(out.stdout.starts_with("rc="), "{name}: {out:?}");
        assert!(!out.stdout.starts_with("rc=0"), "{name}: {out:?}");
        assert_eq!(left, "", "{name}: {out:?}");
    }
}

#[test]
fn podman_with_network_none_gets_bridge_from_the_shipped_hooks_dir() {
    // podman's default runtime (crun) and minirun as podman's runtime.
    for runtime in [
        "crun".to_string(),
        minirun_tests::bin("minirun").display().to_string(),
    ] {
        let sb = Sandbox::new("netpodman");
        // The shipped hooks.d files, pointed at the built hook and the sandbox's
        // state directories.
        let hooks = sb.dir.join("hooks.d");
        fs::create_dir_all(&hooks).unwrap();
        for verb in ["attach", "detach"] {
            let shipped = minirun_tests::repo_dir()
                .join(format!("hooks/oci-hooks.d/minirun-net-{verb}.json"));
            let mut hook: Value = serde_json::from_slice(&fs::read(&shipped).unwrap()).unwrap();
            assert_eq!(hook["hook"]["path"], "/usr/local/bin/minirun-net");
            hook["hook"]["path"] = json!(minirun_tests::bin("minirun-net"));
            hook["hook"]["env"] = json!([
                format!("MINIRUN_NET_DIR={}", sb.dir.join("net").display()),
                format!(
                    "MINIRUN_NET_CONFIG_DIR={}",
                    sb.dir.join("networks").display()
                ),
            ]);
            fs::write(hooks.join(format!("{verb}.json")), hook.to_string()).unwrap();
        }
        let b = sb.bundle("b", &["/bin/true"], |_| {});
        let out = sb.run(&format!(
            r#"{LEFTOVERS}
            mount -t tmpfs tmpfs /run
            mount -t tmpfs tmpfs /sys/fs/cgroup/unified 2>/dev/null
            podman --root $T/podman --runroot /run/podman --cgroup-manager cgroupfs --events-backend file \
                --runtime {runtime} --hooks-dir {hooks} run --rm --network none --cgroup-parent /$ID --cgroups no-conmon \
                --annotation org.minirun.net.mode=bridge \
                --rootfs {rootfs} /bin/sh -c 'ip -o -4 addr show eth0 | awk "{{print \$4}}"; ip route | grep default'
            echo rc=$?
            # a user-defined network, named by one more annotation
            $MINIRUN_BIN network create --subnet 10.66.0.0/24 pnet >/dev/null || exit 9
            podman --root $T/podman --runroot /run/podman --cgroup-manager cgroupfs --events-backend file \
                --runtime {runtime} --hooks-dir {hooks} run --rm --network none --cgroup-parent /$ID --cgroups no-conmon \
                --annotation org.minirun.net.mode=bridge --annotation org.minirun.net.network=pnet \
                --rootfs {rootfs} /bin/sh -c 'ip -o -4 addr show eth0 | awk "{{print \$4}}"'
            echo rc=$?
            $MINIRUN_BIN network rm pnet >/dev/null
            leftovers
            "#,
            hooks = hooks.display(),
            rootfs = b.join("rootfs").display()
        ));
        assert!(
            out.stdout.starts_with(
                "172.20.0.2/16\ndefault via 172.20.0.1 dev eth0 \nrc=0\n10.66.0.2/24\nrc=0\n"
            ),
            "{runtime}: {out:?}"
        );
        minirun_tests::remove_cgroup_tree(&sb.id);
        assert_eq!(left(&out), "", "{runtime}: {out:?}");
    }
}

#[test]
fn masquerade_takes_a_container_beyond_the_host() {
    // "Beyond the host" is a second namespace behind a veth, in the sandbox,
    // on a documentation range; it has no route back to the bridge subnet, so
    // an answer proves the container's traffic left under the host's address.
    let sb = Sandbox::new("netmasq");
    let b = sb.bundle(
        "b",
        // (no -T: busybox's wget crashes with it)
        &["/bin/wget", "-qO-", "http://198.51.100.1:8080/index.html"],
        |_| {},
    );
    let www = sb.dir.join("www");
    fs::create_dir_all(&www).unwrap();
    fs::write(www.join("index.html"), "from beyond the host\n").unwrap();
    let out = sb.run(&format!(
        r#"{LEFTOVERS}{BEYOND}
        beyond {www}
        $MINIRUN run --net bridge -b {b} $ID; echo rc=$?
        beyond_gone
        leftovers
        "#,
        www = www.display(),
        b = b.display()
    ));
    assert!(
        out.stdout.starts_with("from beyond the host\nrc=0\n"),
        "{out:?}"
    );
    assert_eq!(left(&out), "", "{out:?}");
    sb.assert_clean();
}
