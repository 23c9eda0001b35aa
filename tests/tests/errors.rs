//! Bad input: one clear line on stderr, a non-zero exit, and nothing left behind
//! (no state directory, cgroup or process). With --log-format json, the same
//! error as one JSON object in the log file.

use minirun_tests::{cgroup_exists, Sandbox};
use serde_json::{json, Value};

/// Runs `create` on a bundle that `edit` breaks; returns stderr after checking
/// that it failed, said one line and left nothing.
fn refused(name: &str, args: &[&str], edit: impl FnOnce(&mut Value), prepare: &str) -> String {
    let sb = Sandbox::new(name);
    let b = sb.bundle("b", args, edit);
    let out = sb.run(&format!(
        "B={b}; {prepare}\n$MINIRUN --log $T/log.json --log-format json create --bundle $B $ID; echo rc=$?; ps -e -o comm= | grep -c minirun",
        b = b.display()
    ));
    assert!(out.stdout.starts_with("rc=1\n"), "{out:?}");
    assert!(out.stdout.ends_with("\n0\n"), "a process was left: {out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "one line: {out:?}");
    sb.assert_clean();
    assert!(cgroup_exists(&sb.id).is_none(), "cgroup left behind");
    let log = std::fs::read_to_string(sb.dir.join("log.json")).unwrap();
    let entry: Value = serde_json::from_str(log.trim()).expect("one JSON object");
    assert_eq!(entry["level"], "error");
    assert!(entry["time"].as_str().unwrap().ends_with('Z'));
    assert!(
        out.stderr.contains(entry["msg"].as_str().unwrap()),
        "{out:?} vs {entry}"
    );
    out.stderr
}

#[test]
fn missing_bundle() {
    let err = refused("nobundle", &["/bin/true"], |_| {}, "B=$T/does-not-exist");
    assert!(
        err.contains("does-not-exist") && err.contains("No such file or directory"),
        "{err}"
    );
}

#[test]
fn malformed_config_names_the_json_path() {
    let err = refused(
        "badjson",
        &["/bin/true"],
        |c| c["process"]["user"]["uid"] = json!("root"),
        "",
    );
    assert!(
        err.contains("config.json: process.user.uid: invalid type: string \"root\""),
        "{err}"
    );
    let err = refused(
        "truncated",
        &["/bin/true"],
        |_| {},
        "head -c 100 $B/config.json > $B/c && mv $B/c $B/config.json",
    );
    assert!(err.contains("config.json") && err.contains("EOF"), "{err}");
    let err = refused("noconfig", &["/bin/true"], |_| {}, "rm $B/config.json");
    assert!(
        err.contains("config.json: No such file or directory"),
        "{err}"
    );
}

#[test]
fn unsupported_version_and_unknown_namespace() {
    let err = refused(
        "version",
        &["/bin/true"],
        |c| c["ociVersion"] = json!("2.0.0"),
        "",
    );
    assert!(
        err.contains("ociVersion: unsupported version \"2.0.0\""),
        "{err}"
    );
    let err = refused(
        "nstype",
        &["/bin/true"],
        |c| c["linux"]["namespaces"][1]["type"] = json!("bogus"),
        "",
    );
    assert!(
        err.contains("config.json: linux.namespaces[1].type: unknown variant `bogus`"),
        "{err}"
    );
    let err = refused(
        "nspath",
        &["/bin/true"],
        |c| c["linux"]["namespaces"][1] = json!({"type": "network", "path": "/proc/999999/ns/net"}),
        "",
    );
    assert!(
        err.contains("linux.namespaces[1].path: /proc/999999/ns/net: No such file or directory"),
        "{err}"
    );
}

#[test]
fn missing_rootfs_and_empty_args() {
    let err = refused("norootfs", &["/bin/true"], |_| {}, "rm -rf $B/rootfs");
    assert!(
        err.contains("root.path") && err.contains("No such file or directory"),
        "{err}"
    );
    let err = refused("noargs", &[], |_| {}, "");
    assert!(err.contains("config.json: process.args: is empty"), "{err}");
}

#[test]
fn missing_or_not_executable_program_fails_create() {
    let err = refused("noprog", &["/bin/nope"], |_| {}, "");
    assert!(err.contains("no such file or directory"), "{err}");
    let err = refused("noprog2", &["nope"], |_| {}, "");
    assert!(
        err.contains("executable file not found in $PATH")
            && err.contains("no such file or directory"),
        "{err}"
    );
    let err = refused("noexec", &["/etc/passwd"], |_| {}, "");
    assert!(err.contains("permission denied"), "{err}");
}

#[test]
fn a_failing_mount_names_the_mount() {
    let err = refused(
        "badmount",
        &["/bin/true"],
        |c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/x", "type": "nosuchfs", "source": "none"}))
        },
        "",
    );
    assert!(err.contains("mounts[7] (nosuchfs on /x)"), "{err}");
    // First, before the cgroups are needed: the init fails while the
    // runtime may still be making them, and its reason is still the error.
    let err = refused(
        "badmount0",
        &["/bin/true"],
        |c| {
            c["mounts"].as_array_mut().unwrap().insert(
                0,
                json!({"destination": "/x", "type": "nosuchfs", "source": "none"}),
            )
        },
        "",
    );
    assert!(err.contains("mounts[0] (nosuchfs on /x)"), "{err}");
}

