//! The command line, as clap structs only: runc 1.1's verbs, flags and defaults.
//! The logic lives in `commands/`; nothing here touches the system.

use std::path::PathBuf;

use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand, ValueEnum};

pub const DEFAULT_ROOT: &str = "/run/minirun";

#[derive(Debug, Parser)]
#[command(
    name = "minirun",
    version = crate::VERSION_TEXT,
    about = "A small, fast OCI container runtime with runc's command line"
)]
pub struct Cli {
    // These come before the verb, as runc and crun take them (both refuse them
    // after it). Global clap arguments would be copied into every verb's
    // command at each start: 16 × 5 arguments, ~100 KB of heap.
    /// Directory holding the state of containers.
    #[arg(long, default_value = DEFAULT_ROOT, env = "MINIRUN_ROOT")]
    pub root: PathBuf,

    /// Write errors (and debug output) to this file instead of only stderr.
    #[arg(long)]
    pub log: Option<PathBuf>,

    /// Format of the --log file.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log debug messages.
    #[arg(long)]
    pub debug: bool,

    /// linux.cgroupsPath is systemd's `slice:prefix:name`; the scope is made
    /// through cgroupfs where systemd would put it (no D-Bus).
    #[arg(long)]
    pub systemd_cgroup: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container, leaving its process waiting for `start`.
    Create(Deferred<Create>),
    /// Start the user process of a created container.
    Start(Deferred<Start>),
    /// Create and start a container; in the foreground, wait for it and delete it.
    Run(Deferred<Run>),
    /// Print the state of a container as JSON.
    State(Deferred<State>),
    /// Send a signal to the container's init process.
    Kill(Deferred<Kill>),
    /// Delete a container and everything it holds.
    Delete(Deferred<Delete>),
    /// List the containers under --root.
    List(Deferred<List>),
    /// Show the processes of a container.
    Ps(Deferred<Ps>),
    /// Suspend every process of a container (cgroup freezer).
    Pause(Deferred<IdArg>),
    /// Resume a paused container.
    Resume(Deferred<IdArg>),
    /// Change a container's cgroup resources.
    Update(Deferred<Update>),
    /// Run a new process inside a container.
    Exec(Deferred<Exec>),
    /// Write a default config.json into the bundle.
    Spec(Deferred<Spec>),
    /// Print the features this runtime supports as JSON.
    Features,
    /// Manage user-defined networks (as `docker network`).
    #[command(subcommand)]
    Network(Deferred<NetworkCommand>),
    /// Join, list and leave the hosts that share overlay networks (etcd).
    #[command(subcommand)]
    Cluster(Deferred<ClusterCommand>),
}

/// A verb's arguments, built by clap only when that verb is the one given.
///
/// clap builds every verb's arguments before it parses (about 200 of them:
/// ~130 KB of heap at the parse's peak and ~150 KB of code run); a verb
/// deferred with `Command::defer` is built when the parser reaches it, so
/// `run` pays only for its own flags. Help and errors are clap's as before.
/// Derefs to the verb's struct.
#[derive(Debug)]
pub struct Deferred<T>(pub T);

impl<T> std::ops::Deref for Deferred<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Args> Args for Deferred<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args)
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args_for_update)
    }
}

impl<T: Subcommand> Subcommand for Deferred<T> {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_subcommands)
    }
    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_subcommands_for_update)
    }
    fn has_subcommand(name: &str) -> bool {
        T::has_subcommand(name)
    }
}

impl<T: FromArgMatches> FromArgMatches for Deferred<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Deferred)
    }
    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Deferred)
    }
    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Register this host in the cluster store and keep its configuration
    /// (then run `minirun-net agent`).
    Join(ClusterJoin),
    /// List the hosts that joined, alive or not.
    #[command(visible_alias = "list")]
    Ls,
    /// Leave the cluster: this host's keys and configuration go.
    Leave,
}

