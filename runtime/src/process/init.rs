//! The container's init: everything from the clone to the exec of process.args,
//! in the order of DESIGN.md §2. It runs single-threaded and ends in exec or _exit.

use std::convert::Infallible;
use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::sched::{unshare, CloneFlags};
use nix::unistd::{setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{Process, Spec};

use crate::hooks::{self, HookKind};
use crate::mounts::{self, MountContext};
use crate::namespaces::{self, Plan};
use crate::process::channel::{Channel, Message};
use crate::rootfs::{self, cstring, Root};
use crate::{capabilities, console, rlimits};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything the init needs; it is a copy of the parent's memory, so nothing is
/// serialized across the clone.
pub struct InitConfig<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub plan: &'a Plan,
    pub channel: Channel,
    /// start.sock, where `start` connects; None when the runtime that made
    /// the container starts it through `channel` (`run`).
    pub start_listener: Option<UnixListener>,
    pub console: Option<UnixStream>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Bind sources opened by the runtime, one slot per mount.
    pub bind_sources: Vec<Option<std::os::fd::OwnedFd>>,
    /// Device nodes the runtime made for a user namespace, one slot per
    /// linux.devices entry (see `devices`).
    pub device_nodes: Vec<Option<std::os::fd::OwnedFd>>,
    /// linux.seccomp, compiled by the runtime.
    pub seccomp: Option<&'a crate::seccomp::Filter>,
    /// The LSM labels of the process, decided by the runtime.
    pub labels: &'a crate::lsm::Labels,
    /// The cgroups the init moves itself into (`cgroups::Entry::ByItself`)
    /// once the runtime sends CgroupsMade.
    pub join_cgroups: Option<&'a crate::cgroups::CgroupPaths>,
    /// The host's cgroup hierarchies (for a `cgroup` mount).
    pub hierarchies: &'a [crate::cgroups::Hierarchy],
    /// The signal mask to take back first (see `CreateOptions::init_sigmask`).
    pub sigmask: Option<nix::sys::signal::SigSet>,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Channel(#[from] crate::process::channel::ChannelError),
    #[error(transparent)]
    Namespace(#[from] crate::namespaces::NamespaceError),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Mount(#[from] crate::mounts::MountError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    #[error(transparent)]
    Caps(#[from] crate::capabilities::CapError),
    #[error(transparent)]
    Rlimit(#[from] crate::rlimits::RlimitError),
    #[error(transparent)]
    Lsm(#[from] crate::lsm::LsmError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error("{what}: {source}")]
    Sys {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Exec(String),
}

fn sys(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> InitError {
    let what = what.into();
    move |source| InitError::Sys { what, source }
}

fn errno(what: impl Into<String>) -> impl FnOnce(nix::Error) -> InitError {
    let what = what.into();
    move |e| InitError::Sys {
        what,
        source: e.into(),
    }
}

/// Runs the init; never returns.
pub fn run(cfg: InitConfig) -> ! {
    set_process_name(b"minirun:INIT\0");
    if let Some(mask) = &cfg.sigmask {
        let _ = mask.thread_set_mask();
    }
    let result = setup(&cfg);
    let error = match result {
        Ok(never) => match never {},
        // The runtime closed the channel: it gave up on this container (a
        // hook failed, say) and reports why itself.
        Err(InitError::Channel(crate::process::channel::ChannelError::Closed)) => {
            // SAFETY: leaving the forked child without running destructors.
            unsafe { libc::_exit(1) }
        }
        Err(e) => e.to_string(),
    };
    if cfg
        .channel
        .send(&Message::Failed {
            error: error.clone(),
        })
        .is_err()
    {
        let _ = writeln!(std::io::stderr(), "minirun init: {error}");
    }
    // SAFETY: leaving the forked child without running the parent's destructors.
    unsafe { libc::_exit(1) }
}

/// The init's way into the container's cgroups and its cgroup namespace,
/// taken at the first step that needs them: a mount that is not of a
/// pseudo-filesystem or a bind (a `cgroup` one shows where the init is; a
/// device's is checked against the container's device rules), the second
/// fork, and at the latest once the mounts are made, before devices and
/// hooks. Until then the init sets up while the runtime makes the
/// directories, and what that set-up allocates is charged to the runtime's
/// cgroup, as the clone's namespaces always were.
struct CgroupEntry<'a> {
    /// The directories to move into once the runtime says they are made
    /// (`cgroups::Entry::ByItself`), until the init has; None when the
    /// runtime put the init there.
    join: Option<&'a crate::cgroups::CgroupPaths>,
    /// A cgroup namespace is still to be made.
    new_namespace: bool,
}

impl CgroupEntry<'_> {
    /// Into the directories.
    fn join(&mut self, channel: &Channel) -> Result<(), InitError> {
        if let Some(paths) = self.join.take() {
            channel.expect(Message::CgroupsMade, "CgroupsMade")?;
            paths.join_self()?;
            crate::trace::point("init: cgroups joined");
        }
        Ok(())
    }

    /// Into the directories, then a cgroup namespace rooted there.
    fn enter(&mut self, channel: &Channel) -> Result<(), InitError> {
        self.join(channel)?;
        if std::mem::take(&mut self.new_namespace) {
            unshare(CloneFlags::CLONE_NEWCGROUP).map_err(errno("creating cgroup namespace"))?;
        }
        Ok(())
    }
}

/// Whether a mount needs the init in its cgroups first: all but the
/// pseudo-filesystems a config mounts for every container, and binds.
fn needs_cgroups(m: &oci_spec::runtime::Mount) -> bool {
    let bind = m
        .options()
        .iter()
        .flatten()
        .any(|o| o == "bind" || o == "rbind");
    let pseudo = matches!(
        m.typ().as_deref(),
        Some("proc" | "sysfs" | "tmpfs" | "devpts" | "mqueue" | "bind")
    );
    !(bind || pseudo)
}

fn set_process_name(name: &[u8]) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}

fn setup(cfg: &InitConfig) -> Result<Infallible, InitError> {
    let spec = cfg.spec;
    let linux = spec.linux().as_ref();
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| InitError::Exec("process missing".into()))?;
    let plan = cfg.plan;
    crate::trace::point("init: started");

    keep_only_inheritable_fds(cfg);
    cfg.channel.expect(Message::Proceed, "Proceed")?;
    crate::trace::point("init: proceed");
    let mut cgroups = CgroupEntry {
        join: cfg.join_cgroups,
        new_namespace: plan.new_cgroup,
    };
    // The cgroup files are found by the host's paths, with the credentials
    // the runtime gave: in before a mount or user namespace is joined.
    if plan.joins.iter().any(|(t, _)| {
        matches!(
            t,
            oci_spec::runtime::LinuxNamespaceType::Mount
                | oci_spec::runtime::LinuxNamespaceType::User
        )
    }) {
        cgroups.join(&cfg.channel)?;
    }

    if plan.new_user {
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .map_err(errno("setresgid 0 in user namespace"))?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .map_err(errno("setresuid 0 in user namespace"))?;
    }
    plan.join()?;
    if plan.second_fork {
        cgroups.enter(&cfg.channel)?;
        plan.unshare_before_fork(linux)?;
        // SAFETY: single-threaded; the child goes on, this process only reports.
        unsafe { crate::process::fork_reporting_pid(&cfg.channel) }.map_err(sys("second fork"))?;
    }
    // Hooks run from here on are in the container's pid namespace and see the
    // init's pid as it is there (as with runc).
    let pid = std::process::id() as i32;
    // Opened by the process that will exec, while /proc is the host's.
    let labels = cfg.labels.open()?;

    if plan.new_net {
        namespaces::loopback_up().map_err(sys("bringing up lo"))?;
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(errno("sethostname"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        let c = cstring(d);
        // SAFETY: setdomainname reads `len` bytes of a valid string.
        if unsafe { libc::setdomainname(c.as_ptr(), d.len()) } != 0 {
            return Err(sys("setdomainname")(std::io::Error::last_os_error()));
        }
    }

    crate::trace::point("init: namespaces");
    // The root filesystem, still seen from the runtime's mount tree.
    let propagation = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(mounts::propagation_flag);
    rootfs::prepare(cfg.rootfs, propagation)?;
    let root = Root::open(cfg.rootfs)?;
    let ctx = MountContext {
        root: &root,
        sources: &cfg.bind_sources,
        cgroup_ns: plan.new_cgroup,
        hierarchies: cfg.hierarchies,
    };
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if needs_cgroups(m) {
            cgroups.enter(&cfg.channel)?;
        }
        mounts::mount_entry(&ctx, i, m)?;
    }
    cgroups.enter(&cfg.channel)?;
    let in_userns = plan.new_user
        || plan
            .joins
            .iter()
            .any(|(t, _)| *t == oci_spec::runtime::LinuxNamespaceType::User);
    let devices = linux.and_then(|l| l.devices().as_deref()).unwrap_or(&[]);
    rootfs::create_devices(&root, devices, in_userns, 0, 0, &cfg.device_nodes)?;
    // runc and crun make a missing cwd rather than fail.
    root.mkdir_all(process.cwd(), 0o755)?;
    rootfs::default_symlinks(&root)?;
    crate::trace::point("init: rootfs mounted");

    let hooks = spec.hooks().as_ref();
    if !HookKind::Prestart.of(hooks).is_empty() || !HookKind::CreateRuntime.of(hooks).is_empty() {
        cfg.channel.send(&Message::RunHooks)?;
        cfg.channel.expect(Message::HooksDone, "HooksDone")?;
    }
    if !HookKind::CreateContainer.of(hooks).is_empty() {
        hooks::run(
            HookKind::CreateContainer,
            hooks,
            &state_json(cfg, pid, "creating"),
        )?;
    }

    rootfs::enter(&root, cfg.no_pivot)?;
    drop(root);
    crate::trace::point("init: pivoted");
    if let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()) {
        rootfs::write_sysctls(sysctl.iter())?;
    }
    if let Some(paths) = linux.and_then(|l| l.readonly_paths().as_deref()) {
        rootfs::readonly_paths(paths)?;
    }
    if let Some(paths) = linux.and_then(|l| l.masked_paths().as_deref()) {
        rootfs::mask_paths(paths)?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        rootfs::remount_root_readonly()?;
    }

    // SAFETY: setsid has no memory effects.
    unsafe { libc::setsid() };
    if process.terminal().unwrap_or(false) {
        match &cfg.console {
            Some(sock) => console::setup(sock, process.console_size())?,
            None => {
                return Err(InitError::Exec(
                    "process.terminal is true: use --console-socket to receive the terminal".into(),
                ))
            }
        }
    }

    if let Some(adj) = process.oom_score_adj() {
        fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(sys("writing /proc/self/oom_score_adj"))?;
    }
    if !cfg.no_new_keyring {
        join_session_keyring(cfg.id);
    }
    let keep_groups = keep_original_groups(spec.annotations().as_ref());
    // The last line from the init: past here the container's seccomp
    // filter may refuse (or kill for) the trace's write.
    crate::trace::point("init: paths and session");
    let (program, args, env) = become_process(
        process,
        in_userns,
        cfg.seccomp,
        keep_groups,
        &cfg.channel,
        labels,
    )?;

    cfg.channel.send(&Message::Ready)?;
    // On success the starter sees its connection (or, for `run`, the
    // channel) close at the exec; on failure it reads why: on the connection,
    // or in the Failed message `run` (this module's) sends on the channel.
    let mut starter = match &cfg.start_listener {
        Some(listener) => Some(wait_for_start(listener)?),
        None => {
            cfg.channel.expect(Message::Start, "Start")?;
            None
        }
    };
    let mut tell_starter = |e: &dyn std::fmt::Display| {
        if let Some(conn) = starter.as_mut() {
            let _ = conn.write_all(e.to_string().as_bytes());
        }
    };

    if let Err(e) = hooks::run(
        HookKind::StartContainer,
        hooks,
        &state_json(cfg, pid, "created"),
    ) {
        tell_starter(&e);
        return Err(e.into());
    }

    let err = exec_program(&program, &args, &env);
    tell_starter(&err);
    Err(err)
}

/// The last steps before exec, shared by the init and `exec`: rlimits, user and
/// groups, capabilities, umask, cwd, noNewPrivileges, and args[0] found on the
/// container's PATH. Returns (program, args, env). A seccomp listener goes
/// to the runtime on `channel` the moment the filter is loaded.
pub fn become_process(
    process: &Process,
    in_userns: bool,
    seccomp: Option<&crate::seccomp::Filter>,
    keep_groups: bool,
    channel: &Channel,
    labels: crate::lsm::OpenLabels,
) -> Result<(PathBuf, Vec<String>, Vec<String>), InitError> {
    rlimits::apply(process.rlimits().as_deref().unwrap_or(&[]))?;
    // While still privileged: the profile and label the execve switches to.
    labels.apply()?;
    // Without no_new_privs the kernel takes a filter only from a process with
    // CAP_SYS_ADMIN: load it now, before the user and capabilities change (the
    // profile must then allow what follows, as podman's does). With
    // no_new_privs it goes last, so it restricts nothing of the runtime's own.
    let nnp = process.no_new_privileges().unwrap_or(false);
    let load = |filter: &crate::seccomp::Filter| {
        let listener = filter
            .load()
            .map_err(|e| InitError::Exec(format!("loading the seccomp filter: {e}")))?;
        if let Some(fd) = listener {
            use std::os::fd::AsFd;
            channel.send_with_fd(&Message::SeccompListener, fd.as_fd())?;
        }
        Ok::<(), InitError>(())
    };
    if let (Some(filter), false) = (seccomp, nnp) {
        load(filter)?;
    }

    let user = process.user();
    capabilities::drop_bounding(process.capabilities().as_ref())?;
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    // crun's run.oci.keep_original_groups: the process keeps the runtime's
    // supplementary groups (podman --group-add keep-groups).
    if !keep_groups && (!in_userns || setgroups_allowed()) {
        nix::unistd::setgroups(&groups).map_err(errno("setgroups"))?;
    }
    let gid = Gid::from_raw(user.gid());
    setresgid(gid, gid, gid).map_err(errno(format!("setresgid {}", user.gid())))?;
    let uid = Uid::from_raw(user.uid());
    setresuid(uid, uid, uid).map_err(errno(format!("setresuid {}", user.uid())))?;
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    capabilities::apply(process.capabilities().as_ref())?;

    // SAFETY: umask only changes the process's file mode mask.
    unsafe { libc::umask(user.umask().unwrap_or(0o022) as libc::mode_t) };
    let cwd = process.cwd();
    std::env::set_current_dir(cwd).map_err(|e| {
        InitError::Exec(format!(
            "chdir to cwd ({}) set in config.json failed: {}",
            cwd.display(),
            io_text(&e)
        ))
    })?;

    if process.no_new_privileges().unwrap_or(false) {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(sys("setting no_new_privs")(std::io::Error::last_os_error()));
        }
    }

    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(InitError::Exec("process.args is empty".into()));
    }
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(user.uid())));
    }
    let program = find_executable(&args[0], &env)?;
    if let (Some(filter), true) = (seccomp, nnp) {
        load(filter)?;
    }
    Ok((program, args, env))
}

