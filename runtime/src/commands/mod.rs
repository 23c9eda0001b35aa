//! One thin file per verb: arguments in, library calls, output out.

/// println! that does not panic when stdout is a closed pipe
/// (`minirun state ID | grep -q running`): the reader has what it wanted.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod cluster;
pub mod create;
pub mod delete;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod network;
pub mod pause;
pub mod ps;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;

use std::path::PathBuf;

use minirun::cli::CreateArgs;
use minirun::container::lifecycle::CreateOptions;

/// The bundle directory: --bundle, or the current directory as runc takes it.
pub fn bundle_dir(args: &CreateArgs) -> PathBuf {
    args.bundle.clone().unwrap_or_else(|| PathBuf::from("."))
}

pub fn create_options<'a>(
    cli: &'a minirun::cli::Cli,
    id: &'a str,
    bundle: &'a std::path::Path,
    args: &'a CreateArgs,
) -> CreateOptions<'a> {
    CreateOptions {
        root: &cli.root,
        systemd_cgroup: cli.systemd_cgroup,
        id,
        bundle,
        pid_file: args.pid_file.as_deref(),
        console_socket: args.console_socket.as_deref(),
        console_stream: None,
        no_pivot: args.no_pivot,
        no_new_keyring: args.no_new_keyring,
        preserve_fds: args.preserve_fds,
        net: args.net.as_deref(),
        publish: &args.publish,
        ip: args.ip.as_deref(),
        ip6: args.ip6.as_deref(),
        aliases: &args.alias,
        config: args.config.as_deref(),
        init_sigmask: None,
    }
}
