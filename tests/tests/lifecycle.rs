//! create / start / state / kill / delete / run / list, as runc does them.

use minirun_tests::{cgroup_exists, Sandbox};
use serde_json::Value;

#[test]
fn create_start_kill_delete() {
    let sb = Sandbox::new("lifecycle");
    let bundle = sb.bundle("b", &["/bin/sleep", "100"], |_| {});
    let out = sb.run(&format!(
        r#"
        $MINIRUN create --bundle {b} --pid-file $T/pid lc1 || exit 10
        echo "state1=$($MINIRUN state lc1 | tr -d '\n ')"
        echo "pidfile=$(cat $T/pid)"
        echo "cgroup=$(find /sys/fs/cgroup/memory -maxdepth 3 -type d -name lc1 | head -1)"
        $MINIRUN start lc1 || exit 11
        echo "state2=$($MINIRUN state lc1 | tr -d '\n ')"
        echo "list=$($MINIRUN list -q)"
        $MINIRUN kill lc1 KILL || exit 12
        for i in $(seq 100); do $MINIRUN state lc1 | grep -q '"stopped"' && break; sleep 0.02; done
        echo "state3=$($MINIRUN state lc1 | tr -d '\n ')"
        $MINIRUN delete lc1 || exit 13
        echo "after=$(ls $ROOT)"
        echo "cgroup_after=$(find /sys/fs/cgroup/memory -maxdepth 3 -type d -name lc1 | head -1)"
        "#,
        b = bundle.display()
    ));
    out.ok();
    let get = |k: &str| -> String {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} missing: {out:?}"))
            .to_string()
    };
    let s1: Value = serde_json::from_str(&get("state1")).unwrap();
    assert_eq!(s1["status"], "created");
    assert_eq!(s1["id"], "lc1");
    assert_eq!(s1["ociVersion"], "1.0.2-dev");
    assert_eq!(s1["bundle"], bundle.to_str().unwrap());
    assert!(s1["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        s1["pid"].to_string(),
        get("pidfile"),
        "pid file holds the init pid, no newline"
    );
    assert!(
        get("cgroup").ends_with("/lc1"),
        "the container has its cgroup: {out:?}"
    );
    let s2: Value = serde_json::from_str(&get("state2")).unwrap();
    assert_eq!(s2["status"], "running");
    assert_eq!(get("list"), "lc1");
    let s3: Value = serde_json::from_str(&get("state3")).unwrap();
    assert_eq!(s3["status"], "stopped");
    assert_eq!(get("after"), "");
    assert_eq!(get("cgroup_after"), "");
    sb.assert_clean();
}

#[test]
fn run_returns_the_exit_status_and_128_plus_signal() {
    let sb = Sandbox::new("exitcode");
    let b1 = sb.bundle(
        "b1",
        &["/bin/sh", "-c", "echo out; echo err >&2; exit 7"],
        |_| {},
    );
    let b2 = sb.bundle("b2", &["/bin/sleep", "100"], |_| {});
    let out = sb.run(&format!(
        r#"
        $MINIRUN run --bundle {} $ID-ex1; echo rc1=$?
        $MINIRUN run --bundle {} $ID-ex2 & runner=$!
        for i in $(seq 100); do $MINIRUN state $ID-ex2 2>/dev/null | grep -q running && break; sleep 0.02; done
        $MINIRUN kill $ID-ex2 9
        wait $runner; echo rc2=$?
        "#,
        b1.display(),
        b2.display()
    ));
    assert!(out.stdout.contains("out\nrc1=7\n"), "{out:?}");
    assert!(out.stderr.contains("err"), "{out:?}");
    assert!(out.stdout.contains("rc2=137"), "{out:?}");
    sb.assert_clean();
    for id in [format!("{}-ex1", sb.id), format!("{}-ex2", sb.id)] {
        assert_eq!(cgroup_exists(&id), None, "cgroup of {id} left; {out:?}");
    }
}

#[test]
fn run_with_a_bundle_directory_generates_the_id() {
    let sb = Sandbox::new("shortform");
    let b = sb.bundle("b", &["/bin/echo", "hello"], |_| {});
    let out = sb.run(&format!("$MINIRUN run {}", b.display()));
    out.ok();
    assert_eq!(out.stdout, "hello\n");
    assert!(out.stderr.contains("container id "), "{out:?}");
    sb.assert_clean();
}

