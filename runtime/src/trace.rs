//! `MINIRUN_TRACE=<file>`: a line per phase of `create`, `start` and `run`,
//! from the runtime and from the container's init, appended to one file:
//! `<µs of CLOCK_MONOTONIC> <pid> <phase>` (the pid as the process sees it:
//! the init's is 1 in a new pid namespace). bench.py's `run_phases` turns
//! many runs of it into the median time of each phase.
//!
//! Why a file and not stderr: the init's stderr is the container's, where the
//! lines would become the container's output. Why CLOCK_MONOTONIC: the
//! caller's clock too, so the start of the process (which no line inside it
//! can see) is the gap between the caller's spawn and the first line.
//!
//! Off (the variable unset), a phase costs one atomic load.

use std::ffi::OsStr;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::sync::atomic::{AtomicI32, Ordering};

/// The trace file's descriptor, or -1. Opened close-on-exec: the init inherits
/// it through clone and loses it at the exec of the container's process.
static FD: AtomicI32 = AtomicI32::new(-1);

/// Opens the file `MINIRUN_TRACE` names, if it is set. A file that cannot be
/// opened leaves tracing off: a trace never fails the runtime.
pub fn from_env() {
    let Some(path) = std::env::var_os("MINIRUN_TRACE") else {
        return;
    };
    if let Some(fd) = open_append(&path) {
        FD.store(fd, Ordering::Relaxed);
    }
}

/// The trace file's descriptor while tracing: the init keeps it out of what
/// the container's process inherits.
pub fn fd() -> Option<i32> {
    let fd = FD.load(Ordering::Relaxed);
    (fd >= 0).then_some(fd)
}

fn open_append(path: &OsStr) -> Option<i32> {
    let mut bytes = path.as_bytes().to_vec();
    if bytes.is_empty() || bytes.contains(&0) {
        return None;
    }
    bytes.push(0);
    // SAFETY: a NUL-terminated path; the flags make no claim on memory.
    let fd = unsafe {
        libc::open(
            bytes.as_ptr().cast(),
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC,
            0o600,
        )
    };
    (fd >= 0).then_some(fd)
}

/// Marks the end of `phase` in this process.
pub fn point(phase: &str) {
    let fd = FD.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let micros = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000;
    // One write(2) of a whole line: O_APPEND keeps the runtime's and the
    // init's lines whole when both write. No allocation: the init calls this
    // between clone and exec.
    let mut line = [0u8; 160];
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() };
    let mut cursor = std::io::Cursor::new(&mut line[..]);
    let _ = writeln!(cursor, "{micros} {pid} {phase}");
    let len = cursor.position() as usize;
    // SAFETY: writes `len` initialised bytes of `line`.
    unsafe { libc::write(fd, line.as_ptr().cast(), len) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_is_one_whole_line_in_the_file() {
        let dir = std::env::temp_dir().join(format!("minirun-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("trace");
        let fd = open_append(path.as_os_str()).expect("opened");
        FD.store(fd, Ordering::Relaxed);
        point("bundle loaded");
        point("cloned");
        FD.store(-1, Ordering::Relaxed);
        // SAFETY: our own descriptor, no longer published.
        unsafe { libc::close(fd) };
        point("not traced once off");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let lines: Vec<Vec<&str>> = text.lines().map(|l| l.splitn(3, ' ').collect()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0][2], "bundle loaded");
        assert_eq!(lines[1][2], "cloned");
        assert_eq!(lines[0][1], std::process::id().to_string());
        let t0: u64 = lines[0][0].parse().unwrap();
        let t1: u64 = lines[1][0].parse().unwrap();
        assert!(t1 >= t0);
    }

    #[test]
    fn an_empty_or_unopenable_path_leaves_tracing_off() {
        assert_eq!(open_append(OsStr::new("")), None);
        assert_eq!(open_append(OsStr::new("/nonexistent-dir/x/trace")), None);
    }
}
