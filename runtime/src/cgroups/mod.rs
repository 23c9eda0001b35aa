//! Placing the container in its cgroup (cgroupfs; v1, hybrid and v2 layouts) and
//! removing what was made. A container's cgroup is `linux.cgroupsPath`, or its id
//! below the runtime's own cgroup when the path is not given.
//!
//! linux.resources is read once (`limits`, `device_rules`) before anything
//! exists; `resources` turns it into ordered file writes for the cgroup at
//! hand and `apply` writes them. At create the directories are made and
//! written before the init joins them, so a refused value leaves no process
//! inside to wait for; an update writes all or nothing.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxDevice, LinuxResources};
use serde::{Deserialize, Serialize};

mod apply;
mod device_filter;
mod device_rules;
mod limits;
mod resources;

pub use apply::ApplyError;
use apply::Layout;
pub use device_rules::RuleError;
pub use limits::LimitError;
use limits::Limits;
pub use resources::ResourceError;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(transparent)]
    Limit(#[from] LimitError),
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Resource(#[from] ResourceError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("cgroup {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "cgroup {path}: Device or resource busy: it still holds processes after {waited_ms} ms"
    )]
    Busy { path: PathBuf, waited_ms: u128 },
    #[error("the container has no freezer cgroup (no freezer controller is mounted)")]
    NoFreezer,
    #[error("linux.resources.devices: the devices cgroup controller is not mounted on this host (device rules are not optional)")]
    NoDevicesController,
    #[error("cgroup {path}: attaching the device rules (eBPF): {source}")]
    DeviceFilter { path: PathBuf, source: io::Error },
}

/// Where a container's cgroup directories go, as `CgroupPaths::plan` found
/// the hierarchies.
pub struct Placement(Layout);

impl Placement {
    /// The hierarchies mounted on the host, as `plan` read them.
    pub fn hierarchies(&self) -> impl Iterator<Item = &Hierarchy> {
        self.0.dirs.iter().map(|(h, _)| h)
    }
}

/// linux.resources as read before anything exists.
#[derive(Debug, Clone)]
pub struct Resources {
    limits: Limits,
    /// The final state of the device rules: the config's, then runc's
    /// defaults. None for an update, which leaves them as they are.
    devices: Option<device_rules::State>,
}

impl Resources {
    /// For `create`: every container gets device rules, the defaults at least.
    pub fn for_create(
        r: Option<&LinuxResources>,
        linux_devices: &[LinuxDevice],
    ) -> Result<Self, CgroupError> {
        let rules = r.and_then(|r| r.devices().as_deref()).unwrap_or(&[]);
        let limits = r.map(Limits::from_spec).transpose()?.unwrap_or_default();
        warn_ignored(&limits);
        Ok(Resources {
            limits,
            devices: Some(device_rules::State::from_rules(&device_rules::from_spec(
                rules,
                linux_devices,
            )?)?),
        })
    }

    /// For `update`. The device rules are not touched, as runc does: CRI
    /// sends the container's whole list with every update, and rules a
    /// prestart hook added (a GPU's) must survive it.
    pub fn for_update(r: &LinuxResources) -> Result<Self, CgroupError> {
        let limits = Limits::from_spec(r)?;
        warn_ignored(&limits);
        Ok(Resources {
            limits,
            devices: None,
        })
    }
}

fn warn_ignored(limits: &Limits) {
    for field in &limits.ignored {
        crate::log::warn(&format!(
            "linux.resources.{field} is ignored, as runc ignores it: Linux no longer enforces kernel memory limits"
        ));
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One mounted hierarchy: where it is and which cgroup of it this process is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub mountpoint: PathBuf,
    /// v1 controllers (or `name=…`); empty for cgroup2.
    pub controllers: Vec<String>,
    pub v2: bool,
}

/// The container's cgroup directories, saved in its state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CgroupPaths {
    /// The container's directory in every hierarchy it joined.
    pub dirs: Vec<PathBuf>,
    /// The directories minirun created for it, deepest first: `delete` removes these.
    pub created: Vec<PathBuf>,
    /// The id of the device program attached to the v2 directory (cgroup v2
    /// device rules), detached by `delete` when the directory stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_program: Option<(PathBuf, u32)>,
}

