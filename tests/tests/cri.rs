//! Kubernetes' way in: containerd 1.6's CRI plugin (Debian's containerd)
//! with minirun as the runtime handler `minirun` (runc shim v2,
//! `BinaryName`) and minirun-net as the pod network's CNI plugin, driven by
//! a CRI client (tests/src/bin/cri-client.rs) as the kubelet drives it.
//! containerd runs inside the test's sandbox with its own root, state,
//! socket, CNI directories and libcni cache; the images are built from the
//! machine's busybox (tests/scripts/oci_image.py) and imported, never
//! pulled.

use minirun_tests::{bin, net_left, remove_cgroup_tree, repo_dir, Sandbox, LEFTOVERS};

#[test]
fn a_pod_with_a_host_port_runs_execs_updates_and_leaves_nothing() {
    let sb = Sandbox::new("cri");
    let out = sb.run(&format!(
        r#"{LEFTOVERS}
        mount -t tmpfs tmpfs /run
        mount -t tmpfs tmpfs /sys/fs/cgroup/unified 2>/dev/null
        # libcni keeps its result cache in /var/lib/cni: the sandbox's own.
        mkdir -p /var/lib/cni && mount -t tmpfs tmpfs /var/lib/cni
        ip link set lo up
        source {cri}
        cri_images || exit 1
        cri_containerd containerd-cri minirun $MINIRUN_BIN \
            '{{"cniVersion": "1.0.0", "name": "k8s-pod-network", "plugins": [{{"type": "minirun-net", "network": "bridge", "capabilities": {{"portMappings": true}}}}]}}' \
            || {{ tail -20 $T/containerd-cri/containerd.log; exit 1; }}
        CRI="{client} /run/containerd-cri.sock"
        echo "version: $($CRI version)"

        read pod ip < <($CRI run-pod web /$ID 8080:80) || {{ tail -20 $T/containerd-cri/containerd.log; exit 1; }}
        echo "pod-ip: $ip"
        srv=$($CRI create $pod srv /$ID 8080:80 -- /bin/sh -c 'echo served-by-the-pod > /tmp/index.html; exec httpd -f -p 80 -h /tmp') || exit 1
        $CRI start $srv || exit 1
        sleep 0.3
        echo "from-host: $(timeout 5 busybox wget -qO- http://$ip/index.html)"
        ip netns add beyond
        ip link add out0 type veth peer name out1 netns beyond
        ip addr add 198.51.100.1/24 dev out0; ip link set out0 up
        ip netns exec beyond sh -c 'ip link set lo up; ip addr add 198.51.100.2/24 dev out1; ip link set out1 up; ip route add default via 198.51.100.1'
        echo "host-port: $(ip netns exec beyond timeout 5 busybox wget -qO- http://198.51.100.1:8080/index.html)"
        echo "exec: $($CRI exec $srv -- /bin/sh -c 'ip -o -4 addr show eth0 | awk "{{print \$4}}"' | tr '\n' ' ')"
        side=$($CRI create $pod side /$ID 8080:80 -- /bin/sleep 1000) && $CRI start $side || exit 1
        echo "localhost: $($CRI exec $side -- wget -qO- http://127.0.0.1:80/index.html | tr '\n' ' ')"
        mem() {{ cat /sys/fs/cgroup/memory/$ID/$srv/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/$ID/$srv/memory.max; }}
        $CRI update $srv 268435456 50000 && echo "update-up: $(mem)"
        $CRI update $srv 134217728 20000 && echo "update-down: $(mem)"
        for c in $srv $side; do $CRI stop $c && $CRI remove $c; done
        $CRI stop-pod $pod && $CRI remove-pod $pod && echo "pod-removed: yes"
        echo "netns-left: $(ls /run/containerd-cri/io.containerd.grpc.v1.cri/netns 2>/dev/null | wc -l)"
        kill %1; wait %1 2>/dev/null
        ip link del out0; ip netns del beyond
        leftovers
        "#,
        cri = repo_dir().join("tests/scripts/containerd-cri.sh").display(),
        client = bin("cri-client").display(),
    ));
    remove_cgroup_tree(&sb.id);
    out.ok();
    assert!(
        out.field("version").starts_with("containerd 1.6"),
        "{out:?}"
    );
    let ip = out.field("pod-ip");
    assert!(ip.starts_with("172.20.0."), "{out:?}");
    assert_eq!(out.field("from-host"), "served-by-the-pod", "{out:?}");
    assert_eq!(out.field("host-port"), "served-by-the-pod", "{out:?}");
    assert_eq!(out.field("exec"), format!("{ip}/16 exit 0 "), "{out:?}");
    assert_eq!(
        out.field("localhost"),
        "served-by-the-pod exit 0 ",
        "{out:?}"
    );
    assert_eq!(out.field("update-up"), "268435456", "{out:?}");
    assert_eq!(out.field("update-down"), "134217728", "{out:?}");
    assert_eq!(out.field("pod-removed"), "yes", "{out:?}");
    assert_eq!(out.field("netns-left"), "0", "{out:?}");
    assert_eq!(net_left(&out), "", "{out:?}");
}

