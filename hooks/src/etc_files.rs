//! The container's /etc/hosts, /etc/hostname and /etc/resolv.conf.
//!
//! As Docker does, they are files of ours (in the attachment's directory on
//! tmpfs) bind-mounted over the rootfs's own, so the user's rootfs is never
//! rewritten; a missing target is created empty to mount on. The hook runs
//! after the runtime made the container's mounts and before `pivot_root`, so
//! the mounts are made in the container's mount namespace, on the rootfs path
//! the config names, resolved inside the rootfs so that a symlink in the image
//! cannot send them elsewhere.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum EtcError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("mounting /etc/{file} into the container: {reason}")]
    Mount { file: String, reason: String },
}

/// The three files, in the order they are mounted.
pub const FILES: [&str; 3] = ["hosts", "hostname", "resolv.conf"];

/// Loopback and IPv6's well-known names: the head of every hosts file.
const LOCALHOST: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// The container's own hosts file: loopback, IPv6's well-known names, and
/// its name at each of its addresses.
pub fn hosts(ip: Option<Ipv4Addr>, ip6: Option<Ipv6Addr>, hostname: &str, id: &str) -> String {
    let mut names = hostname.to_string();
    if id != hostname {
        names.push(' ');
        names.push_str(id);
    }
    let mut text = LOCALHOST.to_string();
    if let Some(ip) = ip {
        text.push_str(&format!("{ip}\t{names}\n"));
    }
    if let Some(ip6) = ip6 {
        text.push_str(&format!("{ip6}\t{names}\n"));
    }
    text
}

/// Marks the lines of a user network's other containers in /etc/hosts.
const PEER_MARK: &str = "# minirun network peer";

/// A container another one finds by name: on this host (from its record)
/// or on another host of an overlay network (from the cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Unique among the peers: the id, `id@host` for another host's.
    pub container: String,
    /// Its IPv4 address (none on an IPv6-only network).
    pub ip: Option<Ipv4Addr>,
    /// On a network with IPv6: its name resolves to both.
    pub ip6: Option<Ipv6Addr>,
    pub names: Vec<String>,
}

impl From<&crate::store::Attachment> for Peer {
    fn from(a: &crate::store::Attachment) -> Self {
        Peer {
            container: a.container.clone(),
            ip: a.ip_address,
            ip6: a.ip6_address,
            names: a.names.clone(),
        }
    }
}

/// /etc/hosts lines for the containers of a network but `own`: address,
/// names (its id and aliases).
pub fn peer_lines(peers: &[Peer], own: &str) -> String {
    let mut seen = std::collections::HashSet::new();
    peers
        .iter()
        .filter(|p| p.container != own && !p.names.is_empty())
        .filter(|p| seen.insert((&p.container, p.ip, p.ip6)))
        .flat_map(|p| {
            let names = p.names.join(" ");
            let v4 = p.ip.map(|ip| format!("{ip}\t{names}\t{PEER_MARK}\n"));
            let v6 = p.ip6.map(|ip6| format!("{ip6}\t{names}\t{PEER_MARK}\n"));
            v4.into_iter().chain(v6)
        })
        .collect()
}

