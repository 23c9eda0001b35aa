//! `exec`: a new process in a running container, in all its namespaces and its
//! cgroup, with the config's process as the starting point.

use std::fs::{self, File};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{Capability, LinuxNamespaceType, Process};

use super::lifecycle::{write_pid_file, LifecycleError};
use super::state::{Container, Status};
use crate::cgroups::Entry;
use crate::console;
use crate::process::channel::{channel_pair, ChannelError, Message};
use crate::process::clone_into_cgroups;
use crate::process::exec::{self as child, ExecChild};

/// What `exec` was asked on the command line besides the container.
#[derive(Debug, Default, Clone)]
pub struct ExecArgs {
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    /// `UID[:GID]`
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub tty: bool,
    /// `--apparmor`, `--process-label`
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
}

/// The process to run: the config's process with the command line's changes
/// (as runc builds it when no --process file is given).
pub fn process_from_args(
    base: Option<&Process>,
    args: &ExecArgs,
) -> Result<Process, LifecycleError> {
    let refuse = |m: String| LifecycleError::Refused(m);
    if args.command.is_empty() {
        return Err(refuse(
            "exec: no command given (and no --process file)".into(),
        ));
    }
    let mut p = base.cloned().unwrap_or_default();
    p.set_args(Some(args.command.clone()));
    p.set_terminal(Some(args.tty));
    p.set_console_size(None);
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &args.env {
        let key = kv.split('=').next().unwrap_or(kv);
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &args.cwd {
        p.set_cwd(cwd.into());
    }
    if let Some(user) = &args.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let num = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| refuse(format!("exec: --user {user:?}: expected UID[:GID]")))
        };
        let u = p.user_mut();
        u.set_uid(num(uid)?);
        u.set_gid(match gid {
            Some(g) => num(g)?,
            None => 0,
        });
    }
    if !args.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(args.additional_gids.clone()));
    }
    if !args.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &args.caps {
            // An unknown name is ignored with a warning, as in config.json.
            let Ok(cap) =
                serde_json::from_value::<Capability>(serde_json::Value::from(name.as_str()))
            else {
                crate::log::warn(&format!("exec: --cap {name:?}: unknown capability ignored"));
                continue;
            };
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = set.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
        }
        p.set_capabilities(Some(caps));
    }
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &args.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &args.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    Ok(p)
}

pub struct ExecOptions<'a> {
    pub process: Process,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    /// As for `run`: a socket that receives the pty master when we relay it.
    pub console_stream: Option<&'a UnixStream>,
    pub preserve_fds: u32,
}

/// The order namespaces are joined in: the user namespace owns the others, and
/// the mount namespace goes last (it changes the root).
const JOIN_ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Mount,
];

