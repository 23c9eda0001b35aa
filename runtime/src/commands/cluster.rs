use minirun::cli::ClusterCommand;
use minirun_net::cluster::{self, Cluster};
use minirun_net::store::Store;

pub fn run(cmd: &ClusterCommand) -> anyhow::Result<u8> {
    match cmd {
        ClusterCommand::Join(j) => {
            let advertise = j.advertise.parse().map_err(|_| {
                anyhow::anyhow!(
                    "cluster join: --advertise {:?} is not an IPv4 address",
                    j.advertise
                )
            })?;
            let config = cluster::join(&j.store, advertise, j.name.as_deref(), j.ttl)?;
            out!(
                "{} ({}) joined the cluster of {}; run `minirun-net agent` on it (minirun-net-agent.service)",
                config.name,
                config.advertise,
                config.store
            );
        }
        ClusterCommand::Ls => {
            let cluster = Cluster::required()?;
            out!(
                "{:<20} {:<16} {:<6} {:>10}",
                "NAME",
                "ADDRESS",
                "STATE",
                "CONTAINERS"
            );
            for h in cluster::hosts(&cluster)? {
                let name = if h.this {
                    format!("{} *", h.member.name)
                } else {
                    h.member.name.clone()
                };
                out!(
                    "{name:<20} {:<16} {:<6} {:>10}",
                    h.member.advertise.to_string(),
                    if h.alive { "alive" } else { "down" },
                    h.containers
                );
            }
        }
        ClusterCommand::Leave => {
            cluster::leave(&Store::from_env())?;
            out!("left the cluster");
        }
    }
    Ok(0)
}
