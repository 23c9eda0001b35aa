use minirun::cli::{Cli, Kill};
use minirun::container::lifecycle;

pub fn run(cli: &Cli, k: &Kill) -> anyhow::Result<u8> {
    let signal = lifecycle::parse_signal(&k.signal)?;
    lifecycle::kill_container(&cli.root, &k.id, signal, k.all)?;
    Ok(0)
}
