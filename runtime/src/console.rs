//! process.terminal: a pty made inside the container, its master sent over
//! `--console-socket` with SCM_RIGHTS (the pty name as payload, as runc does), its
//! slave the process's controlling terminal and stdio.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::Box as ConsoleSize;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("connecting to console socket {path}: {source}")]
    Connect { path: String, source: io::Error },
    #[error("setting up the terminal: {what}: {source}")]
    Pty {
        what: &'static str,
        source: io::Error,
    },
}

fn pty_err(what: &'static str) -> impl FnOnce(io::Error) -> ConsoleError {
    move |source| ConsoleError::Pty { what, source }
}

/// Connects to the console socket (in the runtime's mount namespace, before the
/// clone). A path longer than sun_path is reached through its directory's fd.
pub fn connect(path: &Path) -> Result<UnixStream, ConsoleError> {
    let err = |source| ConsoleError::Connect {
        path: path.display().to_string(),
        source,
    };
    if path.as_os_str().len() < 100 {
        return UnixStream::connect(path).map_err(err);
    }
    let dir = std::fs::File::open(path.parent().unwrap_or(Path::new("/"))).map_err(err)?;
    let short = format!(
        "/proc/self/fd/{}/{}",
        dir.as_raw_fd(),
        path.file_name().unwrap_or_default().to_string_lossy()
    );
    UnixStream::connect(short).map_err(err)
}

/// Receives the pty master the init sends (the other end of `setup`).
pub fn receive_master(socket: &UnixStream) -> Result<OwnedFd, ConsoleError> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| pty_err("receiving the pty master")(e.into()))?;
    for cmsg in msg
        .cmsgs()
        .map_err(|e| pty_err("receiving the pty master")(e.into()))?
    {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this fd for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(pty_err("receiving the pty master")(io::Error::other(
        "no fd in the message",
    )))
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// In the init, after pivot_root and setsid: creates the pty, hands the master
/// to the socket, and makes the slave fds 0, 1, 2 and the controlling terminal.
pub fn setup(socket: &UnixStream, size: Option<ConsoleSize>) -> Result<(), ConsoleError> {
    // SAFETY: libc pty calls on fds we own; each result is checked.
    unsafe {
        let master = check(libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        ))
        .map_err(pty_err("open /dev/ptmx"))?;
        let master = OwnedFd::from_raw_fd(master);
        check(libc::unlockpt(master.as_raw_fd())).map_err(pty_err("unlockpt"))?;
        let mut n: libc::c_uint = 0;
        check(libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n))
            .map_err(pty_err("TIOCGPTN"))?;
        let name = format!("/dev/pts/{n}");
        let cname = crate::rootfs::cstring(&name);
        let slave = check(libc::open(
            cname.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        ))
        .map_err(pty_err("open pty slave"))?;
        let slave = OwnedFd::from_raw_fd(slave);
        if let Some(size) = size {
            let ws = libc::winsize {
                ws_row: size.height() as u16,
                ws_col: size.width() as u16,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            check(libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws))
                .map_err(pty_err("TIOCSWINSZ"))?;
        }
        let fds: [RawFd; 1] = [master.as_raw_fd()];
        sendmsg::<()>(
            socket.as_raw_fd(),
            &[IoSlice::new(name.as_bytes())],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .map_err(|e| pty_err("sending the pty master")(e.into()))?;
        drop(master);
        check(libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0)).map_err(pty_err("TIOCSCTTY"))?;
        for fd in 0..3 {
            check(libc::dup2(slave.as_raw_fd(), fd)).map_err(pty_err("dup2 pty slave"))?;
        }
    }
    Ok(())
}