#[test]
fn stdin_passes_through_and_signals_are_forwarded() {
    let sb = Sandbox::new("stdio");
    let cat = sb.bundle("cat", &["/bin/cat"], |_| {});
    let trap = sb.bundle(
        "trap",
        &[
            "/bin/sh",
            "-c",
            "trap 'echo got TERM; exit 42' TERM; echo ready; while :; do sleep 0.05; done",
        ],
        |_| {},
    );
    let out = sb.run(&format!(
        r#"
        echo piped-data | $MINIRUN run --bundle {cat} c1; echo rc1=$?
        $MINIRUN run --bundle {trap} c2 > $T/trap.out &
        runner=$!
        for i in $(seq 100); do grep -q ready $T/trap.out 2>/dev/null && break; sleep 0.05; done
        kill -TERM $runner
        wait $runner; echo rc2=$?
        cat $T/trap.out
        "#,
        cat = cat.display(),
        trap = trap.display()
    ));
    assert!(out.stdout.contains("piped-data\nrc1=0"), "{out:?}");
    assert!(out.stdout.contains("rc2=42"), "{out:?}");
    assert!(out.stdout.contains("got TERM"), "{out:?}");
    sb.assert_clean();
}

#[test]
fn detached_run_keeps_running_until_killed() {
    let sb = Sandbox::new("detach");
    let b = sb.bundle("b", &["/bin/sleep", "100"], |_| {});
    let out = sb.run(&format!(
        r#"
        $MINIRUN run -d --bundle {} d1 || exit 1
        $MINIRUN state d1 | grep -q '"running"' || exit 2
        $MINIRUN list
        $MINIRUN list -f json
        $MINIRUN delete d1 2>/dev/null && exit 3
        $MINIRUN delete --force d1 || exit 4
        $MINIRUN delete --force d1 || exit 5
        "#,
        b.display()
    ));
    out.ok();
    assert!(
        out.stdout.contains("ID ") && out.stdout.contains("d1") && out.stdout.contains("running"),
        "{out:?}"
    );
    let json_line = out.stdout.lines().find(|l| l.starts_with('[')).unwrap();
    let list: Value = serde_json::from_str(json_line).unwrap();
    assert_eq!(list[0]["id"], "d1");
    sb.assert_clean();
}

#[test]
fn a_dead_init_reads_stopped_and_delete_cleans_it() {
    let sb = Sandbox::new("dead");
    let b = sb.bundle("b", &["/bin/true"], |_| {});
    let out = sb.run(&format!(
        r#"
        $MINIRUN create --bundle {} dd || exit 1
        pid=$($MINIRUN state dd | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
        kill -KILL $pid
        for i in $(seq 100); do $MINIRUN state dd | grep -q '"stopped"' && break; sleep 0.02; done
        $MINIRUN state dd | grep -q '"stopped"' || exit 2
        $MINIRUN start dd 2>$T/err && exit 3
        cat $T/err
        $MINIRUN delete dd || exit 4
        "#,
        b.display()
    ));
    out.ok();
    assert!(out.stdout.contains("stopped"), "{out:?}");
    sb.assert_clean();
}

#[test]
fn spec_and_features() {
    let sb = Sandbox::new("spec");
    let out = sb.run("mkdir $T/s && cd $T/s && $MINIRUN spec && cat config.json && $MINIRUN spec; echo rc=$?; $MINIRUN features");
    assert!(
        out.stdout.contains("rc=1"),
        "second spec refuses to overwrite: {out:?}"
    );
    assert!(out.stderr.contains("exists"), "{out:?}");
    let config: Value = serde_json::from_str(out.stdout.split("rc=1").next().unwrap()).unwrap();
    assert_eq!(config["process"]["args"][0], "sh");
    let features: Value = serde_json::from_str(out.stdout.split("rc=1\n").nth(1).unwrap()).unwrap();
    assert_eq!(features["ociVersionMin"], "1.0.0");
    assert!(features["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h == "createRuntime"));
    assert_eq!(features["linux"]["seccomp"]["enabled"], true);
}

#[test]
fn version() {
    let sb = Sandbox::new("version");
    let out = sb.run("$MINIRUN_BIN --version");
    out.ok();
    assert!(out.stdout.starts_with("minirun "), "{out:?}");
    assert!(out.stdout.contains("spec: 1.1.0"), "{out:?}");
    // Tools read the `+` line for optional features (crun's format).
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with('+') && l.contains("+SYSTEMD")),
        "{out:?}"
    );
}

#[test]
fn the_state_file_records_the_inits_stdio() {
    let sb = Sandbox::new("status");
    let b = sb.bundle("b", &["/bin/true"], |_| {});
    let out = sb.run(&format!(
        "$MINIRUN create --bundle {} $ID </dev/null >$T/out 2>&1 || exit 1
         cat $ROOT/$ID/status; echo
         $MINIRUN delete -f $ID",
        b.display()
    ));
    out.ok();
    let status: Value = serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    // A JSON array in a string, as crun and runc record it.
    let fds: Vec<String> =
        serde_json::from_str(status["external_descriptors"].as_str().unwrap()).unwrap();
    let out_file = sb.dir.join("out").display().to_string();
    assert_eq!(fds, ["/dev/null", &out_file, &out_file], "{out:?}");
    sb.assert_clean();
}