#[test]
fn pods_on_two_nodes_share_an_overlay_network() {
    let sb = Sandbox::new("crinodes");
    let bundle = sb.bundle("sleeper", &["/bin/sleep", "100000"], |_| {});
    let out = sb.run(&format!(
        r#"
        mount -t tmpfs tmpfs /run
        mount -t tmpfs tmpfs /sys/fs/cgroup/unified 2>/dev/null
        mkdir -p /var/lib/cni && mount -t tmpfs tmpfs /var/lib/cni
        BUNDLE={bundle}; MINIRUN_NET={net}
        source {harness}
        cluster_up 2 || exit 1
        mr 1 network create -d overlay --subnet 10.250.0.0/24 pods >/dev/null || exit 1
        source {cri}
        cri_images || exit 1
        # A containerd per node, in the node's network namespace, with the
        # node's minirun state and one conflist naming the overlay network.
        for n in 1 2; do
            CRI_IN="on $n" cri_containerd node$n minirun $MINIRUN_BIN \
                '{{"cniVersion":"1.0.0","name":"k8s-pod-network","plugins":[{{"type":"minirun-net","network":"pods"}}]}}' || exit 1
        done
        CRI="{client}"
        read pod1 ip1 < <($CRI /run/node1.sock run-pod alpha /$ID) || {{ tail $T/node1/containerd.log; exit 1; }}
        read pod2 ip2 < <($CRI /run/node2.sock run-pod beta /$ID) || {{ tail $T/node2/containerd.log; exit 1; }}
        echo "pod-ips: $ip1 $ip2"
        c1=$($CRI /run/node1.sock create $pod1 a /$ID -- /bin/sleep 1000) && $CRI /run/node1.sock start $c1 || exit 1
        c2=$($CRI /run/node2.sock create $pod2 b /$ID -- /bin/sleep 1000) && $CRI /run/node2.sock start $c2 || exit 1
        echo "across: $($CRI /run/node1.sock exec $c1 -- ping -c1 -W2 $ip2 | tail -1)"
        echo "inspect: $(mr 1 network inspect pods | python3 -c 'import json,sys; print(sorted(v["Host"] for v in json.load(sys.stdin)[0]["Containers"].values()))')"
        for n in 1 2; do
            pod=$([ $n = 1 ] && echo $pod1 || echo $pod2)
            $CRI /run/node$n.sock stop-pod $pod && $CRI /run/node$n.sock remove-pod $pod
        done
        echo "keys-left: $(etcd_keys | grep -c -e /addresses/ -e /endpoints/)"
        echo "links-left: $(for n in 1 2; do on $n ip -o link show | grep -v -e ': lo:' -e ': eth0@'; done | wc -l)"
        "#,
        bundle = bundle.display(),
        net = bin("minirun-net").display(),
        harness = repo_dir().join("tests/scripts/cluster.sh").display(),
        cri = repo_dir().join("tests/scripts/containerd-cri.sh").display(),
        client = bin("cri-client").display(),
    ));
    remove_cgroup_tree(&sb.id);
    out.ok();
    let ips = out.field("pod-ips");
    assert!(ips.starts_with("10.250.0.2 10.250.0.3"), "{out:?}");
    assert!(out.field("across").contains("exit 0"), "{out:?}");
    assert_eq!(out.field("inspect"), "['host1', 'host2']", "{out:?}");
    assert_eq!(out.field("keys-left"), "0", "{out:?}");
    assert_eq!(out.field("links-left"), "0", "{out:?}");
}
