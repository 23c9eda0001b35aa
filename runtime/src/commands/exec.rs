use std::os::unix::net::UnixStream;

use minirun::cli::{Cli, Exec};
use minirun::console;
use minirun::container::exec::{self, ExecArgs, ExecOptions};
use minirun::container::Container;
use minirun::process::foreground;
use minirun::spec;

pub fn run(cli: &Cli, e: &Exec) -> anyhow::Result<u8> {
    let process = match &e.process {
        Some(path) => {
            let bytes =
                std::fs::read(path).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
            spec::parse_process(&bytes)
                .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?
        }
        None => {
            let c = Container::load(&cli.root, &e.id)?;
            exec::process_from_args(
                c.state.process.as_ref(),
                &ExecArgs {
                    command: e.command.clone(),
                    env: e.env.clone(),
                    cwd: e.cwd.clone(),
                    user: e.user.clone(),
                    additional_gids: e.additional_gids.clone(),
                    caps: e.cap.clone(),
                    no_new_privs: e.no_new_privs,
                    tty: e.tty,
                    apparmor: e.apparmor.clone(),
                    process_label: e.process_label.clone(),
                },
            )?
        }
    };
    let terminal = process.terminal().unwrap_or(false);
    // In the foreground without --console-socket, a terminal is relayed by us.
    let relay = if terminal && !e.detach && e.console_socket.is_none() {
        Some(UnixStream::pair()?)
    } else {
        None
    };
    let signals = if e.detach {
        None
    } else {
        Some(foreground::block_signals()?)
    };
    let pid = exec::exec(
        &cli.root,
        &e.id,
        ExecOptions {
            process,
            pid_file: e.pid_file.as_deref(),
            console_socket: e.console_socket.as_deref(),
            console_stream: relay.as_ref().map(|(ours, _)| ours),
            preserve_fds: e.preserve_fds,
        },
    )?;
    let Some(signals) = signals else {
        return Ok(0);
    };
    let master = match &relay {
        Some((_, theirs)) => Some(console::receive_master(theirs)?),
        None => None,
    };
    let code = foreground::wait(pid, &signals, master, None)?;
    Ok(code.clamp(0, 255) as u8)
}
