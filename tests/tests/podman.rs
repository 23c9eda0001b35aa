//! podman 4.3 driving minirun as its OCI runtime (`--runtime`), with runc as
//! the reference: the same script must give the same output with both. It
//! includes podman's own networking (netavark's bridge with `-p`, and
//! `--network container:`), all inside the test's sandbox.
//! podman's storage is private to the test and the rootfs is the busybox
//! bundle's (`--rootfs`), so no image and no registry are involved.

use minirun_tests::{bin, remove_cgroup_tree, Sandbox};

const SCRIPT: &str = r#"
mount -t tmpfs tmpfs /run
# crun, podman's default, refuses this machine's hybrid cgroups; neither
# minirun nor runc needs this, but the sandbox is the same for both.
mount -t tmpfs tmpfs /sys/fs/cgroup/unified 2>/dev/null
P="podman --root $T/podman-store --runroot /run/podman --cgroup-manager cgroupfs --events-backend file --runtime $RUNTIME_BIN"
# A cgroup parent of the test's own: podman's default, /libpod_parent, is
# shared with the other podman tests and any podman of the host; conmon stays
# in podman's cgroup rather than make /libpod_parent/conmon.
R="--cgroup-parent /$ID --cgroups no-conmon --rootfs $ROOTFS"
$P run --rm --network none $R /bin/sh -c 'echo hello; exit 0'; echo "rc=$?"
$P run --rm --network none $R /bin/sh -c 'exit 7'; echo "rc=$?"
$P run --rm --network none $R /bin/no-such-program 2>/dev/null; echo "rc=$?"
echo from-stdin | $P run --rm -i --network none $R /bin/cat; echo "rc=$?"
$P run --rm -t --network none $R /bin/sh -c 'tty >/dev/null && echo has-a-tty' | tr -d '\r'
$P run --rm --network host $R /bin/sh -c 'ls /sys/class/net | grep -c sandbox0'
$P run -d --name c1 --network none $R /bin/sleep 100 >/dev/null; echo "rc=$?"
$P exec c1 /bin/sh -c 'exit 3'; echo "exec rc=$?"
$P exec -u 1000:1000 -e FOO=bar -w /tmp c1 /bin/sh -c 'echo "$(id -u):$(id -g) $FOO $(pwd)"'
$P update --cpu-shares 512 --memory 104857600 c1 >/dev/null; echo "update rc=$?"
$P exec c1 /bin/sh -c 'cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/memory/memory.limit_in_bytes'
$P pause c1 >/dev/null && $P inspect --format '{{.State.Status}}' c1
$P unpause c1 >/dev/null && $P inspect --format '{{.State.Status}}' c1
$P stop -t 1 c1 >/dev/null 2>&1; $P inspect --format '{{.State.Status}} {{.State.ExitCode}}' c1
$P start c1 >/dev/null && $P inspect --format '{{.State.Status}}' c1
$P restart -t 1 c1 >/dev/null && $P inspect --format '{{.State.Status}} {{.State.Pid}}' c1 | cut -d' ' -f1
$P exec -t c1 /bin/sh -c 'tty >/dev/null && echo exec-has-a-tty' | tr -d '\r'
$P kill c1 >/dev/null; $P wait c1 >/dev/null; $P rm -f c1 >/dev/null; echo "rm rc=$?"
# podman's own bridge (netavark) with a published port, and a container joining
# another's network namespace.
ip link set lo up
mkdir -p $T/www && echo page > $T/www/index.html
$P run -d --name web -p 8080:80 -v $T/www:/www $R /bin/httpd -f -p 80 -h /www >/dev/null; echo "rc=$?"
for i in $(seq 50); do busybox wget -qO- http://127.0.0.1:8080/index.html 2>/dev/null && break; sleep 0.1; done
$P run --rm --network container:web $R /bin/sh -c 'wget -qO- http://127.0.0.1:80/index.html'
$P rm -f -t 0 web >/dev/null; echo "rm rc=$?"
$P ps -a -q | wc -l
"#;

const EXPECTED: &str = "hello\nrc=0\nrc=7\nrc=127\nfrom-stdin\nrc=0\nhas-a-tty\n1\nrc=0\nexec rc=3\n1000:1000 bar /tmp\nupdate rc=0\n512\n104857600\npaused\nrunning\nexited 137\nrunning\nrunning\nexec-has-a-tty\nrm rc=0\nrc=0\npage\npage\nrm rc=0\n0\n";

fn run_podman(runtime: &str, runtime_bin: &str) {
    let sb = Sandbox::new(&format!("podman-{runtime}"));
    let b = sb.bundle("b", &["/bin/true"], |_| {});
    let out = sb.run(&format!(
        "ip link add sandbox0 type bridge\nRUNTIME_BIN={runtime_bin}\nROOTFS={}\n{SCRIPT}",
        b.join("rootfs").display()
    ));
    remove_cgroup_tree(&sb.id);
    assert_eq!(out.stdout, EXPECTED, "{runtime}: {out:?}");
}

#[test]
fn podman_runs_containers_with_minirun() {
    run_podman("minirun", &bin("minirun").display().to_string());
}

#[test]
fn the_podman_test_passes_with_runc_too() {
    run_podman("runc", "/usr/sbin/runc");
}
