//! process.*: user, capabilities, rlimits, noNewPrivileges, umask, env, cwd,
//! oomScoreAdj, terminal, preserved fds.

use minirun_tests::Sandbox;
use serde_json::json;

fn run_in(
    sb: &Sandbox,
    args: &[&str],
    edit: impl FnOnce(&mut serde_json::Value),
) -> minirun_tests::Output {
    let b = sb.bundle("b", args, edit);
    sb.run(&format!("$MINIRUN run --bundle {} $ID", b.display()))
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} not in {status}"))
        .trim()
        .to_string()
}

#[test]
fn capabilities_and_no_new_privileges() {
    let sb = Sandbox::new("caps");
    let out = run_in(&sb, &["/bin/cat", "/proc/self/status"], |c| {
        let caps = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        c["process"]["capabilities"] = json!({
            "bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps, "ambient": ["CAP_KILL"]
        });
        c["process"]["noNewPrivileges"] = json!(true);
    });
    out.ok();
    // CAP_KILL = 5, CAP_NET_BIND_SERVICE = 10
    let want = format!("{:016x}", (1u64 << 5) | (1u64 << 10));
    for key in ["CapEff", "CapPrm", "CapBnd", "CapInh"] {
        assert_eq!(status_field(&out.stdout, key), want, "{key}");
    }
    assert_eq!(
        status_field(&out.stdout, "CapAmb"),
        format!("{:016x}", 1u64 << 5)
    );
    assert_eq!(status_field(&out.stdout, "NoNewPrivs"), "1");
    sb.assert_clean();
}

#[test]
fn user_groups_umask_cwd_env() {
    let sb = Sandbox::new("user");
    let out = run_in(
        &sb,
        &[
            "/bin/sh",
            "-c",
            "id -u; id -g; id -G; umask; pwd; echo $FOO; echo $HOME",
        ],
        |c| {
            c["process"]["user"] =
                json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 1002], "umask": 63});
            c["process"]["cwd"] = json!("/tmp");
            c["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
        },
    );
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "1000",
            "1001",
            "1001 5 1002",
            "0077",
            "/tmp",
            "bar baz",
            "/"
        ],
        "{out:?}"
    );
}

#[test]
fn home_comes_from_passwd_when_env_lacks_it() {
    let sb = Sandbox::new("home");
    let out = run_in(&sb, &["/bin/sh", "-c", "echo $HOME"], |_| {});
    assert_eq!(out.ok().stdout, "/root\n");
}

#[test]
fn rlimits_and_oom_score_adj() {
    let sb = Sandbox::new("rlimits");
    let out = run_in(
        &sb,
        &[
            "/bin/sh",
            "-c",
            "ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj",
        ],
        |c| {
            c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}]);
            c["process"]["oomScoreAdj"] = json!(123);
        },
    );
    assert_eq!(out.ok().stdout, "321\n654\n123\n");
}

#[test]
fn preserved_fds_pass_and_others_do_not_leak() {
    let sb = Sandbox::new("fds");
    let b = sb.bundle(
        "b",
        &[
            "/bin/sh",
            "-c",
            // busybox sh runs some applets in-process and saves fds around their
            // redirections, so the list comes from an exec'd ls: its own
            // directory fd is the 4.
            "cat <&3; exec ls /proc/self/fd",
        ],
        |_| {},
    );
    let out = sb.run(&format!(
        r#"
        echo from-fd-3 > $T/three
        exec 3<$T/three 4<$T/three 5<$T/three
        $MINIRUN run --preserve-fds 1 --bundle {} $ID
        "#,
        b.display()
    ));
    out.ok();
    // fd 3 is passed; 4 and 5 (not preserved) and the runtime's own fds are not.
    assert_eq!(out.stdout, "from-fd-3\n0\n1\n2\n3\n4\n", "{out:?}");
}

