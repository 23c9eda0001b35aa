//! Idmapped bind mounts: a mount whose files show their owners through a user
//! namespace's mapping, so a volume is usable from a user namespace without a
//! chown.
//!
//! Asked for with the mount options `idmap`/`ridmap` (recursive) — crun's and
//! podman's syntax, optionally with mappings `idmap=uids=0-1000-10#…;gids=…`
//! (triplets `fs-id`-`host-id`-`size`; a leading `@` makes the host id
//! relative to the container's own mapping of the fs id) — or with runtime-spec
//! 1.1's `uidMappings`/`gidMappings` on the mount, which map ids "from the
//! source file system to the destination mount point": `hostID` is the id on
//! disk and `containerID` the id the mount shows (as the host sees it; the
//! container's own namespace maps it once more). The mapping namespace thus
//! gets `hostID containerID size`, the reverse of a user namespace's lines
//! (crun 1.8.1 wrote them unreversed and fails its own suite's test of it).
//! A bare `idmap` uses the container's user namespace.
//!
//! The runtime sets MOUNT_ATTR_IDMAP on the detached bind mount it cloned (see
//! `mounts::open_bind_sources`) before the init attaches it: the attribute
//! needs privilege over the mount and a namespace fd, both the runtime's.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use oci_spec::runtime::{LinuxIdMapping, Mount};

use crate::spec::SpecError;

/// How one mount is idmapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idmap {
    pub index: usize,
    pub recursive: bool,
    /// uid_map and gid_map text of a namespace made for this mount; None: the
    /// container's own user namespace.
    pub maps: Option<(String, String)>,
}

fn invalid(index: usize, field: &str, message: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: format!("mounts[{index}].{field}"),
        message: message.into(),
    }
}

/// A mount's spec mappings as the mapping namespace's map: on-disk id inside,
/// the id the mount shows outside.
fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.host_id(), m.container_id(), m.size()))
        .collect()
}

/// One `uids=`/`gids=` list of the `idmap=` option as /proc/PID/uid_map text.
fn parse_triplets(list: &str, container: &[LinuxIdMapping]) -> Result<String, String> {
    let mut text = String::new();
    for item in list.split('#').filter(|s| !s.is_empty()) {
        let (relative, triplet) = match item.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, item),
        };
        let nums: Vec<u32> = triplet
            .split('-')
            .map(|n| n.parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("{item:?} is not fs-id-host-id-size"))?;
        let [fs, mut host, size] = nums[..] else {
            return Err(format!("{item:?} is not fs-id-host-id-size"));
        };
        if relative {
            let m = container
                .iter()
                .find(|m| fs >= m.container_id() && fs - m.container_id() < m.size())
                .ok_or_else(|| {
                    format!("{item:?}: the container's user namespace does not map {fs}")
                })?;
            host = (host as i64 + m.host_id() as i64 - m.container_id() as i64)
                .try_into()
                .map_err(|_| format!("{item:?}: the relative host id is out of range"))?;
        }
        text.push_str(&format!("{fs} {host} {size}\n"));
    }
    Ok(text)
}

/// The idmapped mounts of a config, checked before anything exists.
/// `userns`: whether the container has a user namespace (its own or joined).
pub fn plan(
    mounts: &[Mount],
    uid_maps: &[LinuxIdMapping],
    gid_maps: &[LinuxIdMapping],
    userns: bool,
) -> Result<Vec<Idmap>, SpecError> {
    let mut plans = Vec::new();
    for (index, m) in mounts.iter().enumerate() {
        let options = m.options().as_deref().unwrap_or(&[]);
        let option = options
            .iter()
            .find(|o| o.starts_with("idmap") || o.starts_with("ridmap"));
        let (uids, gids) = (m.uid_mappings().as_deref(), m.gid_mappings().as_deref());
        if option.is_none() && uids.is_none() && gids.is_none() {
            continue;
        }
        let is_bind = m.typ().as_deref() == Some("bind")
            || options.iter().any(|o| o == "bind" || o == "rbind");
        if !is_bind {
            return Err(invalid(
                index,
                "options",
                "idmapped mounts are bind mounts only",
            ));
        }
        let recursive = option.is_some_and(|o| o.starts_with("ridmap"));
        let args = option.and_then(|o| o.split_once('=')).map(|(_, a)| a);
        let maps = match (uids, gids, args) {
            (Some(_), None, _) | (None, Some(_), _) => {
                return Err(invalid(
                    index,
                    "uidMappings",
                    "uidMappings and gidMappings go together",
                ))
            }
            (Some(u), Some(g), _) => Some((map_text(u), map_text(g))),
            (None, None, Some(args)) => {
                let (mut u, mut g) = (String::new(), String::new());
                for part in args.split(';').filter(|p| !p.is_empty()) {
                    let bad = |e: String| invalid(index, "options", format!("idmap: {e}"));
                    if let Some(list) = part.strip_prefix("uids=") {
                        u = parse_triplets(list, uid_maps).map_err(bad)?;
                    } else if let Some(list) = part.strip_prefix("gids=") {
                        g = parse_triplets(list, gid_maps).map_err(bad)?;
                    } else {
                        return Err(bad(format!("{part:?} is neither uids=… nor gids=…")));
                    }
                }
                Some((u, g))
            }
            (None, None, None) => None,
        };
        if maps.is_none() && !userns {
            return Err(invalid(
                index,
                "options",
                "a bare idmap maps through the container's user namespace, and it has none",
            ));
        }
        plans.push(Idmap {
            index,
            recursive,
            maps,
        });
    }
    Ok(plans)
}

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// Sets the idmap on the detached mount `tree`; `container_userns` is the
/// container's user namespace (its init's, or the one it joins by path),
/// which a bare `idmap` uses.
pub fn apply(plan: &Idmap, tree: &OwnedFd, container_userns: &std::path::Path) -> io::Result<()> {
    let (userns, helper) = match &plan.maps {
        None => (File::open(container_userns)?, None),
        Some((uid_map, gid_map)) => {
            let (ns, pid) = mapping_namespace(uid_map, gid_map)?;
            (ns, Some(pid))
        }
    };
    let result = crate::mounts::mount_setattr(
        tree,
        plan.recursive,
        MOUNT_ATTR_IDMAP,
        0,
        Some(userns.as_raw_fd()),
    )
    .map_err(io::Error::from);
    if let Some(pid) = helper {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
    }
    result
}

