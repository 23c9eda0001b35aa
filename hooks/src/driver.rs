//! What a network driver is given and what it must do. One driver per
//! mechanism (the Linux bridge today); `attach` undoes its own finished steps
//! when a later one fails, `detach` works from the record alone and goes on
//! past errors.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::state::HookState;
use crate::store::Attachment;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("container {id}: process {pid} is gone (the OCI state's pid must be the container's running init)")]
    Gone { id: String, pid: i32 },
    #[error(
        "container {id}: the OCI state has no pid; attach runs as a prestart or createRuntime hook"
    )]
    NoPid { id: String },
    #[error("container {id} has no network namespace of its own (it shares the host's): bridge mode needs a new one")]
    HostNamespace { id: String },
    #[error("container {id}: reading {path}: {source}")]
    Config {
        id: String,
        path: PathBuf,
        source: oci_spec::OciSpecError,
    },
    #[error("container {id}: {what}: {source}")]
    Io {
        id: String,
        what: String,
        source: std::io::Error,
    },
}

/// Whether `netns` (an open network namespace) is the one this process runs
/// in: attaching to it would wire up the host itself.
pub fn is_own_namespace(netns: &File) -> std::io::Result<bool> {
    let own = std::fs::metadata("/proc/self/ns/net")?;
    let theirs = netns.metadata()?;
    Ok((own.dev(), own.ino()) == (theirs.dev(), theirs.ino()))
}

/// The container being attached, as the hook learns it from the OCI state and
/// the bundle's config.json.
pub struct Container {
    pub id: String,
    pub pid: i32,
    /// Its network namespace, held open for the whole attach.
    pub netns: File,
    /// The rootfs path in the runtime's view (the container's mount namespace
    /// sees the same path until pivot_root).
    pub rootfs: PathBuf,
    pub hostname: String,
}

impl Container {
    pub fn from_state(state: &HookState) -> Result<Self, ContainerError> {
        let id = state.id.clone();
        if state.pid <= 0 {
            return Err(ContainerError::NoPid { id });
        }
        let pid = state.pid;
        let netns =
            File::open(format!("/proc/{pid}/ns/net")).map_err(|_| ContainerError::Gone {
                id: id.clone(),
                pid,
            })?;
        if is_own_namespace(&netns).map_err(|source| ContainerError::Io {
            id: id.clone(),
            what: format!("comparing /proc/{pid}/ns/net with the hook's own"),
            source,
        })? {
            return Err(ContainerError::HostNamespace { id });
        }
        let config = state.bundle.join("config.json");
        let spec =
            oci_spec::runtime::Spec::load(&config).map_err(|source| ContainerError::Config {
                id: id.clone(),
                path: config.clone(),
                source,
            })?;
        let root = spec
            .root()
            .as_ref()
            .map_or_else(|| PathBuf::from("rootfs"), |r| r.path().clone());
        let rootfs = if root.is_absolute() {
            root
        } else {
            state.bundle.join(root)
        };
        let hostname = spec
            .hostname()
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| id.chars().take(12).collect());
        Ok(Container {
            id,
            pid,
            netns,
            rootfs,
            hostname,
        })
    }
}

pub trait NetworkDriver {
    type Error: std::error::Error + Send + Sync + 'static;
    /// Connects the container; on failure nothing it made is left.
    fn attach(&self, container: &Container) -> Result<Attachment, Self::Error>;
    /// Disconnects what `record` describes, with the network's lock held by
    /// the caller (`gc::detach_record` takes it and reads the record again
    /// under it). Returns every error met; an empty list means all is gone.
    /// Running it twice is fine.
    fn detach(&self, record: &Attachment) -> Vec<Self::Error>;
}
