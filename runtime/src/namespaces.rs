//! Which namespaces the clone creates, which are joined by path, and which need a
//! second fork (joining a pid namespace, or a time namespace with offsets).

use std::fs::File;
use std::path::PathBuf;

use nix::sched::{setns, unshare, CloneFlags};
use oci_spec::runtime::{Linux, LinuxNamespaceType};

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("joining {kind} namespace {path}: {source}")]
    Join {
        kind: LinuxNamespaceType,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("creating {what} namespace: {source}")]
    Unshare {
        what: &'static str,
        source: nix::Error,
    },
    #[error("writing time namespace offsets: {0}")]
    TimeOffsets(std::io::Error),
}

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    /// New namespaces made by the clone itself.
    pub clone_flags: CloneFlags,
    /// Namespaces joined by path (the user namespace first).
    pub joins: Vec<(LinuxNamespaceType, PathBuf)>,
    /// A new user namespace: the parent writes its id maps.
    pub new_user: bool,
    /// A new cgroup namespace: made by the init after it joined its cgroup, so
    /// the namespace is rooted there.
    pub new_cgroup: bool,
    /// Made by the first child with unshare, entered by its child (second fork).
    pub unshare_before_fork: CloneFlags,
    pub second_fork: bool,
    /// The container has a network namespace of its own (lo must come up).
    pub new_net: bool,
    pub own_pid: bool,
}

impl Plan {
    pub fn from_linux(linux: Option<&Linux>) -> Self {
        let mut plan = Plan {
            clone_flags: CloneFlags::empty(),
            joins: Vec::new(),
            new_user: false,
            new_cgroup: false,
            unshare_before_fork: CloneFlags::empty(),
            second_fork: false,
            new_net: false,
            own_pid: false,
        };
        let namespaces = linux.and_then(|l| l.namespaces().as_deref()).unwrap_or(&[]);
        let mut join_pid = false;
        let mut new_time = false;
        for ns in namespaces {
            let t = ns.typ();
            match ns.path() {
                Some(path) => {
                    if t == LinuxNamespaceType::Pid {
                        join_pid = true;
                    }
                    plan.joins.push((t, path.clone()));
                }
                None => match t {
                    LinuxNamespaceType::Cgroup => plan.new_cgroup = true,
                    LinuxNamespaceType::Time => new_time = true,
                    _ => plan.clone_flags |= clone_flag(t),
                },
            }
            if t == LinuxNamespaceType::Network && ns.path().is_none() {
                plan.new_net = true;
            }
            if t == LinuxNamespaceType::Pid {
                plan.own_pid = ns.path().is_none();
            }
        }
        // The user namespace is joined first: it owns the others.
        plan.joins
            .sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
        plan.new_user = plan.clone_flags.contains(CloneFlags::CLONE_NEWUSER);
        if join_pid || new_time {
            plan.second_fork = true;
            if new_time {
                plan.unshare_before_fork |= clone_flag(LinuxNamespaceType::Time);
            }
            // A pid namespace's first process cannot fork with CLONE_PARENT, so a
            // new pid namespace is then made by unshare and entered by the fork.
            if plan.clone_flags.contains(CloneFlags::CLONE_NEWPID) {
                plan.clone_flags.remove(CloneFlags::CLONE_NEWPID);
                plan.unshare_before_fork |= CloneFlags::CLONE_NEWPID;
            }
        }
        plan
    }

    /// setns into every namespace given by path.
    pub fn join(&self) -> Result<(), NamespaceError> {
        for (kind, path) in &self.joins {
            let err = |source| NamespaceError::Join {
                kind: *kind,
                path: path.clone(),
                source,
            };
            let f = File::open(path).map_err(err)?;
            setns(&f, clone_flag(*kind)).map_err(|e| err(e.into()))?;
        }
        Ok(())
    }

    pub fn unshare_before_fork(&self, linux: Option<&Linux>) -> Result<(), NamespaceError> {
        if self.unshare_before_fork.is_empty() {
            return Ok(());
        }
        unshare(self.unshare_before_fork).map_err(|source| NamespaceError::Unshare {
            what: "pid/time",
            source,
        })?;
        if self
            .unshare_before_fork
            .contains(clone_flag(LinuxNamespaceType::Time))
        {
            let mut text = String::new();
            for (clock, off) in linux
                .and_then(|l| l.time_offsets().as_ref())
                .into_iter()
                .flatten()
            {
                text.push_str(&format!(
                    "{clock} {} {}\n",
                    off.secs().unwrap_or(0),
                    off.nanosecs().unwrap_or(0)
                ));
            }
            if !text.is_empty() {
                std::fs::write("/proc/self/timens_offsets", text)
                    .map_err(NamespaceError::TimeOffsets)?;
            }
        }
        Ok(())
    }
}

/// Brings `lo` up in a fresh network namespace (runc and crun do; podman's
/// `--network none` relies on it).
pub fn loopback_up() -> std::io::Result<()> {
    // SAFETY: plain socket/ioctl calls on a struct we own.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        let mut r = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr);
        if r == 0 {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            r = libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr);
        }
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if r != 0 {
            return Err(err);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxBuilder, LinuxNamespaceBuilder};

    fn linux(list: &[(LinuxNamespaceType, Option<&str>)]) -> Linux {
        let ns = list
            .iter()
            .map(|(t, p)| {
                let b = LinuxNamespaceBuilder::default().typ(*t);
                match p {
                    Some(p) => b.path(PathBuf::from(p)).build().unwrap(),
                    None => b.build().unwrap(),
                }
            })
            .collect::<Vec<_>>();
        LinuxBuilder::default().namespaces(ns).build().unwrap()
    }

    #[test]
    fn one_clone_for_new_namespaces() {
        use LinuxNamespaceType::*;
        let p = Plan::from_linux(Some(&linux(&[
            (Pid, None),
            (Mount, None),
            (Network, None),
            (Cgroup, None),
        ])));
        assert_eq!(
            p.clone_flags,
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET
        );
        assert!(p.new_cgroup && p.new_net && p.own_pid && !p.second_fork);
    }

    #[test]
    fn joins_put_user_first_and_pid_join_forks_twice() {
        use LinuxNamespaceType::*;
        let p = Plan::from_linux(Some(&linux(&[
            (Network, Some("/n")),
            (Pid, Some("/p")),
            (User, Some("/u")),
        ])));
        assert_eq!(p.joins[0].0, User);
        assert!(p.second_fork && !p.own_pid);
    }

    #[test]
    fn time_namespace_moves_new_pid_to_unshare() {
        use LinuxNamespaceType::*;
        let p = Plan::from_linux(Some(&linux(&[(Pid, None), (Time, None)])));
        assert!(p.second_fork);
        assert!(!p.clone_flags.contains(CloneFlags::CLONE_NEWPID));
        assert!(p.unshare_before_fork.contains(CloneFlags::CLONE_NEWPID));
    }
}
