//! linux.namespaces: new ones, joined ones, user namespace maps, hostname.

use minirun_tests::Sandbox;
use serde_json::json;

#[test]
fn new_namespaces_differ_from_the_host() {
    let sb = Sandbox::new("ns");
    let b = sb.bundle(
        "b",
        &["/bin/sh", "-c", "for n in pid net ipc uts mnt cgroup; do echo $n=$(readlink /proc/self/ns/$n); done; hostname; ip link show lo 2>/dev/null | head -1; cat /proc/sys/kernel/domainname"],
        |c| {
            c["hostname"] = json!("box1");
            c["domainname"] = json!("example.org");
        },
    );
    let out = sb.run(&format!(
        "for n in pid net ipc uts mnt cgroup; do echo host-$n=$(readlink /proc/self/ns/$n); done; $MINIRUN run --bundle {} $ID",
        b.display()
    ));
    out.ok();
    for n in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        let host = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("host-{n}=")))
            .unwrap();
        let ctr = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{n}=")))
            .unwrap();
        assert!(ctr.starts_with(&format!("{n}:[")), "{out:?}");
        assert_ne!(host, ctr, "{n} namespace is new");
    }
    assert!(out.stdout.contains("\nbox1\n"), "{out:?}");
    assert!(
        out.stdout.contains("LOOPBACK,UP"),
        "lo is up in a new network namespace: {out:?}"
    );
    assert!(out.stdout.ends_with("example.org\n"), "{out:?}");
}

#[test]
fn namespaces_given_by_path_are_joined() {
    let sb = Sandbox::new("nsjoin");
    let b = sb.bundle(
        "b",
        &[
            "/bin/sh",
            "-c",
            "readlink /proc/self/ns/net; readlink /proc/self/ns/uts",
        ],
        |c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "network" && n["type"] != "uts");
            ns.push(json!({"type": "network", "path": "/proc/NETPID/ns/net"}));
            ns.push(json!({"type": "uts", "path": "/proc/NETPID/ns/uts"}));
            c.as_object_mut().unwrap().remove("hostname");
        },
    );
    let out = sb.run(&format!(
        r#"
        unshare --net --uts sleep 100 & holder=$!
        sleep 0.2
        sed -i "s/NETPID/$holder/g" {b}/config.json
        echo want=$(readlink /proc/$holder/ns/net)
        echo want=$(readlink /proc/$holder/ns/uts)
        $MINIRUN run --bundle {b} $ID
        kill $holder
        "#,
        b = b.display()
    ));
    out.ok();
    let wants: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("want="))
        .collect();
    let got: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with("want="))
        .collect();
    assert_eq!(wants, got, "{out:?}");
}

#[test]
fn user_namespace_with_id_maps() {
    let sb = Sandbox::new("userns");
    let b = sb.bundle(
        "b",
        &[
            "/bin/sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u /",
        ],
        |c| {
            minirun_tests::user_namespace(c);
        },
    );
    let out = sb.run(&format!(
        "chown -R 100000:100000 {}/rootfs; $MINIRUN run --bundle {} $ID",
        b.display(),
        b.display()
    ));
    out.ok();
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "100000", "65536"], "{out:?}");
    assert_eq!(lines[1], ["0", "100000", "65536"], "{out:?}");
    assert_eq!(lines[2], ["0"], "root inside: {out:?}");
    assert_eq!(lines[3], ["0"], "the rootfs owned by mapped root: {out:?}");
}

#[test]
fn host_pid_namespace_sees_host_processes() {
    let sb = Sandbox::new("pidhost");
    let b = sb.bundle("b", &["/bin/sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"], |c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "pid");
        // /proc of the sandbox's pid namespace: the runtime cannot mount a
        // new proc for a namespace it is not in, so bind the sandbox's.
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| m["destination"] != "/proc");
        mounts.insert(0, json!({"destination": "/proc", "type": "bind", "source": "/proc", "options": ["rbind"]}));
    });
    let out = sb.run(&format!(
        "sleep 100 & $MINIRUN run --bundle {} $ID; kill %1",
        b.display()
    ));
    out.ok();
    let pid: i32 = out.stdout.lines().next().unwrap().parse().unwrap();
    assert!(pid > 1, "not pid 1 without a pid namespace: {out:?}");
}

#[test]
fn devices_of_a_user_namespace_are_made_with_their_owner() {
    let sb = Sandbox::new("userns-dev");
    let b = sb.bundle(
        "b",
        &[
            "/bin/sh",
            "-c",
            "stat -c '%u:%g %t:%T %a %F' /dev/foo /dev/bar",
        ],
        |c| {
            minirun_tests::user_namespace(c);
            // The host has no node at either path: the runtime makes them.
            c["linux"]["devices"] = json!([
                {"path": "/dev/foo", "type": "b", "major": 1, "minor": 5, "uid": 10, "gid": 11},
                {"path": "/dev/bar", "type": "c", "major": 1, "minor": 3, "fileMode": 384}
            ]);
        },
    );
    let out = sb.run(&format!(
        "chown -R 100000:100000 {b}/rootfs; $MINIRUN run --bundle {b} $ID; ls $ROOT",
        b = b.display()
    ));
    out.ok();
    assert_eq!(
        out.stdout, "10:11 1:5 666 block special file\n0:0 1:3 600 character special file\n",
        "{out:?}"
    );
}