/// A hosts file without the peer lines (what the container itself is).
pub fn without_peer_lines(hosts: &str) -> String {
    hosts
        .lines()
        .filter(|l| !l.ends_with(PEER_MARK))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A name-resolving network's hosts file (`<run>/networks/<network>.hosts`):
/// loopback, then every container of the network at each of its addresses
/// (its hostname, id and aliases), and an overlay network's containers on
/// other hosts. A container on one such network has it as its own
/// /etc/hosts, a hard link in its files directory: attaching the 4,000th
/// container appends its lines to one file, and every container sees them,
/// where rewriting each container's own file cost the network's size
/// squared. A container that needs a file of its own has a private one,
/// listed in `<network>.private/` and rewritten when the network changes:
/// one on two such networks (`network connect`), or one whose hostname is
/// another's name there.
pub fn network_hosts(store: &Store, network: &str) -> PathBuf {
    store
        .run_dir
        .join("networks")
        .join(format!("{network}.hosts"))
}

fn private_dir(store: &Store, network: &str) -> PathBuf {
    store
        .run_dir
        .join("networks")
        .join(format!("{network}.private"))
}

/// Marks a container's lines in a network's hosts file.
const CONTAINER_MARK: &str = "# minirun container ";
/// Marks the lines of another host's containers.
const REMOTE_MARK: &str = "# minirun remote";

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> EtcError + '_ {
    move |source| EtcError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The lines of an overlay network's containers on other hosts.
fn remote_lines(store: &Store, network: &str) -> String {
    crate::cluster::view::remote(store, network)
        .iter()
        .map(|e| format!("{}\t{}\t{REMOTE_MARK}\n", e.ip, e.names.join(" ")))
        .collect()
}

/// Adds a container's lines to its network's hosts file (made on first
/// use, with the other hosts' containers of an overlay network), under the
/// network's lock. Its hostname is among its names unless it is already a
/// name there (`hostname` empty: none); returns whether it was.
pub fn join(store: &Store, network: &str, own: &Peer, hostname: &str) -> Result<bool, EtcError> {
    let path = network_hosts(store, network);
    let current = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let text = format!("{LOCALHOST}{}", remote_lines(store, network));
            crate::store::write_whole(&path, text.as_bytes()).map_err(|e| EtcError::Io {
                path: path.clone(),
                source: io::Error::other(e.to_string()),
            })?;
            text
        }
        Err(e) => return Err(io_err(&path)(e)),
    };
    // One substring search first: a network's file has a line or two per
    // container, and a hostname is seldom there; the line-by-line check,
    // which splits every line, only when it is.
    let taken = !hostname.is_empty()
        && current.contains(hostname)
        && current.lines().skip(LOCALHOST.lines().count()).any(|l| {
            l.split('\t')
                .nth(1)
                .is_some_and(|names| names.split(' ').any(|n| n == hostname))
        });
    let mut names: Vec<&str> = Vec::new();
    if !hostname.is_empty() && !taken {
        names.push(hostname);
    }
    names.extend(
        own.names
            .iter()
            .map(String::as_str)
            .filter(|n| *n != hostname),
    );
    let names = names.join(" ");
    let id = &own.container;
    let lines: String = [own.ip.map(IpAddr::V4), own.ip6.map(IpAddr::V6)]
        .into_iter()
        .flatten()
        .map(|ip| format!("{ip}\t{names}\t{CONTAINER_MARK}{id}\n"))
        .collect();
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(lines.as_bytes()))
        .map_err(io_err(&path))?;
    Ok(!taken)
}

/// Takes a container's lines out of its network's hosts file (in place:
/// the containers see the file through links and bind mounts of it), and
/// it out of the network's private files.
pub fn leave(store: &Store, network: &str, id: &str) -> Result<(), EtcError> {
    let private = private_dir(store, network);
    if fs::remove_file(private.join(id)).is_ok() {
        // The last one takes the list with it (fails while others remain).
        let _ = fs::remove_dir(&private);
    }
    let path = network_hosts(store, network);
    let Ok(current) = fs::read_to_string(&path) else {
        return Ok(());
    };
    let mark = format!("{CONTAINER_MARK}{id}");
    let text: String = current
        .lines()
        .filter(|l| !l.ends_with(&mark))
        .map(|l| format!("{l}\n"))
        .collect();
    if text != current {
        fs::write(&path, text).map_err(io_err(&path))?;
    }
    Ok(())
}

/// The network has no container left: its hosts file and list go.
pub fn forget_network(store: &Store, network: &str) {
    let _ = fs::remove_file(network_hosts(store, network));
    let _ = fs::remove_dir_all(private_dir(store, network));
}

/// The container's /etc files in `dir` on a name-resolving network whose
/// hosts file it shares: that file linked, its hostname and resolv.conf.
pub fn write_shared(
    store: &Store,
    network: &str,
    dir: &Path,
    hostname: &str,
) -> Result<(), EtcError> {
    write(
        dir,
        &[
            ("hostname", format!("{hostname}\n")),
            ("resolv.conf", resolv_conf(&host_resolv_conf())),
        ],
    )?;
    let hosts = dir.join("hosts");
    let _ = fs::remove_file(&hosts);
    fs::hard_link(network_hosts(store, network), &hosts).map_err(io_err(&hosts))
}

/// Lists a container among a network's private hosts files.
pub fn mark_private(store: &Store, network: &str, id: &str) -> Result<(), EtcError> {
    let dir = private_dir(store, network);
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let path = dir.join(id);
    fs::write(&path, b"").map_err(io_err(&path))
}

