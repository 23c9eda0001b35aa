//! Linux security modules for the container's process: the AppArmor profile
//! (`process.apparmorProfile`, what podman sends on AppArmor hosts) and the
//! SELinux label (`process.selinuxLabel`), both set as the process's exec
//! attribute so they take effect at its execve.
//!
//! A profile asked for on a host without AppArmor is refused: running the
//! container unconfined instead would be a silent loss of confinement. An
//! SELinux label on a host without SELinux is dropped with a warning, as runc
//! and crun drop it; SELinux mount labels (`linux.mountLabel`) are refused on a
//! host that enforces them, since minirun does not pass them to its mounts.

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

/// Checks, before anything exists, that what the config asks of the LSMs can
/// be done here.
pub fn check(process: &Process, mount_label: Option<&str>) -> Result<(), LsmError> {
    if let Some(profile) = non_empty(process.apparmor_profile()) {
        if !apparmor_enabled() {
            return Err(LsmError::NotEnabled {
                field: "process.apparmorProfile",
                value: profile.into(),
                lsm: "AppArmor",
            });
        }
    }
    let selinux = selinux_enabled();
    if let Some(label) = non_empty(process.selinux_label()) {
        if !selinux {
            crate::log::warn(&format!(
                "process.selinuxLabel {label:?} ignored: SELinux is not enabled on this host"
            ));
        }
    }
    if let Some(label) = mount_label.filter(|l| !l.is_empty()) {
        if selinux {
            return Err(LsmError::MountLabel);
        }
        crate::log::warn(&format!(
            "linux.mountLabel {label:?} ignored: SELinux is not enabled on this host"
        ));
    }
    Ok(())
}

/// In the process, before it drops privileges: the profile and label its
/// execve will switch to.
pub fn set_for_exec(process: &Process) -> Result<(), LsmError> {
    if let Some(profile) = non_empty(process.apparmor_profile()) {
        let text = format!("exec {profile}");
        // The per-LSM file first (stacked LSMs), then the shared one.
        fs::write("/proc/thread-self/attr/apparmor/exec", &text)
            .or_else(|_| fs::write("/proc/thread-self/attr/exec", &text))
            .map_err(|source| LsmError::Apply {
                what: "AppArmor profile",
                source,
            })?;
    }
    if let Some(label) = non_empty(process.selinux_label()).filter(|_| selinux_enabled()) {
        fs::write("/proc/thread-self/attr/exec", label).map_err(|source| LsmError::Apply {
            what: "SELinux label",
            source,
        })?;
    }
    Ok(())
}
