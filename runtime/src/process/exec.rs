//! The child side of `exec`: join the container's namespaces (through its
//! init's), fork once more if a pid namespace was joined, become the process
//! and exec it.

use std::convert::Infallible;
use std::fs::File;
use std::os::unix::net::UnixStream;

use nix::sched::setns;
use oci_spec::runtime::{LinuxNamespaceType, Process};

use crate::console;
use crate::namespaces::clone_flag;
use crate::process::channel::{Channel, Message};
use crate::process::init::{become_process, exec_program, InitError};

pub struct ExecChild {
    pub process: Process,
    /// The init's namespaces, opened by the parent, in the order to join them.
    pub namespaces: Vec<(LinuxNamespaceType, File)>,
    pub channel: Channel,
    pub console: Option<UnixStream>,
    pub preserve_fds: u32,
    /// The container's seccomp filter, compiled by the parent.
    pub seccomp: Option<crate::seccomp::Filter>,
    /// run.oci.keep_original_groups was set on the container.
    pub keep_groups: bool,
    /// The LSM labels of the process, decided by the runtime.
    pub labels: crate::lsm::Labels,
    /// The container's cgroups, when the child moves itself into them
    /// (`cgroups::Entry::ByItself`).
    pub join_cgroups: Option<crate::cgroups::CgroupPaths>,
}

pub fn run(cfg: ExecChild) -> ! {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"minirun:EXEC".as_ptr()) };
    let error = match setup(&cfg) {
        Ok(never) => match never {},
        Err(e) => e.to_string(),
    };
    if cfg
        .channel
        .send(&Message::Failed {
            error: error.clone(),
        })
        .is_err()
    {
        eprintln!("minirun exec: {error}");
    }
    // SAFETY: leaving the forked child without running the parent's destructors.
    unsafe { libc::_exit(127) }
}

fn setup(cfg: &ExecChild) -> Result<Infallible, InitError> {
    // Before it can fork, while the paths are still the host's.
    let joined = cfg.join_cgroups.as_ref().map_or(Ok(()), |c| c.join_self());
    let first = 3 + cfg.preserve_fds;
    // SAFETY: close_range only changes fd flags.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    cfg.channel.expect(Message::Proceed, "Proceed")?;
    joined?;

    let fork_into_pid_ns = || {
        // setns(pid) applies to children: fork into the namespace.
        // SAFETY: single-threaded; the child goes on, this process only reports.
        unsafe { crate::process::fork_reporting_pid(&cfg.channel) }.map_err(|source| {
            InitError::Sys {
                what: "fork into the pid namespace".into(),
                source,
            }
        })
    };
    let (mut joined_pid, mut forked) = (false, false);
    let mut labels = None;
    for (kind, file) in &cfg.namespaces {
        if *kind == LinuxNamespaceType::Mount {
            // The mount namespace goes last: before it, the process that
            // will exec exists and opens its LSM attributes in the host's
            // /proc.
            if joined_pid && !forked {
                fork_into_pid_ns()?;
                forked = true;
            }
            labels = Some(cfg.labels.open()?);
        }
        setns(file, clone_flag(*kind)).map_err(|e| InitError::Sys {
            what: format!("joining the container's {kind} namespace"),
            source: e.into(),
        })?;
        joined_pid |= *kind == LinuxNamespaceType::Pid;
    }
    if joined_pid && !forked {
        fork_into_pid_ns()?;
    }
    let labels = match labels {
        Some(l) => l,
        None => cfg.labels.open()?,
    };
    if cfg.process.terminal().unwrap_or(false) {
        // SAFETY: setsid has no memory effects.
        unsafe { libc::setsid() };
        match &cfg.console {
            Some(sock) => console::setup(sock, cfg.process.console_size())?,
            None => {
                return Err(InitError::Exec(
                    "process.terminal is true: use --console-socket to receive the terminal".into(),
                ))
            }
        }
    }
    let in_userns = cfg
        .namespaces
        .iter()
        .any(|(k, _)| *k == LinuxNamespaceType::User);
    let (program, args, env) = become_process(
        &cfg.process,
        in_userns,
        cfg.seccomp.as_ref(),
        cfg.keep_groups,
        &cfg.channel,
        labels,
    )?;
    cfg.channel.send(&Message::Ready)?;
    Err(exec_program(&program, &args, &env))
}
