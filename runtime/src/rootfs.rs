//! The container's root filesystem: path resolution that cannot escape the rootfs,
//! device nodes, pivot_root, masked and read-only paths.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{mkdirat, mknodat, Mode, SFlag};
use nix::unistd::{chdir, chroot, fchdir, fchownat, pivot_root, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("{what} {path}: {source}")]
    Path {
        what: &'static str,
        path: PathBuf,
        source: Errno,
    },
    #[error("{what}: {source}")]
    Sys { what: String, source: Errno },
}

fn path_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> RootfsError + 'a {
    move |source| RootfsError::Path {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn sys_err(what: impl Into<String>) -> impl FnOnce(Errno) -> RootfsError {
    let what = what.into();
    move |source| RootfsError::Sys { what, source }
}

/// An open rootfs directory; every path below it is resolved as if it were `/`,
/// so a symlink inside the rootfs can never lead a mount or a device outside it.
pub struct Root {
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// Path of an open fd as the kernel resolves it: the way to mount onto exactly
/// the inode that was resolved inside the rootfs.
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn component_name(c: Component) -> Option<std::ffi::OsString> {
    match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some("..".into()),
        _ => None,
    }
}

fn rel(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

impl Root {
    pub fn open(path: &Path) -> Result<Self, RootfsError> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(path_err("opening rootfs", path))?;
        Ok(Root {
            path: path.to_path_buf(),
            fd,
        })
    }

    /// Opens `path` (container view) with O_PATH, resolved inside the rootfs.
    pub fn open_path(&self, path: &Path) -> Result<OwnedFd, Errno> {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let p = rel(path);
        if p.as_os_str().is_empty() {
            return openat2(&self.fd, ".", how);
        }
        openat2(&self.fd, p, how)
    }

    /// mkdir -p inside the rootfs; returns the final directory opened O_PATH.
    pub fn mkdir_all(&self, path: &Path, mode: u32) -> Result<OwnedFd, RootfsError> {
        // Nearly every path asked for exists already (mount points of the
        // image, /dev once it is mounted): one openat2, which follows links
        // inside the root as the walk below does, instead of two calls per
        // component.
        match self.open_path(path) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(path_err("resolving", path)(e)),
        }
        // The usual miss: only the last directory is new (a mount point
        // under /dev or /sys/fs/cgroup). Anything in the way, such as a
        // dangling link, is left to the walk.
        if let (Some(parent), Some(Component::Normal(name))) =
            (path.parent(), path.components().next_back())
        {
            if let Ok(dir) = self.open_path(parent) {
                if mkdirat(&dir, name, Mode::from_bits_truncate(mode)).is_ok() {
                    return self.open_path(path).map_err(path_err("resolving", path));
                }
            }
        }
        let resolved = self.resolve_creating(path, mode, true)?;
        self.open_path(&resolved)
            .map_err(path_err("resolving", path))
    }

    /// Walks `path` inside the rootfs one component at a time, following
    /// symlinks as if the rootfs were `/` (an absolute target restarts at the
    /// rootfs, `..` stops there). Missing directories are made with `mode`; the
    /// last component too when `create_last`. Returns the symlink-free path
    /// inside the root.
    fn resolve_creating(
        &self,
        path: &Path,
        mode: u32,
        create_last: bool,
    ) -> Result<PathBuf, RootfsError> {
        use std::collections::VecDeque;
        use std::ffi::OsString;
        let mut todo: VecDeque<OsString> = path.components().filter_map(component_name).collect();
        let mut cur = PathBuf::from("/");
        let mut links = 0;
        while let Some(name) = todo.pop_front() {
            if name == ".." {
                cur.pop();
                continue;
            }
            let parent = self.open_path(&cur).map_err(path_err("resolving", &cur))?;
            match nix::fcntl::readlinkat(&parent, name.as_os_str()) {
                Ok(target) => {
                    links += 1;
                    if links > 40 {
                        return Err(path_err("resolving", path)(Errno::ELOOP));
                    }
                    let target = PathBuf::from(target);
                    if target.is_absolute() {
                        cur = PathBuf::from("/");
                    }
                    for c in target
                        .components()
                        .filter_map(component_name)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                    {
                        todo.push_front(c);
                    }
                }
                Err(Errno::EINVAL) => cur.push(&name),
                Err(Errno::ENOENT) => {
                    cur.push(&name);
                    if todo.is_empty() && !create_last {
                        return Ok(cur);
                    }
                    match mkdirat(&parent, name.as_os_str(), Mode::from_bits_truncate(mode)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(path_err("creating directory", &cur)(e)),
                    }
                }
                Err(e) => return Err(path_err("resolving", &cur.join(&name))(e)),
            }
        }
        Ok(cur)
    }

    /// Makes sure `path` exists inside the rootfs, as a directory or as an empty
    /// file (for bind-mounting a file), and opens it O_PATH.
    pub fn ensure(&self, path: &Path, dir: bool) -> Result<OwnedFd, RootfsError> {
        if dir {
            return self.mkdir_all(path, 0o755);
        }
        match self.open_path(path) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(path_err("resolving", path)(e)),
        }
        // Missing, or a dangling symlink: find where it really points in the root.
        let path = &self.resolve_creating(path, 0o755, false)?;
        let parent = self.mkdir_all(path.parent().unwrap_or(Path::new("/")), 0o755)?;
        let name = path.file_name().ok_or(RootfsError::Path {
            what: "creating file",
            path: path.to_path_buf(),
            source: Errno::EINVAL,
        })?;
        let parent_dir = nix::fcntl::openat(
            &parent,
            ".",
            OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(path_err("opening", path))?;
        match nix::fcntl::openat(
            &parent_dir,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        ) {
            Ok(_) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(path_err("creating file", path)(e)),
        }
        self.open_path(path).map_err(path_err("resolving", path))
    }
}

