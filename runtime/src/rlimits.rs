//! process.rlimits.

use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

#[derive(Debug, thiserror::Error)]
#[error("setting rlimit {name} to soft {soft} hard {hard}: {source}")]
pub struct RlimitError {
    name: String,
    soft: u64,
    hard: u64,
    source: std::io::Error,
}

fn resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// Stack and address space below which nothing a container runs starts: the
/// process would die of SIGSEGV before its first instruction, with no word of
/// why. (Measured on Linux 6.18: a static busybox needs 16 KiB of stack and
/// 4 MiB of address space; the floors stay well below, at a page and a MiB,
/// so no program that could run is refused.)
const LEAST_STACK: u64 = 4 << 10;
const LEAST_AS: u64 = 1 << 20;

/// What no process can start under, and what setrlimit would refuse, said
/// before anything exists: (index in process.rlimits, why).
pub fn check(rlimits: &[PosixRlimit]) -> Result<(), (usize, String)> {
    let mut seen = Vec::new();
    for (i, r) in rlimits.iter().enumerate() {
        let name = format!("{:?}", r.typ())
            .to_uppercase()
            .replace("RLIMIT", "RLIMIT_");
        if seen.contains(&r.typ()) {
            return Err((i, format!("{name} is set twice")));
        }
        seen.push(r.typ());
        if r.soft() > r.hard() {
            return Err((
                i,
                format!(
                    "{name}: soft limit {} is above hard limit {}",
                    r.soft(),
                    r.hard()
                ),
            ));
        }
        let least = match r.typ() {
            PosixRlimitType::RlimitStack => LEAST_STACK,
            PosixRlimitType::RlimitAs => LEAST_AS,
            _ => 0,
        };
        if r.soft() < least {
            return Err((
                i,
                format!(
                    "{name}: soft limit {} bytes is below what any program needs to start ({least}); the process would die of SIGSEGV before its first instruction",
                    r.soft()
                ),
            ));
        }
    }
    Ok(())
}

fn name(t: PosixRlimitType) -> &'static str {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => "RLIMIT_CPU",
        RlimitFsize => "RLIMIT_FSIZE",
        RlimitData => "RLIMIT_DATA",
        RlimitStack => "RLIMIT_STACK",
        RlimitCore => "RLIMIT_CORE",
        RlimitRss => "RLIMIT_RSS",
        RlimitNproc => "RLIMIT_NPROC",
        RlimitNofile => "RLIMIT_NOFILE",
        RlimitMemlock => "RLIMIT_MEMLOCK",
        RlimitAs => "RLIMIT_AS",
        RlimitLocks => "RLIMIT_LOCKS",
        RlimitSigpending => "RLIMIT_SIGPENDING",
        RlimitMsgqueue => "RLIMIT_MSGQUEUE",
        RlimitNice => "RLIMIT_NICE",
        RlimitRtprio => "RLIMIT_RTPRIO",
        RlimitRttime => "RLIMIT_RTTIME",
    }
}

pub fn apply(rlimits: &[PosixRlimit]) -> Result<(), RlimitError> {
    for r in rlimits {
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads one rlimit struct.
        if unsafe { libc::setrlimit(resource(r.typ()), &lim) } != 0 {
            return Err(RlimitError {
                name: name(r.typ()).to_string(),
                soft: r.soft(),
                hard: r.hard(),
                source: std::io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(json: &str) -> Vec<PosixRlimit> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn impossible_limits_are_named() {
        assert!(check(&limits(
            r#"[{"type":"RLIMIT_NOFILE","soft":1024,"hard":2048}]"#
        ))
        .is_ok());
        let (i, why) = check(&limits(
            r#"[{"type":"RLIMIT_NOFILE","soft":1024,"hard":1024},{"type":"RLIMIT_STACK","soft":1,"hard":1}]"#,
        ))
        .unwrap_err();
        assert_eq!(i, 1);
        assert!(
            why.starts_with("RLIMIT_STACK: soft limit 1 bytes is below"),
            "{why}"
        );
        let (_, why) = check(&limits(r#"[{"type":"RLIMIT_AS","soft":1,"hard":1}]"#)).unwrap_err();
        assert!(why.contains("SIGSEGV"), "{why}");
        let (_, why) = check(&limits(r#"[{"type":"RLIMIT_CORE","soft":2,"hard":1}]"#)).unwrap_err();
        assert_eq!(why, "RLIMIT_CORE: soft limit 2 is above hard limit 1");
        let (i, _) = check(&limits(
            r#"[{"type":"RLIMIT_CORE","soft":1,"hard":1},{"type":"RLIMIT_CORE","soft":1,"hard":1}]"#,
        ))
        .unwrap_err();
        assert_eq!(i, 1);
    }
}
