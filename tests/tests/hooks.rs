//! OCI hooks: placement, the state on stdin, failures, timeouts, poststop after
//! the bundle is gone. The placement test runs against runc too, to prove it.

use std::path::Path;

use minirun_tests::{cgroup_exists, Sandbox};
use serde_json::{json, Value};

/// A bundle whose six hooks each record their kind and the state they read.
/// startContainer runs inside the container, so it writes to a bind mount.
fn hooked_bundle(sb: &Sandbox) -> std::path::PathBuf {
    let log = sb.dir.join("hooklog");
    std::fs::create_dir_all(&log).unwrap();
    let host_hook = |kind: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {l}/{kind}.json; echo {kind} >> {l}/order", l = log.display())], "env": ["PATH=/usr/bin:/bin"]});
    sb.bundle("b", &["/bin/sh", "-c", "echo container-ran"], |c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/hooklog", "type": "bind", "source": log, "options": ["bind"]}));
        c["hooks"] = json!({
            "prestart": [host_hook("prestart")],
            "createRuntime": [host_hook("createRuntime")],
            "createContainer": [host_hook("createContainer")],
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /hooklog/startContainer.json; echo startContainer >> /hooklog/order"]}],
            "poststart": [host_hook("poststart")],
            "poststop": [host_hook("poststop")],
        });
    })
}

/// Runs the hooked bundle with `runtime` and returns (order, kind → state).
fn hook_trace(sb: &Sandbox, runtime: &str) -> (Vec<String>, Vec<(String, Value)>) {
    let b = hooked_bundle(sb);
    let out = sb.run(&format!(
        r#"
        {runtime} create --bundle {b} $ID-h || exit 1
        {runtime} start $ID-h || exit 2
        for i in $(seq 100); do {runtime} state $ID-h | grep -q stopped && break; sleep 0.02; done
        {runtime} delete $ID-h || exit 3
        "#,
        b = b.display()
    ));
    out.ok();
    let log = sb.dir.join("hooklog");
    let order: Vec<String> = std::fs::read_to_string(log.join("order"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let states = order
        .iter()
        .map(|k| {
            (
                k.clone(),
                serde_json::from_slice(&std::fs::read(log.join(format!("{k}.json"))).unwrap())
                    .unwrap(),
            )
        })
        .collect();
    (order, states)
}

/// The order the runtime-spec fixes. startContainer (in the container) and
/// poststart (after `start` returns) may race in runc, whose `start` returns
/// before the init execs.
fn check_trace(order: &[String], states: &[(String, Value)], bundle: &Path, id: &str) {
    assert_eq!(order.len(), 6, "{order:?}");
    assert_eq!(order[..3], ["prestart", "createRuntime", "createContainer"]);
    let mut middle = order[3..5].to_vec();
    middle.sort();
    assert_eq!(middle, ["poststart", "startContainer"]);
    assert_eq!(order[5], "poststop");
    let init_pid = &states[0].1["pid"];
    for (kind, s) in states {
        assert_eq!(s["id"], id, "{kind}");
        assert_eq!(s["bundle"], bundle.to_str().unwrap(), "{kind}");
        assert!(s["ociVersion"].is_string(), "{kind}");
        let want_status: &[&str] = match kind.as_str() {
            "prestart" | "createRuntime" | "createContainer" => &["creating"],
            "startContainer" => &["created"],
            // runc reports the status it had saved before the start.
            "poststart" => &["running", "created"],
            _ => &["stopped"],
        };
        assert!(
            want_status.iter().any(|w| s["status"] == *w),
            "{kind}: {}",
            s["status"]
        );
        match kind.as_str() {
            // These run in the container's pid namespace: the init is pid 1 there.
            "createContainer" | "startContainer" => assert_eq!(s["pid"], 1, "{kind}"),
            "poststop" => {}
            _ => {
                assert!(init_pid.as_i64().unwrap() > 1);
                assert_eq!(&s["pid"], init_pid, "{kind} sees the init's host pid");
            }
        }
    }
}

#[test]
fn hooks_run_in_order_with_the_state_on_stdin() {
    let sb = Sandbox::new("hooks");
    let (order, states) = hook_trace(&sb, "$MINIRUN");
    check_trace(&order, &states, &sb.dir.join("b"), &format!("{}-h", sb.id));
    // minirun's `start` returns once the exec happened, so the order is exact.
    assert_eq!(order[3..5], ["startContainer", "poststart"]);
    sb.assert_clean();
}

#[test]
fn the_hook_test_passes_with_runc_too() {
    let which = std::process::Command::new("which")
        .arg("runc")
        .output()
        .unwrap();
    assert!(
        which.status.success(),
        "runc is the reference for this test: apt-get install runc"
    );
    let sb = Sandbox::new("hooksrunc");
    let (order, states) = hook_trace(&sb, "$RUNC");
    check_trace(&order, &states, &sb.dir.join("b"), &format!("{}-h", sb.id));
}

#[test]
fn a_failing_create_runtime_hook_destroys_the_container() {
    let sb = Sandbox::new("hookfail");
    let b = sb.bundle("b", &["/bin/true"], |c| {
        c["hooks"] = json!({"createRuntime": [
            {"path": "/bin/true"},
            {"path": "/bin/sh", "args": ["sh", "-c", "echo boom >&2; exit 3"]}
        ]});
    });
    let out = sb.run(&format!(
        "$MINIRUN create --bundle {} $ID; echo rc=$?; ls $ROOT; ps -e -o comm= | grep -c minirun",
        b.display()
    ));
    assert!(out.stdout.starts_with("rc=1\n"), "{out:?}");
    assert!(out.stdout.ends_with("\n0\n"), "no process left: {out:?}");
    assert!(
        out.stderr
            .contains("error running createRuntime hook #1 (/bin/sh): exit status 3"),
        "{out:?}"
    );
    assert!(out.stderr.contains("boom"), "{out:?}");
    sb.assert_clean();
    assert!(cgroup_exists(&sb.id).is_none(), "cgroup left behind");
}

/// `run` releases its init through the channel it created it with, `start`
/// through start.sock: either way the starter hears why the process was not
/// exec'd, exits non-zero, and nothing is left.
#[test]
fn a_failing_start_container_hook_is_reported_by_run_and_by_start() {
    let sb = Sandbox::new("startfail");
    let b = sb.bundle("b", &["/bin/true"], |c| {
        c["hooks"] = json!({"startContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", "echo startboom >&2; exit 4"]}
        ]});
    });
    let out = sb.run(&format!(
        "$MINIRUN run --bundle {b} $ID; echo rc=$?; ls $ROOT; ps -e -o comm= | grep -c minirun
         $MINIRUN create --bundle {b} $ID-2 2>$T/init-stderr || exit 9
         $MINIRUN start $ID-2; echo rc=$?
         echo init: $(cat $T/init-stderr)
         $MINIRUN delete --force $ID-2",
        b = b.display()
    ));
    assert!(out.stdout.starts_with("rc=1\n0\nrc=1\n"), "{out:?}");
    // Once from `run`, once from `start`; and the init of the second, its
    // `create` gone, on the container's stderr (`create` handed it its own).
    let reported = "minirun: error running startContainer hook #0 (/bin/sh): exit status 4";
    assert_eq!(out.stderr.matches(reported).count(), 2, "{out:?}");
    assert!(
        out.field("init")
            .starts_with("minirun init: error running startContainer hook #0"),
        "{out:?}"
    );
    assert!(out.stderr.contains("startboom"), "{out:?}");
    sb.assert_clean();
    assert!(cgroup_exists(&sb.id).is_none(), "cgroup left behind");
}