#[derive(Debug, Args)]
pub struct ClusterJoin {
    /// The etcd cluster: etcd://HOST:PORT[,HOST:PORT...].
    #[arg(long, value_name = "URL")]
    pub store: String,
    /// This host's underlay address: the other hosts send VXLAN to it.
    #[arg(long, value_name = "ADDR")]
    pub advertise: String,
    /// The name `cluster ls` shows (default: the host name).
    #[arg(long)]
    pub name: Option<String>,
    /// Seconds the host's lease outlives its last renewal: a dead host's
    /// containers leave the others' views within it.
    #[arg(long, default_value_t = 20)]
    pub ttl: u32,
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Define a network.
    Create(NetworkCreate),
    /// List the networks (bridge, host and none always).
    #[command(visible_alias = "list")]
    Ls(NetworkLs),
    /// Print networks as JSON, with their containers.
    Inspect(NetworkNames),
    /// Remove networks (refused while containers are attached).
    #[command(visible_alias = "remove")]
    Rm(NetworkNames),
    /// Remove every user-defined network without containers.
    Prune(NetworkPrune),
    /// Attach a running container to one more network (its next ethN).
    Connect(NetworkConnect),
    /// Detach a container from a network it was connected to.
    Disconnect(NetworkDisconnect),
}

#[derive(Debug, Args)]
pub struct NetworkConnect {
    /// The container's address on the network.
    #[arg(long)]
    pub ip: Option<String>,
    /// The container's IPv6 address on the network.
    #[arg(long)]
    pub ip6: Option<String>,
    /// Another name for the container on the network; repeatable.
    #[arg(long)]
    pub alias: Vec<String>,
    pub network: String,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct NetworkDisconnect {
    pub network: String,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct NetworkCreate {
    /// bridge (the default), macvlan, or overlay (across the cluster's hosts).
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// A subnet (CIDR), one per address family; picked when not given
    /// (IPv6: a /64 of this host's ULA /48). Repeatable.
    #[arg(long)]
    pub subnet: Vec<String>,
    /// The gateway's address in the subnet of its family (default: the
    /// subnet's first). Repeatable.
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Lease container addresses from this part of the subnet of its
    /// family only. Repeatable.
    #[arg(long)]
    pub ip_range: Vec<String>,
    /// IPv6 too (dual-stack).
    #[arg(long)]
    pub ipv6: bool,
    /// IPv4 (default true; --ipv4=false with --ipv6 asks for IPv6 only).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub ipv4: Option<bool>,
    /// No way out: no route, no masquerade, no published ports.
    #[arg(long)]
    pub internal: bool,
    /// The MTU of the bridge and the containers' interfaces.
    #[arg(long)]
    pub mtu: Option<u32>,
    /// Driver options: icc=false (containers may not talk to each other),
    /// anti_spoofing=false, parent=IFACE (macvlan), vni=N (overlay).
    #[arg(short = 'o', long = "opt", value_name = "KEY=VALUE")]
    pub opt: Vec<String>,
    /// Labels kept with the network.
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    pub name: String,
}

#[derive(Debug, Args)]
pub struct NetworkLs {
    /// Print the names only.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct NetworkNames {
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkPrune {
    /// Accepted for Docker's command line: minirun does not ask.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Bundle directory (holds config.json); default: the current directory.
    #[arg(short, long)]
    pub bundle: Option<PathBuf>,

    /// Write the container's init pid to this file.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,

    /// AF_UNIX socket that receives the pseudo-terminal master fd.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,

    /// Move the root filesystem with MS_MOVE and chroot instead of pivot_root.
    #[arg(long)]
    pub no_pivot: bool,

    /// Do not create a new session keyring for the container.
    #[arg(long)]
    pub no_new_keyring: bool,

    /// Pass this many extra file descriptors (3, 4, ...) to the container.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,

    /// Network mode, as Docker's: bridge, host, none, container:<id>, or the
    /// name of a network made with `minirun network create` (default: the
    /// org.minirun.net.mode annotation, else config.json's namespaces).
    #[arg(long, visible_alias = "network", value_name = "MODE|NAME")]
    pub net: Option<String>,

    /// The container's IPv4 address on its user-defined network.
    #[arg(long)]
    pub ip: Option<String>,

    /// The container's IPv6 address on its user-defined network.
    #[arg(long)]
    pub ip6: Option<String>,

    /// Another name the container is found by on its user-defined network;
    /// repeatable.
    #[arg(long)]
    pub alias: Vec<String>,

    /// Read the configuration from this file instead of <bundle>/config.json
    /// (crun's flag; relative to the bundle).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Publish a container port, as Docker's -p:
    /// [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp], ranges allowed; repeatable.
    /// Implies bridge networking.
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
}

#[derive(Debug, Args)]
pub struct Create {
    #[command(flatten)]
    pub args: CreateArgs,
    /// Container id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct Run {
    #[command(flatten)]
    pub args: CreateArgs,
    /// Start and return at once; the container runs on.
    #[arg(short, long)]
    pub detach: bool,
    /// Container id, or a bundle directory (the id is then generated).
    pub id: String,
}

#[derive(Debug, Args)]
pub struct Start {
    pub id: String,
}

#[derive(Debug, Args)]
pub struct State {
    pub id: String,
}

#[derive(Debug, Args)]
pub struct Kill {
    /// Send the signal to every process of the container.
    #[arg(short, long)]
    pub all: bool,
    pub id: String,
    /// Signal number or name (TERM, SIGTERM, 15).
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Debug, Args)]
pub struct IdArg {
    pub id: String,
}

#[derive(Debug, Args)]
pub struct Ps {
    /// table (the output of ps, filtered to the container) or json (the pids).
    #[arg(short, long, default_value = "table")]
    pub format: String,
    pub id: String,
    /// Options passed to ps (default: -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct Update {
    /// A linux.resources JSON file ("-" for stdin); the flags below override it.
    /// Zeros mean "leave as it is", as runc reads them.
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Memory limit (bytes, or with a unit: 512k, 100m, 1g; -1: none).
    #[arg(long, value_parser = parse_bytes, allow_hyphen_values = true)]
    pub memory: Option<i64>,
    /// Memory reservation (soft limit), as --memory.
    #[arg(long, value_parser = parse_bytes, allow_hyphen_values = true)]
    pub memory_reservation: Option<i64>,
    /// Memory plus swap limit, as --memory.
    #[arg(long, value_parser = parse_bytes, allow_hyphen_values = true)]
    pub memory_swap: Option<i64>,
    /// Kernel memory limit (cgroup v1 kernels that still have one), as --memory.
    #[arg(long, value_parser = parse_bytes, allow_hyphen_values = true)]
    pub kernel_memory: Option<i64>,
    /// Kernel TCP buffer limit, as --memory.
    #[arg(long, value_parser = parse_bytes, allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(long, visible_alias = "cpu-share")]
    pub cpu_shares: Option<u64>,
    /// CPU CFS period in microseconds.
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds (-1: none).
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU realtime period in microseconds.
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds (-1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs allowed (e.g. 0-1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes allowed.
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes (-1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight (10-1000).
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    pub id: String,
}

/// A size as runc's update takes it: bytes, or a number with a binary unit
/// (b, k, m, g, t, p; an optional trailing "b" or "ib"); -1 is no limit.
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    if s == "-1" {
        return Ok(-1);
    }
    let lower = s.trim().to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = lower[digits.len()..]
        .trim_end_matches("ib")
        .trim_end_matches('b');
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(format!("{s:?}: unknown unit (b, k, m, g, t, p)")),
    };
    let n: f64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (bytes, or e.g. 100m)"))?;
    let bytes = n * (1u64 << shift) as f64;
    if !(0.0..=i64::MAX as f64).contains(&bytes) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(bytes as i64)
}

#[derive(Debug, Args)]
pub struct Delete {
    /// Kill the container first if it is still running; an unknown id is not an error.
    #[arg(short, long)]
    pub force: bool,
    /// ID is a regular expression: delete every container whose id matches
    /// (crun's flag).
    #[arg(short, long)]
    pub regex: bool,
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct List {
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Print only the container ids.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct Spec {
    /// Bundle directory to write config.json into; default: the current directory.
    #[arg(short, long)]
    pub bundle: Option<PathBuf>,
    /// Accepted for runc compatibility; minirun writes a root-owned spec.
    #[arg(long)]
    pub rootless: bool,
}

#[derive(Debug, Args)]
pub struct Exec {
    /// Console socket that receives the pseudo-terminal master (with --tty).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Working directory in the container.
    #[arg(long)]
    pub cwd: Option<String>,
    /// Set an environment variable (KEY=VALUE); may repeat.
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Give the process a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// UID[:GID] to run as.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional group ids; may repeat.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// A process.json (an OCI process object) instead of the command line.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Return once the process has started.
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's pid to this file.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// The SELinux label of the process (ignored with a warning without SELinux).
    #[arg(long)]
    pub process_label: Option<String>,
    /// The AppArmor profile of the process.
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Add a capability to the bounding, effective and permitted sets; may repeat.
    #[arg(short, long = "cap")]
    pub cap: Vec<String>,
    /// Pass this many extra file descriptors (3, 4, ...) to the process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        // Builds every deferred verb too, and checks clap's invariants on all.
        Cli::command().debug_assert();
    }

    #[test]
    fn verbs_are_built_only_when_given() {
        let cli = Cli::command();
        for verb in ["run", "create", "exec", "update", "network"] {
            let sub = cli.find_subcommand(verb).expect(verb);
            assert_eq!(
                sub.get_arguments().count(),
                0,
                "{verb} built before parsing"
            );
        }
    }

    #[test]
    fn a_deferred_verb_parses_its_flags_and_the_globals() {
        let cli = Cli::try_parse_from([
            "minirun", "--root", "/r", "run", "-d", "--bundle", "/b", "c1",
        ])
        .unwrap();
        assert_eq!(cli.root, PathBuf::from("/r"));
        let Command::Run(run) = &cli.command else {
            panic!("{:?}", cli.command)
        };
        assert!(run.detach);
        assert_eq!(run.args.bundle.as_deref(), Some(std::path::Path::new("/b")));
        assert_eq!(run.id, "c1");

        let cli = Cli::try_parse_from(["minirun", "--log-format", "json", "state", "c2"]).unwrap();
        assert_eq!(cli.log_format, LogFormat::Json);
        assert!(matches!(&cli.command, Command::State(s) if s.id == "c2"));
        // After the verb, runc and crun refuse them too.
        let err = Cli::try_parse_from(["minirun", "state", "--root", "/s", "c2"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);

        let cli = Cli::try_parse_from(["minirun", "network", "rm", "n1"]).unwrap();
        assert!(
            matches!(&cli.command, Command::Network(n) if matches!(&**n, NetworkCommand::Rm(_)))
        );

        let err = Cli::try_parse_from(["minirun", "run", "--no-such-flag", "c3"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
    }

    #[test]
    fn sizes_as_runc_takes_them() {
        assert_eq!(parse_bytes("104857600"), Ok(104_857_600));
        assert_eq!(parse_bytes("100m"), Ok(104_857_600));
        assert_eq!(parse_bytes("100MB"), Ok(104_857_600));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("1.5k"), Ok(1536));
        assert_eq!(parse_bytes("-1"), Ok(-1));
        assert!(parse_bytes("-2").is_err());
        assert!(parse_bytes("12x").is_err());
        assert!(parse_bytes("m").is_err());
    }
}
