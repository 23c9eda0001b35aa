//! `minirun-net attach|detach`: the OCI hook. The runtime passes the container's
//! state on stdin.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use minirun_net::mode::{self, Mode};
use minirun_net::state::HookState;

#[derive(Parser)]
#[command(
    name = "minirun-net",
    version,
    about = "OCI network hook for minirun, runc and crun"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// createRuntime/prestart: attach the container to its network.
    Attach,
    /// poststop: detach it again.
    Detach,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("minirun-net: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let state = HookState::read(std::io::stdin().lock())?;
    let mode = mode::from_annotations(&state.annotations)?;
    let verb = match cli.command {
        Command::Attach => "attach",
        Command::Detach => "detach",
    };
    match mode {
        // host, none and container:<id> are namespace choices the runtime makes;
        // there is nothing to attach or detach.
        Mode::Host | Mode::None | Mode::Container(_) => Ok(()),
        Mode::Bridge => anyhow::bail!(
            "{verb} container {}: bridge networking is not available in this build yet",
            state.id
        ),
    }
}
