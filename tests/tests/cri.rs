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
        mkdir -p $T/cnibin $T/net.d
        ln -s $MINIRUN_NET $T/cnibin/minirun-net
        ln -s /usr/lib/cni/loopback $T/cnibin/loopback
        # containerd 1.6's libcni reads results up to 1.0.0 (a 1.1.0 list
        # fails in libcni itself, whatever the plugin).
        cat > $T/net.d/10-minirun.conflist <<C
{{"cniVersion": "1.0.0", "name": "k8s-pod-network",
 "plugins": [{{"type": "minirun-net", "network": "bridge", "capabilities": {{"portMappings": true}}}}]}}
C
        cat > $T/containerd.toml <<C
version = 2
root = "$T/containerd-root"
state = "/run/containerd-cri"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "/run/containerd-cri.sock"
[ttrpc]
  address = "/run/containerd-cri.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$T/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.6"
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$T/cnibin"
    conf_dir = "$T/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "minirun"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.minirun]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.minirun.options]
        BinaryName = "$MINIRUN_BIN"
        SystemdCgroup = false
C
        containerd --config $T/containerd.toml > $T/containerd.log 2>&1 &
        for i in $(seq 100); do [ -S /run/containerd-cri.sock ] && break; sleep 0.1; done
        CTR="ctr -a /run/containerd-cri.sock -n k8s.io"
        python3 {image} docker.io/library/busybox:test $T/busybox.tar
        python3 {image} registry.k8s.io/pause:3.6 $T/pause.tar /bin/sleep 2147483647
        $CTR images import $T/busybox.tar >/dev/null && $CTR images import $T/pause.tar >/dev/null || exit 1
        CRI="{client} /run/containerd-cri.sock"
        echo "version: $($CRI version)"

        read pod ip < <($CRI run-pod web /$ID 8080:80) || {{ tail -20 $T/containerd.log; exit 1; }}
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
        ip netns del beyond
        leftovers
        "#,
        image = repo_dir().join("tests/scripts/oci_image.py").display(),
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