/// How a new process gets into its cgroups. Moving a whole process
/// (`cgroup.procs`) takes the kernel's global threadgroup lock for writing,
/// which first waits for an RCU grace period unless another move happened
/// within the last one: measured here at ~12-15 ms, paid by every lone `run`
/// and by one in eight back to back. The first two ways never take that lock.
#[derive(Debug)]
pub enum Entry {
    /// cgroup v2: born in its cgroup (clone3's CLONE_INTO_CGROUP, this fd).
    AtClone(std::os::fd::OwnedFd),
    /// cgroup v1: the child, still single-threaded, moves its one thread
    /// itself (`tasks` ← "0"), which the kernel does under cgroup_mutex alone:
    /// a container's init when the runtime sends CgroupsMade, an `exec`'s
    /// process (whose directories exist) before it waits for Proceed.
    ByItself,
    /// The runtime writes the child's pid into `cgroup.procs`.
    ByParent,
}

/// The directory as an fd for CLONE_INTO_CGROUP, if it is on cgroup2.
fn open_v2_dir(dir: &Path) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::AsRawFd;
    const CGROUP2_SUPER_MAGIC: libc::c_long = 0x6367_7270;
    let fd = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: fstatfs fills `st` or fails.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: fstatfs succeeded.
    let magic = unsafe { st.assume_init() }.f_type;
    (magic as libc::c_long == CGROUP2_SUPER_MAGIC).then_some(fd)
}

/// Reads the cgroup hierarchies from a mountinfo text. On a hybrid host the cgroup2
/// half carries no controllers minirun manages and is left alone, as runc does.
pub fn parse_hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    let mut v1 = Vec::new();
    let mut v2 = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let rest: Vec<&str> = right.split(' ').collect();
        if fields.len() < 5 || rest.len() < 3 {
            continue;
        }
        let mountpoint = PathBuf::from(unescape(fields[4]));
        match rest[0] {
            "cgroup" => {
                let controllers = rest[2]
                    .split(',')
                    .filter(|o| {
                        !matches!(
                            *o,
                            "rw" | "ro"
                                | "relatime"
                                | "noatime"
                                | "nosuid"
                                | "nodev"
                                | "noexec"
                                | "clone_children"
                                | "xattr"
                        ) && !o.starts_with("release_agent")
                    })
                    .map(str::to_string)
                    .collect();
                v1.push(Hierarchy {
                    mountpoint,
                    controllers,
                    v2: false,
                });
            }
            "cgroup2" => v2.push(Hierarchy {
                mountpoint,
                controllers: Vec::new(),
                v2: true,
            }),
            _ => {}
        }
    }
    if v1.is_empty() {
        v2.truncate(1);
        v2
    } else {
        v1
    }
}

fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let b = field.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = u8::from_str_radix(&field[i + 1..i + 4], 8).unwrap_or(b'?');
            out.push(v as char);
            i += 4;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// This process's cgroup in a hierarchy, from a /proc/self/cgroup text.
fn own_cgroup(proc_cgroup: &str, h: &Hierarchy) -> PathBuf {
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let matches = if h.v2 {
            id == "0" && ctrls.is_empty()
        } else {
            !ctrls.is_empty()
                && ctrls
                    .split(',')
                    .any(|c| h.controllers.iter().any(|hc| hc == c))
        };
        if matches {
            return PathBuf::from(path);
        }
    }
    PathBuf::from("/")
}

/// systemd's `slice:prefix:name` (`--systemd-cgroup`) as the cgroup path
/// systemd gives that unit: `machine.slice:libpod:abc` is
/// /machine.slice/libpod-abc.scope, `a-b.slice` is /a.slice/a-b.slice.
pub fn systemd_path(path: &str) -> Option<PathBuf> {
    let mut parts = path.split(':');
    let (slice, prefix, name) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || name.is_empty() || path.contains('/') {
        return None;
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    if name.ends_with(".slice") {
        return expand_slice(name);
    }
    let unit = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Some(expand_slice(slice)?.join(unit))
}

/// `a-b-c.slice` → /a.slice/a-b.slice/a-b-c.slice; `-.slice` is the root.
fn expand_slice(slice: &str) -> Option<PathBuf> {
    let stem = slice.strip_suffix(".slice")?;
    let mut path = PathBuf::from("/");
    if stem == "-" {
        return Some(path);
    }
    if stem.is_empty() || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return None;
    }
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
    }
    Some(path)
}

