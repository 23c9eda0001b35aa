//! Reading a bundle and checking its config.json before anything is created.
//!
//! Every refusal names the JSON path that is wrong, so `create` can fail before a
//! state directory, a namespace or a cgroup exists.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

pub const CONFIG_FILE: &str = "config.json";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("bundle {path}: {source}")]
    Bundle { path: PathBuf, source: io::Error },
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("config.json: {field}: {message}")]
    Parse { field: String, message: String },
    #[error("config.json: {field}: {message}")]
    Invalid { field: String, message: String },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// A bundle whose config.json parsed and passed validation.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    pub spec: Spec,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
}

impl Bundle {
    pub fn load(dir: &Path) -> Result<Self, SpecError> {
        Self::load_with_config(dir, None)
    }

    /// `config`: another file than `<bundle>/config.json` (crun's `--config`;
    /// a relative path is taken from the bundle directory).
    pub fn load_with_config(dir: &Path, config: Option<&Path>) -> Result<Self, SpecError> {
        let dir = fs::canonicalize(dir).map_err(|source| SpecError::Bundle {
            path: dir.to_path_buf(),
            source,
        })?;
        let config = dir.join(config.unwrap_or(Path::new(CONFIG_FILE)));
        let bytes = fs::read(&config).map_err(|source| SpecError::Read {
            path: config.clone(),
            source,
        })?;
        let spec = parse(&bytes)?;
        let rootfs = validate(&spec, &dir)?;
        Ok(Bundle { dir, spec, rootfs })
    }
}

/// Parses config.json, naming the JSON path of the first value that does not fit.
/// Capabilities this runtime does not know are dropped with a warning, as runc
/// does: configs name new capabilities before every kernel has them.
pub fn parse(bytes: &[u8]) -> Result<Spec, SpecError> {
    // Straight into the Spec: the JSON tree in between (to drop unknown
    // capabilities) is built only for a config that needs it.
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut de) {
        Ok(spec) => Ok(spec),
        Err(e) if e.path().to_string().starts_with("process.capabilities.") => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let mut value: serde_json::Value =
                serde_path_to_error::deserialize(&mut de).map_err(parse_error)?;
            drop_unknown_capabilities(&mut value);
            serde_path_to_error::deserialize(value).map_err(parse_error)
        }
        Err(e) => Err(parse_error(e)),
    }
}

/// Parses a process.json (an OCI process object, as `exec --process` takes it).
pub fn parse_process(bytes: &[u8]) -> Result<oci_spec::runtime::Process, SpecError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(parse_error)
}

fn parse_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> SpecError {
    let path = e.path().to_string();
    SpecError::Parse {
        field: if path == "." {
            "(document)".into()
        } else {
            path
        },
        message: e.into_inner().to_string(),
    }
}

fn drop_unknown_capabilities(config: &mut serde_json::Value) {
    let Some(caps) = config
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return;
    };
    for (set, list) in caps.iter_mut() {
        let Some(list) = list.as_array_mut() else {
            continue;
        };
        list.retain(|name| {
            let known =
                serde_json::from_value::<oci_spec::runtime::Capability>(name.clone()).is_ok();
            if !known {
                crate::log::warn(&format!(
                    "config.json: process.capabilities.{set}: unknown capability {name} ignored"
                ));
            }
            known
        });
    }
}