#[test]
fn invalid_and_duplicate_ids_and_unknown_containers() {
    let sb = Sandbox::new("ids");
    let b = sb.bundle("b", &["/bin/sleep", "100"], |_| {});
    let out = sb.run(&format!(
        r#"
        $MINIRUN create --bundle {b} 'bad/id'; echo rc=$?
        $MINIRUN create --bundle {b} $ID || exit 9
        $MINIRUN create --bundle {b} $ID; echo rc=$?
        $MINIRUN start $ID || exit 8
        $MINIRUN start $ID; echo rc=$?
        $MINIRUN kill nope 9; echo rc=$?
        $MINIRUN state nope; echo rc=$?
        $MINIRUN delete nope; echo rc=$?
        $MINIRUN kill $ID NOTASIGNAL; echo rc=$?
        $MINIRUN delete --force $ID
        "#,
        b = b.display()
    ));
    assert_eq!(
        out.stdout, "rc=1\nrc=1\nrc=1\nrc=1\nrc=1\nrc=1\nrc=1\n",
        "{out:?}"
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        lines[0].contains("invalid container id \"bad/id\""),
        "{out:?}"
    );
    assert!(lines[1].contains("exists already"), "{out:?}");
    assert!(lines[2].contains("it is running"), "{out:?}");
    assert!(
        lines[3].contains("container nope does not exist"),
        "{out:?}"
    );
    assert!(
        lines[4].contains("container nope does not exist"),
        "{out:?}"
    );
    assert!(
        lines[5].contains("container nope does not exist"),
        "{out:?}"
    );
    assert!(lines[6].contains("invalid signal"), "{out:?}");
    sb.assert_clean();
}

#[test]
fn values_past_what_the_kernel_takes_are_refused_at_once() {
    let err = refused(
        "pidsmax",
        &["/bin/true"],
        |c| c["linux"]["resources"] = json!({"pids": {"limit": 4294967296u64}}),
        "",
    );
    assert!(
        err.contains("linux.resources.pids.limit: 4294967296 is above the most the kernel takes"),
        "{err}"
    );
    let err = refused(
        "blkioweight",
        &["/bin/true"],
        |c| c["linux"]["resources"] = json!({"blockIO": {"weight": 5}}),
        "",
    );
    assert!(
        err.contains("linux.resources.blockIO.weight: 5 is out of range"),
        "{err}"
    );
}