/// The container's directory in `h`: an absolute `cgroups_path` is taken from the
/// hierarchy's root, a relative one (or the id) from this process's own cgroup.
pub fn container_dir(h: &Hierarchy, proc_cgroup: &str, cgroups_path: &Path) -> PathBuf {
    let rel = if cgroups_path.is_absolute() {
        cgroups_path.to_path_buf()
    } else {
        own_cgroup(proc_cgroup, h).join(cgroups_path)
    };
    let rel = rel.strip_prefix("/").unwrap_or(&rel).to_path_buf();
    h.mountpoint.join(rel)
}

impl CgroupPaths {
    /// Where the container's cgroup goes in every hierarchy (`dirs`), and
    /// which of those directories and their parents do not exist yet
    /// (`created`, deepest first): the state names both before anything is
    /// made, so a `create` killed while making them leaves nothing `delete`
    /// cannot find. `make` then records what it did make.
    pub fn plan(cgroups_path: &Path) -> Result<(Self, Placement), CgroupError> {
        let proc_cgroup = fs::read_to_string("/proc/self/cgroup")
            .map_err(io_err(Path::new("/proc/self/cgroup")))?;
        let hierarchies = apply::mounted_hierarchies()?;
        let v2 = hierarchies.first().is_some_and(|h| h.v2);
        let mut paths = CgroupPaths::default();
        let mut layout = Layout {
            dirs: Vec::with_capacity(hierarchies.len()),
            v2,
        };
        for h in hierarchies {
            let dir = container_dir(&h, &proc_cgroup, cgroups_path);
            let mut missing: Vec<PathBuf> = dir
                .ancestors()
                .take_while(|d| *d != h.mountpoint && !d.exists())
                .map(Path::to_path_buf)
                .collect();
            paths.created.append(&mut missing);
            paths.dirs.push(dir.clone());
            layout.dirs.push((h, dir));
        }
        Ok((paths, Placement(layout)))
    }

    /// Makes the planned directories and writes the resources, before any
    /// process is inside. What is made is recorded in `self` as it is made,
    /// so the caller's undo removes exactly that.
    pub fn make(
        &mut self,
        placement: &Placement,
        resources: &Resources,
    ) -> Result<(), CgroupError> {
        let layout = &placement.0;
        self.created.clear();
        for (h, dir) in &layout.dirs {
            self.make_dir(h, dir)?;
        }
        let writes = layout.plan(&resources.limits)?;
        layout.write_all(&writes, false)?;
        match &resources.devices {
            Some(target) if layout.v2 => self.attach_device_program(&layout.dirs[0].1, target),
            Some(target) => match layout.dir_of("devices") {
                Some(dir) => match apply::write_device_rules(dir, target) {
                    Err(e) if in_user_namespace() && denied(&e) => Ok(()),
                    r => Ok(r?),
                },
                None if in_user_namespace() => Ok(()),
                None => Err(CgroupError::NoDevicesController),
            },
            None => Ok(()),
        }
    }

    /// cgroup v2's device rules: a program of the final state, attached with
    /// BPF_F_ALLOW_MULTI (a program already there keeps its say).
    fn attach_device_program(
        &mut self,
        dir: &Path,
        target: &device_rules::State,
    ) -> Result<(), CgroupError> {
        let program = device_filter::program(&target.rules());
        match device_filter::attach(&program, dir) {
            Ok(id) => {
                self.device_program = Some((dir.to_path_buf(), id));
                Ok(())
            }
            // As runc: a runtime in a user namespace cannot load programs,
            // and its container is confined by the outer one's.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && in_user_namespace() => Ok(()),
            Err(source) => Err(CgroupError::DeviceFilter {
                path: dir.to_path_buf(),
                source,
            }),
        }
    }

    /// Moves `pid` into every directory `make` made ready.
    pub fn join(&self, pid: i32) -> Result<(), CgroupError> {
        let pid = pid.to_string();
        for dir in &self.dirs {
            let procs = dir.join("cgroup.procs");
            fs::write(&procs, &pid).map_err(io_err(&procs))?;
        }
        Ok(())
    }

