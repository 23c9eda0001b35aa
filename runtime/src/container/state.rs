//! `<root>/<id>/status` (the name crun uses, where tools look). The
//! directory appears with its status file in it (made under a temporary name,
//! then renamed), before anything else of the container exists, and names
//! what `create` is about to make: a `create` killed at any point leaves a
//! container that `list` shows and `delete --force` removes whole.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Hooks;
use serde::{Deserialize, Serialize};

use crate::cgroups::CgroupPaths;
use crate::process::proc_start_time;

pub const STATE_FILE: &str = "status";
/// The name before it was `status`: containers made by an older minirun are
/// still found (and saved under the new name).
const OLD_STATE_FILE: &str = "state.json";
/// The init blocks on this listening socket until `start` connects.
pub const START_SOCKET: &str = "start.sock";
/// The start of a container directory's name while `create` fills it: `~`
/// is in no container id.
const CREATING_PREFIX: &str = "~creating-";

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container with id {0} exists already")]
    Exists(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {source}")]
    Decode {
        path: PathBuf,
        source: serde_json::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// What `state` prints and hooks receive, in runc's field order, plus the private
/// fields minirun needs to find and tear down the container later.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    #[serde(default)]
    pub owner: String,

    /// Start time of the init (field 22 of /proc/pid/stat), so a recycled pid is
    /// never mistaken for the container.
    #[serde(rename = "initStartTime", default)]
    pub init_start_time: u64,
    /// Hooks saved at create, so `delete` runs poststop even when the bundle is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Hooks>,
    /// Cgroup directories minirun made, removed again by `delete`.
    #[serde(default)]
    pub cgroups: CgroupPaths,
    /// Whether the container has a pid namespace of its own (killing the init then
    /// ends every process of the container).
    #[serde(rename = "ownPidNamespace", default)]
    pub own_pid_ns: bool,
    /// The config's process: what `exec` starts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<oci_spec::runtime::Process>,
    /// The container's namespaces: what `exec` joins (through the init's).
    #[serde(default)]
    pub namespaces: Vec<oci_spec::runtime::LinuxNamespaceType>,
    /// What the init's stdin, stdout and stderr were at create (a JSON array
    /// in a string, as crun and runc record it for checkpoint/restore).
    #[serde(default)]
    pub external_descriptors: String,
    /// `network connect` gave it networks: `delete` detaches them even when
    /// the config has no detach hook.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub networks_connected: bool,
    /// linux.seccomp: `exec`'d processes get the same filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// The `create` making the container, until it is made: while it lives
    /// the container is `creating`, after it died unfinished `stopped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<Creator>,
}

/// A process, by pid and start time (a pid alone may be reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Creator {
    pub pid: i32,
    pub start_time: u64,
}

impl Creator {
    /// This process; an error if /proc cannot tell its start time (a
    /// creator that could not be told alive would look dead at once).
    pub fn this_process() -> Result<Self, ContainerError> {
        let pid = std::process::id() as i32;
        let start_time = proc_start_time(pid).ok_or_else(|| ContainerError::Io {
            path: PathBuf::from("/proc/self/stat"),
            source: io::Error::other("cannot read this process's start time"),
        })?;
        Ok(Creator { pid, start_time })
    }

    pub fn alive(&self) -> bool {
        proc_start_time(self.pid) == Some(self.start_time)
    }
}

impl State {
    /// The runtime-spec state: what hooks read on stdin and `state` prints.
    pub fn public_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": self.pid,
            "status": self.status,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "annotations": self.annotations,
            "owner": self.owner,
        })
    }
}

/// An existing container directory and its state.
#[derive(Debug)]
pub struct Container {
    pub dir: PathBuf,
    pub state: State,
}

pub fn container_dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

