use std::process::ExitCode;

use minirun::cli::{Cli, State};
use minirun::container::Container;

pub fn run(cli: &Cli, s: &State) -> anyhow::Result<ExitCode> {
    let c = Container::load(&cli.root, &s.id)?;
    println!("{}", serde_json::to_string_pretty(&c.state.public_json())?);
    Ok(ExitCode::SUCCESS)
}
