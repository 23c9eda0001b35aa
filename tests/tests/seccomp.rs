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

/// A seccomp agent: takes the listener from minirun, records the message it
/// came with, and answers every notified syscall with ENOSPC.
const AGENT: &str = r#"
import array, fcntl, json, os, select, socket, struct, sys
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(sys.argv[1]); srv.listen(4)
open(sys.argv[1] + ".up", "w").close()
for n in range(int(sys.argv[3])):
    conn, _ = srv.accept()
    fds = array.array("i")
    msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_LEN(4))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:4])
    with open("%s.%d" % (sys.argv[2], n), "w") as f:
        json.dump({"message": json.loads(msg), "fds": len(fds)}, f)
    if os.fork() == 0:
        fd = fds[0]
        while select.select([fd], [], [], 20)[0]:
            req = bytearray(80)
            try:
                fcntl.ioctl(fd, 0xC0502100, req)  # SECCOMP_IOCTL_NOTIF_RECV
            except OSError:
                break
            (ident,) = struct.unpack_from("Q", req)
            fcntl.ioctl(fd, 0xC0182101, bytearray(struct.pack("QqiI", ident, 0, -28, 0)))
        os._exit(0)
"#;

#[test]
fn notified_syscalls_are_answered_by_the_agent_on_listener_path() {
    let sb = Sandbox::new("seccomp-agent");
    let b = sb.bundle(
        "b",
        &["/bin/sh", "-c", "mkdir /made 2>&1; exec sleep 100"],
        |c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": sb.dir.join("agent.sock"),
                "listenerMetadata": "the-metadata",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
            });
        },
    );
    std::fs::write(sb.dir.join("agent.py"), AGENT).unwrap();
    let out = sb.run(&format!(
        r#"
        python3 $T/agent.py $T/agent.sock $T/got 2 & agent=$!
        for i in $(seq 100); do [ -e $T/agent.sock.up ] && break; sleep 0.05; done
        $MINIRUN run -d --bundle {} $ID > $T/init.txt || exit 1
        $MINIRUN exec $ID /bin/sh -c 'mkdir /again 2>&1; ls -d /made /again 2>&1 | grep -c "No such"'
        sleep 0.2
        echo init: $(cat $T/init.txt)
        $MINIRUN delete -f $ID
        wait $agent
        "#,
        b.display()
    ));
    out.ok();
    assert!(
        out.stdout
            .starts_with("mkdir: can't create directory '/again': No space left on device\n2\n"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("init: mkdir: can't create directory '/made': No space left on device"),
        "{out:?}"
    );
    for (n, status) in [(0, "creating"), (1, "running")] {
        let got: Value =
            serde_json::from_slice(&std::fs::read(sb.dir.join(format!("got.{n}"))).unwrap())
                .unwrap();
        assert_eq!(got["fds"], 1, "{got}");
        let m = &got["message"];
        assert_eq!(m["ociVersion"], "0.2.0", "{got}");
        assert_eq!(m["fds"], json!(["seccompFd"]), "{got}");
        assert_eq!(m["metadata"], "the-metadata", "{got}");
        assert_eq!(m["state"]["id"], sb.id.as_str(), "{got}");
        assert_eq!(m["state"]["status"], status, "{got}");
        assert!(m["pid"].as_i64().unwrap() > 0, "{got}");
    }
    sb.assert_clean();
}

#[test]
fn notify_without_an_agent_is_refused_before_anything_exists() {
    let sb = Sandbox::new("seccomp-noagent");
    let profile = |listener: Option<&str>| {
        let mut p = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        });
        if let Some(l) = listener {
            p["listenerPath"] = json!(l);
        }
        p
    };
    let none = sb.bundle("none", &["/bin/true"], |c| {
        c["linux"]["seccomp"] = profile(None)
    });
    let gone = sb.bundle("gone", &["/bin/true"], |c| {
        c["linux"]["seccomp"] = profile(Some("/nonexistent/agent.sock"))
    });
    let out = sb.run(&format!(
        "$MINIRUN run --bundle {} $ID; echo rc=$?; $MINIRUN run --bundle {} $ID; echo rc=$?",
        none.display(),
        gone.display()
    ));
    assert_eq!(out.stdout, "rc=1\nrc=1\n", "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines[0],
        "minirun: linux.seccomp.listenerPath: SCMP_ACT_NOTIFY needs a listener: the path of the seccomp agent's socket",
        "{out:?}"
    );
    assert!(
        lines[1].starts_with(
            "minirun: linux.seccomp.listenerPath: connecting to /nonexistent/agent.sock:"
        ),
        "{out:?}"
    );
    assert_eq!(lines.len(), 2, "{out:?}");
    sb.assert_clean();
}
