//! linux.seccomp as a libseccomp filter.
//!
//! The filter is compiled in the runtime before anything of the container
//! exists, so a profile libseccomp refuses is a create-time error with nothing
//! left behind; the init (and an exec'd process) inherits the compiled filter
//! and loads it as late as it can (see `process::init::become_process`).
//!
//! With `listenerPath` the filter is loaded with a listener (a seccomp user
//! notification fd) that the runtime hands to the agent on that socket, with
//! the container's state, as the runtime-spec describes. Like crun, minirun
//! does so whenever listenerPath is set, with or without SCMP_ACT_NOTIFY
//! rules: the agent always hears of the container it was configured for.
//! libseccomp adds a listener only for NOTIFY rules, so such a filter is
//! exported as BPF and loaded with seccomp(2) directly.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::str::FromStr;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("linux.seccomp.{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("linux.seccomp: libseccomp: {0}")]
    Library(String),
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SeccompError {
    SeccompError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn lib(e: libseccomp::error::SeccompError) -> SeccompError {
    SeccompError::Library(e.to_string())
}

/// The libseccomp action for an OCI action; `field` names it in errors.
fn action(a: LinuxSeccompAction, errno: Option<u32>) -> ScmpAction {
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => {
            ScmpAction::Errno(errno.unwrap_or(libc::EPERM as u32) as i32)
        }
        LinuxSeccompAction::ScmpActTrace => {
            ScmpAction::Trace(errno.unwrap_or(libc::EPERM as u32) as u16)
        }
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    }
}

fn compare(op: LinuxSeccompOperator, value_two: Option<u64>) -> ScmpCompareOp {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // The mask is `value`, the expected masked value `valueTwo`.
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value_two.unwrap_or(0)),
    }
}

/// What the process does between loading a filter with a listener and
/// handing the listener over (sendmsg, and memory for the message).
const HANDOFF_SYSCALLS: [&str; 5] = ["sendmsg", "brk", "mmap", "munmap", "mremap"];

/// A compiled profile and how to load it.
pub struct Filter {
    ctx: ScmpFilterContext,
    /// The agent of linux.seccomp.listenerPath: load with a listener for it.
    agent: Option<Agent>,
    /// With an agent, the filter as BPF, exported by the runtime.
    bpf: Vec<u8>,
    /// seccomp(2) flags of linux.seccomp.flags, for a load without libseccomp.
    flags: libc::c_ulong,
}

/// A seccomp agent: who gets the listener, and what it is told.
#[derive(Debug, Clone)]
pub struct Agent {
    pub path: PathBuf,
    pub metadata: String,
}

/// The version of the message to the agent (runtime-spec's
/// ContainerProcessState).
const AGENT_MESSAGE_VERSION: &str = "0.2.0";

/// Sends the agent its listener with the container's state and the pid of
/// the process the filter is on.
pub fn hand_to_agent(
    agent: &Agent,
    listener: Option<OwnedFd>,
    pid: i32,
    state: &serde_json::Value,
) -> Result<(), SeccompError> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::os::fd::AsRawFd;
    let fail = |what: String| invalid("listenerPath", what);
    let listener = listener.ok_or_else(|| fail("no listener came with the filter".into()))?;
    let stream = std::os::unix::net::UnixStream::connect(&agent.path)
        .map_err(|e| fail(format!("connecting to {}: {e}", agent.path.display())))?;
    let msg = serde_json::to_vec(&serde_json::json!({
        "ociVersion": AGENT_MESSAGE_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": agent.metadata,
        "state": state,
    }))
    .map_err(|e| fail(e.to_string()))?;
    let fds = [listener.as_raw_fd()];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &[std::io::IoSlice::new(&msg)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| fail(format!("sending to {}: {e}", agent.path.display())))?;
    Ok(())
}

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const SECCOMP_FILTER_FLAG_TSYNC: libc::c_ulong = 1;
const SECCOMP_FILTER_FLAG_LOG: libc::c_ulong = 2;
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: libc::c_ulong = 4;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_ulong = 8;
const SECCOMP_FILTER_FLAG_TSYNC_ESRCH: libc::c_ulong = 16;
const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: libc::c_ulong = 32;