/// Mount-namespace preparation before any mount of the config: stop mount events
/// from flowing back to the host, then make the rootfs a mount point of its own
/// (pivot_root needs one).
pub fn prepare(rootfs: &Path, propagation: Option<MsFlags>) -> Result<(), RootfsError> {
    let flags = propagation.unwrap_or(DEFAULT_PROPAGATION);
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
        .map_err(sys_err("setting propagation of /"))?;
    // After a recursive slave, private or unbindable no mount is shared, and
    // the search through mountinfo (one read of it per container) finds none.
    if leaves_shared(propagation) {
        make_parent_private(rootfs)?;
    }
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(path_err("bind-mounting rootfs", rootfs))?;
    Ok(())
}

/// linux.rootfsPropagation unset: as runc.
const DEFAULT_PROPAGATION: MsFlags = MsFlags::MS_SLAVE.union(MsFlags::MS_REC);

/// Whether some mount stays shared after / is given `propagation`: all of
/// them are slaves, private or unbindable after a recursive setting of one.
pub fn leaves_shared(propagation: Option<MsFlags>) -> bool {
    let flags = propagation.unwrap_or(DEFAULT_PROPAGATION);
    !flags.contains(MsFlags::MS_REC) || flags.contains(MsFlags::MS_SHARED)
}

/// pivot_root refuses a rootfs whose parent mount is shared; make the mount that
/// holds the rootfs private (only when it is shared, as runc does).
fn make_parent_private(rootfs: &Path) -> Result<(), RootfsError> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").map_err(|e| RootfsError::Sys {
        what: "reading /proc/self/mountinfo".into(),
        source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    let mut best: Option<(PathBuf, bool)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() < 7 {
            continue;
        }
        let mp = PathBuf::from(fields[4]);
        if rootfs.starts_with(&mp)
            && best
                .as_ref()
                .is_none_or(|(b, _)| mp.as_os_str().len() >= b.as_os_str().len())
        {
            let optional = fields[6..].iter().take_while(|f| **f != "-");
            let shared = optional.into_iter().any(|f| f.starts_with("shared:"));
            best = Some((mp, shared));
        }
    }
    if let Some((mp, true)) = best {
        mount(
            None::<&str>,
            &mp,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(path_err("making private", &mp))?;
    }
    Ok(())
}

struct DefaultDevice {
    path: &'static str,
    major: u64,
    minor: u64,
}