/// MINIRUN_TRACE: the runtime's and the init's phases in one file, and the
/// file's descriptor kept from the container even where it took a number in
/// the --preserve-fds range (fd 4 closed: a hole the trace file fills).
#[test]
fn the_trace_has_the_runtime_and_init_phases_and_stays_out_of_the_container() {
    let sb = Sandbox::new("trace");
    let b = sb.bundle("b", &["/bin/sh", "-c", "exec ls /proc/self/fd"], |_| {});
    let out = sb.run(&format!(
        r#"
        exec 3</dev/null 4<&- 5</dev/null
        MINIRUN_TRACE=$T/trace $MINIRUN run --preserve-fds 3 --bundle {} $ID
        echo "--"
        cat $T/trace
        "#,
        b.display()
    ));
    out.ok();
    let (fds, trace) = out.stdout.split_once("--\n").expect("separator");
    // 3 and 5 are passed, 4 is the hole (ls's own directory fd takes it).
    assert_eq!(fds, "0\n1\n2\n3\n4\n5\n", "{out:?}");
    let lines: Vec<(u64, &str, &str)> = trace
        .lines()
        .map(|l| {
            let mut f = l.splitn(3, ' ');
            let at = f.next().and_then(|t| t.parse().ok()).expect("time");
            (at, f.next().expect("pid"), f.next().expect("phase"))
        })
        .collect();
    let phase = |name: &str| {
        lines
            .iter()
            .find(|l| l.2 == name)
            .unwrap_or_else(|| panic!("{name}: {trace}"))
    };
    let (main_at, runtime, _) = *phase("main");
    let (started_at, init, _) = *phase("init: started");
    let (deleted_at, after, _) = *phase("deleted");
    assert_ne!(runtime, init, "the init writes as itself: {trace}");
    assert_eq!(
        runtime, after,
        "the same process before and after the re-exec: {trace}"
    );
    assert!(main_at < started_at && started_at < deleted_at, "{trace}");
    for name in [
        "parsed",
        "bundle loaded",
        "cloned",
        "init ready",
        "exec seen",
        "exited",
    ] {
        phase(name);
    }
}

#[test]
fn terminal_goes_to_the_console_socket() {
    let sb = Sandbox::new("tty");
    let b = sb.bundle("b", &["/bin/sh", "-c", "tty; stty size"], |c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    });
    // A console socket receiver: takes the pty master and copies what it reads.
    let receiver = r#"
import array, os, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(path); s.listen(1)
print("listening", flush=True)
conn, _ = s.accept()
msg, fds, _, _ = socket.recv_fds(conn, 1024, 1)
out = open(sys.argv[2], "w")
out.write("name=%s\n" % msg.decode())
data = b""
while True:
    try:
        chunk = os.read(fds[0], 4096)
    except OSError:
        break
    if not chunk:
        break
    data += chunk
out.write(data.decode().replace("\r", ""))
"#;
    std::fs::write(sb.dir.join("recv.py"), receiver).unwrap();
    let out = sb.run(&format!(
        r#"
        python3 $T/recv.py $T/console.sock $T/console.out > $T/recv.log &
        recv=$!
        for i in $(seq 100); do [ -S $T/console.sock ] && break; sleep 0.02; done
        $MINIRUN run --console-socket $T/console.sock --bundle {} $ID; echo rc=$?
        wait $recv
        cat $T/console.out
        "#,
        b.display()
    ));
    assert!(out.stdout.contains("rc=0"), "{out:?}");
    assert!(out.stdout.contains("name=/dev/pts/"), "{out:?}");
    assert!(out.stdout.contains("\n/dev/pts/0\n33 101\n"), "{out:?}");
    sb.assert_clean();
}

