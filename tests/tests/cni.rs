//! `minirun-net` as a CNI plugin, run as containerd runs it: the
//! configuration on stdin, the container in CNI_* variables, the result or
//! the error as JSON on stdout. Pods are network namespaces made with
//! `ip netns add` inside the sandbox.

use minirun_tests::{net_left, Sandbox, LEFTOVERS};
use serde_json::Value;

/// `cni VERB CONFIG [ID]`: runs the plugin; prints its output, then `rc=N`.
const CNI: &str = r#"
cni() {
    echo "$2" | env CNI_COMMAND=$1 CNI_CONTAINERID=${3:-pod1} CNI_NETNS=/run/netns/${3:-pod1} \
        CNI_IFNAME=${IFNAME:-eth0} CNI_PATH=/opt/cni/bin CNI_ARGS="K8S_POD_NAMESPACE=default;K8S_POD_NAME=${3:-pod1}-name" \
        $MINIRUN_NET
    echo "rc=$?"
}
conf() { echo "{\"cniVersion\":\"$1\",\"name\":\"k8s-pod-network\",\"type\":\"minirun-net\",\"network\":\"${2:-bridge}\",\"capabilities\":{\"portMappings\":true}${3:-}}"; }
mount -t tmpfs tmpfs /run
ip link set lo up
"#;

/// The JSON the plugin printed on the line after `marker`.
fn json_after(out: &minirun_tests::Output, marker: &str) -> Value {
    let line = out
        .stdout
        .lines()
        .skip_while(|l| *l != marker)
        .nth(1)
        .unwrap_or_else(|| panic!("{marker}: {out:?}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{marker}: {e}: {line}\n{out:?}"))
}

#[test]
fn add_check_del_with_each_version_and_del_is_always_fine() {
    let sb = Sandbox::new("cniverbs");
    let out = sb.run(&format!(
        r#"{LEFTOVERS}{CNI}
        echo "== version"; cni VERSION '{{"cniVersion":"1.1.0"}}'
        echo "== version-0.4.0"; cni VERSION '{{"cniVersion":"0.4.0"}}'
        for v in 0.4.0 1.0.0 1.1.0; do
            ip netns add pod1
            echo "== add $v"; cni ADD "$(conf $v)" | tee $T/add.out
            prev=",\"prevResult\":$(head -1 $T/add.out)"
            echo "== check $v"; cni CHECK "$(conf $v bridge "$prev")"
            echo "inside-$v: $(ip netns exec pod1 ip -o -4 addr show eth0 | awk '{{print $4}}') $(ip netns exec pod1 ip route | grep -c default)"
            echo "== del $v"; cni DEL "$(conf $v)"
            echo "== del-again $v"; cni DEL "$(conf $v)"
            ip netns del pod1
        done
        echo "== del-without-add"; cni DEL "$(conf 1.1.0)" never
        # The namespace goes first (a pod killed hard): DEL still cleans up.
        ip netns add pod2
        cni ADD "$(conf 1.1.0)" pod2 >/dev/null
        ip netns del pod2
        echo "== del-netns-gone"; cni DEL "$(conf 1.1.0)" pod2
        echo "== check-after-del"; ip netns add pod3; cni CHECK "$(conf 1.1.0 bridge "$prev")" pod3; ip netns del pod3
        leftovers
        "#
    ));
    out.ok();
    let version = json_after(&out, "== version");
    assert_eq!(
        version["supportedVersions"],
        serde_json::json!(["0.4.0", "1.0.0", "1.1.0"])
    );
    // The answer is in the caller's version.
    assert_eq!(json_after(&out, "== version-0.4.0")["cniVersion"], "0.4.0");
    for v in ["0.4.0", "1.0.0", "1.1.0"] {
        let add = json_after(&out, &format!("== add {v}"));
        assert_eq!(add["cniVersion"], v, "{out:?}");
        let ip = &add["ips"][0];
        assert!(
            ip["address"].as_str().unwrap().starts_with("172.20.0."),
            "{add}"
        );
        assert_eq!(ip["gateway"], "172.20.0.1", "{add}");
        assert_eq!(ip["interface"], 1, "{add}");
        assert_eq!(ip.get("version").is_some(), v == "0.4.0", "{add}");
        assert_eq!(add["interfaces"][1]["name"], "eth0", "{add}");
        assert_eq!(add["interfaces"][1]["sandbox"], "/run/netns/pod1", "{add}");
        assert!(
            add["interfaces"][0]["mac"].as_str().unwrap().len() == 17,
            "{add}"
        );
        assert_eq!(add["routes"][0]["dst"], "0.0.0.0/0", "{add}");
        let inside = out.field(&format!("inside-{v}"));
        assert_eq!(
            inside,
            format!("{} 1", ip["address"].as_str().unwrap()),
            "{out:?}"
        );
    }
    // Every CHECK and DEL answered rc=0 with nothing on stdout but the last
    // CHECK, of a pod never added: code 3.
    let check = json_after(&out, "== check-after-del");
    assert_eq!(check["code"], 3, "{out:?}");
    for marker in ["== del-without-add", "== del-netns-gone"] {
        let line = out.stdout.lines().skip_while(|l| *l != marker).nth(1);
        assert_eq!(line, Some("rc=0"), "{marker}: {out:?}");
    }
    assert_eq!(net_left(&out), "", "{out:?}");
}

