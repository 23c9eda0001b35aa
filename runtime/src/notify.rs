//! sd_notify through the runtime (`NOTIFY_SOCKET` in its environment), as
//! runc and crun do it: the container never sees the service manager's socket.
//!
//! `create` makes `<state dir>/notify/` and bind-mounts that directory into the
//! container at the path NOTIFY_SOCKET names; the container's process gets
//! NOTIFY_SOCKET=<that path>/notify. `start` (or `run`) binds a datagram socket
//! at `<state dir>/notify/notify` before the process is exec'd and passes the
//! process's `READY=1` on to the manager's socket. `start` returns only then
//! (or when the container has exited): the container counts as started once
//! it says it is ready.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// The directory in the state dir that is mounted into the container.
pub const DIR: &str = "notify";
/// The socket's name in that directory.
pub const SOCKET: &str = "notify";
const READY: &[u8] = b"READY=1";

/// The service manager's socket, if the runtime was given one.
pub fn host_socket() -> Option<String> {
    std::env::var("NOTIFY_SOCKET")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Where the container finds the directory holding its socket: the manager's
/// path. An abstract address (`@name`) names no file, so it gets /run/notify.
pub fn container_dir(host: &str) -> PathBuf {
    if host.starts_with('/') {
        PathBuf::from(host)
    } else {
        PathBuf::from("/run/notify")
    }
}

/// Makes `<state dir>/notify`, owned by the container's root (`owner`, host
/// ids) so a process in a user namespace can reach the socket in it.
pub fn make_dir(state_dir: &Path, owner: Option<(u32, u32)>) -> io::Result<PathBuf> {
    let dir = state_dir.join(DIR);
    // Searchable by anyone: the container's process may run as any user.
    fs::DirBuilder::new().mode(0o711).create(&dir)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
    }
    Ok(dir)
}

/// The runtime's end: receives from the container, sends to the manager.
pub struct Proxy {
    socket: UnixDatagram,
    host: String,
}

impl Proxy {
    /// Binds `<state dir>/notify/notify`; None when the container was created
    /// without a notify directory or the runtime has no NOTIFY_SOCKET now.
    pub fn bind(state_dir: &Path) -> io::Result<Option<Proxy>> {
        let Some(host) = host_socket() else {
            return Ok(None);
        };
        let dir = state_dir.join(DIR);
        if !dir.is_dir() {
            return Ok(None);
        }
        let _ = fs::remove_file(dir.join(SOCKET));
        // A long state path is reached through the directory's descriptor.
        let dirfd = fs::File::open(&dir)?;
        let short = format!("/proc/self/fd/{}/{SOCKET}", dirfd.as_raw_fd());
        // Made writable by anyone (the container's user may be anyone) as it
        // is bound: a chmod afterwards would follow whatever the container
        // put at that name meanwhile. The runtime is single-threaded here.
        // SAFETY: umask only changes the process's file mode mask.
        let old = unsafe { libc::umask(0) };
        let socket = UnixDatagram::bind(&short);
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        Ok(Some(Proxy {
            socket: socket?,
            host,
        }))
    }

    /// Reads one datagram; on `READY=1` tells the manager and returns true.
    pub fn relay(&self) -> io::Result<bool> {
        let mut buf = [0u8; 4096];
        let n = match self.socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        };
        let ready = is_ready(&buf[..n]);
        if ready {
            send_to_host(&self.host, READY)?;
        }
        Ok(ready)
    }

    /// What the container sent before it exited: passed on all the same.
    pub fn drain(&self) -> io::Result<()> {
        self.socket.set_nonblocking(true)?;
        let mut buf = [0u8; 4096];
        loop {
            match self.socket.recv(&mut buf) {
                Ok(n) if is_ready(&buf[..n]) => return send_to_host(&self.host, READY),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// `start`: waits until the container says READY=1 (true) or its init
    /// exits (false).
    pub fn wait_ready(&self, pid: i32) -> io::Result<bool> {
        let pidfd = match pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(false),
            Err(e) => return Err(e),
        };
        loop {
            let mut fds = [
                PollFd::new(self.socket.as_fd(), PollFlags::POLLIN),
                PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let readable = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            let (message, exited) = (readable(&fds[0]), readable(&fds[1]));
            if message && self.relay()? {
                return Ok(true);
            }
            if exited && !message {
                return Ok(false);
            }
        }
    }
}

impl AsFd for Proxy {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// The notify protocol: one assignment per line.
fn is_ready(msg: &[u8]) -> bool {
    msg.split(|b| *b == b'\n').any(|line| line == READY)
}

fn send_to_host(host: &str, msg: &[u8]) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    match host.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            sock.send_to_addr(msg, &addr)?;
        }
        None => {
            sock.send_to(msg, Path::new(std::ffi::OsStr::from_bytes(host.as_bytes())))?;
        }
    }
    Ok(())
}

fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags; the fd is ours on success.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_path_follows_the_managers() {
        assert_eq!(
            container_dir("/run/systemd/notify"),
            PathBuf::from("/run/systemd/notify")
        );
        assert_eq!(container_dir("@abstract"), PathBuf::from("/run/notify"));
    }

    #[test]
    fn ready_is_a_line_of_its_own() {
        assert!(is_ready(b"READY=1"));
        assert!(is_ready(b"STATUS=up\nREADY=1\n"));
        assert!(!is_ready(b"READY=10"));
        assert!(!is_ready(b"STATUS=READY=1"));
    }
}