/// A user namespace with the given maps, held open by a child that waits in
/// it until it is killed.
fn mapping_namespace(uid_map: &str, gid_map: &str) -> io::Result<(File, nix::unistd::Pid)> {
    // SAFETY: single-threaded; the child only pauses until it is killed.
    let pid = match unsafe { crate::process::clone_with_flags(libc::CLONE_NEWUSER as u64, None) }? {
        None => loop {
            // SAFETY: pause has no memory effects.
            unsafe { libc::pause() };
        },
        Some(pid) => pid,
    };
    let opened = (|| {
        if !uid_map.is_empty() {
            std::fs::write(format!("/proc/{pid}/uid_map"), uid_map)?;
        }
        if !gid_map.is_empty() {
            std::fs::write(format!("/proc/{pid}/gid_map"), gid_map)?;
        }
        File::open(format!("/proc/{pid}/ns/user"))
    })();
    match opened {
        Ok(f) => Ok((f, pid)),
        Err(e) => {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps(json: &str) -> Vec<LinuxIdMapping> {
        serde_json::from_str(json).unwrap()
    }

    fn mount(json: &str) -> Mount {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn idmap_options_become_map_text() {
        let container = maps(r#"[{"containerID":0,"hostID":1,"size":10}]"#);
        assert_eq!(
            parse_triplets("0-2-10#10-100-10", &container).unwrap(),
            "0 2 10\n10 100 10\n"
        );
        assert_eq!(parse_triplets("@0-1-10", &container).unwrap(), "0 2 10\n");
        assert_eq!(parse_triplets("+0-1-10", &container).unwrap(), "0 1 10\n");
        assert!(parse_triplets("0-1", &container).is_err());
        assert!(parse_triplets("@20-1-1", &container).is_err());
        assert_eq!(
            map_text(&maps(r#"[{"containerID":1,"hostID":0,"size":10}]"#)),
            "0 1 10\n"
        );
    }

    #[test]
    fn plans_name_the_mount_they_refuse() {
        let m = |j: &str| vec![mount(j)];
        let none: Vec<LinuxIdMapping> = Vec::new();
        let p = plan(
            &m(r#"{"destination":"/a","type":"bind","source":"/s","options":["bind","idmap"]}"#),
            &none,
            &none,
            true,
        )
        .unwrap();
        assert_eq!(
            p,
            [Idmap {
                index: 0,
                recursive: false,
                maps: None
            }]
        );
        let p = plan(
            &m(r#"{"destination":"/a","source":"/s","options":["rbind","ridmap=uids=0-5-1;gids=0-6-1"]}"#),
            &none,
            &none,
            false,
        )
        .unwrap();
        assert_eq!(p[0].maps, Some(("0 5 1\n".into(), "0 6 1\n".into())));
        assert!(p[0].recursive);
        let e = plan(
            &m(r#"{"destination":"/a","type":"bind","source":"/s","options":["bind","idmap"]}"#),
            &none,
            &none,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("mounts[0].options: a bare idmap"), "{e}");
        let e = plan(
            &m(r#"{"destination":"/a","type":"tmpfs","source":"tmpfs","options":["idmap"]}"#),
            &none,
            &none,
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bind mounts only"), "{e}");
        let e = plan(
            &m(r#"{"destination":"/a","type":"bind","source":"/s","uidMappings":[{"containerID":0,"hostID":1,"size":1}]}"#),
            &none,
            &none,
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("mounts[0].uidMappings: "), "{e}");
        let e = plan(
            &m(r#"{"destination":"/a","type":"bind","source":"/s","options":["idmap=users=1"]}"#),
            &none,
            &none,
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("neither uids"), "{e}");
    }
}
