use minirun::cli::{Cli, IdArg};
use minirun::container::lifecycle;

pub fn pause(cli: &Cli, a: &IdArg) -> anyhow::Result<u8> {
    lifecycle::set_paused(&cli.root, &a.id, true)?;
    Ok(0)
}

pub fn resume(cli: &Cli, a: &IdArg) -> anyhow::Result<u8> {
    lifecycle::set_paused(&cli.root, &a.id, false)?;
    Ok(0)
}
