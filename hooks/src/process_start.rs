//! The start of both binaries' processes, in place of Rust's runtime set-up.
//!
//! `minirun` starts twice per container (the call and its re-exec from a
//! read-only mount, see the runtime's `sealed_exe`) and `minirun-net` once per
//! attach and detach, so their start is on every container's path. Rust's own
//! set-up before `main` costs ~0.15 ms of CPU per process here (3,000
//! interleaved starts of `--version`: 1.50 → 1.36 ms for the runtime, 2.22 →
//! 2.03 for the hook), most of it glibc reading /proc/self/maps to find the
//! main thread's stack for the stack-overflow handler. Both binaries therefore
//! export C's `main` themselves (`#![no_main]`) and call [`prepare`], which
//! keeps the two parts of that set-up they rely on. What is given up: a stack
//! overflow ends in a plain SIGSEGV instead of Rust's message.

/// Ignores SIGPIPE, so that writing to a closed pipe or socket is an error
/// (EPIPE) rather than death, as under Rust's runtime; processes these binaries
/// spawn get the default back (std's `Command` resets it, and the init does
/// before it execs the container's program). Opens /dev/null on any of the
/// descriptors 0-2 that is closed, so that no file the process opens later
/// becomes its stdout or stderr.
pub fn prepare() {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: `fds` is a valid array of three pollfd for the call's duration.
    if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } < 0 {
        return;
    }
    for pfd in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
        // SAFETY: a NUL-terminated path. open takes the lowest free
        // descriptor: this one, the lower ones being open or opened just now.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if fd >= 0 && fd != pfd.fd {
            // SAFETY: `fd` was just opened and is owned here.
            unsafe { libc::close(fd) };
        }
    }
}