    /// How a process the runtime is about to clone gets into these cgroups;
    /// `new_user`: it is cloned into a new user namespace.
    pub fn entry(&self, new_user: bool) -> Entry {
        if let [dir] = self.dirs.as_slice() {
            if let Some(fd) = open_v2_dir(dir) {
                return Entry::AtClone(fd);
            }
        }
        // In a new user namespace the child is nobody until its maps are
        // written, and the host's cgroup files are not its to write. A
        // runtime in a user namespace needs no case of its own: the child
        // has its credentials, and the kernel lets a task move itself.
        if self.dirs.is_empty() || new_user {
            Entry::ByParent
        } else {
            Entry::ByItself
        }
    }

    /// Whether a child can be cloned before the directories exist: on v1 a
    /// child in no new user namespace moves itself (`Entry::ByItself`) once
    /// told they are made, so the runtime makes them (mkdir and limits in
    /// every hierarchy, ~0.4-0.7 ms of a `run` here) while the child sets up
    /// its namespaces and first mounts. Not on v2, whose CLONE_INTO_CGROUP
    /// takes the directory's fd.
    pub fn can_make_after_clone(&self, placement: &Placement, new_user: bool) -> bool {
        !placement.0.v2 && !self.dirs.is_empty() && !new_user
    }

    /// For `Entry::ByItself`: moves the calling thread, the process's only
    /// one, into every v1 directory.
    pub fn join_self(&self) -> Result<(), CgroupError> {
        for dir in &self.dirs {
            let tasks = dir.join("tasks");
            fs::write(&tasks, "0").map_err(io_err(&tasks))?;
        }
        Ok(())
    }