#[test]
fn bad_input_gets_the_specs_error_json() {
    let sb = Sandbox::new("cnibad");
    let out = sb.run(&format!(
        r#"{CNI}
        ip netns add pod1
        echo "== old-version"; cni ADD '{{"cniVersion":"0.3.1","name":"n","type":"minirun-net"}}'
        echo "== not-json"; cni ADD '{{"cniVersion":'
        echo "== bad-network"; cni ADD "$(conf 1.1.0 ../etc)"
        echo "== no-network"; cni ADD "$(conf 1.1.0 nosuch)"
        echo "== bad-port"; cni ADD "$(conf 1.0.0 bridge ',"runtimeConfig":{{"portMappings":[{{"hostPort":8080,"containerPort":80,"protocol":"icmp"}}]}}')"
        echo "== no-ifname"; echo "$(conf 1.1.0)" | env CNI_COMMAND=ADD CNI_CONTAINERID=pod1 CNI_NETNS=/run/netns/pod1 $MINIRUN_NET; echo "rc=$?"
        echo "== host-netns"; echo "$(conf 1.1.0)" | env CNI_COMMAND=ADD CNI_CONTAINERID=pod1 CNI_NETNS=/proc/self/ns/net CNI_IFNAME=eth0 $MINIRUN_NET; echo "rc=$?"
        echo "== unknown-verb"; cni FROB "$(conf 1.1.0)"
        echo "== status-no-network"; cni STATUS "$(conf 1.1.0 nosuch)"
        echo "== hidden-id"; cni ADD "$(conf 1.1.0)" .hidden
        echo "== check-no-prev"; cni CHECK "$(conf 1.1.0)"
        echo "== gc-no-list"; cni GC "$(conf 1.1.0)"
        echo "== status"; cni STATUS "$(conf 1.1.0)"
        ls $MINIRUN_NET_DIR/containers 2>/dev/null; ip -o link | grep -c veth
        "#
    ));
    for (marker, code, words) in [
        ("== old-version", 1, "cniVersion \"0.3.1\" is not supported"),
        ("== not-json", 6, "is not valid"),
        ("== bad-network", 7, "is not a network name"),
        ("== no-network", 7, "network \"nosuch\" does not exist"),
        ("== bad-port", 7, "protocol \"icmp\""),
        ("== no-ifname", 4, "CNI_IFNAME"),
        ("== host-netns", 4, "the host's own network namespace"),
        ("== unknown-verb", 4, "CNI_COMMAND \"FROB\""),
        ("== status-no-network", 50, "network nosuch is not defined"),
        ("== hidden-id", 4, "CNI_CONTAINERID \".hidden\""),
        ("== check-no-prev", 7, "CHECK needs prevResult"),
        ("== gc-no-list", 7, "cni.dev/valid-attachments"),
    ] {
        let e = json_after(&out, marker);
        assert_eq!(e["code"], code, "{marker}: {e}");
        assert!(e["msg"].as_str().unwrap().contains(words), "{marker}: {e}");
        let rc = out.stdout.lines().skip_while(|l| *l != marker).nth(2);
        assert_eq!(rc, Some("rc=1"), "{marker}: {out:?}");
    }
    let status = out.stdout.lines().skip_while(|l| *l != "== status").nth(1);
    assert_eq!(status, Some("rc=0"), "{out:?}");
    assert!(out.stdout.ends_with("0\n"), "something was left: {out:?}");
}

