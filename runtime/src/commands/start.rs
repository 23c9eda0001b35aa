use minirun::cli::{Cli, Start};
use minirun::container::lifecycle;

pub fn run(cli: &Cli, s: &Start) -> anyhow::Result<u8> {
    lifecycle::start(&cli.root, &s.id)?;
    Ok(0)
}
