//! create, start, kill and delete: the parent's half of the lifecycle.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType};

use super::state::{
    container_dir, Container, ContainerError, Creator, State, Status, START_SOCKET,
};
use crate::cgroups::{CgroupError, CgroupPaths, Entry, Placement, Resources};
use crate::hooks::{self, HookError, HookKind};
use crate::namespaces::Plan;
use crate::process::channel::{channel_pair, Channel, ChannelError, Message};
use crate::process::init::{self, InitConfig};
use crate::process::{clone_into_cgroups, proc_start_time, reap, wait_gone};
use crate::spec::{self, Bundle, SpecError};
use crate::{console, log, network};

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("{0}")]
    InvalidId(String),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Console(#[from] console::ConsoleError),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Mount(#[from] crate::mounts::MountError),
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Device(#[from] crate::devices::DeviceError),
    #[error(transparent)]
    Lsm(#[from] crate::lsm::LsmError),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    /// The init reported why it could not set the container up.
    #[error("{0}")]
    Init(String),
    #[error("container init exited before it was ready ({0})")]
    InitDied(String),
    #[error("cannot {action} container {id}: it is {status}")]
    WrongStatus {
        action: &'static str,
        id: String,
        status: Status,
    },
    #[error("invalid signal {0:?}")]
    Signal(String),
    #[error("{0}")]
    Refused(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> LifecycleError {
    let what = what.into();
    move |source| LifecycleError::Io { what, source }
}

pub struct CreateOptions<'a> {
    pub root: &'a Path,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    /// A connected socket that receives the pty master instead of
    /// --console-socket: a foreground `run` that relays the terminal itself.
    pub console_stream: Option<&'a UnixStream>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// `--net`: the network mode (see `network::apply`).
    pub net: Option<&'a str>,
    /// `-p` specs.
    pub publish: &'a [String],
    /// `--ip`, `--ip6`, `--alias` (user-defined networks).
    pub ip: Option<&'a str>,
    pub ip6: Option<&'a str>,
    pub aliases: &'a [String],
    /// `--config`: the configuration file, if not the bundle's config.json.
    pub config: Option<&'a Path>,
    /// `--systemd-cgroup`: linux.cgroupsPath is `slice:prefix:name`.
    pub systemd_cgroup: bool,
    /// The signal mask the init sets first: the caller's before it blocked
    /// the signals it waits for (a foreground `run`).
    pub init_sigmask: Option<nix::sys::signal::SigSet>,
}

/// What exists so far of a container being created; `undo` removes exactly that.
struct Partial {
    dir: PathBuf,
    pids: Vec<Pid>,
    cgroups: CgroupPaths,
    state: Option<State>,
    hooks_started: bool,
}

impl Partial {
    fn undo(self) {
        for pid in &self.pids {
            let _ = kill(*pid, Signal::SIGKILL);
            let _ = waitpid(*pid, None);
        }
        if self.hooks_started {
            if let Some(state) = &self.state {
                let mut st = state.clone();
                st.status = Status::Stopped;
                for e in hooks::run_all(HookKind::Poststop, st.hooks.as_ref(), &state_bytes(&st)) {
                    log::warn(&e.to_string());
                }
            }
        }
        if let Err(e) = self.cgroups.remove() {
            log::warn(&e.to_string());
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// systemd socket activation of the runtime (`LISTEN_FDS=N` in its
/// environment): the N descriptors from 3 are passed to the container, whose
/// process gets LISTEN_FDS=N and LISTEN_PID=1, as crun does.
fn listen_fds() -> Option<u32> {
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| *n > 0)
}

fn pass_on_socket_activation(spec: &mut oci_spec::runtime::Spec) {
    let Some(n) = listen_fds() else {
        return;
    };
    if let Some(p) = spec.process_mut() {
        let mut env = p.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={n}"));
        env.push("LISTEN_PID=1".into());
        p.set_env(Some(env));
    }
}

/// sd_notify (see `notify`): the state dir's notify directory is mounted,
/// after every mount of config.json, where the manager's socket would be, and
/// the process is told the socket in it.
fn pass_on_notify_socket(spec: &mut oci_spec::runtime::Spec, host: &str, state_dir: &Path) {
    let at = crate::notify::container_dir(host);
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    let mut m = oci_spec::runtime::Mount::default();
    m.set_destination(at.clone())
        .set_typ(Some("bind".into()))
        .set_source(Some(state_dir.join(crate::notify::DIR)))
        .set_options(Some(
            ["bind", "nosuid", "nodev", "noexec"]
                .map(String::from)
                .into(),
        ));
    mounts.push(m);
    spec.set_mounts(Some(mounts));
    if let Some(p) = spec.process_mut() {
        let mut env = p.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("NOTIFY_SOCKET="));
        env.push(format!(
            "NOTIFY_SOCKET={}",
            at.join(crate::notify::SOCKET).display()
        ));
        p.set_env(Some(env));
    }
}

/// The host ids of the container's root: who must own what the container's
/// root reaches through a user namespace.
fn root_owner(linux: Option<&oci_spec::runtime::Linux>) -> Option<(u32, u32)> {
    let linux = linux?;
    let host_of = |maps: Option<&Vec<LinuxIdMapping>>| {
        maps?
            .iter()
            .find(|m| m.container_id() == 0 && m.size() > 0)
            .map(|m| m.host_id())
    };
    Some((
        host_of(linux.uid_mappings().as_ref())?,
        host_of(linux.gid_mappings().as_ref())?,
    ))
}

fn state_bytes(state: &State) -> Vec<u8> {
    serde_json::to_vec(&state.public_json()).unwrap_or_default()
}

/// `create`: validates everything, then makes the container and leaves its init
/// waiting for `start`. On failure nothing is left behind.
pub fn create(opts: &CreateOptions) -> Result<Container, LifecycleError> {
    create_with(opts, false).map(|(c, _)| c)
}

/// `create` for a `run`, which starts the container itself: its init is
/// released on its channel the moment it is ready, rather than waiting on a
/// start.sock another process could reach (no socket made, bound, connected
/// to and removed: ~10 system calls of every `run`), and goes on to its exec
/// while the caller takes the lock (~0.2 ms the init would wait). [`start_created`] takes the returned [`Released`] and
/// sees the exec. Call with the caller's signals blocked: the container may
/// exit before this returns.
pub fn create_to_start(opts: &CreateOptions) -> Result<(Container, Released), LifecycleError> {
    let (c, init) = create_with(opts, true)?;
    Ok((c, init.expect("kept for the caller's start")))
}

/// A `run`'s init, told to start at Ready: the channel that closes at its
/// exec, and the notify socket, bound before (the process's first message
/// must find it).
pub struct Released {
    channel: Channel,
    proxy: Option<crate::notify::Proxy>,
}

fn create_with(
    opts: &CreateOptions,
    caller_starts: bool,
) -> Result<(Container, Option<Released>), LifecycleError> {
    spec::validate_id(opts.id).map_err(LifecycleError::InvalidId)?;
    let mut bundle = Bundle::load_with_config(opts.bundle, opts.config)?;
    crate::trace::point("bundle loaded");
    network::apply(
        &mut bundle.spec,
        network::NetOptions {
            flag: opts.net,
            publish: opts.publish,
            ip: opts.ip,
            ip6: opts.ip6,
            aliases: opts.aliases,
        },
        opts.root,
        opts.id,
    )?;
    pass_on_socket_activation(&mut bundle.spec);
    let notify = crate::notify::host_socket();
    if let Some(host) = &notify {
        let state_dir = std::path::absolute(container_dir(opts.root, opts.id))
            .map_err(io_err("the state directory's path"))?;
        pass_on_notify_socket(&mut bundle.spec, host, &state_dir);
    }
    let spec = &bundle.spec;
    let process = spec.process().as_ref().expect("validated");
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && opts.console_stream.is_none() {
        return Err(LifecycleError::Refused(
            "process.terminal is true: use --console-socket to receive the terminal".into(),
        ));
    }
    let linux = spec.linux().as_ref();
    let labels = crate::lsm::check(process, linux.and_then(|l| l.mount_label().as_deref()))?;
    let has_mount_ns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Mount));
    if !has_mount_ns {
        return Err(LifecycleError::Spec(SpecError::Invalid {
            field: "linux.namespaces".into(),
            message: "a mount namespace is required".into(),
        }));
    }
    let plan = Plan::from_linux(linux);
    let cgroups_path = cgroups_path_of(opts, spec)?;
    let in_userns = plan.new_user
        || plan
            .joins
            .iter()
            .any(|(t, _)| *t == LinuxNamespaceType::User);
    let idmaps = crate::idmap::plan(
        spec.mounts().as_deref().unwrap_or(&[]),
        linux
            .and_then(|l| l.uid_mappings().as_deref())
            .unwrap_or(&[]),
        linux
            .and_then(|l| l.gid_mappings().as_deref())
            .unwrap_or(&[]),
        in_userns,
    )?;
    // Read before anything exists: a value no kernel takes leaves nothing.
    let resources = Resources::for_create(
        linux.and_then(|l| l.resources().as_ref()),
        linux.and_then(|l| l.devices().as_deref()).unwrap_or(&[]),
    )?;
    // Compiled before anything exists: a profile libseccomp refuses leaves nothing.
    let seccomp = linux
        .and_then(|l| l.seccomp().as_ref())
        .map(crate::seccomp::compile)
        .transpose()?;

    let (cgroups, placement) = CgroupPaths::plan(&cgroups_path)?;
    crate::trace::point("validated");
    // Everything known before anything exists, with what is about to be made:
    // a `create` killed from here on leaves a container `delete` removes.
    let state = State {
        oci_version: spec.version().clone(),
        id: opts.id.to_string(),
        pid: 0,
        status: Status::Creating,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: log::now_rfc3339(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        owner: String::new(),
        init_start_time: 0,
        hooks: spec.hooks().clone(),
        cgroups: cgroups.clone(),
        own_pid_ns: plan.own_pid,
        process: spec.process().clone(),
        external_descriptors: String::new(),
        networks_connected: false,
        seccomp: linux.and_then(|l| l.seccomp().clone()),
        namespaces: linux
            .and_then(|l| l.namespaces().as_deref())
            .unwrap_or(&[])
            .iter()
            .map(|n| n.typ())
            .collect(),
        creator: Some(Creator::this_process()?),
    };
    let dir = Container::create_dir(opts.root, opts.id, &state)?;
    crate::trace::point("state dir made");
    let mut partial = Partial {
        dir: dir.clone(),
        pids: Vec::new(),
        cgroups,
        state: Some(state),
        hooks_started: false,
    };
    let checked = Checked {
        bundle: &bundle,
        plan: &plan,
        placement: &placement,
        resources: &resources,
        idmaps: &idmaps,
        seccomp: seccomp.as_ref(),
        labels: &labels,
        notify: notify.is_some(),
    };
    match create_in(opts, &checked, caller_starts, &mut partial) {
        Ok(c) => Ok(c),
        Err(e) => {
            partial.undo();
            Err(e)
        }
    }
}

/// Where the container's cgroup goes: linux.cgroupsPath (systemd's form with
/// `--systemd-cgroup`) or the id.
fn cgroups_path_of(
    opts: &CreateOptions,
    spec: &oci_spec::runtime::Spec,
) -> Result<PathBuf, LifecycleError> {
    let linux = spec.linux().as_ref();
    let cgroups_path = linux.and_then(|l| l.cgroups_path().clone());
    Ok(match cgroups_path {
        Some(p) if opts.systemd_cgroup => crate::cgroups::systemd_path(&p.to_string_lossy())
            .ok_or_else(|| {
                LifecycleError::Spec(SpecError::Invalid {
                    field: "linux.cgroupsPath".into(),
                    message: format!(
                        "{} is not slice:prefix:name as --systemd-cgroup expects",
                        p.display()
                    ),
                })
            })?,
        Some(p) => p,
        None if opts.systemd_cgroup => {
            PathBuf::from(format!("/system.slice/minirun-{}.scope", opts.id))
        }
        None => PathBuf::from(opts.id),
    })
}

/// What `create` worked out from the config before anything existed.
#[derive(Clone, Copy)]
struct Checked<'a> {
    bundle: &'a Bundle,
    plan: &'a Plan,
    placement: &'a Placement,
    resources: &'a Resources,
    idmaps: &'a [crate::idmap::Idmap],
    seccomp: Option<&'a crate::seccomp::Filter>,
    labels: &'a crate::lsm::Labels,
    /// The runtime has a NOTIFY_SOCKET to proxy.
    notify: bool,
}

fn create_in(
    opts: &CreateOptions,
    checked: &Checked,
    caller_starts: bool,
    partial: &mut Partial,
) -> Result<(Container, Option<Released>), LifecycleError> {
    let Checked {
        bundle,
        plan,
        placement,
        resources,
        idmaps,
        seccomp,
        labels,
        notify,
    } = *checked;
    let spec = &bundle.spec;
    let dir = partial.dir.clone();
    let listener = if caller_starts {
        None
    } else {
        Some(bind_short(&dir.join(START_SOCKET)).map_err(io_err("binding the start socket"))?)
    };
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let console = match (opts.console_stream, opts.console_socket) {
        _ if !terminal => None,
        (Some(stream), _) => Some(stream.try_clone().map_err(io_err("console stream"))?),
        (None, Some(path)) => Some(console::connect(path)?),
        (None, None) => None,
    };
    if notify {
        let owner = plan
            .new_user
            .then(|| root_owner(spec.linux().as_ref()))
            .flatten();
        crate::notify::make_dir(&dir, owner).map_err(io_err("making the notify directory"))?;
    }
    let bind_sources =
        crate::mounts::open_bind_sources(spec.mounts().as_deref().unwrap_or(&[]), &bundle.dir)?;
    let device_nodes = if plan.new_user {
        precreate_devices(spec.linux().as_ref(), &dir)?
    } else {
        Vec::new()
    };
    // Made and written before the init is in them, so a value the kernel
    // refuses leaves no process inside to wait for: after the clone where
    // the init enters them itself (it waits for CgroupsMade) and its mounts
    // meanwhile reach no other namespace (a refused value kills it mid-way),
    // before it elsewhere.
    let make_after_clone = partial
        .cgroups
        .can_make_after_clone(placement, plan.new_user)
        && !crate::mounts::may_propagate(spec);
    let entry = if make_after_clone {
        Entry::ByItself
    } else {
        partial.cgroups.make(placement, resources)?;
        crate::trace::point("cgroups made");
        partial.cgroups.entry(plan.new_user)
    };
    // The init moving itself waits for CgroupsMade, whenever they were made.
    let tell_cgroups_made = matches!(entry, Entry::ByItself);
    let hierarchies: Vec<_> = placement.hierarchies().cloned().collect();
    let (parent, child) = channel_pair()?;
    // SAFETY: minirun is single-threaded here; the child runs the init, which
    // ends in exec or _exit.
    let (pid, entry) = unsafe { clone_into_cgroups(plan.clone_flags.bits() as u64, entry) }
        .map_err(io_err("clone"))?;
    let pid = match pid {
        None => {
            drop(parent);
            let join_cgroups = tell_cgroups_made.then_some(&partial.cgroups);
            init::run(InitConfig {
                id: opts.id,
                spec,
                bundle: &bundle.dir,
                rootfs: &bundle.rootfs,
                plan,
                channel: child,
                start_listener: listener,
                console,
                no_pivot: opts.no_pivot,
                no_new_keyring: opts.no_new_keyring,
                preserve_fds: opts.preserve_fds.max(listen_fds().unwrap_or(0)),
                bind_sources,
                device_nodes,
                seccomp,
                labels,
                join_cgroups,
                hierarchies: &hierarchies,
                sigmask: opts.init_sigmask,
            })
        }
        Some(pid) => pid,
    };
    crate::trace::point("cloned");
    partial.pids.push(pid);
    drop(child);
    drop(listener);
    drop(console);
    drop(device_nodes);

    let linux = spec.linux().as_ref();
    if plan.new_user {
        if let Some(l) = linux {
            write_id_map(pid, "uid_map", l.uid_mappings().as_deref().unwrap_or(&[]))?;
            write_id_map(pid, "gid_map", l.gid_mappings().as_deref().unwrap_or(&[]))?;
        }
    }
    // The init holds the same detached mounts and attaches them only after
    // Proceed: set their idmaps now that its user namespace is mapped.
    // The init joins a user namespace given by path only after Proceed: a
    // bare idmap takes that path, not the init's namespace of the moment.
    let container_userns = plan
        .joins
        .iter()
        .find(|(t, _)| *t == LinuxNamespaceType::User)
        .map(|(_, path)| path.clone())
        .unwrap_or_else(|| PathBuf::from(format!("/proc/{pid}/ns/user")));
    for m in idmaps {
        let tree = bind_sources.get(m.index).and_then(Option::as_ref);
        tree.map_or(Err(io::Error::from_raw_os_error(libc::EINVAL)), |t| {
            crate::idmap::apply(m, t, &container_userns)
        })
        .map_err(io_err(format!("mounts[{}]: setting the idmap", m.index)))?;
    }
    drop(bind_sources);

    if matches!(entry, Entry::ByParent) {
        partial.cgroups.join(pid.as_raw())?;
    }

    let mut state = partial.state.clone().expect("saved by create");
    // Read before Proceed: the init moves a terminal onto its 0-2 later.
    state.external_descriptors = external_descriptors(pid);
    // The init sets up the container while the pid is written down (~0.1 ms
    // of a run off the init's path): a runtime killed before the write leaves
    // an init that exits by itself at its next message to us.
    parent.send(&Message::Proceed)?;
    crate::trace::point("proceed sent");
    if make_after_clone {
        partial.cgroups.make(placement, resources)?;
        crate::trace::point("cgroups made");
    }
    if tell_cgroups_made {
        // An init that failed meanwhile has closed its end after saying
        // why: that is read below.
        match parent.send(&Message::CgroupsMade) {
            Ok(()) | Err(ChannelError::Closed) => {}
            Err(e) => return Err(e.into()),
        }
    }
    state.pid = pid.as_raw();
    state.init_start_time = proc_start_time(pid.as_raw()).unwrap_or(0);
    state.cgroups = partial.cgroups.clone();
    Container::save(&dir, &state)?;
    partial.state = Some(state.clone());
    crate::trace::point("pid saved");

    let mut released = None;
    loop {
        match parent.recv() {
            Ok(Message::InitPid { pid: new }) => {
                // The middle process of a second fork has done its part.
                let middle = Pid::from_raw(state.pid);
                let _ = waitpid(middle, None);
                partial.pids.retain(|p| *p != middle);
                partial.pids.push(Pid::from_raw(new));
                state.pid = new;
                state.init_start_time = proc_start_time(new).unwrap_or(0);
                Container::save(&dir, &state)?;
                partial.state = Some(state.clone());
            }
            Ok(Message::RunHooks) => {
                partial.hooks_started = true;
                let json = state_bytes(&state);
                hooks::run(HookKind::Prestart, state.hooks.as_ref(), &json)?;
                hooks::run(HookKind::CreateRuntime, state.hooks.as_ref(), &json)?;
                parent.send(&Message::HooksDone)?;
            }
            Ok(Message::SeccompListener) => {
                let listener = parent.take_fd();
                if let Some(agent) = seccomp.and_then(|f| f.agent()) {
                    crate::seccomp::hand_to_agent(
                        agent,
                        listener,
                        state.pid,
                        &state.public_json(),
                    )?;
                }
            }
            Ok(Message::Ready) => {
                crate::trace::point("init ready");
                if caller_starts {
                    // What must not fail once the process runs, first.
                    if let Some(path) = opts.pid_file {
                        write_pid_file(path, state.pid)?;
                    }
                    let proxy = crate::notify::Proxy::bind(&dir)
                        .map_err(io_err("binding the notify socket"))?;
                    parent.send(&Message::Start)?;
                    released = Some(Released {
                        channel: parent,
                        proxy,
                    });
                }
                break;
            }
            Ok(Message::Failed { error }) => return Err(LifecycleError::Init(error)),
            Ok(other) => {
                return Err(ChannelError::Unexpected {
                    expected: "a message from init",
                    got: other,
                }
                .into())
            }
            Err(ChannelError::Closed) => {
                let how = partial.pids.last().map(|p| reap(*p)).unwrap_or_default();
                partial.pids.clear();
                return Err(LifecycleError::InitDied(how));
            }
            Err(e) => return Err(e.into()),
        }
    }

    state.status = Status::Created;
    state.creator = None;
    // A released init is on its way to its exec: its state goes from
    // creating (a live creator: no `delete` without --force takes it) to
    // running, written once the exec is seen, and nothing that could fail
    // comes between.
    if released.is_none() {
        Container::save(&dir, &state)?;
        if let Some(path) = opts.pid_file {
            write_pid_file(path, state.pid)?;
        }
    }
    crate::trace::point("created");
    Ok((Container { dir, state }, released))
}

/// Binds a unix socket; a path too long for sun_path is reached through its
/// directory's /proc/self/fd entry.
fn bind_short(path: &Path) -> io::Result<UnixListener> {
    if path.as_os_str().len() < 100 {
        return UnixListener::bind(path);
    }
    let dir = fs::File::open(path.parent().unwrap_or(Path::new("/")))?;
    let short = format!(
        "/proc/self/fd/{}/{}",
        std::os::fd::AsRawFd::as_raw_fd(&dir),
        START_SOCKET
    );
    UnixListener::bind(short)
}

fn connect_short(path: &Path) -> io::Result<UnixStream> {
    if path.as_os_str().len() < 100 {
        return UnixStream::connect(path);
    }
    let dir = fs::File::open(path.parent().unwrap_or(Path::new("/")))?;
    let short = format!(
        "/proc/self/fd/{}/{}",
        std::os::fd::AsRawFd::as_raw_fd(&dir),
        START_SOCKET
    );
    UnixStream::connect(short)
}

/// linux.devices for a new user namespace, made by the runtime.
fn precreate_devices(
    linux: Option<&oci_spec::runtime::Linux>,
    dir: &Path,
) -> Result<Vec<Option<std::os::fd::OwnedFd>>, LifecycleError> {
    let Some(l) = linux.filter(|l| l.devices().as_ref().is_some_and(|d| !d.is_empty())) else {
        return Ok(Vec::new());
    };
    let scratch = dir.join("devs");
    fs::create_dir(&scratch).map_err(io_err("making the device scratch directory"))?;
    let made = crate::devices::precreate(
        l.devices().as_deref().unwrap_or(&[]),
        l.uid_mappings().as_deref().unwrap_or(&[]),
        l.gid_mappings().as_deref().unwrap_or(&[]),
        &scratch,
    );
    let _ = fs::remove_dir(&scratch);
    Ok(made?)
}

fn external_descriptors(pid: Pid) -> String {
    let fds: Vec<String> = (0..3)
        .map(|fd| {
            fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "/dev/null".into())
        })
        .collect();
    serde_json::to_string(&fds).unwrap_or_default()
}

fn write_id_map(pid: Pid, file: &str, maps: &[LinuxIdMapping]) -> Result<(), LifecycleError> {
    let text: String = maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect();
    let path = format!("/proc/{pid}/{file}");
    fs::write(&path, text).map_err(io_err(format!("writing {path}")))
}

/// The pid file, written whole (runc writes no newline).
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<(), LifecycleError> {
    let tmp = path.with_extension("minirun-tmp");
    fs::write(&tmp, pid.to_string())
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(io_err(format!("writing pid file {}", path.display())))
}

/// `start`: releases the init, which execs the user process; returns once the exec
/// happened (or reports why it did not) and, with NOTIFY_SOCKET, once the
/// container said READY=1. Then the poststart hooks run.
pub fn start(root: &Path, id: &str) -> Result<(), LifecycleError> {
    start_with(root, id, true).map(drop)
}

/// `start`, or with `wait_ready` false (a foreground `run`, which relays the
/// notification while it waits for the container) the notify proxy is
/// returned instead of waited on.
pub fn start_with(
    root: &Path,
    id: &str,
    wait_ready: bool,
) -> Result<Option<crate::notify::Proxy>, LifecycleError> {
    start_created(Container::load(root, id)?, None, wait_ready)
}

/// `start_with` for a container this process holds already: `run` passes the
/// one `create_to_start` returned, with its init already released, rather
/// than reading its state back from disk (~0.15 ms of a run: the file, the
/// init's /proc stat) and connecting to a start.sock.
pub fn start_created(
    mut c: Container,
    init: Option<Released>,
    wait_ready: bool,
) -> Result<Option<crate::notify::Proxy>, LifecycleError> {
    let lock = c.lock()?;
    if c.state.status != Status::Created {
        return Err(LifecycleError::WrongStatus {
            action: "start",
            id: c.state.id.clone(),
            status: c.state.status,
        });
    }
    crate::trace::point("start locked");
    let proxy = match init {
        Some(Released { channel, proxy }) => {
            exec_seen_on_channel(&channel)?;
            proxy
        }
        None => {
            // Bound before the process runs: its first message must find it.
            let proxy =
                crate::notify::Proxy::bind(&c.dir).map_err(io_err("binding the notify socket"))?;
            release_through_socket(&c.dir)?;
            proxy
        }
    };
    crate::trace::point("exec seen");
    c.state.status = Status::Running;
    c.save_state()?;
    crate::trace::point("running");
    // Waiting for READY=1 may take as long as the container likes: kill,
    // delete and pause must not wait behind it.
    drop(lock);
    let proxy = match proxy {
        Some(p) if wait_ready => {
            p.wait_ready(c.state.pid)
                .map_err(io_err("waiting for the container's READY=1"))?;
            None
        }
        other => other,
    };
    for e in hooks::run_all(
        HookKind::Poststart,
        c.state.hooks.as_ref(),
        &state_bytes(&c.state),
    ) {
        log::warn(&e.to_string());
    }
    Ok(proxy)
}

/// Tells the init waiting on start.sock to exec; returns once it did.
fn release_through_socket(dir: &Path) -> Result<(), LifecycleError> {
    let sock = dir.join(START_SOCKET);
    let mut conn = connect_short(&sock).map_err(io_err("connecting to the container's init"))?;
    conn.write_all(b"s")
        .map_err(io_err("releasing the container's init"))?;
    let mut reply = String::new();
    let _ = conn.read_to_string(&mut reply);
    let _ = fs::remove_file(&sock);
    if reply.is_empty() {
        Ok(())
    } else {
        Err(LifecycleError::Init(reply))
    }
}

/// Returns once a released init exec'd (its channel, close-on-exec, closes)
/// or with the reason it did not.
fn exec_seen_on_channel(channel: &Channel) -> Result<(), LifecycleError> {
    match channel.recv() {
        Err(ChannelError::Closed) => Ok(()),
        Ok(Message::Failed { error }) => Err(LifecycleError::Init(error)),
        Ok(other) => Err(ChannelError::Unexpected {
            expected: "the init's exec",
            got: other,
        }
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// Parses `9`, `KILL`, `SIGKILL` (any case).
pub fn parse_signal(s: &str) -> Result<Signal, LifecycleError> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| LifecycleError::Signal(s.into()));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map_err(|_| LifecycleError::Signal(s.into()))
}

pub fn kill_container(
    root: &Path,
    id: &str,
    signal: Signal,
    all: bool,
) -> Result<(), LifecycleError> {
    let c = Container::load(root, id)?;
    match c.state.status {
        Status::Stopped => return Err(LifecycleError::Refused("container not running".into())),
        Status::Creating if c.state.pid <= 0 => {
            return Err(LifecycleError::Refused("container not running".into()))
        }
        _ => {}
    }
    signal_container(&c.state, signal, all).map_err(|e| LifecycleError::Io {
        what: format!("signalling container {id}"),
        source: e.into(),
    })
}

/// `pause` (freeze every process of a running container) or `resume`.
pub fn set_paused(root: &Path, id: &str, paused: bool) -> Result<(), LifecycleError> {
    let c = Container::load(root, id)?;
    let _lock = c.lock()?;
    let (want, action) = if paused {
        (Status::Running, "pause")
    } else {
        (Status::Paused, "resume")
    };
    if c.state.status != want {
        return Err(LifecycleError::WrongStatus {
            action,
            id: id.into(),
            status: c.state.status,
        });
    }
    // Nothing to save: `paused` is read from the freezer whenever the state
    // is loaded.
    c.state.cgroups.freeze(paused)?;
    Ok(())
}

/// `update`: new linux.resources for a created, running or paused container,
/// all or nothing.
pub fn update(
    root: &Path,
    id: &str,
    resources: &oci_spec::runtime::LinuxResources,
) -> Result<(), LifecycleError> {
    let resources = Resources::for_update(resources)?;
    let c = Container::load(root, id)?;
    let _lock = c.lock()?;
    if c.state.status == Status::Stopped {
        return Err(LifecycleError::WrongStatus {
            action: "update",
            id: id.into(),
            status: c.state.status,
        });
    }
    c.state.cgroups.update(&resources)?;
    Ok(())
}

/// The processes of a container (its cgroup's), for `ps`.
pub fn processes(root: &Path, id: &str) -> Result<Vec<i32>, LifecycleError> {
    let c = Container::load(root, id)?;
    if c.state.status == Status::Stopped {
        return Ok(Vec::new());
    }
    Ok(c.state.cgroups.pids())
}

fn signal_container(state: &State, signal: Signal, all: bool) -> nix::Result<()> {
    if all {
        for pid in state.cgroups.pids() {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
    if state.cgroups.is_frozen() && signal == Signal::SIGKILL {
        // A frozen task cannot die: thaw so the kill lands.
        for d in &state.cgroups.dirs {
            let _ = fs::write(d.join("freezer.state"), "THAWED");
            let _ = fs::write(d.join("cgroup.freeze"), "0");
        }
    }
    match kill(Pid::from_raw(state.pid), signal) {
        Err(nix::errno::Errno::ESRCH) if all => Ok(()),
        r => r,
    }
}

/// `delete`: a stopped (or, with force, any) container: kill what runs, run the
/// poststop hooks, remove the cgroup and the state directory. Goes on past
/// errors and reports them together.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<(), LifecycleError> {
    let c = match Container::load(root, id) {
        Ok(c) => c,
        Err(ContainerError::NotFound(_)) if force => {
            Container::remove_unnamed(root);
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let _lock = c.lock()?;
    let mut state = c.state.clone();
    let mut left_frozen = false;
    match state.status {
        // Its `create` is still at work.
        Status::Creating if !force && state.creator.is_some_and(|c| c.alive()) => {
            return Err(LifecycleError::WrongStatus {
                action: "delete",
                id: id.into(),
                status: state.status,
            });
        }
        Status::Running | Status::Paused if !force => {
            return Err(LifecycleError::WrongStatus {
                action: "delete",
                id: id.into(),
                status: state.status,
            });
        }
        Status::Stopped => {}
        _ => {
            if c.is_alive() {
                let _ = signal_container(&state, Signal::SIGKILL, !state.own_pid_ns);
                let frozen = crate::cgroups::frozen_cgroup_of(state.pid);
                // A frozen cgroup holding nothing but this container's
                // processes is thawed so the kill lands; someone else's
                // processes are never thawed by us.
                if let Some(dir) = &frozen {
                    let ours = state.cgroups.pids();
                    let theirs = crate::cgroups::procs_of(dir);
                    if theirs.iter().all(|p| ours.contains(p)) {
                        if let Err(e) = crate::cgroups::thaw(dir) {
                            log::warn(&e.to_string());
                        }
                    }
                }
                if let Some(frozen) =
                    frozen.filter(|_| !wait_gone(state.pid, Duration::from_secs(1)))
                {
                    left_frozen = true;
                    // As crun: the kill is pending and lands when the cgroup
                    // thaws; the container is deleted now, and cgroups that
                    // still hold the process are reported below.
                    log::warn(&format!(
                        "container {id}: init {} is frozen in {}: SIGKILL is pending until it thaws",
                        state.pid,
                        frozen.display()
                    ));
                } else if !wait_gone(state.pid, Duration::from_secs(10)) {
                    return Err(LifecycleError::Refused(format!(
                        "container {id}: init {} did not die after SIGKILL",
                        state.pid
                    )));
                }
            }
        }
    }
    if !state.own_pid_ns {
        // Processes of a container sharing a pid namespace outlive its init.
        for pid in state.cgroups.pids() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    state.status = Status::Stopped;
    let mut errors: Vec<String> = Vec::new();
    for e in hooks::run_all(
        HookKind::Poststop,
        state.hooks.as_ref(),
        &state_bytes(&state),
    ) {
        log::warn(&e.to_string());
    }
    if state.networks_connected {
        if let Err(e) = crate::network::detach_connected(&state_bytes(&state)) {
            errors.push(e.to_string());
        }
    }
    if left_frozen {
        // Its cgroups hold the frozen process until it thaws and dies: say
        // so, but the container itself is gone.
        if let Err(e) = state.cgroups.remove_waiting(Duration::ZERO) {
            log::warn(&e.to_string());
        }
    } else if let Err(e) = state.cgroups.remove() {
        errors.push(e.to_string());
    }
    if let Err(e) = fs::remove_dir_all(&c.dir) {
        if e.kind() != io::ErrorKind::NotFound {
            errors.push(format!("{}: {e}", c.dir.display()));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(LifecycleError::Refused(format!(
            "deleting container {id}: {}",
            errors.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("sigusr1").unwrap(), Signal::SIGUSR1);
        assert_eq!(parse_signal("SIGHUP").unwrap(), Signal::SIGHUP);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("999").is_err());
    }
}
