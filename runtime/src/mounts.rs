//! The `mounts` of config.json, in order, each resolved inside the rootfs.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use crate::cgroups;
use crate::rootfs::{fd_path, locked_flags, Root, RootfsError};

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mounts[{index}] ({typ} on {dest}): {what}: {source}")]
    Mount {
        index: usize,
        typ: String,
        dest: PathBuf,
        what: String,
        source: Errno,
    },
    #[error("mounts[{index}] ({dest}): {source}")]
    Target {
        index: usize,
        dest: PathBuf,
        source: RootfsError,
    },
}

/// A mount's options split the way mount(2) and mount_setattr(2) want them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    pub propagation: Vec<MsFlags>,
    /// Recursive attributes (`rro`, `rnosuid`, …): (set, clear) for mount_setattr.
    pub attr_set: u64,
    pub attr_clear: u64,
    pub data: Vec<String>,
    pub bind: bool,
    pub recursive: bool,
}

pub fn propagation_flag(opt: &str) -> Option<MsFlags> {
    Some(match opt {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Whether the init's mounts may reach the runtime's mount namespace: with
/// linux.rootfsPropagation shared (or not recursive), or a mount of the
/// config asking for shared propagation (a mount made under it appears on
/// the host).
pub fn may_propagate(spec: &oci_spec::runtime::Spec) -> bool {
    let rootfs = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation_flag);
    crate::rootfs::leaves_shared(rootfs)
        || spec.mounts().iter().flatten().any(|m| {
            m.options()
                .iter()
                .flatten()
                .any(|o| o == "shared" || o == "rshared")
        })
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_RELATIME: u64 = 0x0;
const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

pub fn parse_options(options: &[String]) -> MountOptions {
    let mut o = MountOptions {
        flags: MsFlags::empty(),
        propagation: Vec::new(),
        attr_set: 0,
        attr_clear: 0,
        data: Vec::new(),
        bind: false,
        recursive: false,
    };
    for opt in options {
        let opt = opt.as_str();
        if let Some(p) = propagation_flag(opt) {
            o.propagation.push(p);
            continue;
        }
        let (set, clear) = match opt {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
            "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
            "bind" => {
                o.bind = true;
                continue;
            }
            "rbind" => {
                o.bind = true;
                o.recursive = true;
                continue;
            }
            // The recursive forms apply to every mount below too (mount_setattr).
            "rro" => {
                o.attr_set |= MOUNT_ATTR_RDONLY;
                continue;
            }
            "rrw" => {
                o.attr_clear |= MOUNT_ATTR_RDONLY;
                continue;
            }
            "rnosuid" => {
                o.attr_set |= MOUNT_ATTR_NOSUID;
                continue;
            }
            "rsuid" => {
                o.attr_clear |= MOUNT_ATTR_NOSUID;
                continue;
            }
            "rnodev" => {
                o.attr_set |= MOUNT_ATTR_NODEV;
                continue;
            }
            "rdev" => {
                o.attr_clear |= MOUNT_ATTR_NODEV;
                continue;
            }
            "rnoexec" => {
                o.attr_set |= MOUNT_ATTR_NOEXEC;
                continue;
            }
            "rexec" => {
                o.attr_clear |= MOUNT_ATTR_NOEXEC;
                continue;
            }
            "rnodiratime" => {
                o.attr_set |= MOUNT_ATTR_NODIRATIME;
                continue;
            }
            "rdiratime" => {
                o.attr_clear |= MOUNT_ATTR_NODIRATIME;
                continue;
            }
            "rnosymfollow" => {
                o.attr_set |= MOUNT_ATTR_NOSYMFOLLOW;
                continue;
            }
            "rsymfollow" => {
                o.attr_clear |= MOUNT_ATTR_NOSYMFOLLOW;
                continue;
            }
            "rrelatime" => {
                o.attr_clear |= MOUNT_ATTR_ATIME_MASK;
                o.attr_set |= MOUNT_ATTR_RELATIME;
                continue;
            }
            "rnoatime" => {
                o.attr_clear |= MOUNT_ATTR_ATIME_MASK;
                o.attr_set |= MOUNT_ATTR_NOATIME;
                continue;
            }
            "rstrictatime" => {
                o.attr_clear |= MOUNT_ATTR_ATIME_MASK;
                o.attr_set |= MOUNT_ATTR_STRICTATIME;
                continue;
            }
            // crun's and podman's own hints with no meaning for mount(2).
            "tmpcopyup" | "notmpcopyup" | "copy-symlink" => continue,
            // Applied by the runtime before the mount is attached (see `idmap`).
            o if o.starts_with("idmap") || o.starts_with("ridmap") => continue,
            other => {
                o.data.push(other.to_string());
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
    }
    o
}

/// What a mount needs from the rest of the set-up.
pub struct MountContext<'a> {
    pub root: &'a Root,
    /// The bind sources, opened by the runtime before the clone (index = mount).
    pub sources: &'a [Option<OwnedFd>],
    /// The container has a cgroup namespace of its own.
    pub cgroup_ns: bool,
    /// The host's cgroup hierarchies, as the runtime read them before the
    /// clone (the init's mount tree is still a copy of the host's).
    pub hierarchies: &'a [cgroups::Hierarchy],
}

pub fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// Clones every bind source into a detached mount (open_tree) in the runtime's
/// own namespaces, before the clone. The init attaches it with move_mount: a
/// user namespace's root may not reach a source the runtime can, and a mount
/// of another mount namespace cannot be bound, but a detached one can be moved.
pub fn open_bind_sources(
    mounts: &[Mount],
    bundle: &Path,
) -> Result<Vec<Option<OwnedFd>>, MountError> {
    mounts
        .iter()
        .enumerate()
        .map(|(index, m)| {
            if !is_bind(m) {
                return Ok(None);
            }
            let fail = |what: String, source: Errno| MountError::Mount {
                index,
                typ: "bind".into(),
                dest: m.destination().clone(),
                what,
                source,
            };
            let src = m
                .source()
                .as_ref()
                .ok_or_else(|| fail("bind mount without a source".into(), Errno::EINVAL))?;
            let src = if src.is_relative() {
                bundle.join(src)
            } else {
                src.clone()
            };
            let recursive = m.options().iter().flatten().any(|o| o == "rbind");
            open_tree_clone(&src, recursive)
                .map(Some)
                .map_err(|e| fail(format!("source {}", src.display()), e))
        })
        .collect()
}

/// A detached copy of the mount at `path` (open_tree with OPEN_TREE_CLONE),
/// with the mounts below it when `recursive`.
pub(crate) fn open_tree_clone(path: &Path, recursive: bool) -> Result<OwnedFd, Errno> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    let c = crate::rootfs::cstring(&path.to_string_lossy());
    // SAFETY: open_tree reads a NUL-terminated path; the fd is ours on success.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    let fd = Errno::result(fd)?;
    // SAFETY: a fresh descriptor from the kernel.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) })
}

/// Attaches a detached mount (from open_tree) onto an O_PATH target.
pub(crate) fn move_mount(from: &impl AsRawFd, to: &impl AsRawFd) -> Result<(), Errno> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: empty paths; both fds are valid.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(r).map(drop)
}

/// Performs `mounts[index]`.
pub fn mount_entry(ctx: &MountContext, index: usize, m: &Mount) -> Result<(), MountError> {
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().clone().unwrap_or_else(|| {
        if opts.bind {
            "bind".into()
        } else {
            "none".into()
        }
    });
    let dest = m.destination().clone();
    let fail = |what: &str, source: Errno| MountError::Mount {
        index,
        typ: typ.clone(),
        dest: dest.clone(),
        what: what.to_string(),
        source,
    };
    let target_err = |source| MountError::Target {
        index,
        dest: dest.clone(),
        source,
    };

    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(ctx, &opts, &dest).map_err(|(what, e)| fail(&what, e));
    }

    let bind = opts.bind || typ == "bind";
    let bind_fd = ctx.sources.get(index).and_then(Option::as_ref);
    let source = match bind_fd {
        Some(fd) if bind => Some(fd_path(fd)),
        _ => m.source().clone(),
    };
    let dir = match bind_fd {
        Some(fd) if bind => {
            let st = nix::sys::stat::fstat(fd).map_err(|e| fail("stat of source", e))?;
            st.st_mode & libc::S_IFMT == libc::S_IFDIR
        }
        _ => true,
    };
    let target = ctx.root.ensure(&dest, dir).map_err(target_err)?;
    let data = opts.data.join(",");
    let data = (!data.is_empty()).then_some(data.as_str());

    if bind {
        match bind_fd {
            Some(tree) => move_mount(tree, &target).map_err(|e| fail("attach bind mount", e))?,
            None => {
                let mut flags = MsFlags::MS_BIND;
                if opts.recursive {
                    flags |= MsFlags::MS_REC;
                }
                mount(
                    source.as_deref(),
                    &fd_path(&target),
                    None::<&str>,
                    flags,
                    None::<&str>,
                )
                .map_err(|e| fail("bind", e))?;
            }
        }
        let extra = opts.flags & !(MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            // A bind mount takes its flags only on a remount of the new mount,
            // so reopen the destination to reach the mount that now sits there.
            let top = ctx
                .root
                .open_path(&dest)
                .map_err(|e| fail("reopening", e))?;
            let top_path = fd_path(&top);
            let keep = locked_flags(&top_path).unwrap_or(MsFlags::empty());
            mount(
                None::<&str>,
                &top_path,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra | keep,
                None::<&str>,
            )
            .map_err(|e| fail("remount with options", e))?;
        }
    } else {
        let src = source
            .as_deref()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(&typ));
        match mount(
            Some(&src),
            &fd_path(&target),
            Some(typ.as_str()),
            opts.flags,
            data,
        ) {
            Ok(()) => {}
            // Without its own network (sysfs) or ipc (mqueue) namespace a user
            // namespace may not mount these: bind the host's instead, as runc does.
            Err(Errno::EPERM) if typ == "sysfs" || typ == "mqueue" => {
                let host = if typ == "sysfs" {
                    "/sys"
                } else {
                    "/dev/mqueue"
                };
                mount(
                    Some(host),
                    &fd_path(&target),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(|e| fail("bind of host fallback", e))?;
                if opts.flags.contains(MsFlags::MS_RDONLY) {
                    let top = ctx
                        .root
                        .open_path(&dest)
                        .map_err(|e| fail("reopening", e))?;
                    crate::rootfs::remount_readonly(&fd_path(&top))
                        .map_err(|e| fail("remount read-only", e))?;
                }
            }
            Err(e) => return Err(fail("mount", e)),
        }
    }

    if !opts.propagation.is_empty() || opts.attr_set != 0 || opts.attr_clear != 0 {
        let top = ctx
            .root
            .open_path(&dest)
            .map_err(|e| fail("reopening", e))?;
        for p in &opts.propagation {
            mount(None::<&str>, &fd_path(&top), None::<&str>, *p, None::<&str>)
                .map_err(|e| fail("propagation", e))?;
        }
        if opts.attr_set != 0 || opts.attr_clear != 0 {
            mount_setattr_recursive(&top, opts.attr_set, opts.attr_clear)
                .map_err(|e| fail("recursive attributes", e))?;
        }
    }
    Ok(())
}

/// mount_setattr(2) on a mount fd and everything below it.
pub(crate) fn mount_setattr_recursive(
    fd: &impl std::os::fd::AsRawFd,
    set: u64,
    clear: u64,
) -> Result<(), Errno> {
    mount_setattr(fd, true, set, clear, None)
}

/// mount_setattr(2) on a mount fd (and the mounts below it when `recursive`);
/// `userns` goes with MOUNT_ATTR_IDMAP.
pub(crate) fn mount_setattr(
    fd: &impl std::os::fd::AsRawFd,
    recursive: bool,
    set: u64,
    clear: u64,
    userns: Option<std::os::fd::RawFd>,
) -> Result<(), Errno> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: userns.map_or(0, |fd| fd as u64),
    };
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    // SAFETY: mount_setattr reads `attr` of the size given; the path is empty.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(r).map(drop)
}

