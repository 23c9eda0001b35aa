//! Writing into a container's cgroup what `resources` planned and what
//! `device_rules` worked out: the directory of each controller (`Layout`,
//! also the `Probe` planning reads), the file writes, all or nothing when
//! asked, and the v1 device rules.

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use super::device_rules::{Rule, State};
use super::resources::{self, Probe, ResourceError, Write};
use super::{parse_hierarchies, Hierarchy, Limits};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("linux.resources.{field}: writing {value:?} to {path}: {source}{undo}")]
    Write {
        field: String,
        path: PathBuf,
        value: String,
        source: io::Error,
        /// What became of the writes before this one.
        undo: Box<Undo>,
    },
    #[error("linux.resources.devices: {path} lists {listed:?} after the writes, not the rules asked for (does a parent cgroup deny them?)")]
    DevicesNotTaken { path: PathBuf, listed: String },
    #[error("cgroup {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// What a failed write left of the writes before it.
#[derive(Debug, Default)]
pub struct Undo {
    /// Whether the writes were to be undone at all (not at create: the
    /// directory goes instead).
    pub asked: bool,
    pub undone: usize,
    /// Files whose old content could not be read, and so stay as written.
    pub unreadable: Vec<String>,
    pub failed: Vec<String>,
}

impl fmt::Display for Undo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.asked || (self.undone == 0 && self.unreadable.is_empty() && self.failed.is_empty())
        {
            return Ok(());
        }
        write!(f, " (the {} earlier writes were undone", self.undone)?;
        if !self.unreadable.is_empty() {
            write!(
                f,
                "; not {}, which cannot be read back",
                self.unreadable.join(", ")
            )?;
        }
        if !self.failed.is_empty() {
            write!(f, "; putting back failed: {}", self.failed.join("; "))?;
        }
        write!(f, ")")
    }
}

/// The container's directory in each hierarchy.
pub struct Layout {
    pub dirs: Vec<(Hierarchy, PathBuf)>,
    pub v2: bool,
}

/// The mounted hierarchies, from this process's mountinfo.
pub fn mounted_hierarchies() -> Result<Vec<Hierarchy>, ApplyError> {
    let path = Path::new("/proc/self/mountinfo");
    let text = fs::read_to_string(path).map_err(|source| ApplyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_hierarchies(&text))
}