impl Filter {
    pub fn agent(&self) -> Option<&Agent> {
        self.agent.as_ref()
    }

    /// Loads the filter into this process; returns the listener if it has one.
    pub fn load(&self) -> Result<Option<OwnedFd>, String> {
        if self.agent.is_none() {
            return self.ctx.load().map(|()| None).map_err(|e| e.to_string());
        }
        let bpf = &self.bpf;
        let prog = libc::sock_fprog {
            len: (bpf.len() / std::mem::size_of::<libc::sock_filter>()) as u16,
            filter: bpf.as_ptr() as *mut libc::sock_filter,
        };
        let mut flags = self.flags | SECCOMP_FILTER_FLAG_NEW_LISTENER;
        if flags & SECCOMP_FILTER_FLAG_TSYNC != 0 {
            // The kernel takes TSYNC with a listener only in this form.
            flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
        // SAFETY: `prog` points at `bpf`, which outlives the call; the fd
        // returned is ours.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                flags,
                &prog as *const libc::sock_fprog,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        // SAFETY: a fresh descriptor from the kernel.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
    }
}

/// Compiles the profile. Syscall names this libseccomp does not know are
/// skipped, as runc and crun do: profiles name new syscalls before every
/// host has them.
pub fn compile(s: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    // The process hands its own listener over after the load: had the filter
    // to notify the hand-off itself, nobody would hold the listener to answer.
    if s.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(invalid(
            "defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action (the process could not hand its listener over)",
        ));
    }
    for (i, rule) in s.syscalls().iter().flatten().enumerate() {
        if rule.action() != LinuxSeccompAction::ScmpActNotify {
            continue;
        }
        if let Some(name) = rule
            .names()
            .iter()
            .find(|n| HANDOFF_SYSCALLS.contains(&n.as_str()))
        {
            return Err(invalid(
                format!("syscalls[{i}]"),
                format!(
                    "SCMP_ACT_NOTIFY on {name}: the process needs it to hand its listener over"
                ),
            ));
        }
    }
    let ctx = compile_rules(s)?;
    let listener_path = s.listener_path().clone();
    let notifies = s
        .syscalls()
        .iter()
        .flatten()
        .any(|r| r.action() == LinuxSeccompAction::ScmpActNotify);
    if notifies && listener_path.is_none() {
        return Err(invalid(
            "listenerPath",
            "SCMP_ACT_NOTIFY needs a listener: the path of the seccomp agent's socket",
        ));
    }
    if let Some(p) = listener_path.as_ref().filter(|p| !p.is_absolute()) {
        return Err(invalid(
            "listenerPath",
            format!("{} is not an absolute path", p.display()),
        ));
    }
    let flags = s
        .flags()
        .iter()
        .flatten()
        .map(|f| match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
        })
        .fold(0, |a, f| a | f);
    let bpf = if listener_path.is_some() {
        export_bpf(&ctx)?
    } else {
        Vec::new()
    };
    Ok(Filter {
        ctx,
        bpf,
        agent: listener_path.map(|path| Agent {
            path,
            metadata: s.listener_metadata().clone().unwrap_or_default(),
        }),
        flags,
    })
}

/// The filter as BPF (libseccomp 2.5 exports only to a descriptor).
fn export_bpf(ctx: &ScmpFilterContext) -> Result<Vec<u8>, SeccompError> {
    use std::io::{Read, Seek};
    let fd =
        nix::sys::memfd::memfd_create(c"minirun-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| SeccompError::Library(format!("memfd_create: {e}")))?;
    let mut file = std::fs::File::from(fd);
    ctx.export_bpf(&file).map_err(lib)?;
    let mut bpf = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut bpf))
        .map_err(|e| SeccompError::Library(format!("reading the exported filter: {e}")))?;
    Ok(bpf)
}