/// A `cgroup` mount: cgroup2 where the host is pure v2; otherwise a tmpfs holding
/// one directory per v1 hierarchy. With a cgroup namespace each is a fresh mount of
/// the hierarchy (rooted at the container's cgroup); without, the container's own
/// directory of the host's hierarchy is bound there.
fn mount_cgroup(
    ctx: &MountContext,
    opts: &MountOptions,
    dest: &Path,
) -> Result<(), (String, Errno)> {
    let hierarchies = ctx.hierarchies;
    // Without a cgroup namespace the init's own directories are bound (it is
    // in them by now), found through its /proc/self/cgroup.
    let proc_cgroup = if ctx.cgroup_ns {
        String::new()
    } else {
        fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| ("reading /proc/self/cgroup".to_string(), io_errno(e)))?
    };
    let target = ctx
        .root
        .ensure(dest, true)
        .map_err(|e| (e.to_string(), Errno::EINVAL))?;
    let flags = opts.flags
        & (MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC
            | MsFlags::MS_RDONLY
            | MsFlags::MS_RELATIME);

    if hierarchies.len() == 1 && hierarchies[0].v2 {
        let h = &hierarchies[0];
        return if ctx.cgroup_ns {
            mount(
                Some("cgroup2"),
                &fd_path(&target),
                Some("cgroup2"),
                flags,
                None::<&str>,
            )
            .map_err(|e| ("mount cgroup2".into(), e))
        } else {
            let src = cgroups::container_dir(h, &proc_cgroup, Path::new("."));
            bind_with_flags(&src, ctx, dest, flags)
        };
    }

    mount(
        Some("tmpfs"),
        &fd_path(&target),
        Some("tmpfs"),
        flags & !MsFlags::MS_RDONLY,
        Some("mode=755"),
    )
    .map_err(|e| ("mount tmpfs for cgroups".to_string(), e))?;
    for h in hierarchies {
        let name = h
            .mountpoint
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let sub = dest.join(&name);
        let sub_fd = ctx
            .root
            .ensure(&sub, true)
            .map_err(|e| (e.to_string(), Errno::EINVAL))?;
        if ctx.cgroup_ns {
            let data = h.controllers.join(",");
            mount(
                Some("cgroup"),
                &fd_path(&sub_fd),
                Some("cgroup"),
                flags,
                Some(data.as_str()),
            )
            .map_err(|e| (format!("mount cgroup {data}"), e))?;
        } else {
            let src = cgroups::container_dir(h, &proc_cgroup, Path::new("."));
            bind_with_flags(&src, ctx, &sub, flags)?;
        }
        // co-mounted controllers (cpu,cpuacct) are reachable by each name too
        if name.contains(',') {
            let parent = ctx
                .root
                .open_path(dest)
                .map_err(|e| ("reopening".to_string(), e))?;
            for c in name.split(',') {
                let _ = symlink(&name, fd_path(&parent).join(c));
            }
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let top = ctx
            .root
            .open_path(dest)
            .map_err(|e| ("reopening".to_string(), e))?;
        crate::rootfs::remount_readonly(&fd_path(&top))
            .map_err(|e| ("remount cgroup tmpfs read-only".to_string(), e))?;
    }
    Ok(())
}

