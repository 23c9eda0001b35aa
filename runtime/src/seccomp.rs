//! linux.seccomp as a libseccomp filter.
//!
//! The filter is compiled in the runtime before anything of the container
//! exists, so a profile libseccomp refuses is a create-time error with nothing
//! left behind; the init (and an exec'd process) inherits the compiled filter
//! and loads it as late as it can (see `process::init::become_process`).

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
fn action(
    a: LinuxSeccompAction,
    errno: Option<u32>,
    field: &str,
) -> Result<ScmpAction, SeccompError> {
    Ok(match a {
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
        LinuxSeccompAction::ScmpActNotify => {
            return Err(invalid(
                field,
                "SCMP_ACT_NOTIFY (a seccomp agent on listenerPath) is not supported",
            ))
        }
    })
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

/// Compiles the profile. Syscall names this libseccomp does not know are
/// skipped, as runc and crun do: profiles name new syscalls before every
/// host has them.
pub fn compile(s: &LinuxSeccomp) -> Result<ScmpFilterContext, SeccompError> {
    let default = action(s.default_action(), s.default_errno_ret(), "defaultAction")?;
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
        let act = action(rule.action(), rule.errno_ret(), &format!("{field}.action"))?;
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
        let e = compile(&p).unwrap_err().to_string();
        assert!(
            e.starts_with("linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY"),
            "{e}"
        );
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":7,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        let e = compile(&p).unwrap_err().to_string();
        assert!(
            e.contains("syscalls[0].args[0].index: 7 is not a syscall argument"),
            "{e}"
        );
    }
}
