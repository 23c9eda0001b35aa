//! Processes: the clone that makes the container's init, the channel to it, the
//! init's own set-up, and small helpers for watching pids.

pub mod channel;
pub mod exec;
pub mod foreground;
pub mod init;

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

/// clone3's argument block (linux/sched.h).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Fork-like clone with namespace flags: returns `None` in the child, the child's
/// pid in the parent. One system call creates every new namespace at once.
/// With `into_cgroup` (a cgroup2 directory) the child is born in that cgroup,
/// or the clone fails and nothing was made.
///
/// # Safety
/// The caller must be single-threaded, and the child must end in exec or `_exit`.
pub unsafe fn clone_with_flags(
    flags: u64,
    into_cgroup: Option<BorrowedFd>,
) -> io::Result<Option<Pid>> {
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    // clone3 refuses an exit signal with CLONE_PARENT: the child then signals
    // our parent as we would, with SIGCHLD.
    let exit_signal = if flags & libc::CLONE_PARENT as u64 != 0 {
        0
    } else {
        libc::SIGCHLD as u64
    };
    let args = CloneArgs {
        flags: flags | into_cgroup.map_or(0, |_| CLONE_INTO_CGROUP),
        exit_signal,
        cgroup: into_cgroup.map_or(0, |fd| fd.as_raw_fd() as u64),
        ..Default::default()
    };
    let mut ret = libc::syscall(
        libc::SYS_clone3,
        &args as *const CloneArgs,
        std::mem::size_of::<CloneArgs>(),
    );
    if ret < 0
        && into_cgroup.is_none()
        && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS)
    {
        // clone(2) with a null stack behaves like fork on the same stack.
        ret = libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as u64,
            0usize,
            0usize,
            0usize,
            0usize,
        );
    }
    match ret {
        r if r < 0 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// `clone_with_flags` for a process that belongs in the container's cgroups,
/// placed as `entry` says; returns the entry that held (a cgroup that refuses
/// CLONE_INTO_CGROUP, or a kernel before 5.7, leaves the move to the parent).
///
/// # Safety
/// As for `clone_with_flags`.
pub unsafe fn clone_into_cgroups(
    flags: u64,
    entry: crate::cgroups::Entry,
) -> io::Result<(Option<Pid>, crate::cgroups::Entry)> {
    use crate::cgroups::Entry;
    use std::os::fd::AsFd;
    if let Entry::AtClone(fd) = &entry {
        if let Ok(child) = clone_with_flags(flags, Some(fd.as_fd())) {
            return Ok((child, entry));
        }
        return clone_with_flags(flags, None).map(|child| (child, Entry::ByParent));
    }
    clone_with_flags(flags, None).map(|child| (child, entry))
}

/// Field 22 of /proc/<pid>/stat (start time in clock ticks), or None if the
/// process is gone or a zombie: a zombie container has stopped.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain system call; on success it returns a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until `pid` has exited (it need not be our child), at most `timeout`.
/// Returns whether it exited.
pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let fd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(_) => return true,
    };
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if n > 0 {
            return true;
        }
        if n == 0 {
            return false;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return false;
        }
    }
}

/// Exit code as a shell reports it: the status, or 128 + the signal.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Reaps a child and describes how it ended.
pub fn reap(pid: Pid) -> String {
    match waitpid(pid, None) {
        Ok(WaitStatus::Exited(_, code)) => format!("exit status {code}"),
        Ok(WaitStatus::Signaled(_, sig, _)) => format!("killed by {sig}"),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("wait: {e}"),
    }
}

/// The second fork (into a joined pid namespace, or a time namespace): the
/// middle process reports the child's pid on `channel` and leaves; the child
/// returns only once that report is written, so the runtime always reads the
/// pid before anything the child says (both write to the same socket).
///
/// # Safety
/// As [`clone_with_flags`]: the caller is single-threaded.
pub unsafe fn fork_reporting_pid(channel: &channel::Channel) -> io::Result<()> {
    let (reported, report_done) = nix::unistd::pipe().map_err(io::Error::from)?;
    // SAFETY: forwarded to the caller.
    match unsafe { clone_with_flags(libc::CLONE_PARENT as u64, None) }? {
        Some(child) => {
            drop(reported);
            let _ = channel.send(&channel::Message::InitPid {
                pid: child.as_raw(),
            });
            drop(report_done);
            // SAFETY: the middle process leaves without running destructors.
            unsafe { libc::_exit(0) }
        }
        None => {
            drop(report_done);
            // EOF once the middle process has sent the pid and exited.
            let mut byte = [0u8; 1];
            let _ = nix::unistd::read(&reported, &mut byte);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_self() {
        let me = std::process::id() as i32;
        assert!(proc_start_time(me).is_some());
        assert_eq!(proc_start_time(me), proc_start_time(me));
        assert!(proc_start_time(i32::MAX).is_none());
    }
}