/// The annotation crun and podman use to keep the runtime's groups.
pub fn keep_original_groups(a: Option<&std::collections::HashMap<String, String>>) -> bool {
    a.and_then(|a| a.get("run.oci.keep_original_groups"))
        .is_some_and(|v| v == "1" || v == "true")
}

/// Marks every fd but 0-2 and the --preserve-fds range close-on-exec.
fn keep_only_inheritable_fds(cfg: &InitConfig) {
    let first = 3 + cfg.preserve_fds;
    // SAFETY: close_range only changes fd flags.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    // The trace file too: with a hole in the caller's --preserve-fds range
    // it may have taken a number there.
    let ours: [RawFd; 3] = [
        cfg.channel_fd(),
        cfg.start_listener.as_ref().map_or(-1, |l| l.as_raw_fd()),
        crate::trace::fd().unwrap_or(-1),
    ];
    for fd in 3..first as RawFd {
        if ours.contains(&fd) || cfg.console.as_ref().is_some_and(|c| c.as_raw_fd() == fd) {
            continue;
        }
        // SAFETY: fcntl on a descriptor number; a closed one just fails.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
}

impl InitConfig<'_> {
    fn channel_fd(&self) -> RawFd {
        use std::os::fd::AsFd;
        self.channel.as_fd().as_raw_fd()
    }
}

