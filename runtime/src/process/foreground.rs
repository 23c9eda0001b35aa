//! A foreground `run`: wait for the init, pass signals on to it and, when the
//! container has a terminal and no --console-socket was given, relay the pty
//! between the runtime's own stdio and the container.

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::process::exit_code;

/// Signals passed on to the container instead of acted on.
pub const FORWARDED: [Signal; 9] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
    Signal::SIGALRM,
];

/// SIGCHLD and the forwarded signals.
fn waited_for() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    FORWARDED.iter().for_each(|s| set.add(*s));
    set
}

/// Blocks SIGCHLD and the forwarded signals and returns a signalfd for them.
/// Call before `start`: the container may exit at once, and its SIGCHLD must
/// wait for us rather than be dropped.
pub fn block_signals() -> nix::Result<SignalFd> {
    block()?;
    signal_fd()
}

/// Blocks what [`signal_fd`] reads, as runc catches them before its create:
/// a signal that comes while the container is made waits and is passed on
/// once it runs. Returns the mask before, for the container's init to take
/// back at once (its set-up stays interruptible, and nothing pending reaches
/// its exec).
pub fn block() -> nix::Result<SigSet> {
    let mut before = SigSet::empty();
    nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&waited_for()),
        Some(&mut before),
    )?;
    Ok(before)
}

/// A signalfd for the blocked signals, which also reads those that came
/// before it was made. Made after the container's init is cloned, so that no
/// `--preserve-fds` gap hands it to the container.
pub fn signal_fd() -> nix::Result<SignalFd> {
    SignalFd::with_flags(
        &waited_for(),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )
}

/// Puts a terminal in raw mode until dropped.
struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    fn enter(fd: BorrowedFd) -> Option<Self> {
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode {
            fd: fd.try_clone_to_owned().ok()?,
            saved,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(&self.fd, SetArg::TCSANOW, &self.saved);
    }
}

fn copy_winsize(from: BorrowedFd, to: BorrowedFd) {
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ on a winsize we own; failures are harmless.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Reaps every exited child; returns the init's exit code once it has exited.
fn reap_init(init: Pid) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return code,
            Ok(st) if st.pid() == Some(init) => code = exit_code(st).or(code),
            Ok(_) => {}
        }
    }
}

fn read_fd(fd: BorrowedFd, buf: &mut [u8]) -> io::Result<usize> {
    nix::unistd::read(fd, buf).map_err(io::Error::from)
}

/// Waits for the init to exit and returns its exit code (128 + signal if killed).
/// With `notify`, the container's READY=1 is passed on to the service manager.
pub fn wait(
    init: Pid,
    signals: &SignalFd,
    master: Option<OwnedFd>,
    mut notify: Option<crate::notify::Proxy>,
) -> io::Result<i32> {
    let stdin = io::stdin();
    let _raw = master.as_ref().and_then(|_| RawMode::enter(stdin.as_fd()));
    if let Some(m) = &master {
        copy_winsize(stdin.as_fd(), m.as_fd());
    }
    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    let mut buf = [0u8; 16 * 1024];
    let mut stdout = io::stdout();
    loop {
        if let Some(code) = reap_init(init) {
            if let Some(n) = &notify {
                // A READY=1 sent just before the exit is still queued.
                let _ = n.drain();
            }
            // Whatever the container wrote before it exited is still in the pty.
            if let Some(m) = master.as_ref().filter(|_| master_open) {
                let _ = nix::fcntl::fcntl(
                    m,
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                );
                while let Ok(n) = read_fd(m.as_fd(), &mut buf) {
                    if n == 0 || stdout.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = stdout.flush();
            }
            return Ok(code);
        }
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        let master_fd = master.as_ref().map(|m| m.as_fd());
        if let (Some(m), true) = (master_fd, master_open) {
            fds.push(PollFd::new(m, PollFlags::POLLIN));
        }
        if let (Some(_), true) = (master_fd, stdin_open) {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        if let Some(n) = &notify {
            fds.push(PollFd::new(n.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            while let Ok(Some(info)) = signals.read_signal() {
                let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                    continue;
                };
                match (sig, master_fd) {
                    (Signal::SIGCHLD, _) => {}
                    (Signal::SIGWINCH, Some(m)) => copy_winsize(stdin.as_fd(), m),
                    _ => {
                        let _ = kill(init, sig);
                    }
                }
            }
        }
        let mut i = 1;
        if let (Some(m), true) = (master_fd, master_open) {
            if ready[i] {
                match read_fd(m, &mut buf) {
                    Ok(n) if n > 0 => {
                        stdout.write_all(&buf[..n])?;
                        stdout.flush()?;
                    }
                    // EIO: every holder of the slave has gone.
                    _ => master_open = false,
                }
            }
            i += 1;
        }
        if let (Some(m), true) = (master_fd, stdin_open) {
            if ready.get(i).copied().unwrap_or(false) {
                match read_fd(stdin.as_fd(), &mut buf) {
                    Ok(n) if n > 0 => {
                        let _ = nix::unistd::write(m, &buf[..n]);
                    }
                    _ => stdin_open = false,
                }
            }
        }
        if notify.is_some() && ready.last().copied().unwrap_or(false) {
            // Once READY=1 is passed on the proxy has done its job.
            if notify.as_ref().is_some_and(|n| n.relay().unwrap_or(true)) {
                notify = None;
            }
        }
    }
}
