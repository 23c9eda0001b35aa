//! Docker 20.10 (Debian's docker.io) driving minirun as a runtime registered
//! in daemon.json, through what a Docker user types
//! (tests/scripts/docker-scenarios.sh: run, -i, -t, logs, exec, stop, kill,
//! restart policies, pause, top, stats, update, OOM, limits, users,
//! capabilities, seccomp, --init, mounts, devices, the four network modes,
//! -p, user networks with Docker's DNS, healthchecks). The same script runs
//! with runc, in a second sandbox at the same time, and every line must be
//! the same: what fails with both is this machine's limit (e.g. --privileged
//! wants CAP_SYS_RESOURCE, which root lacks on this VM), what fails with
//! minirun alone is minirun's. Lines whose value is known are checked too, so
//! that the two cannot agree on being broken.
//!
//! Each sandbox has its own dockerd (which starts its own containerd) with
//! private data and exec roots, a tmpfs /run and /etc/docker, and a cgroup
//! parent of its own; the image is imported from the busybox bundle's rootfs.

use std::path::Path;

use minirun_tests::{remove_cgroup_tree, repo_dir, Output, Sandbox};

const SETUP: &str = r#"
mount -t tmpfs tmpfs /run
# crun-style hiding of this hybrid host's empty cgroup2 half, as the other
# client tests do; Docker then uses cgroup v1 alone.
mount -t tmpfs tmpfs /sys/fs/cgroup/unified 2>/dev/null
# dockerd writes its key.json to /etc/docker.
mount -t tmpfs tmpfs /etc/docker
ip link set lo up
cat > $T/daemon.json <<J
{"runtimes": {"minirun": {"path": "$MINIRUN_BIN"}}, "cgroup-parent": "/$CGROUP_PARENT"}
J
export DOCKER_HOST=unix:///run/docker.sock
dockerd --config-file $T/daemon.json --data-root $T/docker --exec-root /run/docker-exec \
    --pidfile /run/docker.pid -H $DOCKER_HOST > $T/dockerd.log 2>&1 &
for i in $(seq 150); do /usr/bin/docker version >/dev/null 2>&1 && break; sleep 0.2; done
tar -C $ROOTFS -c . | /usr/bin/docker import - busybox:test >/dev/null || { tail -20 $T/dockerd.log >&2; exit 1; }
bash $SCENARIOS $RUNTIME
"#;

fn scenarios(sb: &Sandbox, runtime: &str, rootfs: &Path) -> Output {
    let out = sb.run(&format!(
        "CGROUP_PARENT={id}\nROOTFS={rootfs}\nSCENARIOS={script}\nRUNTIME={runtime}\nexport CGROUP_PARENT\n{SETUP}",
        id = sb.id,
        rootfs = rootfs.display(),
        script = repo_dir()
            .join("tests/scripts/docker-scenarios.sh")
            .display(),
    ));
    // Docker leaves its cgroup parent behind.
    remove_cgroup_tree(&sb.id);
    out
}

/// Lines whose value does not depend on the machine: minirun must give them
/// whatever runc gives.
const KNOWN: &[(&str, &str)] = &[
    ("run-exit-0", "0"),
    ("run-exit-3", "3"),
    ("run-nobinary", "127"),
    ("run-echo", "hello"),
    ("run-env", "bar"),
    ("run-i", "piped"),
    ("run-i-read", "got-abc"),
    ("logs-stdout", "hello"),
    ("logs-stderr", "oops"),
    ("logs-exitcode", "2"),
    ("exec-user", "uid=1000 gid=1000 groups=1000"),
    ("exec-env", "bar"),
    ("exec-workdir", "/tmp"),
    ("exec-i", "fed"),
    ("exec-exitcode", "5"),
    ("pause", "paused"),
    ("unpause", "running"),
    ("stop-term", "exit=7 got-TERM"),
    ("stop-ignored", "exit=137 oom=false"),
    ("kill-usr1", "got-USR1 running=true"),
    ("restart-on-failure", "count=2 status=exited runs=3"),
    ("docker-wait", "4"),
    ("mem-update-up", "rc=0 268435456 swap=536870912"),
    ("mem-update-down", "rc=0 33554432 swap=67108864"),
    ("cpu-update-cpus", "rc=0 quota=50000 period=100000"),
    (
        "update-noop",
        "rc=0 shares-before=1024 shares-after=1024 quota=50000 soft=10485760 mem=9223372036854771712 pids=max",
    ),
    ("update-shares-pids", "rc=0 shares=512 pids=77"),
    ("oom", "rc=137 OOMKilled=true exit=137"),
    ("pids-enforced", "fork-limited"),
    ("user", "uid=1000 gid=1000 groups=1000"),
    ("nnp", "NoNewPrivs: 1"),
    ("seccomp-default", "Seccomp: 2"),
    ("ulimit", "1024 2048"),
    ("sysctl", "1"),
    ("bind", "from-host wrote"),
    ("volume-read", "persisted"),
    (
        "mknod",
        "mknod-c1:3-ok write-ok mknod-b7:0-ok mknod-c10:229-ok fuse-open-denied",
    ),
    ("net-none", "lo"),
    ("net-container", "same-netns"),
    ("web-localhost-port", "hello from a minirun container"),
    ("web-from-container", "hello from a minirun container"),
    ("usernet-ping", "1 packets received"),
    ("usernet-alias", "alias-resolved"),
    ("health", "healthy"),
    ("rm-all", "0"),
];

#[test]
fn docker_runs_containers_with_minirun_as_with_runc() {
    let rootfs_of = |sb: &Sandbox| sb.bundle("b", &["/bin/true"], |_| {}).join("rootfs");
    let (minirun, runc) = std::thread::scope(|s| {
        let minirun = s.spawn(|| {
            let sb = Sandbox::new("docker-minirun");
            let out = scenarios(&sb, "minirun", &rootfs_of(&sb));
            (sb, out)
        });
        let runc = s.spawn(|| {
            let sb = Sandbox::new("docker-runc");
            let out = scenarios(&sb, "runc", &rootfs_of(&sb));
            (sb, out)
        });
        (minirun.join().unwrap(), runc.join().unwrap())
    });
    let (_sb_m, m) = minirun;
    let (_sb_r, r) = runc;
    assert!(
        r.stdout.lines().count() > 100,
        "the scenarios did not run with runc: {r:?}"
    );
    let differ: Vec<String> = m
        .stdout
        .lines()
        .zip(r.stdout.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("minirun {a}\n   runc {b}"))
        .collect();
    assert!(
        differ.is_empty() && m.stdout.lines().count() == r.stdout.lines().count(),
        "minirun and runc differ:\n{}\n\nminirun's stderr:\n{}",
        differ.join("\n"),
        m.stderr
    );
    for (key, want) in KNOWN {
        let got = m.field(key);
        assert_eq!(got, *want, "{key}, with both runtimes:\n{m:?}");
    }
}