fn state_json(cfg: &InitConfig, pid: i32, status: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "ociVersion": cfg.spec.version(),
        "id": cfg.id,
        "pid": pid,
        "status": status,
        "bundle": cfg.bundle,
        "annotations": cfg.spec.annotations().clone().unwrap_or_default(),
    }))
    .unwrap_or_default()
}

fn join_session_keyring(id: &str) {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let name = cstring(&format!("_ses.{id}"));
    // SAFETY: keyctl reads a NUL-terminated name. Failure (no keyring support) is fine.
    unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
}

fn setgroups_allowed() -> bool {
    fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}

/// HOME from the container's /etc/passwd, as runc sets it when process.env lacks it.
fn home_of(uid: u32) -> String {
    fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 7 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
            })
        })
        .unwrap_or_else(|| "/".into())
}

fn io_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_lowercase(),
        None => e.to_string(),
    }
}

/// Resolves args[0] as execve will, with the container's PATH, so a missing or
/// non-executable program fails `create` with runc's wording.
fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf, InitError> {
    let check = |p: &Path| -> Result<(), std::io::Error> {
        let meta = fs::metadata(p)?;
        let c = cstring(&p.to_string_lossy());
        // SAFETY: access reads a NUL-terminated path.
        if meta.is_dir()
            || unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0
            || meta.permissions().mode() & 0o111 == 0
        {
            return Err(std::io::Error::from_raw_os_error(libc::EACCES));
        }
        Ok(())
    };
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        return match check(&p) {
            Ok(()) => Ok(p),
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => Err(InitError::Exec(format!(
                "exec: {arg0:?}: permission denied"
            ))),
            Err(e) => Err(InitError::Exec(format!(
                "exec: {arg0:?}: stat {arg0}: {}",
                io_text(&e)
            ))),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let mut denied = false;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let p = Path::new(dir).join(arg0);
        match check(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.raw_os_error() == Some(libc::EACCES) && p.exists() => denied = true,
            Err(_) => {}
        }
    }
    if denied {
        return Err(InitError::Exec(format!(
            "exec: {arg0:?}: permission denied"
        )));
    }
    Err(InitError::Exec(format!(
        "exec: {arg0:?}: executable file not found in $PATH: no such file or directory"
    )))
}

/// Blocks until `start` connects and sends its byte.
fn wait_for_start(listener: &UnixListener) -> Result<UnixStream, InitError> {
    loop {
        let (mut conn, _) = listener.accept().map_err(sys("waiting for start"))?;
        let mut b = [0u8; 1];
        if conn.read(&mut b).map_err(sys("reading start request"))? == 1 {
            return Ok(conn);
        }
    }
}

/// execve of the user process with the signal state reset; returns only on
/// failure, with the reason.
pub fn exec_program(program: &Path, args: &[String], env: &[String]) -> InitError {
    let prog = cstring(&program.to_string_lossy());
    let argv: Vec<CString> = args.iter().map(|a| cstring(a)).collect();
    let envp: Vec<CString> = env.iter().map(|e| cstring(e)).collect();
    // The runtime ignores SIGPIPE (Rust's default) and may block signals; the
    // container starts from the defaults.
    // SAFETY: resetting the signal state of this single-threaded process.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let err = match nix::unistd::execve(&prog, &argv, &envp) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    InitError::Exec(format!(
        "exec {}: {}",
        program.display(),
        err.desc().to_lowercase()
    ))
}