fn compile_rules(s: &LinuxSeccomp) -> Result<ScmpFilterContext, SeccompError> {
    let default = action(s.default_action(), s.default_errno_ret());
    let mut ctx = ScmpFilterContext::new(default).map_err(lib)?;
    // no_new_privs is the process's choice (process.noNewPrivileges), not the
    // filter's: without it the filter is loaded while CAP_SYS_ADMIN is held.
    ctx.set_ctl_nnp(false).map_err(lib)?;
    for (i, arch) in s.architectures().iter().flatten().enumerate() {
        let name = arch.to_string();
        let a = ScmpArch::from_str(&name).map_err(|_| {
            invalid(
                format!("architectures[{i}]"),
                format!("unknown architecture {name}"),
            )
        })?;
        ctx.add_arch(a)
            .map_err(|e| invalid(format!("architectures[{i}]"), e.to_string()))?;
    }
    for flag in s.flags().iter().flatten() {
        match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => ctx.set_ctl_log(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => ctx.set_ctl_tsync(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => ctx.set_ctl_ssb(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => ctx.set_ctl_waitkill(true),
        }
        .map_err(|e| invalid("flags", format!("{flag}: {e}")))?;
    }
    for (i, rule) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("syscalls[{i}]");
        let act = action(rule.action(), rule.errno_ret());
        if act == default {
            continue;
        }
        let mut conditions = Vec::new();
        for (j, arg) in rule.args().iter().flatten().enumerate() {
            if arg.index() > 5 {
                return Err(invalid(
                    format!("{field}.args[{j}].index"),
                    format!("{} is not a syscall argument (0-5)", arg.index()),
                ));
            }
            let (op, datum) = match arg.op() {
                LinuxSeccompOperator::ScmpCmpMaskedEq => (
                    compare(arg.op(), Some(arg.value())),
                    arg.value_two().unwrap_or(0),
                ),
                op => (compare(op, arg.value_two()), arg.value()),
            };
            conditions.push(ScmpArgCompare::new(arg.index() as u32, op, datum));
        }
        for name in rule.names() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let added = if conditions.is_empty() {
                ctx.add_rule(act, syscall)
            } else {
                ctx.add_rule_conditional(act, syscall, &conditions)
            };
            added.map_err(|e| invalid(format!("{field} ({name})"), e.to_string()))?;
        }
    }
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_profile_compiles_and_unknown_syscalls_are_skipped() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,
               "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
               "syscalls":[{"names":["read","write","no_such_syscall_at_all"],"action":"SCMP_ACT_ALLOW"},
                           {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
                           {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}"#,
        );
        assert!(compile(&p).is_ok());
    }

    #[test]
    fn unsupported_parts_name_their_field() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        let e = compile(&p).err().expect("refused").to_string();
        assert!(
            e.starts_with("linux.seccomp.listenerPath: SCMP_ACT_NOTIFY needs a listener"),
            "{e}"
        );
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"agent.sock","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        let e = compile(&p).err().expect("refused").to_string();
        assert!(e.contains("agent.sock is not an absolute path"), "{e}");
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(compile(&p).is_ok());
        let p = profile(r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/run/agent.sock"}"#);
        let e = compile(&p).err().expect("refused").to_string();
        assert!(
            e.starts_with("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot"),
            "{e}"
        );
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock","syscalls":[{"names":["read","sendmsg"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        let e = compile(&p).err().expect("refused").to_string();
        assert!(
            e.starts_with("linux.seccomp.syscalls[0]: SCMP_ACT_NOTIFY on sendmsg"),
            "{e}"
        );
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":7,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        let e = compile(&p).err().expect("refused").to_string();
        assert!(
            e.contains("syscalls[0].args[0].index: 7 is not a syscall argument"),
            "{e}"
        );
    }
}
