//! linux.seccomp: loaded and enforced for the init and for exec'd processes,
//! with and without no_new_privs; podman's default profile loads.

use minirun_tests::{repo_dir, Sandbox};
use serde_json::{json, Value};

const SHOW: &str = "grep Seccomp: /proc/self/status; mkdir /tmp/blocked 2>&1 || true";

fn deny_mkdir() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    })
}

#[test]
fn a_profile_is_enforced_with_and_without_no_new_privileges() {
    for nnp in [false, true] {
        let sb = Sandbox::new(&format!("seccomp-{nnp}"));
        let b = sb.bundle(
            "b",
            &["/bin/sh", "-c", &format!("{SHOW}; exec sleep 100")],
            |c| {
                c["linux"]["seccomp"] = deny_mkdir();
                c["process"]["noNewPrivileges"] = json!(nnp);
            },
        );
        let out = sb.run(&format!(
            r#"
            $MINIRUN run -d --bundle {} $ID > $T/init.txt || exit 1
            sleep 0.2
            $MINIRUN exec $ID /bin/sh -c '{SHOW}'
            $MINIRUN delete -f $ID
            "#,
            b.display()
        ));
        let init = std::fs::read_to_string(sb.dir.join("init.txt")).unwrap_or_default();
        let want =
            "Seccomp:\t2\nmkdir: can't create directory '/tmp/blocked': Operation not permitted\n";
        assert_eq!(init, want, "init, nnp={nnp}: {out:?}");
        assert_eq!(out.stdout, want, "exec, nnp={nnp}: {out:?}");
        sb.assert_clean();
    }
}

#[test]
fn podmans_default_profile_loads_and_is_enforced() {
    let sb = Sandbox::new("seccomp-podman");
    let mut profile: Value = serde_json::from_slice(
        &std::fs::read(repo_dir().join("tests/data/podman-4.3-seccomp.json")).unwrap(),
    )
    .unwrap();
    // Take mkdir out of its allow list: it then meets the profile's default
    // action, ENOSYS (defaultErrnoRet 38). Everything else the shell needs
    // stays allowed by podman's own rules.
    for rule in profile["syscalls"].as_array_mut().unwrap() {
        if let Some(names) = rule["names"].as_array_mut() {
            names.retain(|n| n != "mkdir" && n != "mkdirat");
        }
    }
    let b = sb.bundle(
        "b",
        &[
            "/bin/sh",
            "-c",
            "grep Seccomp: /proc/self/status; mkdir /tmp/x 2>&1; echo ok",
        ],
        |c| c["linux"]["seccomp"] = profile,
    );
    let out = sb.run(&format!("$MINIRUN run --bundle {} $ID", b.display()));
    out.ok();
    assert!(out.stdout.starts_with("Seccomp:\t2\n"), "{out:?}");
    assert!(out.stdout.contains("Function not implemented"), "{out:?}");
    assert!(out.stdout.ends_with("ok\n"), "{out:?}");
    sb.assert_clean();
}

#[test]
fn an_unsupported_action_is_refused_before_anything_exists() {
    let sb = Sandbox::new("seccomp-notify");
    let b = sb.bundle("b", &["/bin/true"], |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/agent.sock",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    let out = sb.run(&format!("$MINIRUN run --bundle {} $ID", b.display()));
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        out.stderr,
        "minirun: linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY (a seccomp agent on listenerPath) is not supported\n"
    );
    sb.assert_clean();
}