fn proc_ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Starts the process in the container; returns its pid once it has exec'd.
pub fn exec(root: &Path, id: &str, opts: ExecOptions) -> Result<Pid, LifecycleError> {
    let c = Container::load(root, id)?;
    if !matches!(c.state.status, Status::Created | Status::Running) {
        return Err(LifecycleError::WrongStatus {
            action: "exec in",
            id: id.into(),
            status: c.state.status,
        });
    }
    let labels = crate::lsm::check(&opts.process, None)?;
    let seccomp = c
        .state
        .seccomp
        .as_ref()
        .map(crate::seccomp::compile)
        .transpose()?;
    let agent = seccomp.as_ref().and_then(|f| f.agent().cloned());
    let init = c.state.pid;
    let mut namespaces = Vec::new();
    for t in JOIN_ORDER {
        if c.state.namespaces.contains(&t) {
            let path = format!("/proc/{init}/ns/{}", proc_ns_name(t));
            let f = File::open(&path).map_err(|source| LifecycleError::Io {
                what: format!("opening {path}"),
                source,
            })?;
            namespaces.push((t, f));
        }
    }
    let terminal = opts.process.terminal().unwrap_or(false);
    let console = match (opts.console_stream, opts.console_socket) {
        _ if !terminal => None,
        (Some(s), _) => Some(s.try_clone().map_err(|source| LifecycleError::Io {
            what: "console stream".into(),
            source,
        })?),
        (None, Some(path)) => Some(console::connect(path)?),
        (None, None) => {
            return Err(LifecycleError::Refused(
                "--tty: use --console-socket to receive the terminal".into(),
            ))
        }
    };
    let (parent, child_end) = channel_pair()?;
    // The child joins no user namespace before Proceed.
    let entry = c.state.cgroups.entry(false);
    // SAFETY: single-threaded; the child ends in exec or _exit.
    let (first, entry) =
        unsafe { clone_into_cgroups(0, entry) }.map_err(|source| LifecycleError::Io {
            what: "clone".into(),
            source,
        })?;
    let first = match first {
        None => {
            drop(parent);
            let join_cgroups = matches!(entry, Entry::ByItself).then(|| c.state.cgroups.clone());
            child::run(ExecChild {
                process: opts.process,
                namespaces,
                channel: child_end,
                console,
                preserve_fds: opts.preserve_fds,
                seccomp,
                keep_groups: crate::process::init::keep_original_groups(Some(&c.state.annotations)),
                labels,
                join_cgroups,
            })
        }
        Some(pid) => pid,
    };
    drop(child_end);
    drop(console);
    let fail = |e: LifecycleError, pids: &[Pid]| {
        for p in pids {
            let _ = nix::sys::signal::kill(*p, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(*p, None);
        }
        e
    };
    // Into the container's cgroup before it can fork.
    let by_parent = matches!(entry, Entry::ByParent);
    for dir in c.state.cgroups.dirs.iter().filter(|_| by_parent) {
        let procs = dir.join("cgroup.procs");
        if let Err(source) = fs::write(&procs, first.as_raw().to_string()) {
            return Err(fail(
                LifecycleError::Io {
                    what: format!("joining {}", procs.display()),
                    source,
                },
                &[first],
            ));
        }
    }
    parent
        .send(&Message::Proceed)
        .map_err(|e| fail(e.into(), &[first]))?;
    let mut pid = first;
    loop {
        match parent.recv() {
            Ok(Message::InitPid { pid: p }) => {
                let _ = waitpid(first, None);
                pid = Pid::from_raw(p);
            }
            Ok(Message::SeccompListener) => {
                let listener = parent.take_fd();
                if let Some(agent) = &agent {
                    crate::seccomp::hand_to_agent(
                        agent,
                        listener,
                        pid.as_raw(),
                        &c.state.public_json(),
                    )
                    .map_err(|e| fail(e.into(), &[pid]))?;
                }
            }
            Ok(Message::Ready) => break,
            Ok(Message::Failed { error }) => return Err(fail(LifecycleError::Init(error), &[pid])),
            Ok(other) => {
                return Err(fail(
                    ChannelError::Unexpected {
                        expected: "Ready",
                        got: other,
                    }
                    .into(),
                    &[pid],
                ));
            }
            Err(ChannelError::Closed) => {
                let how = crate::process::reap(pid);
                return Err(LifecycleError::InitDied(how));
            }
            Err(e) => return Err(fail(e.into(), &[pid])),
        }
    }
    // The channel closes on a successful exec; a failed one says why.
    match parent.recv() {
        Err(ChannelError::Closed) => {}
        Ok(Message::Failed { error }) => {
            let _ = waitpid(pid, None);
            return Err(LifecycleError::Init(error));
        }
        Ok(other) => {
            return Err(fail(
                ChannelError::Unexpected {
                    expected: "exec",
                    got: other,
                }
                .into(),
                &[pid],
            ))
        }
        Err(e) => return Err(fail(e.into(), &[pid])),
    }
    if let Some(path) = opts.pid_file {
        write_pid_file(path, pid.as_raw())?;
    }
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_changes_the_config_process() {
        let base: Process = serde_json::from_str(
            r#"{"cwd":"/","user":{"uid":0,"gid":0},"args":["sh"],"env":["PATH=/bin","A=1"],"capabilities":{"bounding":[]},"noNewPrivileges":false}"#,
        )
        .unwrap();
        let args = ExecArgs {
            command: vec!["id".into()],
            env: vec!["A=2".into(), "B=3".into()],
            user: Some("1000:1001".into()),
            caps: vec!["CAP_KILL".into()],
            no_new_privs: true,
            ..Default::default()
        };
        let p = process_from_args(Some(&base), &args).unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["id"]);
        assert_eq!(p.env().as_ref().unwrap(), &["PATH=/bin", "A=2", "B=3"]);
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1001));
        let caps = p.capabilities().as_ref().unwrap();
        assert!(caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::Kill));
        assert!(caps
            .permitted()
            .as_ref()
            .unwrap()
            .contains(&Capability::Kill));
        assert!(caps.inheritable().is_none());
        assert_eq!(p.no_new_privileges(), Some(true));
        assert!(process_from_args(Some(&base), &ExecArgs::default()).is_err());
        let bad_user = ExecArgs {
            command: vec!["x".into()],
            user: Some("root".into()),
            ..Default::default()
        };
        assert!(process_from_args(Some(&base), &bad_user).is_err());
    }
}
