//! containerd 1.6 (its runc v2 shim, through `ctr --runc-binary`) driving
//! minirun, with runc as the reference. containerd runs inside the test's
//! sandbox with private root, state and socket; the rootfs is the busybox
//! bundle's (`ctr run --rootfs`), so no image is involved.

use minirun_tests::{bin, remove_cgroup_tree, Sandbox};

const SCRIPT: &str = r#"
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /sys/fs/cgroup/unified 2>/dev/null
cat > $T/containerd.toml <<C
version = 2
root = "$T/containerd-root"
state = "/run/containerd-test"
[grpc]
  address = "/run/containerd-test.sock"
[plugins."io.containerd.grpc.v1.cri"]
  disable = true
C
containerd --config $T/containerd.toml > $T/containerd.log 2>&1 &
for i in $(seq 100); do [ -S /run/containerd-test.sock ] && break; sleep 0.05; done
# cgroups are the host's: a namespace of the test's own keeps the cgroup paths
# (/<namespace>/<id>) apart from those of tests running beside it.
C="ctr --address /run/containerd-test.sock --namespace $ID"
F="--runc-binary $RUNTIME_BIN --rootfs $ROOTFS"
$C run --rm $F t1 /bin/sh -c 'echo hello from ctr; exit 3'; echo "rc=$?"
$C run -d $F t2 /bin/sleep 100 >/dev/null; echo "rc=$?"
$C task exec --exec-id e1 t2 /bin/sh -c 'echo in exec; exit 4'; echo "exec rc=$?"
$C task pause t2 && $C task ls | awk 'NR > 1 {print $1, $3}'
$C task resume t2 && $C task ls | awk 'NR > 1 {print $1, $3}'
echo "processes: $($C task ps t2 | awk 'NR > 1' | wc -l)"
$C task kill -s KILL t2
for i in $(seq 100); do $C task ls | grep -q STOPPED && break; sleep 0.05; done
$C task rm t2 >/dev/null; $C container rm t2; echo "cleanup rc=$?"
"#;

const EXPECTED: &str = "hello from ctr\nrc=3\nrc=0\nin exec\nexec rc=4\nt2 PAUSED\nt2 RUNNING\nprocesses: 1\ncleanup rc=0\n";

fn run_ctr(runtime: &str, runtime_bin: &str) {
    let sb = Sandbox::new(&format!("ctr-{runtime}"));
    let b = sb.bundle("b", &["/bin/true"], |_| {});
    let out = sb.run(&format!(
        "RUNTIME_BIN={runtime_bin}\nROOTFS={}\n{SCRIPT}",
        b.join("rootfs").display()
    ));
    // The cgroups are /<ctr namespace>/<id>: runc leaves the namespace's.
    remove_cgroup_tree(&sb.id);
    assert_eq!(out.stdout, EXPECTED, "{runtime}: {out:?}");
}

#[test]
fn containerd_runs_containers_with_minirun() {
    run_ctr("minirun", &bin("minirun").display().to_string());
}

#[test]
fn the_containerd_test_passes_with_runc_too() {
    run_ctr("runc", "/usr/sbin/runc");
}
