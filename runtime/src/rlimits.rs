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

pub fn apply(rlimits: &[PosixRlimit]) -> Result<(), RlimitError> {
    for r in rlimits {
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads one rlimit struct.
        if unsafe { libc::setrlimit(resource(r.typ()), &lim) } != 0 {
            return Err(RlimitError {
                name: format!("{:?}", r.typ()),
                soft: r.soft(),
                hard: r.hard(),
                source: std::io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}