/// A value only the kernel can judge (CPUs this machine lacks) is refused
/// when written, after the init exists on cgroup v1 (the directories are
/// made while it sets up): the write's error, once, and the init, the
/// directories and the state gone.
#[test]
fn a_value_the_kernel_refuses_when_written_leaves_nothing() {
    let err = refused(
        "cpusetcpus",
        &["/bin/true"],
        |c| c["linux"]["resources"] = json!({"cpu": {"cpus": "0-4095"}}),
        "",
    );
    assert!(err.contains("cpuset.cpus"), "{err}");
}

#[test]
fn limits_no_program_starts_under_are_refused() {
    for (name, typ) in [("rlimitas", "RLIMIT_AS"), ("rlimitstack", "RLIMIT_STACK")] {
        let err = refused(
            name,
            &["/bin/true"],
            |c| {
                c["process"]["rlimits"] = json!([{"type": typ, "soft": 1, "hard": 1}]);
            },
            "",
        );
        assert!(
            err.contains(&format!(
                "process.rlimits[0]: {typ}: soft limit 1 bytes is below what any program needs to start"
            )),
            "{err}"
        );
    }
}

/// `run` releases its init the moment it is ready, so what could still fail
/// comes before: a --pid-file it cannot write is refused with the
/// container's process never run, and nothing left.
#[test]
fn run_refuses_a_pid_file_it_cannot_write_before_the_process_runs() {
    let sb = Sandbox::new("pidfile");
    let mark = sb.dir.join("mark");
    std::fs::create_dir_all(&mark).unwrap();
    let b = sb.bundle("b", &["/bin/touch", "/mark/ran"], |c| {
        c["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/mark", "type": "bind", "source": mark, "options": ["bind"]}),
        );
    });
    let out = sb.run(&format!(
        "$MINIRUN run --pid-file $T/no/such/dir/pid --bundle {} $ID; echo rc=$?",
        b.display()
    ));
    assert!(out.stdout.contains("rc=1"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "one line: {out:?}");
    assert!(out.stderr.contains("no/such/dir/pid"), "{out:?}");
    assert!(!mark.join("ran").exists(), "the process ran: {out:?}");
    sb.assert_clean();
    assert!(cgroup_exists(&sb.id).is_none(), "cgroup left behind");
}

/// A mount under a volume with shared propagation appears on the host, so
/// such a config has its cgroups made before the init exists (elsewhere, on
/// v1, while it mounts): a value the kernel refuses then leaves no mount
/// behind either. The deep cgroupsPath gives the init time to mount.
#[test]
fn a_refused_value_leaves_no_mount_on_the_host_through_a_shared_volume() {
    let sb = Sandbox::new("sharedvol");
    let vol = sb.dir.join("vol");
    std::fs::create_dir_all(vol.join("sub")).unwrap();
    let b = sb.bundle("b", &["/bin/true"], |c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        // First, before the cgroup mount, where the init would wait.
        mounts.insert(0, json!({"destination": "/vol", "type": "bind", "source": vol, "options": ["rbind", "rshared"]}));
        mounts.insert(1, json!({"destination": "/vol/sub", "type": "tmpfs", "source": "tmpfs"}));
        c["linux"]["cgroupsPath"] = json!("/sharedvol/a/b/c/d/e/f/g/x");
        c["linux"]["resources"] = json!({"cpu": {"cpus": "0-4095"}});
    });
    let out = sb.run(&format!(
        "mount --bind {v} {v}; mount --make-rshared {v}; $MINIRUN create --bundle {b} $ID; echo rc=$?; grep -c ' {v}/sub ' /proc/self/mountinfo",
        v = vol.display(),
        b = b.display()
    ));
    assert!(out.stdout.starts_with("rc=1\n"), "{out:?}");
    assert!(out.stderr.contains("cpuset.cpus"), "{out:?}");
    assert_eq!(
        out.stdout.lines().nth(1),
        Some("0"),
        "a mount left: {out:?}"
    );
    sb.assert_clean();
}
