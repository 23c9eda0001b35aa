use std::process::ExitCode;

use minirun::cli::{Cli, IdArg};
use minirun::container::lifecycle;

pub fn pause(cli: &Cli, a: &IdArg) -> anyhow::Result<ExitCode> {
    lifecycle::set_paused(&cli.root, &a.id, true)?;
    Ok(ExitCode::SUCCESS)
}

pub fn resume(cli: &Cli, a: &IdArg) -> anyhow::Result<ExitCode> {
    lifecycle::set_paused(&cli.root, &a.id, false)?;
    Ok(ExitCode::SUCCESS)
}
