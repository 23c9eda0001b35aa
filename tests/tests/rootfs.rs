//! root, mounts, devices, masked and read-only paths, sysctl, pivot_root.

use minirun_tests::Sandbox;
use serde_json::json;

fn mountinfo_line<'a>(out: &'a str, target: &str) -> &'a str {
    out.lines()
        .find(|l| l.split(' ').nth(4) == Some(target))
        .unwrap_or_else(|| panic!("no mount at {target} in\n{out}"))
}

#[test]
fn config_mounts_with_options() {
    let sb = Sandbox::new("mounts");
    let b = sb.bundle("b", &["/bin/cat", "/proc/self/mountinfo"], |c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/scratch/deep/dir", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "noexec", "nodev", "size=1m", "mode=700"]}));
        m.push(json!({"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro", "nosuid"]}));
        m.push(json!({"destination": "/etc/data-file", "type": "bind", "source": "data/file", "options": ["bind"]}));
    });
    std::fs::create_dir(b.join("data")).unwrap();
    std::fs::write(b.join("data/file"), "x").unwrap();
    let out = sb.run(&format!("$MINIRUN run --bundle {} $ID", b.display()));
    out.ok();
    let scratch = mountinfo_line(&out.stdout, "/scratch/deep/dir");
    assert!(scratch.contains("nosuid,nodev,noexec"), "{scratch}");
    assert!(
        scratch.contains(" - tmpfs ")
            && scratch.contains("size=1024k")
            && scratch.contains("mode=700"),
        "{scratch}"
    );
    let data = mountinfo_line(&out.stdout, "/data");
    assert!(
        data.split(' ').nth(5).unwrap().starts_with("ro,nosuid"),
        "{data}"
    );
    mountinfo_line(&out.stdout, "/etc/data-file");
    let proc_line = mountinfo_line(&out.stdout, "/proc");
    assert!(proc_line.contains(" - proc "), "{proc_line}");
    let host_mounts: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|t| t.starts_with("/work")))
        .collect();
    assert!(
        host_mounts.is_empty(),
        "nothing of the host tree is left mounted: {host_mounts:?}"
    );
}

#[test]
fn a_symlink_in_the_rootfs_cannot_lead_a_mount_outside() {
    let sb = Sandbox::new("escape");
    let b = sb.bundle(
        "b",
        &[
            "/bin/sh",
            "-c",
            "grep -c 'host-victim/target ' /proc/self/mountinfo",
        ],
        |c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/evil/target", "type": "tmpfs", "source": "tmpfs"}));
        },
    );
    // /evil points at an absolute host path; it must be read as rootfs/outside.
    let host_dir = sb.dir.join("host-victim");
    std::fs::create_dir(&host_dir).unwrap();
    std::os::unix::fs::symlink(&host_dir, b.join("rootfs/evil")).unwrap();
    let inside = b.join("rootfs").join(host_dir.strip_prefix("/").unwrap());
    let out = sb.run(&format!("$MINIRUN run --bundle {} $ID", b.display()));
    assert_eq!(
        out.ok().stdout,
        "1\n",
        "the tmpfs is mounted at the resolved path"
    );
    assert!(
        !host_dir.join("target").exists(),
        "the host directory was touched: {out:?}"
    );
    assert!(
        inside.join("target").is_dir(),
        "the mount point was made inside the rootfs"
    );
}

#[test]
fn devices_default_and_configured() {
    let sb = Sandbox::new("devices");
    let b = sb.bundle(
        "b",
        &["/bin/sh", "-c", "for d in null zero full random urandom tty mydev; do stat -c '%n %F %t:%T %a %u:%g' /dev/$d; done; for l in fd stdin ptmx; do readlink /dev/$l; done; echo hi > /dev/null && echo null-ok"],
        |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 7, "gid": 8}]);
        },
    );
    let out = sb.run(&format!("$MINIRUN run --bundle {} $ID", b.display()));
    out.ok();
    let s = &out.stdout;
    assert!(
        s.contains("/dev/null character special file 1:3 666 0:0"),
        "{s}"
    );
    assert!(
        s.contains("/dev/urandom character special file 1:9 666"),
        "{s}"
    );
    assert!(s.contains("/dev/tty character special file 5:0 666"), "{s}");
    assert!(
        s.contains("/dev/mydev character special file 1:3 640 7:8"),
        "{s}"
    );
    assert!(
        s.contains("/proc/self/fd\n/proc/self/fd/0\npts/ptmx\n"),
        "{s}"
    );
    assert!(s.contains("null-ok"), "{s}");
}