fn bind_with_flags(
    src: &Path,
    ctx: &MountContext,
    dest: &Path,
    flags: MsFlags,
) -> Result<(), (String, Errno)> {
    let target = ctx
        .root
        .ensure(dest, true)
        .map_err(|e| (e.to_string(), Errno::EINVAL))?;
    mount(
        Some(src),
        &fd_path(&target),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| (format!("bind {}", src.display()), e))?;
    if !flags.is_empty() {
        let top = ctx
            .root
            .open_path(dest)
            .map_err(|e| ("reopening".to_string(), e))?;
        let keep = locked_flags(&fd_path(&top)).unwrap_or(MsFlags::empty());
        mount(
            None::<&str>,
            &fd_path(&top),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | keep,
            None::<&str>,
        )
        .map_err(|e| (format!("remount {}", src.display()), e))?;
    }
    Ok(())
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> MountOptions {
        parse_options(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_data_and_propagation() {
        let o = opts(&[
            "nosuid",
            "strictatime",
            "mode=755",
            "size=65536k",
            "rprivate",
        ]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert!(!o.bind);
    }

    #[test]
    fn later_options_win() {
        let o = opts(&["ro", "rw", "noexec", "exec", "nodev"]);
        assert_eq!(o.flags, MsFlags::MS_NODEV);
    }

    #[test]
    fn bind_and_recursive_attrs() {
        let o = opts(&["rbind", "rro", "rnosuid"]);
        assert!(o.bind && o.recursive);
        assert_eq!(o.attr_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
        let o = opts(&["bind"]);
        assert!(o.bind && !o.recursive);
    }
}
