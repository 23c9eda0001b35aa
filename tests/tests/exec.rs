//! `exec`: a process in a running container's namespaces and cgroup.

use minirun_tests::Sandbox;
use serde_json::json;

#[test]
fn exec_joins_the_container() {
    let sb = Sandbox::new("exec");
    let b = sb.bundle("b", &["/bin/sleep", "100"], |c| {
        c["hostname"] = json!("exec-box")
    });
    let out = sb.run(&format!(
        r#"
        $MINIRUN run -d --bundle {} $ID || exit 1
        init=$($MINIRUN state $ID | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
        $MINIRUN exec $ID /bin/sh -c 'hostname; echo pid=$$; readlink /proc/self/ns/mnt; readlink /proc/self/ns/net' > $T/in.txt
        echo rc=$?
        for n in mnt net; do echo init-$n=$(readlink /proc/$init/ns/$n); done
        $MINIRUN exec $ID /bin/sh -c 'cat /proc/self/cgroup | grep memory'
        $MINIRUN exec $ID /bin/sh -c 'exit 7'; echo rc=$?
        $MINIRUN exec --user 1000:1001 -g 5 --env FOO=bar --cwd /tmp $ID /bin/sh -c 'id; echo $FOO; pwd'
        $MINIRUN exec --cap CAP_SYS_ADMIN --cap CAP_NOT_A_CAP $ID /bin/grep CapEff /proc/self/status
        $MINIRUN exec -d --pid-file $T/exec.pid $ID /bin/sleep 100; echo rc=$?
        [ -s $T/exec.pid ] && kill -0 $(cat $T/exec.pid) && echo exec-pid-alive
        $MINIRUN exec $ID /not.here; echo rc=$?
        $MINIRUN delete -f $ID
        "#,
        b.display()
    ));
    let inside = std::fs::read_to_string(sb.dir.join("in.txt")).unwrap_or_default();
    assert!(out.stdout.starts_with("rc=0\n"), "{out:?}");
    let lines: Vec<&str> = inside.lines().collect();
    assert_eq!(lines[0], "exec-box", "{inside}");
    assert!(
        lines[1].starts_with("pid=") && lines[1] != "pid=1",
        "{inside}"
    );
    let init_ns: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .filter(|(k, _)| k.starts_with("init-"))
                .map(|(_, v)| v)
        })
        .collect();
    assert_eq!(
        &lines[2..4],
        &init_ns[..],
        "same mount and network namespaces as the init"
    );
    assert!(
        out.stdout.contains(":memory:/\n"),
        "in the container's cgroup (namespace root): {out:?}"
    );
    assert!(out.stdout.contains("rc=7\n"), "{out:?}");
    assert!(
        out.stdout
            .contains("uid=1000 gid=1001 groups=5(tty)\nbar\n/tmp\nCapEff:\t0000000020202420\n"),
        "{out:?}"
    );
    assert!(out.stdout.contains("exec-pid-alive"), "{out:?}");
    assert!(out.stdout.ends_with("rc=1\n"), "{out:?}");
    assert!(
        out.stderr
            .contains("\"/not.here\": stat /not.here: no such file or directory"),
        "{out:?}"
    );
    sb.assert_clean();
}

#[test]
fn exec_with_a_process_file_and_a_terminal() {
    let sb = Sandbox::new("execproc");
    let b = sb.bundle("b", &["/bin/sleep", "100"], |_| {});
    std::fs::write(
        sb.dir.join("process.json"),
        json!({"args": ["/bin/sh", "-c", "tty; id -G"], "cwd": "/", "user": {"uid": 0, "gid": 0, "additionalGids": [432]}, "env": ["PATH=/bin"], "terminal": true}).to_string(),
    )
    .unwrap();
    let out = sb.run(&format!(
        "$MINIRUN run -d --bundle {} $ID && $MINIRUN exec --process $T/process.json $ID < /dev/null; echo rc=$?; $MINIRUN delete -f $ID",
        b.display()
    ));
    assert!(out.stdout.contains("/dev/pts/0"), "{out:?}");
    assert!(out.stdout.contains("0 432"), "{out:?}");
    assert!(out.stdout.contains("rc=0"), "{out:?}");
}