/// Checks what the runtime-spec requires and what minirun supports; returns the
/// absolute rootfs path.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<PathBuf, SpecError> {
    check_version(spec.version())?;

    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    match fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(invalid(
                "root.path",
                format!("{} is not a directory", rootfs.display()),
            ))
        }
        Err(e) => return Err(invalid("root.path", format!("{}: {e}", rootfs.display()))),
    }

    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "missing"))?;
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => return Err(invalid("process.args", "is empty")),
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{:?} is not an absolute path", process.cwd()),
        ));
    }
    if let Some(rlimits) = process.rlimits() {
        crate::rlimits::check(rlimits)
            .map_err(|(i, why)| invalid(format!("process.rlimits[{i}]"), why))?;
    }
    if let Some(env) = process.env() {
        for (i, kv) in env.iter().enumerate() {
            if !kv.contains('=') {
                return Err(invalid(
                    format!("process.env[{i}]"),
                    format!("{kv:?} is not KEY=VALUE"),
                ));
            }
        }
    }

    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(invalid(
                format!("mounts[{i}].destination"),
                format!("{:?} is not an absolute path", m.destination()),
            ));
        }
    }

    if let Some(hooks) = spec.hooks() {
        let lists = [
            ("prestart", hooks.prestart()),
            ("createRuntime", hooks.create_runtime()),
            ("createContainer", hooks.create_container()),
            ("startContainer", hooks.start_container()),
            ("poststart", hooks.poststart()),
            ("poststop", hooks.poststop()),
        ];
        for (kind, list) in lists {
            for (i, hook) in list.iter().flatten().enumerate() {
                if !hook.path().is_absolute() {
                    return Err(invalid(
                        format!("hooks.{kind}[{i}].path"),
                        format!("{:?} is not an absolute path", hook.path()),
                    ));
                }
                if matches!(hook.timeout(), Some(t) if t <= 0) {
                    return Err(invalid(
                        format!("hooks.{kind}[{i}].timeout"),
                        "must be positive",
                    ));
                }
            }
        }
    }

    let linux = spec.linux().as_ref();
    let namespaces = linux.and_then(|l| l.namespaces().as_ref());
    let mut seen = HashSet::new();
    for (i, ns) in namespaces.iter().copied().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(invalid(
                format!("linux.namespaces[{i}].type"),
                format!("namespace {} is listed twice", ns.typ()),
            ));
        }
        if let Some(path) = ns.path() {
            if let Err(e) = fs::metadata(path) {
                return Err(invalid(
                    format!("linux.namespaces[{i}].path"),
                    format!("{}: {e}", path.display()),
                ));
            }
        }
    }
    let new_ns = |t: LinuxNamespaceType| {
        namespaces
            .into_iter()
            .flatten()
            .any(|ns| ns.typ() == t && ns.path().is_none())
    };
    let has_ns = |t: LinuxNamespaceType| namespaces.into_iter().flatten().any(|ns| ns.typ() == t);

    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has_ns(LinuxNamespaceType::Uts)
    {
        return Err(invalid(
            "hostname",
            "setting the hostname needs a private uts namespace",
        ));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty())
        && !has_ns(LinuxNamespaceType::Uts)
    {
        return Err(invalid(
            "domainname",
            "setting the domainname needs a private uts namespace",
        ));
    }

    if let Some(linux) = linux {
        let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if new_ns(LinuxNamespaceType::User) {
            if linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
                return Err(invalid(
                    "linux.uidMappings",
                    "a new user namespace needs uid mappings",
                ));
            }
            if linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
                return Err(invalid(
                    "linux.gidMappings",
                    "a new user namespace needs gid mappings",
                ));
            }
        } else if has_maps && !has_ns(LinuxNamespaceType::User) {
            return Err(invalid(
                "linux.uidMappings",
                "id mappings need a user namespace",
            ));
        }

        for key in linux.sysctl().iter().flat_map(|s| s.keys()) {
            check_sysctl(key, &has_ns)?;
        }
        if let Some(prop) = linux.rootfs_propagation() {
            if crate::mounts::propagation_flag(prop).is_none() {
                return Err(invalid(
                    "linux.rootfsPropagation",
                    format!("{prop:?} is not one of shared, slave, private, unbindable (r-prefixed too)"),
                ));
            }
        }
    }

    Ok(rootfs)
}

fn check_version(version: &str) -> Result<(), SpecError> {
    let major = version.split('.').next().unwrap_or("");
    if major != "1" {
        return Err(invalid(
            "ociVersion",
            format!("unsupported version {version:?} (minirun supports 1.x)"),
        ));
    }
    Ok(())
}

/// A sysctl may only be set where the container has its own copy of it.
fn check_sysctl(key: &str, has_ns: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<(), SpecError> {
    let field = || format!("linux.sysctl[{key:?}]");
    let ipc_keys = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let needs = if ipc_keys.contains(&key) || key.starts_with("fs.mqueue.") {
        LinuxNamespaceType::Ipc
    } else if key.starts_with("net.") {
        LinuxNamespaceType::Network
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        // Set through the config's hostname and domainname, never as sysctls.
        return Err(invalid(
            field(),
            "use the config's hostname or domainname instead",
        ));
    } else {
        return Err(invalid(
            field(),
            "is not namespaced and cannot be set in a container",
        ));
    };
    if !has_ns(needs) {
        return Err(invalid(
            field(),
            format!("needs a private {needs} namespace"),
        ));
    }
    Ok(())
}

/// runc's rule for container ids: letters, digits and `_+-.`, not `.` or `..`.
pub fn validate_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid container id {id:?}: use letters, digits and _+-."
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_names_the_json_path() {
        let json =
            br#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}}"#;
        let err = parse(json).unwrap_err().to_string();
        assert!(
            err.starts_with("config.json: linux.namespaces[1].type: unknown variant `bogus`"),
            "{err}"
        );
    }

    #[test]
    fn malformed_json_is_reported() {
        let err = parse(b"{\"ociVersion\": ").unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
        assert!(err.contains("EOF"), "{err}");
    }

    #[test]
    fn unknown_capabilities_are_dropped() {
        let json = br#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{"bounding":["CAP_CHOWN","CAP_LIKE_NOTHING_ELSE"]}}}"#;
        let spec = parse(json).unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 1);
    }

    #[test]
    fn versions() {
        assert!(check_version("1.0.2-dev").is_ok());
        assert!(check_version("1.2.0").is_ok());
        let err = check_version("2.0.0").unwrap_err().to_string();
        assert_eq!(
            err,
            "config.json: ociVersion: unsupported version \"2.0.0\" (minirun supports 1.x)"
        );
    }

    #[test]
    fn ids() {
        assert!(validate_id("abc-1_2+3.4").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "x\n"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sysctl_needs_its_namespace() {
        let only_net = |t| t == LinuxNamespaceType::Network;
        assert!(check_sysctl("net.ipv4.ip_forward", &only_net).is_ok());
        assert!(check_sysctl("kernel.shmmax", &only_net).is_err());
        assert!(check_sysctl("vm.swappiness", &|_| true).is_err());
    }
}