#[test]
fn the_runtime_binary_is_out_of_a_containers_reach() {
    // CVE-2019-5736: the init runs the runtime's code inside the container
    // until it execs; what /proc/<init>/exe reaches must not be writable, also
    // through a descriptor kept until the binary no longer runs.
    let sb = Sandbox::new("sealed");
    let b = sb.bundle("b", &["/bin/true"], |_| {});
    let out = sb.run(&format!(
        r#"
        $MINIRUN create --bundle {} $ID || exit 1
        pid=$($MINIRUN state $ID | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
        [ "$(readlink /proc/$pid/exe)" != "$(readlink -f $MINIRUN_BIN)" ] && echo not-the-host-path
        cmp -s /proc/$pid/exe $MINIRUN_BIN && echo same-content
        # The attack keeps a descriptor and writes once the binary no longer
        # runs. (Whether a write fails with ETXTBSY first depends on other
        # minirun processes running: the read-only mount is what holds.)
        exec 9< /proc/$pid/exe
        $MINIRUN start $ID
        for i in $(seq 100); do $MINIRUN state $ID | grep -q stopped && break; sleep 0.02; done
        python3 -c 'import os; print("read-only" if os.statvfs("/proc/self/fd/9").f_flag & os.ST_RDONLY else "writable")'
        $MINIRUN delete -f $ID
        "#,
        b.display()
    ));
    assert_eq!(
        out.stdout, "not-the-host-path\nsame-content\nread-only\n",
        "{out:?}"
    );
    sb.assert_clean();
}

#[test]
fn crun_extensions_config_regex_keep_groups_and_socket_activation() {
    let sb = Sandbox::new("crunext");
    let show = "grep Groups: /proc/self/status; echo \"listen=${LISTEN_FDS:-}/${LISTEN_PID:-}\"";
    let b = sb.bundle("b", &["/bin/sh", "-c", show], |c| {
        c["annotations"] = json!({"run.oci.keep_original_groups": "1"});
    });
    let mut alt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
    alt["process"]["args"] = json!(["/bin/echo", "from the other config"]);
    std::fs::create_dir_all(b.join("alt")).unwrap();
    std::fs::write(b.join("alt/other.json"), alt.to_string()).unwrap();
    let sleeper = sb.bundle("s", &["/bin/sleep", "100"], |_| {});
    let out = sb.run(&format!(
        r#"
        setpriv --groups 1,2,3 $MINIRUN run --bundle {b} $ID-groups
        LISTEN_FDS=1 $MINIRUN run --bundle {b} $ID-listen 3</dev/null | grep listen=
        $MINIRUN run --bundle {b} --config alt/other.json $ID-config
        $MINIRUN create --bundle {s} $ID-r1 && $MINIRUN create --bundle {s} $ID-r2 || exit 1
        $MINIRUN delete --force --regex "^$ID-r[0-9]$"; echo "regex rc=$?"
        $MINIRUN list -q | grep -c "^$ID-r" || true
        "#,
        b = b.display(),
        s = sleeper.display()
    ));
    assert_eq!(
        out.stdout, "Groups:\t1 2 3 \nlisten=/\nlisten=1/1\nfrom the other config\nregex rc=0\n0\n",
        "{out:?}"
    );
    sb.assert_clean();
}

#[test]
fn an_apparmor_profile_is_applied_or_refused_never_ignored() {
    let sb = Sandbox::new("apparmor");
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'));
    let out = run_in(&sb, &["/bin/cat", "/proc/self/attr/current"], |c| {
        c["process"]["apparmorProfile"] = json!("unconfined");
    });
    if enabled {
        out.ok();
        assert!(out.stdout.starts_with("unconfined"), "{out:?}");
    } else {
        assert_eq!(out.code, 1, "{out:?}");
        assert_eq!(
            out.stderr,
            "minirun: process.apparmorProfile: \"unconfined\": AppArmor is not enabled on this host\n"
        );
    }
    sb.assert_clean();
}

#[test]
fn an_selinux_label_without_selinux_is_dropped_with_a_warning() {
    if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        eprintln!("SELinux is enabled here: the label would be applied");
        return;
    }
    let sb = Sandbox::new("selinux");
    let out = run_in(&sb, &["/bin/echo", "ran"], |c| {
        c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    });
    out.ok();
    assert_eq!(out.stdout, "ran\n");
    assert!(
        out.stderr
            .contains("process.selinuxLabel \"system_u:system_r:container_t:s0\" ignored: SELinux is not enabled"),
        "{out:?}"
    );
    sb.assert_clean();
}
