use minirun::cli::NetworkCommand;
use minirun_net::networks::{self, CreateRequest, PREDEFINED};
use minirun_net::store::Store;

pub fn run(cli: &minirun::cli::Cli, cmd: &NetworkCommand) -> anyhow::Result<u8> {
    let store = Store::from_env();
    match cmd {
        NetworkCommand::Create(c) => {
            let req = CreateRequest {
                name: c.name.clone(),
                driver: c.driver.clone(),
                subnets: c.subnet.clone(),
                gateways: c.gateway.clone(),
                ip_ranges: c.ip_range.clone(),
                ipv6: c.ipv6,
                ipv4: c.ipv4,
                internal: c.internal,
                mtu: c.mtu,
                options: c.opt.clone(),
                labels: c.label.clone(),
                created: minirun::log::now_rfc3339(),
            };
            let net = networks::create(&store, &req, &networks::host_routes()?)?;
            out!("{}", net.id);
        }
        NetworkCommand::Ls(l) => {
            let defined = networks::definitions(&store)?;
            if !l.quiet {
                out!("{:<14} {:<20} {:<8} SCOPE", "NETWORK ID", "NAME", "DRIVER");
            }
            let row = |id: &str, name: &str, driver: &str, scope: &str| {
                if l.quiet {
                    out!("{name}");
                } else {
                    out!(
                        "{:<14} {name:<20} {driver:<8} {scope}",
                        &id[..12.min(id.len())]
                    );
                }
            };
            for (name, driver) in PREDEFINED {
                let id = defined
                    .iter()
                    .find(|n| n.name == name && !n.id.is_empty())
                    .map_or_else(|| networks::predefined_id(name), |n| n.id.clone());
                row(&id, name, driver, "local");
            }
            for n in defined
                .iter()
                .filter(|n| !PREDEFINED.iter().any(|(p, _)| *p == n.name))
            {
                let driver = if n.is_macvlan() { "macvlan" } else { "bridge" };
                row(&n.id, &n.name, driver, "local");
            }
            // The cluster's networks; one of this host's own of the same
            // name hides it here as it does for containers.
            let overlays = networks::overlay_definitions().unwrap_or_else(|e| {
                eprintln!("minirun: network ls: overlay networks not listed: {e}");
                Vec::new()
            });
            for n in overlays
                .iter()
                .filter(|n| !defined.iter().any(|d| d.name == n.name))
            {
                row(&n.id, &n.name, "overlay", "global");
            }
        }
        NetworkCommand::Inspect(i) => {
            let all = i
                .names
                .iter()
                .map(|n| networks::inspect(&store, n))
                .collect::<Result<Vec<_>, _>>()?;
            out!("{}", serde_json::to_string_pretty(&all)?);
        }
        NetworkCommand::Rm(r) => {
            let mut failed = false;
            for name in &r.names {
                match networks::remove(&store, name) {
                    Ok(()) => out!("{name}"),
                    Err(e) => {
                        eprintln!("minirun: network rm {name}: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(1);
            }
        }
        NetworkCommand::Connect(c) => {
            minirun::network::connect(
                &cli.root,
                &c.id,
                &c.network,
                true,
                c.ip.as_deref(),
                c.ip6.as_deref(),
                &c.alias,
            )?;
        }
        NetworkCommand::Disconnect(d) => {
            minirun::network::connect(&cli.root, &d.id, &d.network, false, None, None, &[])?;
        }
        NetworkCommand::Prune(_) => {
            for name in networks::prune(&store)? {
                out!("{name}");
            }
        }
    }
    Ok(0)
}
