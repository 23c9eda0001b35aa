//! The container's cgroup: linux.resources applied, removed by delete.

use minirun_tests::{cgroup_exists, Sandbox};
use serde_json::json;

#[test]
fn resources_are_applied() {
    let sb = Sandbox::new("resources");
    let b = sb.bundle(
        "b",
        &["/bin/sh", "-c", "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares; head -c1 /dev/full >/dev/null 2>&1 && echo full-ok; (echo x > /dev/loop-like) 2>&1 | grep -o 'Operation not permitted'"],
        |c| {
            c["linux"]["resources"] = json!({
                "pids": {"limit": 42},
                "memory": {"limit": 67108864},
                "cpu": {"shares": 256},
                "devices": [{"allow": false, "access": "rwm"}]
            });
            // a node the config makes but the device rules do not allow
            c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/dev/loop-like", "type": "bind", "source": "/dev/loop-control", "options": ["bind"]}));
        },
    );
    let out = sb.run(&format!(
        "[ -e /dev/loop-control ] || exit 77; $MINIRUN run --bundle {} $ID",
        b.display()
    ));
    if out.code == 77 {
        eprintln!("no /dev/loop-control on this machine");
        return;
    }
    out.ok();
    assert_eq!(
        out.stdout, "42\n67108864\n256\nfull-ok\nOperation not permitted\n",
        "{out:?}"
    );
    assert!(cgroup_exists(&sb.id).is_none(), "cgroup removed after run");
}

#[test]
fn unified_resources_are_refused_on_a_v1_host() {
    let sb = Sandbox::new("unified");
    let b = sb.bundle("b", &["/bin/true"], |c| {
        c["linux"]["resources"] = json!({"unified": {"memory.high": "1000000"}});
    });
    let out = sb.run(&format!(
        "[ -d /sys/fs/cgroup/memory ] || exit 77; $MINIRUN run --bundle {} $ID",
        b.display()
    ));
    if out.code == 77 {
        return;
    }
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("linux.resources.unified needs cgroup v2"),
        "{out:?}"
    );
    sb.assert_clean();
    assert!(cgroup_exists(&sb.id).is_none(), "cgroup left behind");
}

#[test]
fn a_shared_parent_cgroup_is_removed_by_its_maker_only_when_empty() {
    let sb = Sandbox::new("cgparent");
    let parent = format!("minirun-test-{}", sb.id);
    let bundle = |name: &str| {
        let path = format!("/{parent}/{name}");
        sb.bundle(name, &["/bin/sleep", "100"], move |c| {
            c["linux"]["cgroupsPath"] = json!(path);
        })
    };
    let (a, b) = (bundle("a"), bundle("b"));
    // a makes the parent; deleting a while b lives in it must not fail or wait,
    // and deleting a last removes it.
    let out = sb.run(&format!(
        r#"
        $MINIRUN create --bundle {a} $ID-a && $MINIRUN create --bundle {b} $ID-b || exit 1
        $MINIRUN delete -f $ID-b; echo b=$?
        $MINIRUN delete -f $ID-a; echo a=$?
        find /sys/fs/cgroup -maxdepth 6 -name {parent} | grep -q . && echo parent-left
        $MINIRUN create --bundle {a} $ID-a && $MINIRUN create --bundle {b} $ID-b || exit 1
        $MINIRUN delete -f $ID-a; echo a=$?
        $MINIRUN state $ID-b | grep -q created && echo b-alive
        $MINIRUN delete -f $ID-b; echo b=$?
        "#,
        a = a.display(),
        b = b.display(),
    ));
    assert_eq!(out.stdout, "b=0\na=0\na=0\nb-alive\nb=0\n", "{out:?}");
    sb.assert_clean();
    // As with runc, a parent that was busy when its maker left is not removed by
    // a container that found it there.
    let left = cgroup_exists(&parent);
    for dir in left.iter().flat_map(|_| {
        std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .filter_map(|h| Some(h.ok()?.path().join(&parent)))
    }) {
        let _ = std::fs::remove_dir(dir);
    }
    assert!(left.is_some());
}

