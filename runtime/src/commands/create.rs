use minirun::cli::{Cli, Create};
use minirun::container::lifecycle;

pub fn run(cli: &Cli, c: &Create) -> anyhow::Result<u8> {
    let bundle = super::bundle_dir(&c.args);
    lifecycle::create(&super::create_options(cli, &c.id, &bundle, &c.args))?;
    Ok(0)
}
