//! Running OCI hooks: the state JSON on stdin, args and env as given, a timeout,
//! and the hook's output kept for the error message.
//!
//! No threads: some hooks run inside the container's init, which must stay
//! single-threaded. stdin, stdout and stderr are memfds, so nothing can block on
//! a pipe, and the timeout is a poll on the hook's pidfd.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::Duration;

use oci_spec::runtime::{Hook, Hooks};

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("error running {kind} hook #{index} ({path}): {detail}")]
    Failed {
        kind: &'static str,
        index: usize,
        path: String,
        detail: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    pub fn of(self, hooks: Option<&Hooks>) -> &[Hook] {
        let Some(h) = hooks else { return &[] };
        let list = match self {
            HookKind::Prestart => h.prestart(),
            HookKind::CreateRuntime => h.create_runtime(),
            HookKind::CreateContainer => h.create_container(),
            HookKind::StartContainer => h.start_container(),
            HookKind::Poststart => h.poststart(),
            HookKind::Poststop => h.poststop(),
        };
        list.as_deref().unwrap_or(&[])
    }
}

fn memfd(name: &str) -> std::io::Result<File> {
    let cname = std::ffi::CString::new(name).unwrap_or_default();
    // SAFETY: memfd_create with a valid name; the fd is ours on success.
    let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd from the kernel.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Runs every hook of `kind` in order; the first failure stops the list.
pub fn run(kind: HookKind, hooks: Option<&Hooks>, state_json: &[u8]) -> Result<(), HookError> {
    for (index, hook) in kind.of(hooks).iter().enumerate() {
        run_one(hook, state_json).map_err(|detail| HookError::Failed {
            kind: kind.name(),
            index,
            path: hook.path().display().to_string(),
            detail,
        })?;
    }
    Ok(())
}

/// Runs every hook of `kind`, going on past failures; returns them all.
pub fn run_all(kind: HookKind, hooks: Option<&Hooks>, state_json: &[u8]) -> Vec<HookError> {
    let mut errors = Vec::new();
    for (index, hook) in kind.of(hooks).iter().enumerate() {
        if let Err(detail) = run_one(hook, state_json) {
            errors.push(HookError::Failed {
                kind: kind.name(),
                index,
                path: hook.path().display().to_string(),
                detail,
            });
        }
    }
    errors
}

fn run_one(hook: &Hook, state_json: &[u8]) -> Result<(), String> {
    let mut stdin = memfd("hook-stdin").map_err(|e| e.to_string())?;
    stdin.write_all(state_json).map_err(|e| e.to_string())?;
    stdin.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut out = memfd("hook-stdout").map_err(|e| e.to_string())?;
    let mut err = memfd("hook-stderr").map_err(|e| e.to_string())?;

    let mut cmd = Command::new(hook.path());
    let args = hook.args().as_deref().unwrap_or(&[]);
    if let Some(argv0) = args.first() {
        cmd.arg0(argv0);
    }
    cmd.args(args.iter().skip(1));
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::from(stdin.try_clone().map_err(|e| e.to_string())?))
        .stdout(Stdio::from(out.try_clone().map_err(|e| e.to_string())?))
        .stderr(Stdio::from(err.try_clone().map_err(|e| e.to_string())?));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // Hooks start with default signal handling whatever the runtime masked.
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;

    let timeout = hook.timeout().map(|t| Duration::from_secs(t as u64));
    if let Some(t) = timeout {
        if !crate::process::wait_gone(child.id() as i32, t) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {}s", t.as_secs()));
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let text = |f: &mut File| {
        let mut s = String::new();
        let _ = f.seek(SeekFrom::Start(0));
        let _ = Read::by_ref(f).take(4096).read_to_string(&mut s);
        s.trim_end().to_string()
    };
    if status.success() {
        // What a hook that worked says is for the user (minirun-net tells
        // when it turns on IPv6 forwarding, say): passed on as it is.
        let said = text(&mut err);
        if !said.is_empty() {
            eprintln!("{said}");
        }
        return Ok(());
    }
    let (stdout, stderr) = (text(&mut out), text(&mut err));
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    };
    Err(format!("{how}, stdout: {stdout}, stderr: {stderr}"))
}
