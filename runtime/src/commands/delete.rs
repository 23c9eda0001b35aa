use std::process::ExitCode;

use minirun::cli::{Cli, Delete};
use minirun::container::lifecycle;

pub fn run(cli: &Cli, d: &Delete) -> anyhow::Result<ExitCode> {
    lifecycle::delete(&cli.root, &d.id, d.force)?;
    Ok(ExitCode::SUCCESS)
}