    /// mkdir -p below the mountpoint, remembering what did not exist before.
    fn make_dir(&mut self, hierarchy: &Hierarchy, dir: &Path) -> Result<(), CgroupError> {
        let mountpoint = hierarchy.mountpoint.as_path();
        let mut missing = Vec::new();
        let mut cur = dir;
        while cur != mountpoint && !cur.exists() {
            missing.push(cur.to_path_buf());
            match cur.parent() {
                Some(p) => cur = p,
                None => break,
            }
        }
        // A parent another container made may be removed under us by its
        // delete between our check and our mkdir: start again from the top then.
        let mut attempts = 0;
        let mut i = missing.len();
        while i > 0 {
            let d = &missing[i - 1];
            match fs::create_dir(d) {
                Ok(()) => self.created.insert(0, d.clone()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 5 => {
                    attempts += 1;
                    i = missing.len();
                    continue;
                }
                Err(e) => return Err(io_err(d)(e)),
            }
            i -= 1;
        }
        // A new v1 cpuset cgroup starts with no CPUs and no memory nodes and
        // refuses tasks until given some (v2 inherits them). Also for a
        // directory that existed: someone else may have made it without
        // filling its cpuset in.
        if hierarchy.v2 || !hierarchy.controllers.iter().any(|c| c == "cpuset") {
            return Ok(());
        }
        for d in missing
            .iter()
            .rev()
            .chain(std::iter::once(&dir.to_path_buf()))
        {
            inherit_cpuset(d)?;
        }
        Ok(())
    }

    /// Removes the directories minirun created, deepest first. A cgroup whose last
    /// task is still exiting is busy for a moment, so EBUSY is retried briefly.
    /// A parent it made may meanwhile hold other containers: that one stays.
    pub fn remove(&self) -> Result<(), CgroupError> {
        self.remove_waiting(Duration::from_secs(2))
    }

    /// `remove`, giving a busy cgroup at most `patience` to empty.
    pub fn remove_waiting(&self, patience: Duration) -> Result<(), CgroupError> {
        let mut first_err = None;
        if let Some((dir, id)) = &self.device_program {
            if !self.created.contains(dir) {
                if let Err(source) = device_filter::detach(*id, dir) {
                    first_err = Some(CgroupError::DeviceFilter {
                        path: dir.clone(),
                        source,
                    });
                }
            }
        }
        for dir in &self.created {
            let result = if self.dirs.contains(dir) {
                rmdir_patiently(dir, patience)
            } else {
                match fs::remove_dir(dir) {
                    Err(e)
                        if e.kind() != io::ErrorKind::NotFound
                            && e.raw_os_error() != Some(libc::EBUSY) =>
                    {
                        Err(io_err(dir)(e))
                    }
                    _ => Ok(()),
                }
            };
            if let Err(e) = result {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Every process in the container's cgroup (for `kill --all`).
    pub fn pids(&self) -> Vec<i32> {
        self.dirs
            .first()
            .and_then(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Freezes (or thaws) every process of the container: the v1 freezer or
    /// cgroup v2's cgroup.freeze, waiting until the kernel says it is done.
    pub fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        let (v1_value, v2_value) = if frozen {
            ("FROZEN", "1")
        } else {
            ("THAWED", "0")
        };
        let mut found = false;
        for d in &self.dirs {
            let (file, value) = if d.join("freezer.state").exists() {
                ("freezer.state", v1_value)
            } else if d.join("cgroup.freeze").exists() {
                ("cgroup.freeze", v2_value)
            } else {
                continue;
            };
            found = true;
            let path = d.join(file);
            fs::write(&path, value).map_err(io_err(&path))?;
            // v1 passes through FREEZING; v2 reports in cgroup.events.
            let start = Instant::now();
            loop {
                let done = if file == "freezer.state" {
                    fs::read_to_string(&path).is_ok_and(|s| s.trim() == value)
                } else {
                    let want = format!("frozen {v2_value}");
                    fs::read_to_string(d.join("cgroup.events"))
                        .is_ok_and(|s| s.lines().any(|l| l.trim() == want))
                };
                if done {
                    break;
                }
                if start.elapsed() > Duration::from_secs(5) {
                    return Err(CgroupError::Busy {
                        path,
                        waited_ms: start.elapsed().as_millis(),
                    });
                }
                sleep(Duration::from_millis(1));
            }
        }
        if found {
            Ok(())
        } else {
            Err(CgroupError::NoFreezer)
        }
    }

    /// `update`: new resources for the existing cgroup, all or nothing:
    /// everything is planned (and refused) before the first write, and if a
    /// write fails, the ones before it are put back.
    pub fn update(&self, resources: &Resources) -> Result<(), CgroupError> {
        let layout = Layout::of(&self.dirs)?;
        let writes = layout.plan(&resources.limits)?;
        layout.write_all(&writes, true)?;
        Ok(())
    }

    pub fn is_frozen(&self) -> bool {
        self.dirs.iter().any(|d| {
            fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
                || fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
        })
    }
}

/// Whether this process runs in a user namespace other than the first one:
/// its uid map is then not the identity of all ids.
fn in_user_namespace() -> bool {
    fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
}

/// The kernel said no to a device rule write (a runtime in a user namespace).
fn denied(e: &ApplyError) -> bool {
    matches!(e, ApplyError::Write { source, .. } if source.raw_os_error() == Some(libc::EPERM))
}

/// The frozen cgroup `pid` sits in, if it sits in one: a v1 freezer whose
/// state is FROZEN or a v2 cgroup that reports `frozen 1`. A frozen process
/// cannot act on a SIGKILL until something thaws it.
pub fn frozen_cgroup_of(pid: i32) -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let proc_cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    parse_hierarchies(&mountinfo).iter().find_map(|h| {
        let dir = h.mountpoint.join(
            own_cgroup(&proc_cgroup, h)
                .strip_prefix("/")
                .unwrap_or(Path::new("")),
        );
        let frozen = if h.v2 {
            fs::read_to_string(dir.join("cgroup.events"))
                .is_ok_and(|s| s.lines().any(|l| l.trim() == "frozen 1"))
        } else {
            h.controllers.iter().any(|c| c == "freezer")
                && fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
        };
        frozen.then_some(dir)
    })
}

/// Thaws a frozen cgroup found by [`frozen_cgroup_of`].
pub fn thaw(dir: &Path) -> Result<(), CgroupError> {
    let (file, value) = if dir.join("freezer.state").exists() {
        ("freezer.state", "THAWED")
    } else {
        ("cgroup.freeze", "0")
    };
    let path = dir.join(file);
    fs::write(&path, value).map_err(io_err(&path))
}

/// The processes of a cgroup directory.
pub fn procs_of(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// A new v1 cpuset cgroup starts with no cpus and no memory nodes, and refuses
/// tasks until it has some: give it its parent's.
fn inherit_cpuset(dir: &Path) -> Result<(), CgroupError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = dir.join(file);
        match fs::read_to_string(&own) {
            Ok(v) if v.trim().is_empty() => {
                let parent = dir.parent().unwrap_or(dir);
                let value = filled_cpuset(parent, file)?;
                fs::write(&own, value).map_err(io_err(&own))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// `file` of a v1 cpuset directory, filled first from the nearest ancestor
/// that has a value if it is empty: a parent another `create` has just made
/// (concurrent containers under one cgroupsPath parent) may not be filled in
/// yet, and a child given its empty value refuses every task (ENOSPC).
fn filled_cpuset(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    let value = fs::read_to_string(&path).map_err(io_err(&path))?;
    let value = value.trim();
    if !value.is_empty() {
        return Ok(value.to_string());
    }
    let Some(parent) = dir.parent() else {
        return Ok(String::new());
    };
    let inherited = filled_cpuset(parent, file)?;
    fs::write(&path, &inherited).map_err(io_err(&path))?;
    Ok(inherited)
}

fn rmdir_patiently(dir: &Path, patience: Duration) -> Result<(), CgroupError> {
    let start = Instant::now();
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                if start.elapsed() >= patience {
                    return Err(CgroupError::Busy {
                        path: dir.to_path_buf(),
                        waited_ms: start.elapsed().as_millis(),
                    });
                }
                sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(io_err(dir)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cpuset_under_a_parent_not_yet_filled_in_fills_both_from_above() {
        let root = std::env::temp_dir().join(format!("minirun-cpuset-{}", std::process::id()));
        let child = root.join("parent/child");
        std::fs::create_dir_all(&child).unwrap();
        std::fs::write(root.join("cpuset.cpus"), "0-1\n").unwrap();
        std::fs::write(root.join("cpuset.mems"), "0\n").unwrap();
        for dir in [root.join("parent"), child.clone()] {
            std::fs::write(dir.join("cpuset.cpus"), "\n").unwrap();
            std::fs::write(dir.join("cpuset.mems"), "\n").unwrap();
        }
        super::inherit_cpuset(&child).unwrap();
        let read = |p: std::path::PathBuf| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(child.join("cpuset.cpus")), "0-1");
        assert_eq!(read(child.join("cpuset.mems")), "0");
        assert_eq!(read(root.join("parent/cpuset.cpus")), "0-1");
        std::fs::remove_dir_all(&root).unwrap();
    }

    use super::*;

    const HYBRID: &str = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:6 - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,memory
";

    #[test]
    fn hybrid_uses_v1_only() {
        let h = parse_hierarchies(HYBRID);
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].controllers, vec!["name=systemd"]);
        assert_eq!(h[1].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(h[1].mountpoint, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
    }

    #[test]
    fn pure_v2() {
        let mi = "31 24 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
        let h = parse_hierarchies(mi);
        assert_eq!(
            h,
            vec![Hierarchy {
                mountpoint: "/sys/fs/cgroup".into(),
                controllers: vec![],
                v2: true
            }]
        );
        let dir = container_dir(&h[0], "0::/user.slice/x\n", Path::new("ctr"));
        assert_eq!(
            systemd_path("machine.slice:libpod:abc"),
            Some(PathBuf::from("/machine.slice/libpod-abc.scope"))
        );
        assert_eq!(
            systemd_path("user-1000.slice::x"),
            Some(PathBuf::from("/user.slice/user-1000.slice/x.scope"))
        );
        assert_eq!(
            systemd_path(":p:n"),
            Some(PathBuf::from("/system.slice/p-n.scope"))
        );
        assert_eq!(
            systemd_path("a.slice:p:a-b.slice"),
            Some(PathBuf::from("/a.slice/a-b.slice"))
        );
        assert_eq!(systemd_path("/a/b"), None);
        assert_eq!(systemd_path("a.slice:b"), None);
        assert_eq!(systemd_path("a:p:n"), None);
        assert_eq!(dir, PathBuf::from("/sys/fs/cgroup/user.slice/x/ctr"));
        let dir = container_dir(&h[0], "0::/user.slice/x\n", Path::new("/a/b"));
        assert_eq!(dir, PathBuf::from("/sys/fs/cgroup/a/b"));
    }

    #[test]
    fn relative_paths_start_at_own_v1_cgroup() {
        let h = &parse_hierarchies(HYBRID)[2];
        let pc = "10:memory:/parent\n1:name=systemd:/init.scope\n0::/\n";
        assert_eq!(
            container_dir(h, pc, Path::new("c1")),
            PathBuf::from("/sys/fs/cgroup/memory/parent/c1")
        );
    }
}