#[test]
fn ports_gc_and_a_pod_beside_a_minirun_container() {
    let sb = Sandbox::new("cniports");
    let b = sb.bundle("c", &["/bin/sleep", "100"], |_| {});
    let www = sb.dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "from the pod\n").unwrap();
    let out = sb.run(&format!(
        r#"{LEFTOVERS}{CNI}
        $MINIRUN network create --subnet 10.44.0.0/24 shared >/dev/null || exit 1
        ports=',"runtimeConfig":{{"portMappings":[{{"hostPort":8080,"containerPort":80,"protocol":"TCP","hostIP":""}}]}}'
        for p in pod1 pod2 pod3; do ip netns add $p; done
        cni ADD "$(conf 1.1.0 shared "$ports")" pod1 > $T/add1.json
        cni ADD "$(conf 1.1.0 shared)" pod2 >/dev/null
        cni ADD "$(conf 1.1.0 shared)" pod3 >/dev/null
        ip netns exec pod1 busybox httpd -p 80 -h {www}
        # An "outside" namespace with a route to the sandbox host only.
        ip netns add beyond
        ip link add out0 type veth peer name out1 netns beyond
        ip addr add 198.51.100.1/24 dev out0; ip link set out0 up
        ip netns exec beyond sh -c 'ip link set lo up; ip addr add 198.51.100.2/24 dev out1; ip link set out1 up; ip route add default via 198.51.100.1'
        echo "host-port: $(ip netns exec beyond timeout 5 busybox wget -qO- http://198.51.100.1:8080/index.html)"
        # A second interface of a pod: one without ports works beside the
        # first (which keeps the default route); one asking for the first's
        # host port is refused, and the first keeps it.
        echo "== second-if"; IFNAME=net1 cni ADD "$(conf 1.1.0 shared)" pod2 > $T/second.json; echo "second-if: $(tail -1 $T/second.json) $(ip netns exec pod2 ip -o -4 addr show net1 | wc -l)"
        echo "== second-port"; IFNAME=net1 cni ADD "$(conf 1.1.0 shared "$ports")" pod1
        echo "first-port-kept: $(ls $MINIRUN_NET_DIR/ports | grep -c 8080) $(ip netns exec beyond timeout 5 busybox wget -qO- http://198.51.100.1:8080/index.html)"
        # A minirun container on the same network finds the pod by its pod name.
        $MINIRUN run -d --net shared -b {b} $ID-c || exit 1
        pod1=$(head -1 $T/add1.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ips"][0]["address"].split("/")[0])')
        $MINIRUN exec $ID-c ping -c1 -W2 $pod1 >/dev/null && echo "container-to-pod: ok"
        $MINIRUN exec $ID-c ping -c1 -W2 pod1-name >/dev/null && echo "by-pod-name: ok"
        ip netns exec pod1 busybox ping -c1 -W2 $($MINIRUN state $ID-c | sed -n 's/.*"ipAddress": "\(.*\)".*/\1/p') >/dev/null && echo "pod-to-container: ok"
        # GC keeps pod2, removes pod1 and pod3 (and leaves the minirun container alone).
        echo "== gc"; cni GC '{{"cniVersion":"1.1.0","name":"k8s-pod-network","network":"shared","cni.dev/valid-attachments":[{{"containerID":"pod2","ifname":"eth0"}}]}}'
        echo "after-gc: $(ls $MINIRUN_NET_DIR/containers | tr '\n' ' ')"
        echo "port-after-gc: $(nft list map inet minirun publish_any | grep -c 8080)"
        $MINIRUN exec $ID-c ping -c1 -W1 $pod1 >/dev/null 2>&1 && echo "gone-pod: reached" || echo "gone-pod: gone"
        cni DEL "$(conf 1.1.0 shared)" pod2 >/dev/null
        $MINIRUN delete -f $ID-c
        kill $(pidof busybox) 2>/dev/null
        for p in pod1 pod2 pod3 beyond; do ip netns del $p; done
        ip link del out0 2>/dev/null
        $MINIRUN network rm shared >/dev/null
        leftovers
        "#,
        b = b.display(),
        www = www.display()
    ));
    out.ok();
    assert_eq!(out.field("host-port"), "from the pod", "{out:?}");
    assert_eq!(out.field("second-if"), "rc=0 1", "{out:?}");
    let refused = json_after(&out, "== second-port");
    assert!(
        refused["msg"].as_str().unwrap().contains("8080"),
        "{refused}\n{out:?}"
    );
    assert_eq!(out.field("first-port-kept"), "1 from the pod", "{out:?}");
    for key in ["container-to-pod", "by-pod-name", "pod-to-container"] {
        assert_eq!(out.field(key), "ok", "{key}: {out:?}");
    }
    let after = out.field("after-gc");
    assert!(
        after.contains("pod2%eth0.json") && !after.contains("pod1") && !after.contains("pod3"),
        "{after}"
    );
    assert_eq!(out.field("port-after-gc"), "0", "{out:?}");
    assert_eq!(out.field("gone-pod"), "gone", "{out:?}");
    assert_eq!(net_left(&out), "", "{out:?}");
}