#[test]
fn a_hook_past_its_timeout_is_killed_and_reported() {
    let sb = Sandbox::new("hooktimeout");
    let b = sb.bundle("b", &["/bin/true"], |c| {
        c["hooks"] = json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    });
    let started = std::time::Instant::now();
    let out = sb.run(&format!("$MINIRUN run --bundle {} $ID", b.display()));
    assert_ne!(out.code, 0);
    assert!(started.elapsed().as_secs() < 20);
    assert!(
        out.stderr
            .contains("error running prestart hook #0 (/bin/sleep): timed out after 1s"),
        "{out:?}"
    );
    sb.assert_clean();
}

#[test]
fn poststop_runs_after_the_bundle_is_gone_and_its_failure_is_a_warning() {
    let sb = Sandbox::new("poststop");
    let marker = sb.dir.join("poststop-ran");
    let b = sb.bundle("b", &["/bin/sleep", "100"], |c| {
        c["hooks"] = json!({"poststop": [
            {"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", marker.display())]},
            {"path": "/bin/false"}
        ]});
    });
    let out = sb.run(&format!(
        "$MINIRUN create --bundle {b} $ID && rm -rf {b} && $MINIRUN delete --force $ID; echo rc=$?",
        b = b.display()
    ));
    assert!(out.stdout.contains("rc=0"), "{out:?}");
    assert!(out.stderr.contains("poststop hook #1"), "{out:?}");
    let state: Value = serde_json::from_slice(&std::fs::read(&marker).unwrap()).unwrap();
    assert_eq!(state["status"], "stopped");
    assert_eq!(state["id"], sb.id.as_str());
    sb.assert_clean();
}

/// A foreground `run` blocks the signals it forwards before its create (a
/// container may exit before the create returns), but its init takes the
/// caller's mask back at once: its set-up can be interrupted, and nothing
/// pending waits for its exec. A prestart hook reads the init's mask.
#[test]
fn a_foreground_runs_init_sets_up_with_the_callers_signal_mask() {
    let sb = Sandbox::new("sigmask");
    let out = sb.dir.join("sigblk");
    let hook = format!(
        r#"pid=$(sed 's/.*"pid": *\([0-9]*\).*/\1/'); grep -E '^Sig(Blk|Pnd)' /proc/$pid/status > {o}; grep SigBlk /proc/$PPID/status >> {o}"#,
        o = out.display()
    );
    let b = sb.bundle("b", &["/bin/true"], |c| {
        c["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", hook], "env": ["PATH=/usr/bin:/bin"]}]});
    });
    sb.run(&format!("$MINIRUN run --bundle {} $ID", b.display()))
        .ok();
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], "SigPnd:\t0000000000000000", "{text}");
    assert_eq!(lines[1], "SigBlk:\t0000000000000000", "the init's: {text}");
    // The hook's parent, the runtime, does block them (SIGCHLD, 17: bit 16).
    let runtime = u64::from_str_radix(lines[2].trim_start_matches("SigBlk:\t"), 16).unwrap();
    assert_ne!(runtime & (1 << 16), 0, "{text}");
    sb.assert_clean();
}
