//! Placing the container in its cgroup (cgroupfs; v1, hybrid and v2 layouts) and
//! removing what was made. A container's cgroup is `linux.cgroupsPath`, or its id
//! below the runtime's own cgroup when the path is not given.
//!
//! linux.resources is read once (`limits`, `device_rules`) before anything
//! exists; `resources` turns it into ordered file writes for the cgroup at
//! hand. At create the directories are made and written before the init
//! joins them, so a refused value leaves no process inside to wait for; an
//! update writes all or nothing (see `Layout::write_all`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxDevice, LinuxResources};
use serde::{Deserialize, Serialize};

mod device_filter;
mod device_rules;
mod limits;
mod resources;

pub use limits::Limits;
pub use resources::ResourceError;
use resources::{Probe, Write};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(transparent)]
    Resource(#[from] ResourceError),
    #[error("cgroup {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{field}: writing {value:?} to {path}: {source}{undo}")]
    Write {
        field: String,
        path: PathBuf,
        value: String,
        source: io::Error,
        /// What became of the writes before this one.
        undo: String,
    },
    #[error(
        "cgroup {path}: Device or resource busy: it still holds processes after {waited_ms} ms"
    )]
    Busy { path: PathBuf, waited_ms: u128 },
    #[error("the container has no freezer cgroup (no freezer controller is mounted)")]
    NoFreezer,
    #[error("cgroup {path}: attaching the device rules (eBPF): {source}")]
    DeviceFilter { path: PathBuf, source: io::Error },
}

/// linux.resources as read before anything exists: the limits and the final
/// state of the device rules (the config's, then runc's defaults).
#[derive(Debug, Clone)]
pub struct Resources {
    pub limits: Limits,
    /// None: leave the device rules as they are (an update without rules).
    devices: Option<device_rules::State>,
}

impl Resources {
    /// For `create`: every container gets device rules, the defaults at least.
    pub fn for_create(
        r: Option<&LinuxResources>,
        linux_devices: &[LinuxDevice],
    ) -> Result<Self, ResourceError> {
        let rules = r.and_then(|r| r.devices().as_deref()).unwrap_or(&[]);
        Ok(Resources {
            limits: r.map(Limits::from_spec).transpose()?.unwrap_or_default(),
            devices: Some(device_rules::State::from_rules(&device_rules::from_spec(
                rules,
                linux_devices,
            )?)?),
        })
    }

    /// For `update`: device rules only when the update carries some (CRI
    /// sends the container's whole list with every update).
    pub fn for_update(r: &LinuxResources) -> Result<Self, ResourceError> {
        let devices = match r.devices().as_deref() {
            Some(rules) if !rules.is_empty() => Some(device_rules::State::from_rules(
                &device_rules::from_spec(rules, &[])?,
            )?),
            _ => None,
        };
        Ok(Resources {
            limits: Limits::from_spec(r)?,
            devices,
        })
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

/// The container's directory in each hierarchy, as planning and writing see
/// them.
struct Layout {
    dirs: Vec<(Hierarchy, PathBuf)>,
    v2: bool,
}

impl Layout {
    /// The directories a container's state names, matched to the mounted
    /// hierarchies again (the state keeps paths only).
    fn of(dirs: &[PathBuf]) -> Result<Self, CgroupError> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .map_err(io_err(Path::new("/proc/self/mountinfo")))?;
        let hierarchies = parse_hierarchies(&mountinfo);
        let v2 = hierarchies.first().is_some_and(|h| h.v2);
        let dirs = dirs
            .iter()
            .filter_map(|d| {
                let h = hierarchies
                    .iter()
                    .filter(|h| d.starts_with(&h.mountpoint))
                    .max_by_key(|h| h.mountpoint.as_os_str().len())?;
                Some((h.clone(), d.clone()))
            })
            .collect();
        Ok(Layout { dirs, v2 })
    }

    fn dir_of(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(h, _)| h.v2 || h.controllers.iter().any(|c| c == controller))
            .map(|(_, d)| d.as_path())
    }