#[test]
fn pause_resume_update_and_ps() {
    let sb = Sandbox::new("pause");
    let b = sb.bundle("b", &["/bin/sh", "-c", "sleep 100 & exec sleep 100"], |c| {
        c["linux"]["resources"] = json!({"pids": {"limit": 42}});
    });
    let out = sb.run(&format!(
        r#"
        [ -d /sys/fs/cgroup/memory ] || exit 77
        $MINIRUN run -d --bundle {} $ID || exit 1
        st() {{ $MINIRUN state $ID | sed -n 's/.*"status": "\(.*\)".*/\1/p'; }}
        $MINIRUN pause $ID; echo "paused: $? $(st)"
        $MINIRUN pause $ID 2>&1; echo "again: $?"
        $MINIRUN resume $ID; echo "resumed: $? $(st)"
        $MINIRUN resume $ID 2>&1; echo "again: $?"
        echo '{{"cpu": {{"shares": 512}}}}' > $T/res.json
        $MINIRUN update --resources $T/res.json --memory 104857600 --pids-limit 50 $ID; echo "update: $?"
        cg=$(cat /proc/$($MINIRUN state $ID | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')/cgroup)
        for f in cpu/cpu.shares memory/memory.limit_in_bytes pids/pids.max; do
            c=${{f%%/*}}; p=$(echo "$cg" | grep -E "^[0-9]+:([^:]*,)?$c(,[^:]*)?:" | cut -d: -f3)
            echo "$f=$(cat /sys/fs/cgroup/$c$p/${{f#*/}})"
        done
        echo "pids: $($MINIRUN ps -f json $ID | tr -cd '0-9,' | tr ',' '\n' | grep -c .)"
        echo "table: $($MINIRUN ps $ID | grep -c 'sleep 100')"
        $MINIRUN pause $ID; $MINIRUN delete -f $ID; echo "delete paused: $?"
        "#,
        b.display()
    ));
    if out.code == 77 {
        return;
    }
    assert_eq!(
        out.stdout,
        format!(
            "paused: 0 paused\nminirun: cannot pause container {id}: it is paused\nagain: 1\nresumed: 0 running\nminirun: cannot resume container {id}: it is running\nagain: 1\nupdate: 0\ncpu/cpu.shares=512\nmemory/memory.limit_in_bytes=104857600\npids/pids.max=50\npids: 2\ntable: 2\ndelete paused: 0\n",
            id = sb.id
        ),
        "{out:?}"
    );
    sb.assert_clean();
    assert!(cgroup_exists(&sb.id).is_none(), "cgroup left behind");
}

#[test]
fn systemd_cgroup_paths_are_placed_where_systemd_puts_them() {
    let sb = Sandbox::new("sdcg");
    let slice = format!("mrtest{}", std::process::id());
    let b = sb.bundle("b", &["/bin/sleep", "100"], |c| {
        c["linux"]["cgroupsPath"] = json!(format!("{slice}-a.slice:mr:{}", sb.id));
    });
    let out = sb.run(&format!(
        "$MINIRUN --systemd-cgroup create --bundle {b} $ID || exit 1
         cat /proc/$($MINIRUN state $ID | grep -o '\"pid\": *[0-9]*' | grep -o '[0-9]*$')/cgroup | grep memory
         $MINIRUN delete -f $ID
         find /sys/fs/cgroup -maxdepth 4 -name '{slice}*' | grep -q . && echo slice-left
         echo bad; $MINIRUN --systemd-cgroup create --bundle {bad} $ID-bad",
        b = b.display(),
        bad = sb.bundle("bad", &["/bin/true"], |c| c["linux"]["cgroupsPath"] = json!("/not/systemd")).display(),
    ));
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "memory:/{slice}.slice/{slice}-a.slice/mr-{}.scope",
            sb.id
        )),
        "{out:?}"
    );
    assert!(!out.stdout.contains("slice-left"), "{out:?}");
    assert!(
        out.stderr.contains("linux.cgroupsPath") && out.stderr.contains("slice:prefix:name"),
        "{out:?}"
    );
    sb.assert_clean();
}

#[test]
fn device_rules_on_cgroup_v2_are_an_ebpf_program() {
    let sb = Sandbox::new("v2dev");
    let b = sb.bundle(
        "b",
        &["/bin/sh", "-c", "echo x > /dev/null && echo null-ok; head -c1 /dev/full >/dev/null && echo full-ok; (echo x > /dev/loop-like) 2>&1 | grep -o 'Operation not permitted'; cat /sys/fs/cgroup/cgroup.type"],
        |c| {
            c["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
            c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/dev/loop-like", "type": "bind", "source": "/dev/loop-control", "options": ["bind"]}));
        },
    );
    // The template's config denies every device but the defaults; the
    // sandbox sees cgroup v2 alone, as a pure v2 host does (the hybrid
    // host's v2 half has no controllers, which device programs do not need).
    let out = sb.run(&format!(
        "[ -e /dev/loop-control ] || exit 77
         umount -R /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup || exit 78
         $MINIRUN run --bundle {b} $ID || exit 1
         find /sys/fs/cgroup -name $ID | grep -q . && echo cgroup-left
         # Rules are fixed at create on v2: a change is refused, not ignored.
         $MINIRUN create --bundle {b} $ID-u || exit 2
         echo '{{\"devices\":[{{\"allow\":true,\"access\":\"rwm\"}}]}}' | $MINIRUN update -r - $ID-u; echo update=$?
         $MINIRUN delete -f $ID-u
         # A cgroup minirun did not make keeps no program of a deleted
         # container: the next one there, without rules, may use the device.
         $MINIRUN run --bundle {free} $ID-p0 | sed 's/^/baseline: /'
         mkdir /sys/fs/cgroup/$ID-pre
         $MINIRUN run --bundle {pre} $ID-p1 >/dev/null || exit 3
         $MINIRUN run --bundle {free} $ID-p2 | sed 's/^/after: /'
         rmdir /sys/fs/cgroup/$ID-pre",
        b = b.display(),
        pre = sb.bundle("pre", &["/bin/true"], |c| {
            c["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
            c["linux"]["cgroupsPath"] = json!(format!("/{}-pre", sb.id));
        }).display(),
        free = sb.bundle("free", &["/bin/sh", "-c", "(exec 3<>/dev/loop-like) 2>/dev/null && echo open-ok || echo denied"], |c| {
            c["linux"]["resources"] = json!({"devices": []});
            c["linux"]["cgroupsPath"] = json!(format!("/{}-pre", sb.id));
            c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/dev/loop-like", "type": "bind", "source": "/dev/loop-control", "options": ["bind"]}));
        }).display(),
    ));
    if out.code == 77 {
        eprintln!("no /dev/loop-control on this machine");
        return;
    }
    out.ok();
    assert_eq!(
        out.stdout, "null-ok\nfull-ok\nOperation not permitted\ndomain\nupdate=1\nbaseline: open-ok\nafter: open-ok\n",
        "{out:?}"
    );
    assert!(
        out.stderr.contains(
            "linux.resources.devices: the device rules of a cgroup v2 container are fixed at create"
        ),
        "{out:?}"
    );
    sb.assert_clean();
}