const DEFAULT_DEVICES: [DefaultDevice; 6] = [
    DefaultDevice {
        path: "/dev/null",
        major: 1,
        minor: 3,
    },
    DefaultDevice {
        path: "/dev/zero",
        major: 1,
        minor: 5,
    },
    DefaultDevice {
        path: "/dev/full",
        major: 1,
        minor: 7,
    },
    DefaultDevice {
        path: "/dev/random",
        major: 1,
        minor: 8,
    },
    DefaultDevice {
        path: "/dev/urandom",
        major: 1,
        minor: 9,
    },
    DefaultDevice {
        path: "/dev/tty",
        major: 5,
        minor: 0,
    },
];

/// The runtime-spec's default devices, then `linux.devices`. Inside a user
/// namespace mknod is refused, so the host's node is bind-mounted instead.
pub fn create_devices(
    root: &Root,
    devices: &[LinuxDevice],
    in_userns: bool,
    root_uid: u32,
    root_gid: u32,
    made: &[Option<std::os::fd::OwnedFd>],
) -> Result<(), RootfsError> {
    // Nodes get their modes from mknod exactly, with no chmod after it.
    let _umask = ClearedUmask::new();
    for d in &DEFAULT_DEVICES {
        if devices.iter().any(|c| c.path() == Path::new(d.path)) {
            continue;
        }
        make_device(
            root,
            Path::new(d.path),
            SFlag::S_IFCHR,
            d.major,
            d.minor,
            0o666,
            root_uid,
            root_gid,
            in_userns,
        )?;
    }
    for (i, d) in devices.iter().enumerate() {
        if let Some(node) = made.get(i).and_then(Option::as_ref) {
            // Made by the runtime (see `devices`): attach it.
            let target = root.ensure(d.path(), false)?;
            crate::mounts::move_mount(node, &target)
                .map_err(path_err("attaching device", d.path()))?;
            continue;
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(RootfsError::Path {
                    what: "device type 'a' cannot be created",
                    path: d.path().clone(),
                    source: Errno::EINVAL,
                })
            }
        };
        make_device(
            root,
            d.path(),
            kind,
            d.major() as u64,
            d.minor() as u64,
            d.file_mode().unwrap_or(0o666),
            d.uid().unwrap_or(root_uid),
            d.gid().unwrap_or(root_gid),
            in_userns,
        )?;
    }
    Ok(())
}

/// The umask cleared until dropped.
struct ClearedUmask(Mode);

impl ClearedUmask {
    fn new() -> Self {
        ClearedUmask(nix::sys::stat::umask(Mode::empty()))
    }
}