/// A running container's own hosts file, once it has left its network's
/// (`go_private`); `hosts` stays: the new file is mounted on it, and a
/// mount on a dentry that is unlinked or renamed over is taken away.
const PRIVATE_HOSTS: &str = "hosts.private";

/// The hosts file a container sees, in its files directory.
fn hosts_in(dir: &Path) -> PathBuf {
    let private = dir.join(PRIVATE_HOSTS);
    if private.exists() {
        private
    } else {
        dir.join("hosts")
    }
}

/// Whether a container's hosts file is a network's (a link), not its own.
pub fn is_shared(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(hosts_in(dir)).is_ok_and(|m| m.nlink() > 1)
}

/// Gives a running container a hosts file of its own (it joins a second
/// name-resolving network): its own lines, written now, and the peers of
/// its networks by the next `refresh_hosts`; mounted over the shared one.
pub fn go_private(
    dir: &Path,
    pid: i32,
    (ip, ip6): (Option<Ipv4Addr>, Option<Ipv6Addr>),
    hostname: &str,
    id: &str,
) -> Result<(), EtcError> {
    let path = dir.join(PRIVATE_HOSTS);
    fs::write(&path, hosts(ip, ip6, hostname, id)).map_err(io_err(&path))?;
    // Unmounted, the file must not be there: its presence says the
    // container sees it.
    mount_hosts_into_running(&path, pid).inspect_err(|_| {
        let _ = fs::remove_file(&path);
    })
}

/// An overlay network's view of the other hosts changed: their lines in
/// the network's hosts file are replaced, and the private files rewritten.
pub fn refresh_remote(store: &Store, network: &str) -> Result<(), StoreError> {
    let path = network_hosts(store, network);
    if let Ok(current) = fs::read_to_string(&path) {
        let mut text: String = current
            .lines()
            .filter(|l| !l.ends_with(REMOTE_MARK))
            .map(|l| format!("{l}\n"))
            .collect();
        text.push_str(&remote_lines(store, network));
        if text != current {
            fs::write(&path, text).map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
        }
    }
    refresh_hosts(store, network, None)
}

/// Rewrites, in place (the containers see the file through a bind mount of
/// it), the private /etc/hosts of the containers on `network` that have
/// one, and of `also`: each lists the containers of every name-resolving
/// network it is on.
pub fn refresh_hosts(store: &Store, network: &str, also: Option<&str>) -> Result<(), StoreError> {
    let private: Vec<String> = fs::read_dir(private_dir(store, network))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    if private.is_empty() && also.is_none() {
        return Ok(());
    }
    let mut all = store.list_attachments()?;
    all.retain(|a| a.attaching.is_none());
    let mut containers: Vec<&str> = private.iter().map(String::as_str).chain(also).collect();
    containers.sort_unstable();
    containers.dedup();
    for id in containers {
        let networks: Vec<&str> = all
            .iter()
            .filter(|a| a.container == id && !a.names.is_empty())
            .map(|a| a.network.as_str())
            .collect();
        let mut peers: Vec<Peer> = all
            .iter()
            .filter(|a| networks.contains(&a.network.as_str()))
            .map(Peer::from)
            .collect();
        for network in &networks {
            peers.extend(
                crate::cluster::view::remote(store, network)
                    .iter()
                    .map(crate::cluster::ipam::Endpoint::as_peer),
            );
        }
        let dir = store.container_files(id);
        // Never through a link: that file is the network's.
        if is_shared(&dir) {
            continue;
        }
        let path = hosts_in(&dir);
        let Ok(current) = fs::read_to_string(&path) else {
            continue;
        };
        let own = without_peer_lines(&current);
        let text = format!("{own}{}", peer_lines(&peers, id));
        if text != current {
            fs::write(&path, text).map_err(|source| StoreError::Io { path, source })?;
        }
    }
    Ok(())
}

/// The host's resolv.conf without loopback nameservers, which mean nothing in
/// the container's namespace; with none left, Docker's public fallbacks.
pub fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    let mut nameservers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let server = words.next().unwrap_or("");
            let loopback = server
                .parse::<std::net::IpAddr>()
                .map_or(true, |ip| ip.is_loopback());
            if loopback {
                continue;
            }
            nameservers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if nameservers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// The host's resolver configuration. Behind systemd-resolved's stub
