//! Linux security modules for the container's process: the AppArmor profile
//! (`process.apparmorProfile`, what podman sends on AppArmor hosts) and the
//! SELinux label (`process.selinuxLabel`), both set as the process's exec
//! attribute so they take effect at its execve.
//!
//! A profile asked for on a host without AppArmor is refused: running the
//! container unconfined instead would be a silent loss of confinement. An
//! SELinux label on a host without SELinux is dropped with a warning, as runc
//! and crun drop it; SELinux mount labels (`linux.mountLabel`) are refused on a
//! host with SELinux enabled, since minirun does not pass them to its mounts.
//!
//! The runtime decides (it sees the host); the process opens the attribute
//! files while /proc is still the host's, before pivot_root or joining the
//! container's mount namespace, and writes them last: a container's own /proc
//! (or what it mounted there) never receives the labels (CVE-2019-16884).

use std::fs;
use std::io;

use oci_spec::runtime::Process;

#[derive(Debug, thiserror::Error)]
pub enum LsmError {
    #[error("{field}: {value:?}: {lsm} is not enabled on this host")]
    NotEnabled {
        field: &'static str,
        value: String,
        lsm: &'static str,
    },
    #[error("linux.mountLabel: SELinux mount labels are not supported by minirun")]
    MountLabel,
    #[error("setting the {what} for exec: {source}")]
    Apply {
        what: &'static str,
        source: io::Error,
    },
}

fn apparmor_enabled() -> bool {
    fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.starts_with('Y'))
}

fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// What the process's execve switches to.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    apparmor: Option<String>,
    selinux: Option<String>,
}

/// Labels with their attribute files open.
#[derive(Debug, Default)]
pub struct OpenLabels {
    apparmor: Option<(fs::File, String)>,
    selinux: Option<(fs::File, String)>,
}

fn open_attr(paths: &[&str], what: &'static str) -> Result<fs::File, LsmError> {
    let mut last = None;
    for p in paths {
        match fs::OpenOptions::new().write(true).open(p) {
            Ok(f) => return Ok(f),
            Err(e) => last = Some(e),
        }
    }
    Err(LsmError::Apply {
        what,
        source: last.unwrap_or_else(|| io::Error::from(io::ErrorKind::NotFound)),
    })
}

impl Labels {
    /// Opens the attribute files of the calling thread, which is to exec.
    pub fn open(&self) -> Result<OpenLabels, LsmError> {
        let mut open = OpenLabels::default();
        if let Some(profile) = &self.apparmor {
            // The per-LSM file first (stacked LSMs), then the shared one.
            let f = open_attr(
                &[
                    "/proc/thread-self/attr/apparmor/exec",
                    "/proc/thread-self/attr/exec",
                ],
                "AppArmor profile",
            )?;
            open.apparmor = Some((f, format!("exec {profile}")));
        }
        if let Some(label) = &self.selinux {
            let f = open_attr(&["/proc/thread-self/attr/exec"], "SELinux label")?;
            open.selinux = Some((f, label.clone()));
        }
        Ok(open)
    }
}

impl OpenLabels {
    /// Sets them for the coming execve.
    pub fn apply(self) -> Result<(), LsmError> {
        use std::io::Write;
        for ((mut f, text), what) in self
            .apparmor
            .map(|a| (a, "AppArmor profile"))
            .into_iter()
            .chain(self.selinux.map(|s| (s, "SELinux label")))
        {
            f.write_all(text.as_bytes())
                .map_err(|source| LsmError::Apply { what, source })?;
        }
        Ok(())
    }
}

/// Checks, before anything exists, that what the config asks of the LSMs can
/// be done here, and returns what the process is to be labelled with.
pub fn check(process: &Process, mount_label: Option<&str>) -> Result<Labels, LsmError> {
    if let Some(profile) = non_empty(process.apparmor_profile()) {
        if !apparmor_enabled() {
            return Err(LsmError::NotEnabled {
                field: "process.apparmorProfile",
                value: profile.into(),
                lsm: "AppArmor",
            });
        }
    }
    // Looked at only when something asks for SELinux: this is on the path of
    // every create.
    let selinux_label = non_empty(process.selinux_label());
    let mount_label = mount_label.filter(|l| !l.is_empty());
    let selinux = (selinux_label.is_some() || mount_label.is_some()) && selinux_enabled();
    if let Some(label) = selinux_label {
        if !selinux {
            crate::log::warn(&format!(
                "process.selinuxLabel {label:?} ignored: SELinux is not enabled on this host"
            ));
        }
    }
    if let Some(label) = mount_label {
        if selinux {
            return Err(LsmError::MountLabel);
        }
        crate::log::warn(&format!(
            "linux.mountLabel {label:?} ignored: SELinux is not enabled on this host"
        ));
    }
    Ok(Labels {
        apparmor: non_empty(process.apparmor_profile()).map(String::from),
        selinux: selinux_label.filter(|_| selinux).map(String::from),
    })
}