#[test]
fn masked_readonly_paths_and_readonly_root() {
    let sb = Sandbox::new("masked");
    let b = sb.bundle(
        "b",
        &["/bin/sh", "-c", "cat /proc/kcore | wc -c; ls /proc/acpi | wc -l; echo 1 > /proc/sys/kernel/printk 2>/dev/null && echo sys-writable; touch /newfile 2>/dev/null && echo root-writable; touch /tmp/x && echo tmp-writable"],
        |c| {
            c["root"]["readonly"] = json!(true);
            c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
        },
    );
    let out = sb.run(&format!("$MINIRUN run --bundle {} $ID", b.display()));
    out.ok();
    assert_eq!(out.stdout, "0\n0\ntmp-writable\n", "{out:?}");
}

#[test]
fn sysctl_is_set_in_the_container() {
    let sb = Sandbox::new("sysctl");
    let b = sb.bundle(
        "b",
        &[
            "/bin/cat",
            "/proc/sys/net/ipv4/ip_forward",
            "/proc/sys/kernel/shmmni",
        ],
        |c| {
            c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"});
        },
    );
    let out = sb.run(&format!(
        "cat /proc/sys/net/ipv4/ip_forward; $MINIRUN run --bundle {} $ID",
        b.display()
    ));
    assert_eq!(out.ok().stdout, "0\n1\n1234\n");
}

#[test]
fn no_pivot_moves_and_chroots() {
    let sb = Sandbox::new("nopivot");
    let b = sb.bundle("b", &["/bin/sh", "-c", "ls / | tr '\\n' ' '"], |_| {});
    let out = sb.run(&format!(
        "$MINIRUN run --no-pivot --bundle {} $ID",
        b.display()
    ));
    out.ok();
    assert!(out.stdout.contains("bin dev etc proc"), "{out:?}");
}

#[test]
fn rootfs_propagation_and_cgroup_mount() {
    let sb = Sandbox::new("cgmount");
    let b = sb.bundle(
        "b",
        &[
            "/bin/sh",
            "-c",
            "ls /sys/fs/cgroup | tr '\\n' ' '; echo; cat /proc/self/cgroup | grep memory",
        ],
        |c| {
            c["linux"]["rootfsPropagation"] = json!("rslave");
        },
    );
    let out = sb.run(&format!("$MINIRUN run --bundle {} $ID", b.display()));
    out.ok();
    assert!(
        out.stdout.contains("memory") && out.stdout.contains("pids"),
        "{out:?}"
    );
    // A cgroup namespace rooted at the container's own cgroup.
    assert!(out.stdout.contains(":memory:/\n"), "{out:?}");
}

#[test]
fn idmapped_bind_mounts_show_owners_through_their_mapping() {
    let sb = Sandbox::new("idmap");
    let src = sb.dir.join("vol");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("file"), "").unwrap();
    let bind = |dest: &str, opts: &[&str]| {
        let mut options = vec!["bind"];
        options.extend_from_slice(opts);
        json!({"destination": dest, "type": "bind", "source": src, "options": options})
    };
    let b = sb.bundle(
        "b",
        &[
            "/bin/sh",
            "-c",
            "for d in a b c d e; do stat -c \"$d %u:%g\" /$d/file; done",
        ],
        |c| {
            minirun_tests::user_namespace(c);
            // On-disk 0 shows as host 100000 (the container's root).
            let mut d = bind("/d", &[]);
            d["uidMappings"] = json!([{"hostID": 0, "containerID": 100000, "size": 65536}]);
            d["gidMappings"] = json!([{"hostID": 0, "containerID": 100002, "size": 1}]);
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.extend([
                bind("/a", &["ro", "idmap"]),
                bind("/b", &["idmap=uids=0-100001-10;gids=0-100002-10"]),
                bind("/c", &["idmap=uids=@0-1-10;gids=@0-2-10"]),
                d,
                bind("/e", &[]),
            ]);
        },
    );
    let out = sb.run(&format!(
        "chown -R 100000:100000 {b}/rootfs; $MINIRUN run --bundle {b} $ID",
        b = b.display()
    ));
    out.ok();
    // The file is 0:0 on disk; without an idmap the namespace sees nobody.
    assert_eq!(
        out.stdout, "a 0:0\nb 1:2\nc 1:2\nd 0:2\ne 65534:65534\n",
        "{out:?}"
    );
    sb.assert_clean();
}

#[test]
fn an_idmap_without_a_user_namespace_is_refused() {
    let sb = Sandbox::new("idmap-bad");
    let b = sb.bundle("b", &["/bin/true"], |c| {
        c["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/a", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"]}),
        );
    });
    let out = sb.run(&format!("$MINIRUN run --bundle {} $ID", b.display()));
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.starts_with("minirun: config.json: mounts[")
            && out.stderr.contains("].options: a bare idmap"),
        "{out:?}"
    );
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    sb.assert_clean();
}