impl Layout {
    /// The directories a container's state names, matched to the mounted
    /// hierarchies again (the state keeps paths only).
    pub fn of(dirs: &[PathBuf]) -> Result<Self, ApplyError> {
        let hierarchies = mounted_hierarchies()?;
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

    pub fn dir_of(&self, controller: &str) -> Option<&Path> {
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

    pub fn plan(&self, limits: &Limits) -> Result<Vec<Write>, ResourceError> {
        if self.v2 {
            resources::v2_writes(limits, self)
        } else {
            resources::v1_writes(limits, self)
        }
    }

    /// Writes in order. A write marked `retry_after_next` that the kernel
    /// refuses is tried again after the next one. With `undo`, each file's
    /// content is read first and, when a write fails, what was written is
    /// put back, last first: an update is all or nothing.
    pub fn write_all(&self, writes: &[Write], undo: bool) -> Result<(), ApplyError> {
        let mut done = Written::default();
        let mut deferred: Option<(usize, io::Error)> = None;
        let mut failed = None;
        for (i, w) in writes.iter().enumerate() {
            match self.write_one(w, undo, &mut done) {
                Ok(()) => {
                    if let Some((d, _)) = deferred.take() {
                        if let Err(e) = self.write_one(&writes[d], undo, &mut done) {
                            failed = Some((d, e));
                            break;
                        }
                    }
                }
                Err(e)
                    if w.retry_after_next
                        && e.raw_os_error() == Some(libc::EINVAL)
                        && deferred.is_none() =>
                {
                    deferred = Some((i, e));
                }
                Err(e) => {
                    failed = Some((i, e));
                    break;
                }
            }
        }
        let Some((i, source)) = failed.or(deferred) else {
            return Ok(());
        };
        let mut report = Undo {
            asked: undo,
            unreadable: done.unreadable.clone(),
            ..Undo::default()
        };
        if undo {
            report.failed = put_back(&done.back);
            report.undone = done.back.len() - report.failed.len();
        }
        let w = &writes[i];
        Err(ApplyError::Write {
            field: w.field.clone(),
            path: self.path(w),
            value: w.value.clone(),
            source,
            undo: Box::new(report),
        })
    }

    fn write_one(&self, w: &Write, undo: bool, done: &mut Written) -> io::Result<()> {
        let path = self.path(w);
        let old = undo.then(|| fs::read_to_string(&path));
        write_value(&path, &w.value)?;
        match old {
            Some(Ok(old)) => {
                if let Some(back) = resources::restore_value(&w.file, &old, &w.value) {
                    done.back.push((path, back));
                }
            }
            // A file that cannot be read (memory.reclaim, cgroup.kill through
            // linux.resources.unified) has no way back.
            Some(Err(_)) => done.unreadable.push(w.file.clone()),
            None => {}
        }
        Ok(())
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

/// What `write_all` wrote, for putting it back.
#[derive(Default)]
struct Written {
    back: Vec<(PathBuf, String)>,
    unreadable: Vec<String>,
}

/// Writes back what `write_all` recorded, last first, past failures; the
/// failures.
fn put_back(back: &[(PathBuf, String)]) -> Vec<String> {
    back.iter()
        .rev()
        .filter_map(|(path, value)| {
            write_value(path, value)
                .err()
                .map(|e| format!("{value:?} to {}: {e}", path.display()))
        })
        .collect()
}

/// One write(2) of the value: an empty one (a v2 cpuset.cpus put back to
/// "inherit") must still reach the kernel, which `fs::write` of nothing
/// would not do.
fn write_value(path: &Path, value: &str) -> io::Result<()> {
    fs::write(path, if value.is_empty() { "\n" } else { value })
}

/// Takes a v1 devices cgroup from what its devices.list says to `target`
/// with the fewest writes, then reads the list again: the kernel may keep
/// less than asked when a parent cgroup denies it, which runc checks too.
pub fn write_device_rules(dir: &Path, target: &State) -> Result<(), ApplyError> {
    let list = dir.join("devices.list");
    let read_list = || {
        fs::read_to_string(&list).map_err(|source| ApplyError::Io {
            path: list.clone(),
            source,
        })
    };
    let listed = read_list()?;
    let current = State::from_list(&listed).ok_or_else(|| ApplyError::DevicesNotTaken {
        path: list.clone(),
        listed: listed.clone(),
    })?;
    // devices.allow and devices.deny opened once each: the kernel takes one
    // rule per write(2), not per open (a default config is twelve rules).
    let mut files: Vec<(&'static str, fs::File)> = Vec::with_capacity(2);
    for rule in current.transition(target) {
        write_rule(dir, &rule, &mut files)?;
    }
    let listed = read_list()?;
    let now = State::from_list(&listed);
    // A blacklist's exceptions are not listed: only its default can be seen.
    let taken = match &now {
        Some(now) if target.default_allow => now.default_allow,
        Some(now) => now == target,
        None => false,
    };
    if !taken {
        return Err(ApplyError::DevicesNotTaken { path: list, listed });
    }
    Ok(())
}

fn write_rule(
    dir: &Path,
    rule: &Rule,
    files: &mut Vec<(&'static str, fs::File)>,
) -> Result<(), ApplyError> {
    let name = rule.v1_file();
    let written = match files.iter_mut().find(|(n, _)| *n == name) {
        Some((_, f)) => f.write_all(rule.v1_text().as_bytes()),
        None => fs::OpenOptions::new()
            .write(true)
            .open(dir.join(name))
            .and_then(|mut f| {
                f.write_all(rule.v1_text().as_bytes())?;
                files.push((name, f));
                Ok(())
            }),
    };
    written.map_err(|source| ApplyError::Write {
        field: "devices".into(),
        path: dir.join(name),
        value: rule.v1_text(),
        source,
        undo: Box::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
                ("cpuset.cpus", "\n"),
                ("io.max", "8:0 rbps=100 wbps=max riops=max wiops=max\n"),
            ],
            "pids.max",
        );
        let dir = l.dirs[0].1.clone();
        let writes = [
            write("memory.limit", "memory.max", "1000"),
            write("cpu.cpus", "cpuset.cpus", "0"),
            write("blockIO.x", "io.max", "8:16 rbps=5"),
            write("pids.limit", "pids.max", "10"),
        ];
        let e = l.write_all(&writes, true).unwrap_err().to_string();
        assert!(
            e.starts_with("linux.resources.pids.limit: writing \"10\" to ")
                && e.ends_with("(the 3 earlier writes were undone)"),
            "{e}"
        );
        assert_eq!(fs::read_to_string(dir.join("memory.max")).unwrap(), "max");
        // An empty value is written back as such, not skipped.
        assert_eq!(fs::read_to_string(dir.join("cpuset.cpus")).unwrap(), "\n");
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
}