/// A pod on a dual-stack network: both families in the result (0.4.0's
/// `version` on each), CHECK of both, a hostPort published on an IPv6
/// host address reached from the host, a route for each family.
#[test]
fn a_pod_on_a_dual_stack_network() {
    let sb = Sandbox::new("cnidual");
    let out = sb.run(&format!(
        r#"{LEFTOVERS}{CNI}
        $MINIRUN network create --ipv6 --subnet 10.81.0.0/24 --subnet fd81::/64 six >/dev/null || exit 1
        ip link add h0 type veth peer name h1; ip link set h0 up; ip link set h1 up; ip -6 addr add 2001:db8:5::2/64 dev h0 nodad
        ports=',"runtimeConfig":{{"portMappings":[{{"hostPort":8086,"containerPort":80,"protocol":"tcp","hostIP":"2001:db8:5::2"}}]}}'
        for v in 0.4.0 1.0.0; do
            ip netns add pod1
            echo "== add $v"; cni ADD "$(conf $v six "$ports")" | tee $T/add.out
            prev=",\"prevResult\":$(head -1 $T/add.out)"
            echo "== check $v"; cni CHECK "$(conf $v six "$prev")"
            echo "routes-$v: $(ip netns exec pod1 ip route | grep -c default) $(ip netns exec pod1 ip -6 route | grep -c default)"
            if [ $v = 1.0.0 ]; then
                mkdir -p $T/www; echo pod-over-v6 > $T/www/index.html
                ip netns exec pod1 busybox httpd -p 80 -h $T/www
                echo "fetch6: $(timeout 5 busybox wget -qO- 'http://[2001:db8:5::2]:8086/index.html')"
                ip netns exec pod1 sh -c 'kill $(pidof httpd)' 2>/dev/null
            fi
            echo "== del $v"; cni DEL "$(conf $v six)"
            ip netns del pod1
        done
        ip link del h0
        $MINIRUN network rm six >/dev/null
        leftovers
        "#
    ));
    for v in ["0.4.0", "1.0.0"] {
        let add = json_after(&out, &format!("== add {v}"));
        let ips = add["ips"].as_array().unwrap_or_else(|| panic!("{add}"));
        assert_eq!(ips.len(), 2, "{add}");
        assert!(
            ips[0]["address"].as_str().unwrap().starts_with("10.81.0."),
            "{add}"
        );
        assert!(
            ips[1]["address"].as_str().unwrap().starts_with("fd81::"),
            "{add}"
        );
        assert_eq!(ips[1]["gateway"], "fd81::1", "{add}");
        assert_eq!(ips[1].get("version").is_some(), v == "0.4.0", "{add}");
        let routes: Vec<&str> = add["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["dst"].as_str().unwrap())
            .collect();
        assert_eq!(routes, ["0.0.0.0/0", "::/0"], "{add}");
        assert!(
            out.stdout.contains(&format!("== check {v}\nrc=0\n")),
            "{out:?}"
        );
        assert_eq!(out.field(&format!("routes-{v}")), "1 1", "{out:?}");
    }
    assert_eq!(out.field("fetch6"), "pod-over-v6", "{out:?}");
    assert_eq!(net_left(&out), "", "{out:?}");
}