/// (127.0.0.53) the real upstream servers are in its own file.
pub fn host_resolv_conf() -> String {
    let read = |p: &str| fs::read_to_string(p).ok();
    let etc = read("/etc/resolv.conf").unwrap_or_default();
    if etc.contains("127.0.0.53") {
        if let Some(upstream) = read("/run/systemd/resolve/resolv.conf") {
            return upstream;
        }
    }
    etc
}

/// The container's /etc files in `dir`: hosts (its own lines, then those of
/// `peers`, the containers it finds by name), hostname and resolv.conf.
pub fn write_for(
    dir: &Path,
    (ip, ip6): (Option<Ipv4Addr>, Option<Ipv6Addr>),
    hostname: &str,
    id: &str,
    peers: &[Peer],
) -> Result<(), EtcError> {
    let mut hosts_file = hosts(ip, ip6, hostname, id);
    hosts_file.push_str(&peer_lines(peers, id));
    write(
        dir,
        &[
            ("hosts", hosts_file),
            ("hostname", format!("{hostname}\n")),
            ("resolv.conf", resolv_conf(&host_resolv_conf())),
        ],
    )
}

/// Writes the files into `dir`.
pub fn write(dir: &Path, contents: &[(&str, String)]) -> Result<(), EtcError> {
    fs::create_dir_all(dir).map_err(|source| EtcError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for (name, body) in contents {
        let path = dir.join(name);
        fs::write(&path, body).map_err(|source| EtcError::Io { path, source })?;
    }
    Ok(())
}

/// Bind-mounts `dir`/<file> over <rootfs>/etc/<file> for each of [`FILES`], in
/// the mount namespace of process `pid`. A child process enters that namespace
/// so the hook's own stays as it was.
pub fn mount_into(dir: &Path, pid: i32, rootfs: &Path) -> Result<(), EtcError> {
    let sources: Vec<PathBuf> = FILES.iter().map(|f| dir.join(f)).collect();
    mount_files(&sources, &FILES, pid, Root::Path(rootfs))
}

/// Where /etc is: a rootfs path resolved in the container's mount
/// namespace (before `pivot_root`), or a running container's root, opened
/// through /proc before entering it (after `pivot_root` the namespace's
/// own root is not the container's).
enum Root<'a> {
    Path(&'a Path),
    Open(OwnedFd),
}

/// Bind-mounts `source` over /etc/hosts of a running container (its mount
/// namespace's root is its rootfs by now), over what was there.
fn mount_hosts_into_running(source: &Path, pid: i32) -> Result<(), EtcError> {
    let path = format!("/proc/{pid}/root");
    let root = nix::fcntl::open(
        path.as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| EtcError::Mount {
        file: "hosts".into(),
        reason: format!("{path}: {e}"),
    })?;
    mount_files(&[source.to_path_buf()], &["hosts"], pid, Root::Open(root))
}

/// Mounts each of `sources` over /etc/<the file of `files` in its place>.
fn mount_files(sources: &[PathBuf], files: &[&str], pid: i32, root: Root) -> Result<(), EtcError> {
    let mut trees = Vec::new();
    for (&file, src) in files.iter().zip(sources) {
        trees.push(open_tree(src).map_err(|e| EtcError::Mount {
            file: file.into(),
            reason: format!("{}: {e}", src.display()),
        })?);
    }
    let mntns_path = format!("/proc/{pid}/ns/mnt");
    let mntns = fs::File::open(&mntns_path).map_err(|source| EtcError::Io {
        path: mntns_path.into(),
        source,
    })?;
    let (mut reader, writer) =
        std::os::unix::net::UnixStream::pair().map_err(|source| EtcError::Io {
            path: "socketpair".into(),
            source,
        })?;
    // SAFETY: the hook has no other threads (netlink runs on a current-thread
    // runtime), and the child only makes system calls and exits.
    match unsafe { fork() }.map_err(|e| EtcError::Mount {
        file: "hosts".into(),
        reason: format!("fork: {e}"),
    })? {
        ForkResult::Child => {
            drop(reader);
            let code = match mount_in_child(&mntns, root, files, &trees) {
                Ok(()) => 0,
                Err(msg) => {
                    let _ = (&writer).write_all(msg.as_bytes());
                    1
                }
            };
            // SAFETY: leave without running the parent's destructors or atexit.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(writer);
            let mut msg = String::new();
            let _ = reader.read_to_string(&mut msg);
            let status = waitpid(child, None);
            match status {
                Ok(WaitStatus::Exited(_, 0)) => Ok(()),
                _ => {
                    let (file, reason) = msg.split_once('\t').unwrap_or(("hosts", &msg));
                    Err(EtcError::Mount {
                        file: file.to_string(),
                        reason: if reason.is_empty() {
                            format!("helper process ended with {status:?}")
                        } else {
                            reason.to_string()
                        },
                    })
                }
            }
        }
    }
}

/// In the child: enter the container's mount namespace and attach each tree.
/// An error is "<file>\t<reason>".
fn mount_in_child(
    mntns: &fs::File,
    root: Root,
    files: &[&str],
    trees: &[OwnedFd],
) -> Result<(), String> {
    setns(mntns.as_fd(), CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("hosts\tentering the container's mount namespace: {e}"))?;
    let root = match root {
        Root::Open(fd) => fd,
        Root::Path(rootfs) => nix::fcntl::open(
            rootfs,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("hosts\trootfs {}: {e}", rootfs.display()))?,
    };
    let in_root = ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS;
    match nix::sys::stat::mkdirat(&root, "etc", Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(format!("hosts\tmaking /etc in the rootfs: {e}")),
    }
    for (file, tree) in files.iter().zip(trees) {
        let path = format!("etc/{file}");
        let target = match openat2(
            &root,
            path.as_str(),
            OpenHow::new()
                .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
                .resolve(in_root),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                let created = openat2(
                    &root,
                    path.as_str(),
                    OpenHow::new()
                        .flags(OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC)
                        .mode(Mode::from_bits_truncate(0o644))
                        .resolve(in_root),
                )
                .map_err(|e| format!("{file}\tcreating /{path} to mount on: {e}"))?;
                drop(created);
                openat2(
                    &root,
                    path.as_str(),
                    OpenHow::new()
                        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
                        .resolve(in_root),
                )
                .map_err(|e| format!("{file}\t/{path}: {e}"))?
            }
            Err(e) => return Err(format!("{file}\t/{path}: {e}")),
        };
        move_mount(tree, &target).map_err(|e| format!("{file}\tmounting on /{path}: {e}"))?;
    }
    Ok(())
}