impl Drop for ClearedUmask {
    fn drop(&mut self) {
        nix::sys::stat::umask(self.0);
    }
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    root: &Root,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    in_userns: bool,
) -> Result<(), RootfsError> {
    let parent = root.mkdir_all(path.parent().unwrap_or(Path::new("/dev")), 0o755)?;
    let name = path.file_name().unwrap_or_default();
    let dir = nix::fcntl::openat(
        &parent,
        ".",
        OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(path_err("opening", path))?;
    if in_userns && kind != SFlag::S_IFIFO {
        let target = root.ensure(path, false)?;
        let host = Path::new("/").join(rel(path));
        return mount(
            Some(&host),
            &fd_path(&target),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(path_err("bind-mounting device", path));
    }
    let dev = libc::makedev(major as u32, minor as u32);
    let node = || {
        mknodat(
            &dir,
            name,
            kind,
            Mode::from_bits_truncate(mode & 0o7777),
            dev,
        )
    };
    // Whatever the image has at that path is replaced.
    node().or_else(|e| match e {
        Errno::EEXIST => nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir)
            .map_err(path_err("replacing", path))
            .and_then(|()| node().map_err(path_err("creating device", path))),
        e => Err(path_err("creating device", path)(e)),
    })?;
    // The init makes nodes as root (of its user namespace, if any: mknod
    // fails for an unmapped creator), so a node for root is root's already.
    if (uid, gid) == (0, 0) {
        return Ok(());
    }
    fchownat(
        &dir,
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(path_err("chown of device", path))?;
    Ok(())
}

/// /dev/fd, stdin, stdout, stderr and ptmx links, where nothing is in the way.
pub fn default_symlinks(root: &Root) -> Result<(), RootfsError> {
    let links = [
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ];
    let dev = match root.open_path(Path::new("/dev")) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(path_err("resolving", Path::new("/dev"))(e)),
    };
    let dev_path = fd_path(&dev);
    for (target, link) in links {
        let at = dev_path.join(Path::new(link).file_name().unwrap_or_default());
        match symlink(target, &at) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(path_err("creating symlink", Path::new(link))(
                    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                ))
            }
        }
    }
    if root.open_path(Path::new("/dev/pts")).is_ok() {
        let at = dev_path.join("ptmx");
        let _ = fs::remove_file(&at);
        symlink("pts/ptmx", &at).map_err(|e| RootfsError::Path {
            what: "creating symlink",
            path: "/dev/ptmx".into(),
            source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
    }
    Ok(())
}

/// Switches to the rootfs: pivot_root(".", ".") and a lazy unmount of the old
/// root stacked beneath, or with `no_pivot` a move of the rootfs onto / and chroot.
pub fn enter(root: &Root, no_pivot: bool) -> Result<(), RootfsError> {
    if no_pivot {
        chdir(&root.path).map_err(path_err("chdir", &root.path))?;
        mount(
            Some(&root.path),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(path_err("moving rootfs to /", &root.path))?;
        chroot(".").map_err(sys_err("chroot"))?;
    } else {
        let dir = nix::fcntl::open(
            &root.path,
            OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(path_err("opening", &root.path))?;
        fchdir(&dir).map_err(sys_err("fchdir to rootfs"))?;
        pivot_root(".", ".").map_err(path_err("pivot_root", &root.path))?;
        // The old root now sits on top of the new one; keep its unmount from
        // reaching the host, then detach it.
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(sys_err("making old root a slave"))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(sys_err("unmounting old root"))?;
    }
    chdir("/").map_err(sys_err("chdir /"))?;
    Ok(())
}

/// maskedPaths: /dev/null over files, an empty read-only tmpfs over directories.
pub fn mask_paths(paths: &[String]) -> Result<(), RootfsError> {
    for p in paths {
        let path = Path::new(p);
        match mount(
            Some("/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        ) {
            Ok(()) => {}
            Err(Errno::ENOENT) => {}
            Err(Errno::ENOTDIR) => {
                mount(
                    Some("tmpfs"),
                    path,
                    Some("tmpfs"),
                    MsFlags::MS_RDONLY,
                    None::<&str>,
                )
                .map_err(path_err("masking", path))?;
            }
            Err(e) => return Err(path_err("masking", path)(e)),
        }
    }
    Ok(())
}

/// readonlyPaths: bind each onto itself, then remount it read-only.
pub fn readonly_paths(paths: &[String]) -> Result<(), RootfsError> {
    for p in paths {
        let path = Path::new(p);
        match mount(
            Some(path),
            path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ) {
            Ok(()) => {}
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(path_err("making read-only", path)(e)),
        }
        remount_readonly(path).map_err(path_err("making read-only", path))?;
    }
    Ok(())
}

/// Remounts a bind mount read-only, keeping the flags the kernel locks on it
/// (nosuid, nodev, noexec, atime) or it refuses the remount inside a user namespace.
pub fn remount_readonly(path: &Path) -> Result<(), Errno> {
    let locked = locked_flags(path)?;
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked,
        None::<&str>,
    )
}

/// The flags of the mount at `path` that a bind remount must keep.
pub fn locked_flags(path: &Path) -> Result<MsFlags, Errno> {
    let st = nix::sys::statvfs::statvfs(path)?;
    let f = st.flags();
    use nix::sys::statvfs::FsFlags;
    let mut out = MsFlags::empty();
    for (from, to) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(from) {
            out |= to;
        }
    }
    Ok(out)
}

pub fn remount_root_readonly() -> Result<(), RootfsError> {
    remount_readonly(Path::new("/")).map_err(sys_err("remounting / read-only"))
}

/// linux.sysctl, written through the container's own /proc/sys.
pub fn write_sysctls<'a>(
    sysctls: impl Iterator<Item = (&'a String, &'a String)>,
) -> Result<(), RootfsError> {
    for (key, value) in sysctls {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        fs::write(&path, value).map_err(|e| RootfsError::Path {
            what: "writing sysctl",
            path: path.clone(),
            source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
    }
    Ok(())
}

/// A C string for execve and friends.
pub fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

impl AsFd for Root {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
