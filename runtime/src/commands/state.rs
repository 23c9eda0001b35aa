use minirun::cli::{Cli, State};
use minirun::container::Container;
use minirun::network;

pub fn run(cli: &Cli, s: &State) -> anyhow::Result<u8> {
    let c = Container::load(&cli.root, &s.id)?;
    let mut out = c.state.public_json();
    if let Some(net) = network::settings(&c.state.id, Some(&c.state.annotations)) {
        out["network"] = net;
    }
    out!("{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}