impl Container {
    /// Makes `<root>/<id>` with `state` in it, in one step: the directory is
    /// made and filled under a name no id can have, then renamed into place
    /// unless the id is taken.
    pub fn create_dir(root: &Path, id: &str, state: &State) -> Result<PathBuf, ContainerError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ContainerError::Io { path, source }
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(io_err(root))?;
        let dir = container_dir(root, id);
        // Named after the creator (pid and start time, as the state has it),
        // not the id: an id of any length fits, a dead creator's leftover is
        // known by name, and no earlier process can have left this one.
        let me = match state.creator {
            Some(c) => c,
            None => Creator::this_process()?,
        };
        let tmp = root.join(format!("{CREATING_PREFIX}{}.{}", me.pid, me.start_time));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&tmp)
            .map_err(io_err(&tmp))?;
        let placed = Self::save(&tmp, state).and_then(|()| {
            rename_noreplace(&tmp, &dir).map_err(|e| match e.raw_os_error() {
                Some(libc::EEXIST) | Some(libc::ENOTEMPTY) => {
                    ContainerError::Exists(id.to_string())
                }
                _ => io_err(&dir)(e),
            })
        });
        if placed.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        placed.map(|()| dir)
    }

    /// Removes what `create`s killed before their container had a name left
    /// (their directories under the temporary name, holding only a status
    /// file): those whose creator is gone.
    pub fn remove_unnamed(root: &Path) {
        let Ok(entries) = fs::read_dir(root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(creator) = name.to_str().and_then(|n| n.strip_prefix(CREATING_PREFIX)) else {
                continue;
            };
            let gone = creator.split_once('.').is_none_or(|(pid, start)| {
                match (pid.parse(), start.parse()) {
                    (Ok(pid), Ok(start_time)) => !Creator { pid, start_time }.alive(),
                    _ => true,
                }
            });
            if gone {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }

    pub fn load(root: &Path, id: &str) -> Result<Self, ContainerError> {
        let dir = container_dir(root, id);
        let mut path = dir.join(STATE_FILE);
        if !path.exists() && dir.join(OLD_STATE_FILE).exists() {
            path = dir.join(OLD_STATE_FILE);
        }
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ContainerError::NotFound(id.to_string()))
            }
            Err(source) => return Err(ContainerError::Io { path, source }),
        };
        let mut state: State = serde_json::from_slice(&bytes)
            .map_err(|source| ContainerError::Decode { path, source })?;
        state.status = observed_status(&state);
        Ok(Container { dir, state })
    }

    /// Writes the state file whole: a temporary file renamed over the old one.
    pub fn save(dir: &Path, state: &State) -> Result<(), ContainerError> {
        let tmp = dir.join(".status.tmp");
        let path = dir.join(STATE_FILE);
        // One write: serde_json on an unbuffered file makes a syscall per token.
        let write = || -> io::Result<()> {
            fs::write(&tmp, serde_json::to_vec(state)?)?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|source| ContainerError::Io { path, source })
    }

    pub fn save_state(&self) -> Result<(), ContainerError> {
        Self::save(&self.dir, &self.state)
    }

    /// Takes an exclusive lock on the container directory for the life of the
    /// returned file: start, kill and delete of one container do not interleave.
    pub fn lock(&self) -> Result<File, ContainerError> {
        let f = File::open(&self.dir).map_err(|source| ContainerError::Io {
            path: self.dir.clone(),
            source,
        })?;
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(ContainerError::Io {
                path: self.dir.clone(),
                source: io::Error::last_os_error(),
            });
        }
        Ok(f)
    }

    pub fn is_alive(&self) -> bool {
        init_alive(&self.state)
    }
}

/// rename(2) that fails with EEXIST rather than replace an empty directory.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: two NUL-terminated paths that live across the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Lists the ids under `root` (directories holding a state file), sorted;
/// what killed `create`s left under a temporary name is removed on the way.
pub fn list_ids(root: &Path) -> io::Result<Vec<String>> {
    let mut ids = Vec::new();
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ids),
        Err(e) => return Err(e),
    };
    let mut unnamed = false;
    for entry in entries {
        let entry = entry?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(CREATING_PREFIX)
        {
            unnamed = true;
            continue;
        }
        if entry.path().join(STATE_FILE).exists() || entry.path().join(OLD_STATE_FILE).exists() {
            if let Some(name) = entry.file_name().to_str() {
                ids.push(name.to_string());
            }
        }
    }
    if unnamed {
        Container::remove_unnamed(root);
    }
    ids.sort();
    Ok(ids)
}

fn init_alive(state: &State) -> bool {
    state.pid > 0 && matches!(proc_start_time(state.pid), Some(t) if t == state.init_start_time)
}

/// The status a container has now: a saved `created`/`running` whose init has
/// died (or whose pid was reused) reads `stopped`; a frozen cgroup reads `paused`.
fn observed_status(state: &State) -> Status {
    match state.status {
        Status::Stopped => Status::Stopped,
        Status::Creating if state.creator.is_some_and(|c| c.alive()) => Status::Creating,
        // Its `create` died: what is left of it has stopped, or is an init
        // still waiting for it, which `delete` must kill.
        _ if !init_alive(state) => Status::Stopped,
        Status::Running | Status::Paused if state.cgroups.is_frozen() => Status::Paused,
        Status::Paused => Status::Running,
        s => s,
    }
}
