//! linux.devices of a container with a user namespace of its own.
//!
//! The container's root cannot mknod, so runc bind-mounts the host's node of
//! the same path, which fails when the host has none (and carries the host
//! node's owner). Like crun, minirun makes the nodes itself, as the runtime
//! (real root), with the owner the config asks for mapped to host ids, and
//! hands each to the init as a detached bind mount that the init attaches at
//! the device's path.
//!
//! The nodes are made on a tmpfs mounted only in a short-lived mount namespace
//! of the runtime: the host's mount table never changes, and the tmpfs goes
//! away with the last of the detached mounts.

use std::fs::{self, File};
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::{mknod, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, LinuxIdMapping};

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("linux.devices[{index}] ({path}): {what}: {source}")]
    Device {
        index: usize,
        path: String,
        what: &'static str,
        source: io::Error,
    },
    #[error("preparing linux.devices: {what}: {source}")]
    Setup {
        what: &'static str,
        source: io::Error,
    },
}

fn setup(what: &'static str) -> impl FnOnce(nix::Error) -> DeviceError {
    move |e| DeviceError::Setup {
        what,
        source: e.into(),
    }
}

/// A container id as the host sees it; unmapped ids are the overflow id, as
/// the kernel shows them.
fn host_id(maps: &[LinuxIdMapping], id: u32) -> u32 {
    maps.iter()
        .find(|m| id >= m.container_id() && id - m.container_id() < m.size())
        .map(|m| m.host_id() + (id - m.container_id()))
        .unwrap_or(65534)
}

/// One detached bind mount per device (None for the types a user namespace
/// can make itself: fifos). `scratch` is an empty directory the runtime owns;
/// it is left empty.
pub fn precreate(
    devices: &[LinuxDevice],
    uid_maps: &[LinuxIdMapping],
    gid_maps: &[LinuxIdMapping],
    scratch: &Path,
) -> Result<Vec<Option<OwnedFd>>, DeviceError> {
    if devices.iter().all(|d| d.typ() == LinuxDeviceType::P) {
        return Ok(Vec::new());
    }
    let own_ns = File::open("/proc/self/ns/mnt").map_err(|source| DeviceError::Setup {
        what: "opening the runtime's mount namespace",
        source,
    })?;
    let cwd = File::open(".").ok();
    unshare(CloneFlags::CLONE_NEWNS).map_err(setup("a private mount namespace"))?;
    let made = make_nodes(devices, uid_maps, gid_maps, scratch);
    // Back to the host's mount table; the private one (and its tmpfs mount)
    // lives on only in the detached mounts.
    let back = setns(&own_ns, CloneFlags::CLONE_NEWNS);
    if let Some(cwd) = cwd {
        let _ = nix::unistd::fchdir(&cwd);
    }
    back.map_err(setup("returning to the runtime's mount namespace"))?;
    made
}

fn make_nodes(
    devices: &[LinuxDevice],
    uid_maps: &[LinuxIdMapping],
    gid_maps: &[LinuxIdMapping],
    scratch: &Path,
) -> Result<Vec<Option<OwnedFd>>, DeviceError> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(setup("making the private mount namespace private"))?;
    mount(
        Some("tmpfs"),
        scratch,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=0700"),
    )
    .map_err(setup("mounting a scratch tmpfs"))?;
    devices
        .iter()
        .enumerate()
        .map(|(index, d)| {
            let kind = match d.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
                LinuxDeviceType::B => SFlag::S_IFBLK,
                // A fifo the container's root can make where it goes;
                // type 'a' is refused there, with its path.
                LinuxDeviceType::P | LinuxDeviceType::A => return Ok(None),
            };
            let fail = |what: &'static str| {
                let path = d.path().display().to_string();
                move |source: io::Error| DeviceError::Device {
                    index,
                    path,
                    what,
                    source,
                }
            };
            let node = scratch.join(index.to_string());
            let mode = d.file_mode().unwrap_or(0o666) & 0o7777;
            let dev = libc::makedev(d.major() as u32, d.minor() as u32);
            mknod(&node, kind, Mode::from_bits_truncate(mode), dev)
                .map_err(|e| fail("mknod")(e.into()))?;
            // mknod's mode went through the umask.
            fs::set_permissions(&node, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .map_err(fail("chmod"))?;
            std::os::unix::fs::lchown(
                &node,
                Some(host_id(uid_maps, d.uid().unwrap_or(0))),
                Some(host_id(gid_maps, d.gid().unwrap_or(0))),
            )
            .map_err(fail("chown"))?;
            crate::mounts::open_tree_clone(&node, false)
                .map(Some)
                .map_err(|e| fail("open_tree")(e.into()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        serde_json::from_value(serde_json::json!({"containerID": c, "hostID": h, "size": s}))
            .unwrap()
    }

    #[test]
    fn container_ids_map_to_host_ids() {
        let maps = [map(0, 100000, 1000), map(1000, 5000, 1)];
        assert_eq!(host_id(&maps, 0), 100000);
        assert_eq!(host_id(&maps, 10), 100010);
        assert_eq!(host_id(&maps, 1000), 5000);
        assert_eq!(host_id(&maps, 1001), 65534);
        assert_eq!(host_id(&[map(0, 0, u32::MAX)], 10), 10);
    }
}
