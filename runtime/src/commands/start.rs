use std::process::ExitCode;

use minirun::cli::{Cli, Start};
use minirun::container::lifecycle;

pub fn run(cli: &Cli, s: &Start) -> anyhow::Result<ExitCode> {
    lifecycle::start(&cli.root, &s.id)?;
    Ok(ExitCode::SUCCESS)
}