/// A detached copy of the mount of `path` (a bind mount not yet attached).
fn open_tree(path: &Path) -> Result<OwnedFd, Errno> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let c =
        std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    // SAFETY: a NUL-terminated path; the fd is ours on success.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    let fd = Errno::result(fd)?;
    // SAFETY: a fresh descriptor from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn move_mount(from: &OwnedFd, to: &OwnedFd) -> Result<(), Errno> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_names_the_container() {
        let v4 = Some("172.20.0.2".parse().unwrap());
        let v6 = Some("fd42::2".parse().unwrap());
        let h = hosts(v4, None, "web", "c1");
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("172.20.0.2\tweb c1\n"), "{h}");
        assert!(hosts(v4, None, "c1", "c1").ends_with("\tc1\n"));
        assert!(hosts(None, v6, "c1", "c1").ends_with("ip6-allrouters\nfd42::2\tc1\n"));
        let h = hosts(v4, v6, "web", "c1");
        assert!(h.ends_with("172.20.0.2\tweb c1\nfd42::2\tweb c1\n"), "{h}");
        let peer = Peer {
            container: "db".into(),
            ip: Some("172.20.0.3".parse().unwrap()),
            ip6: Some("fd42::3".parse().unwrap()),
            names: vec!["db".into(), "sql".into()],
        };
        assert_eq!(
            peer_lines(&[peer], "c1"),
            format!("172.20.0.3\tdb sql\t{PEER_MARK}\nfd42::3\tdb sql\t{PEER_MARK}\n")
        );
    }

    #[test]
    fn resolv_conf_drops_loopback_servers() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 10.0.0.2\nsearch example.org\noptions edns0\n";
        assert_eq!(
            resolv_conf(host),
            "# generated\nnameserver 10.0.0.2\nsearch example.org\noptions edns0\n"
        );
        let only_loopback = "nameserver 127.0.0.1\nsearch lan\n";
        assert_eq!(
            resolv_conf(only_loopback),
            "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
    }
}