    fn path(&self, w: &Write) -> PathBuf {
        self.dir_of(w.controller)
            .expect("planned for a mounted controller")
            .join(&w.file)
    }

    fn plan(&self, limits: &Limits) -> Result<Vec<Write>, ResourceError> {
        if self.v2 {
            resources::v2_writes(limits, self)
        } else {
            resources::v1_writes(limits, self)
        }
    }

    /// Writes in order. With `undo`, each file's content is read first and,
    /// when a write fails, what was written is put back, last first: an
    /// update is all or nothing. A write marked `retry_after_next` that the
    /// kernel refuses is tried again after the next one.
    fn write_all(
        &self,
        writes: &[Write],
        undo: bool,
    ) -> Result<Vec<(PathBuf, String)>, CgroupError> {
        let mut done: Vec<(PathBuf, String)> = Vec::new();
        let attempt =
            |i: usize, done: &mut Vec<(PathBuf, String)>| -> Result<(), (usize, io::Error)> {
                let w = &writes[i];
                let path = self.path(w);
                let old = if undo {
                    fs::read_to_string(&path).map_err(|e| (i, e))?
                } else {
                    String::new()
                };
                fs::write(&path, &w.value).map_err(|e| (i, e))?;
                if undo {
                    if let Some(back) = resources::restore_value(&w.file, &old, &w.value) {
                        done.push((path, back));
                    }
                }
                Ok(())
            };
        let mut deferred: Option<(usize, io::Error)> = None;
        let mut result = Ok(());
        for (i, w) in writes.iter().enumerate() {
            match attempt(i, &mut done) {
                Ok(()) => {
                    if let Some((d, _)) = deferred.take() {
                        if let Err(e) = attempt(d, &mut done) {
                            result = Err(e);
                            break;
                        }
                    }
                }
                Err((_, e))
                    if w.retry_after_next
                        && e.raw_os_error() == Some(libc::EINVAL)
                        && deferred.is_none() =>
                {
                    deferred = Some((i, e));
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if let (Ok(()), Some(d)) = (&result, deferred) {
            result = Err(d);
        }
        let Err((i, source)) = result else {
            return Ok(done);
        };
        let w = &writes[i];
        let undo_note = if !undo || done.is_empty() {
            String::new()
        } else {
            match put_back(&done) {
                Ok(()) => format!(" (the {} earlier writes were undone)", done.len()),
                Err(e) => format!(" (undoing the earlier writes failed: {e})"),
            }
        };
        Err(CgroupError::Write {
            field: w.field.clone(),
            path: self.path(w),
            value: w.value.clone(),
            source,
            undo: undo_note,
        })
    }
}

/// Writes back what `write_all` recorded, last first, past failures.
fn put_back(done: &[(PathBuf, String)]) -> Result<(), String> {
    let mut failed = Vec::new();
    for (path, value) in done.iter().rev() {
        if let Err(e) = fs::write(path, value) {
            failed.push(format!("{value:?} to {}: {e}", path.display()));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

impl Probe for Layout {
    fn mounted(&self, controller: &str) -> bool {
        self.v2 || self.dir_of(controller).is_some()
    }

    fn has(&self, controller: &str, file: &str) -> bool {
        self.dir_of(controller)
            .is_some_and(|d| d.join(file).exists())
    }

    fn read(&self, controller: &str, file: &str) -> Option<String> {
        fs::read_to_string(self.dir_of(controller)?.join(file)).ok()
    }
}

impl CgroupPaths {
    /// Makes the container's cgroup in every hierarchy and writes its
    /// resources, before any process is inside. What is made is recorded in
    /// `self` as it is made, so the caller's undo removes exactly that.
    pub fn make(&mut self, cgroups_path: &Path, resources: &Resources) -> Result<(), CgroupError> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .map_err(io_err(Path::new("/proc/self/mountinfo")))?;
        let proc_cgroup = fs::read_to_string("/proc/self/cgroup")
            .map_err(io_err(Path::new("/proc/self/cgroup")))?;
        let hierarchies = parse_hierarchies(&mountinfo);
        let v2 = hierarchies.first().is_some_and(|h| h.v2);
        let mut layout = Layout {
            dirs: Vec::with_capacity(hierarchies.len()),
            v2,
        };
        for h in hierarchies {
            let dir = container_dir(&h, &proc_cgroup, cgroups_path);
            self.make_dir(&h.mountpoint, &dir)?;
            self.dirs.push(dir.clone());
            layout.dirs.push((h, dir));
        }
        let writes = layout.plan(&resources.limits)?;
        layout.write_all(&writes, false)?;
        if let Some(target) = &resources.devices {
            if v2 {
                let dir = layout.dirs[0].1.clone();
                let program = device_filter::program(&target.rules());
                let id = device_filter::attach(&program, &dir).map_err(|source| {
                    CgroupError::DeviceFilter {
                        path: dir.clone(),
                        source,
                    }
                })?;
                self.device_program = Some((dir, id));
            } else if let Some(dir) = layout.dir_of("devices") {
                write_device_rules(dir, target, false)?;
            }
        }
        Ok(())
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

    /// mkdir -p below the mountpoint, remembering what did not exist before.
    fn make_dir(&mut self, mountpoint: &Path, dir: &Path) -> Result<(), CgroupError> {
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
        // Also for a directory that existed: someone else may have made it
        // without filling its cpuset in.
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

    /// `update`: new resources for the existing cgroup, all or nothing.
    /// Everything is planned (and refused) before the first write; if a
    /// write fails, the ones before it are put back. Device rules, when the
    /// update has some: on v1 the writes from the cgroup's devices.list to
    /// them, on v2 a new program in place of the old (`self` then names it:
    /// the caller saves the state).
    pub fn update(&mut self, resources: &Resources) -> Result<(), CgroupError> {
        let layout = Layout::of(&self.dirs)?;
        let writes = layout.plan(&resources.limits)?;
        let devices_dir = match (&resources.devices, layout.v2) {
            (Some(_), false) => {
                Some(
                    layout
                        .dir_of("devices")
                        .ok_or_else(|| ResourceError::Unavailable {
                            field: "linux.resources.devices".into(),
                            why: "the devices cgroup controller is not mounted on this host".into(),
                        })?,
                )
            }
            _ => None,
        };
        let done = layout.write_all(&writes, true)?;
        let undo_writes = |e: CgroupError| {
            if let Err(more) = put_back(&done) {
                crate::log::warn(&format!("undoing the update: {more}"));
            }
            e
        };
        let Some(target) = &resources.devices else {
            return Ok(());
        };
        if let Some(dir) = devices_dir {
            return write_device_rules(dir, target, true).map_err(undo_writes);
        }
        let dir = layout
            .dirs
            .first()
            .map(|(_, d)| d.clone())
            .unwrap_or_default();
        let program = device_filter::program(&target.rules());
        let id = device_filter::attach(&program, &dir)
            .map_err(|source| CgroupError::DeviceFilter {
                path: dir.clone(),
                source,
            })
            .map_err(undo_writes)?;
        // Both programs must allow while both are attached: stricter, never
        // looser, for that moment.
        if let Some((old_dir, old_id)) = self.device_program.replace((dir.clone(), id)) {
            if let Err(source) = device_filter::detach(old_id, &old_dir) {
                let _ = device_filter::detach(id, &dir);
                self.device_program = Some((old_dir, old_id));
                return Err(undo_writes(CgroupError::DeviceFilter { path: dir, source }));
            }
        }
        Ok(())
    }

    pub fn is_frozen(&self) -> bool {
        self.dirs.iter().any(|d| {
            fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
                || fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
        })
    }
}

/// Takes a v1 devices cgroup from what its devices.list says to `target`
/// with the fewest writes; with `undo`, a failure writes the way back.
fn write_device_rules(
    dir: &Path,
    target: &device_rules::State,
    undo: bool,
) -> Result<(), CgroupError> {
    let list = dir.join("devices.list");
    let current =
        device_rules::State::from_list(&fs::read_to_string(&list).map_err(io_err(&list))?);
    let forward = current.transition(target);
    let write = |rules: &[device_rules::Rule]| -> Result<(), (usize, io::Error)> {
        for (i, r) in rules.iter().enumerate() {
            let file = if r.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            fs::write(dir.join(file), r.v1_text()).map_err(|e| (i, e))?;
        }
        Ok(())
    };
    let Err((i, source)) = write(&forward) else {
        return Ok(());
    };
    let rule = &forward[i];
    let undo_note = if undo {
        match write(&target.transition(&current)) {
            Ok(()) => " (the device rules were put back)".to_string(),
            Err((_, e)) => format!(" (putting the device rules back failed: {e})"),
        }
    } else {
        String::new()
    };
    Err(CgroupError::Write {
        field: "linux.resources.devices".into(),
        path: dir.join(if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        }),
        value: rule.v1_text(),
        source,
        undo: undo_note,
    })
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
                let parent = dir.parent().unwrap_or(dir).join(file);
                let value = fs::read_to_string(&parent).map_err(io_err(&parent))?;
                fs::write(&own, value.trim()).map_err(io_err(&own))?;
            }
            _ => {}
        }
    }
    Ok(())
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

    /// A v2 "cgroup" in a scratch directory: files as they are given, and a
    /// directory where a write must fail.
    fn scratch_layout(name: &str, files: &[(&str, &str)], unwritable: &str) -> Layout {
        let dir = std::env::temp_dir().join(format!("minirun-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join(unwritable)).unwrap();
        for (f, v) in files {
            fs::write(dir.join(f), v).unwrap();
        }
        let h = Hierarchy {
            mountpoint: dir.clone(),
            controllers: Vec::new(),
            v2: true,
        };
        Layout {
            dirs: vec![(h, dir)],
            v2: true,
        }
    }

    fn write(field: &str, file: &str, value: &str) -> Write {
        Write {
            field: field.into(),
            controller: "",
            file: file.into(),
            value: value.into(),
            retry_after_next: false,
        }
    }

    #[test]
    fn a_failed_update_puts_back_what_it_wrote_last_first() {
        let l = scratch_layout(
            "undo",
            &[
                ("memory.max", "max\n"),
                ("io.max", "8:0 rbps=100 wbps=max riops=max wiops=max\n"),
            ],
            "pids.max",
        );
        let dir = l.dirs[0].1.clone();
        let writes = [
            write("linux.resources.memory.limit", "memory.max", "1000"),
            write("linux.resources.blockIO.x", "io.max", "8:16 rbps=5"),
            write("linux.resources.pids.limit", "pids.max", "10"),
        ];
        let e = l.write_all(&writes, true).unwrap_err().to_string();
        assert!(
            e.starts_with("linux.resources.pids.limit: writing \"10\" to ")
                && e.ends_with("(the 2 earlier writes were undone)"),
            "{e}"
        );
        assert_eq!(fs::read_to_string(dir.join("memory.max")).unwrap(), "max");
        // A keyed file gets the written key's line back (here: none, so no limit).
        assert_eq!(
            fs::read_to_string(dir.join("io.max")).unwrap(),
            "8:16 rbps=max wbps=max riops=max wiops=max"
        );
        // At create nothing is read or put back: the directory goes.
        let e = l.write_all(&writes, false).unwrap_err().to_string();
        assert!(!e.contains("undone"), "{e}");
        assert_eq!(fs::read_to_string(dir.join("memory.max")).unwrap(), "1000");
        let _ = fs::remove_dir_all(dir);
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
