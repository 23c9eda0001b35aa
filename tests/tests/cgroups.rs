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
         # An update leaves the device rules as they are, as runc does (CRI
         # sends them with every update; a hook's additions must stay).
         $MINIRUN create --bundle {upd} $ID-u || exit 2
         echo '{{\"devices\":[{{\"allow\":true,\"access\":\"rwm\"}}]}}' | $MINIRUN update -r - $ID-u; echo update=$?
         $MINIRUN start $ID-u
         for i in $(seq 100); do $MINIRUN state $ID-u | grep -q stopped && break; sleep 0.05; done
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
        upd = sb.bundle("upd", &["/bin/sh", "-c", "(exec 3<>/dev/loop-like) 2>/dev/null && echo updated: open-ok || echo updated: denied"], |c| {
            c["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
            c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/dev/loop-like", "type": "bind", "source": "/dev/loop-control", "options": ["bind"]}));
        }).display(),
        free = sb.bundle("free", &["/bin/sh", "-c", "(exec 3<>/dev/loop-like) 2>/dev/null && echo open-ok || echo denied"], |c| {
            c["linux"]["resources"] = json!({"devices": [{"allow": true, "access": "rwm"}]});
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
        out.stdout, "null-ok\nfull-ok\nOperation not permitted\ndomain\nupdate=0\nupdated: denied\nbaseline: open-ok\nafter: open-ok\n",
        "{out:?}"
    );
    sb.assert_clean();
}

/// Both ways of entering the container's cgroups without the kernel's global
/// threadgroup lock (cgroups::Entry): on v1 the init and an exec'd process
/// move themselves (`tasks`), on v2 they are born there (CLONE_INTO_CGROUP).
/// Either way they must sit in the container's cgroup of every hierarchy.
#[test]
fn init_and_exec_enter_every_hierarchy_on_v1_and_v2() {
    let sb = Sandbox::new("entry");
    let b = sb.bundle("b", &["/bin/sleep", "100"], |_| {});
    let out = sb.run(&format!(
        r#"
        pid() {{ $MINIRUN state $1 | sed -n 's/.*"pid": \([0-9]*\).*/\1/p'; }}
        # $1 the container, $2 a pid, $3 which lines: v1 hierarchies or v2's
        outside() {{ grep -E "$3" /proc/$2/cgroup | grep -Ev ":/([^:]*/)?$1\$" | sed "s/^/$4 outside: /"; }}
        both() {{
            $MINIRUN run -d --bundle {b} $1 </dev/null >/dev/null || exit 1
            $MINIRUN exec -d --pid-file $T/$1.pid $1 sleep 100 || exit 2
            echo "$2 lines: $(grep -Ec "$3" /proc/$(pid $1)/cgroup)"
            outside $1 $(pid $1) "$3" init
            outside $1 $(cat $T/$1.pid) "$3" exec
            $MINIRUN delete -f $1
        }}
        both $ID v1 '^[0-9]+:[^:]+:'
        umount -R /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup || exit 78
        both $ID-2 v2 '^0::'
        "#,
        b = b.display()
    ));
    out.ok();
    let v1 = out.stdout.lines().next().unwrap_or_default().to_string();
    assert!(
        v1.starts_with("v1 lines: ") && v1 != "v1 lines: 0",
        "{out:?}"
    );
    assert_eq!(out.stdout, format!("{v1}\nv2 lines: 1\n"), "{out:?}");
    sb.assert_clean();
}

/// The cgroup directory of a container's init in hierarchy `controller`, as
/// a shell expression (the runtime's own cgroup may be nested).
const CG: &str = r#"
cg() { p=$(grep -E "^[0-9]+:([^:]*,)?$1(,[^:]*)?:" /proc/$($MINIRUN state $2 | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')/cgroup | cut -d: -f3); echo /sys/fs/cgroup/$1$p; }
"#;

#[test]
fn zeros_are_unset_and_a_missing_file_is_an_error_only_when_set() {
    let sb = Sandbox::new("zeros");
    // What Docker 20.10 puts in every config.json.
    let docker = sb.bundle(
        "docker",
        &["/bin/sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.shares"],
        |c| {
            c["linux"]["resources"] = json!({
                "memory": {"disableOOMKiller": false},
                "cpu": {"shares": 0},
                "blockIO": {"weight": 0},
                "pids": {"limit": 0}
            });
        },
    );
    // blkio.leaf_weight went with CFQ (Linux 5.0); cpu.rt_runtime_us takes
    // no more than its period.
    let leaf = sb.bundle("leaf", &["/bin/true"], |c| {
        c["linux"]["resources"] = json!({"blockIO": {"leafWeight": 500}, "pids": {"limit": 10}});
    });
    let rt = sb.bundle("rt", &["/bin/true"], |c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "cpu": {"realtimeRuntime": 99_999_999_999i64}});
    });
    let out = sb.run(&format!(
        r#"
        [ -d /sys/fs/cgroup/blkio ] && [ ! -e /sys/fs/cgroup/blkio/blkio.leaf_weight ] || exit 77
        $MINIRUN run --bundle {docker} $ID; echo "docker: $?"
        $MINIRUN run --bundle {leaf} $ID-leaf; echo "leaf: $?"
        $MINIRUN run --bundle {rt} $ID-rt; echo "rt: $?"
        find /sys/fs/cgroup -name "$ID*" | grep -q . && echo cgroup-left
        ls $ROOT
        "#,
        docker = docker.display(),
        leaf = leaf.display(),
        rt = rt.display(),
    ));
    if out.code == 77 {
        eprintln!("this host has blkio.leaf_weight or no blkio controller");
        return;
    }
    assert_eq!(out.stdout, "1024\ndocker: 0\nleaf: 1\nrt: 1\n", "{out:?}");
    assert!(
        out.stderr.contains(
            "linux.resources.blockIO.leafWeight is set, but this kernel's blkio controller has no blkio.leaf_weight"
        ),
        "{out:?}"
    );
    assert!(
        out.stderr.contains(
            "linux.resources.cpu.realtimeRuntime: writing \"99999999999\" to /sys/fs/cgroup/cpu/"
        ),
        "{out:?}"
    );
    sb.assert_clean();
}

#[test]
fn update_is_all_or_nothing_and_orders_memory_by_direction() {
    let sb = Sandbox::new("update");
    let b = sb.bundle("b", &["/bin/sleep", "100"], |c| {
        c["linux"]["resources"] = json!({
            "memory": {"limit": 67108864, "swap": 134217728},
            "cpu": {"shares": 512}
        });
    });
    let out = sb.run(&format!(
        r#"
        [ -e /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes ] || exit 77
        {CG}
        $MINIRUN run -d --bundle {b} $ID || exit 1
        show() {{ m=$(cg memory $ID); c=$(cg cpu $ID)
            echo "$1: $(cat $m/memory.limit_in_bytes) $(cat $m/memory.memsw.limit_in_bytes) $(cat $c/cpu.shares) $(cat $c/cpu.cfs_quota_us) $(cat $c/cpu.cfs_period_us)"; }}
        show created
        # Docker's update: zeros everywhere but what changes. Raising memory
        # and memsw together needs memsw first.
        echo '{{"memory":{{"limit":268435456,"reservation":0,"swap":268435456,"kernel":0,"kernelTCP":0}},"cpu":{{"shares":0,"quota":0,"period":0,"realtimeRuntime":0,"realtimePeriod":0,"cpus":"","mems":""}},"blockIO":{{"weight":0}},"pids":{{"limit":0}}}}' | $MINIRUN update -r - $ID; echo "rc=$?"
        show raised
        $MINIRUN update --memory 32m --memory-swap 32m --cpu-quota 50000 --cpu-period 100000 $ID; echo "rc=$?"
        show lowered
        # The last write is refused: everything before it is put back.
        echo '{{"memory":{{"limit":134217728,"swap":134217728}},"cpu":{{"shares":2048,"quota":20000,"realtimeRuntime":99999999999}}}}' | $MINIRUN update -r - $ID; echo "rc=$?"
        show refused
        $MINIRUN update --memory-reservation 10m $ID; echo "rc=$?"
        show no-op
        $MINIRUN delete -f $ID
        "#,
        b = b.display(),
    ));
    if out.code == 77 {
        eprintln!("no swap accounting on this host");
        return;
    }
    assert_eq!(
        out.stdout,
        "created: 67108864 134217728 512 -1 100000\n\
         rc=0\nraised: 268435456 268435456 512 -1 100000\n\
         rc=0\nlowered: 33554432 33554432 512 50000 100000\n\
         rc=1\nrefused: 33554432 33554432 512 50000 100000\n\
         rc=0\nno-op: 33554432 33554432 512 50000 100000\n",
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("linux.resources.cpu.realtimeRuntime: writing \"99999999999\"")
            && out.stderr.contains("(the 4 earlier writes were undone)"),
        "{out:?}"
    );
    sb.assert_clean();
}

#[test]
fn default_device_rules_are_runcs() {
    let sb = Sandbox::new("devrules");
    let b = sb.bundle(
        "b",
        &[
            "/bin/sh",
            "-c",
            "cat /sys/fs/cgroup/devices/devices.list | sort; mknod /tmp/null c 1 3 && echo hi > /tmp/null && echo null-ok; mknod /tmp/disk b 8 0 && echo mknod-disk-ok; head -c1 /tmp/disk 2>&1 | grep -o 'Operation not permitted'",
        ],
        |c| {
            for set in ["bounding", "effective", "permitted"] {
                c["process"]["capabilities"][set]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("CAP_MKNOD"));
            }
            // Docker's list: deny all, the standard nodes, then deny fuse.
            c["linux"]["resources"] = json!({"devices": [
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
                {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
                {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"}
            ]});
        },
    );
    let out = sb.run(&format!(
        "[ -d /sys/fs/cgroup/devices ] || exit 77; $MINIRUN run --bundle {} $ID",
        b.display()
    ));
    if out.code == 77 {
        return;
    }
    out.ok();
    assert_eq!(
        out.stdout,
        "b *:* m\nc *:* m\nc 10:200 rwm\nc 136:* rwm\nc 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\nc 5:0 rwm\nc 5:1 rwm\nc 5:2 rwm\n\
         null-ok\nmknod-disk-ok\nOperation not permitted\n",
        "{out:?}"
    );
}
