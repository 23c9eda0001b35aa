//! `minirun-net attach|detach`: the OCI hook. The runtime (minirun, runc, crun)
//! passes the container's state on stdin.
//!
//! attach runs as `createRuntime` or `prestart` (the container's namespaces
//! exist, its process has not been exec'd); detach runs as `poststop` and
//! works from the attachment record alone.

#![no_main]

use anyhow::Context;
use clap::{Parser, Subcommand};
use minirun_net::bridge::{self, BridgeDriver};
use minirun_net::driver::{Container, NetworkDriver};
use minirun_net::macvlan::MacvlanDriver;
use minirun_net::mode::{
    self, Mode, ALIASES_ANNOTATION, IP6_ANNOTATION, IP_ANNOTATION, NETWORK_ANNOTATION,
};
use minirun_net::ports::{self, PORTS_ANNOTATION};
use minirun_net::state::HookState;
use minirun_net::store::{Network, Store, DEFAULT_NETWORK};

#[derive(Parser)]
#[command(
    name = "minirun-net",
    version,
    about = "OCI network hook for minirun, runc and crun: Docker's bridge mode",
    after_help = "Reads the OCI state on stdin. The mode comes from the annotation \
org.minirun.net.mode (bridge when absent), the network from org.minirun.net.network \
(default: bridge), published ports from org.minirun.net.ports (Docker's -p specs, \
comma-separated). MINIRUN_NET_DIR and MINIRUN_NET_CONFIG_DIR move the state and \
network directories (/run/minirun/net, /var/lib/minirun/networks)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// createRuntime/prestart: attach the container to its network.
    Attach,
    /// poststop: detach it from every network again (idempotent).
    Detach,
    /// Attach a running container to one more network (`minirun network
    /// connect`): the next free ethN.
    Connect {
        #[arg(long)]
        network: String,
        #[arg(long)]
        ip: Option<String>,
        #[arg(long)]
        ip6: Option<String>,
        #[arg(long)]
        alias: Vec<String>,
    },
    /// Detach a running container from a network it was connected to.
    Disconnect {
        #[arg(long)]
        network: String,
    },
    /// Rebuild minirun's nftables table from the attachment records (after
    /// `nft flush ruleset` or a firewall reload wiped it), once `gc` has
    /// dropped the records of containers that are gone.
    Reload,
    /// Undo what attaches killed half way, and containers gone without their
    /// poststop hook, left behind: their records, leases, host-port claims,
    /// firewall elements, veths and /etc files.
    Gc,
    /// The cluster agent of a host that joined (`minirun cluster join`):
    /// keeps its lease alive and programs the other hosts' containers of
    /// overlay networks into this host's kernel. Runs until stopped.
    Agent,
}

/// C's entry point; Rust's runtime set-up is skipped (see `process_start`).
#[no_mangle]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    minirun_net::process_start::prepare();
    // process::exit, unlike a return to C, flushes Rust's stdout first.
    std::process::exit(status())
}

fn status() -> i32 {
    // A CNI runtime (containerd, kubelet's) says so in the environment and
    // passes no arguments.
    if std::env::var_os("CNI_COMMAND").is_some() {
        return match minirun_net::cni::main(Store::from_env()) {
            0 => 0,
            _ => 1,
        };
    }
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("minirun-net: {}", one_line(&e));
            1
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let store = Store::from_env();
    let state = || HookState::read(std::io::stdin().lock());
    match &cli.command {
        Command::Attach => attach(&state()?, store),
        Command::Detach => detach(&state()?, store),
        Command::Connect {
            network,
            ip,
            ip6,
            alias,
        } => {
            let state = state()?;
            if !minirun_net::networks::valid_name(network) {
                anyhow::bail!("{network:?} is not a network name");
            }
            if Network::load(&store, network)?.is_some_and(|n| n.is_macvlan()) {
                anyhow::bail!(
                    "connect container {} to {network}: a macvlan network is a container's first network only",
                    state.id
                );
            }
            check_aliases(alias, "--alias")?;
            let container = Container::from_state(&state)?;
            let driver = BridgeDriver {
                store,
                network: network.clone(),
                ports: Vec::new(),
                ip: parse_ip(ip.as_deref(), "--ip")?,
                ip6: parse_ip6(ip6.as_deref(), "--ip6")?,
                aliases: alias.clone(),
                connecting: true,
                cni_ifname: None,
                cni_network: None,
            };
            driver
                .attach(&container)
                .with_context(|| format!("connect container {} to {network}", state.id))?;
            Ok(())
        }
        Command::Disconnect { network } => {
            let state = state()?;
            if !minirun_net::networks::valid_name(network) {
                anyhow::bail!("{network:?} is not a network name");
            }
            let Some(record) = store.load_connection(&state.id, network)? else {
                let first = store.load_attachment(&state.id)?;
                if first.is_some_and(|a| &a.network == network) {
                    anyhow::bail!(
                        "container {} is on {network} by its first network (eth0): it leaves it when it is deleted",
                        state.id
                    );
                }
                anyhow::bail!(
                    "container {} is not connected to network {network}",
                    state.id
                );
            };
            detach_record(&store, &record)
        }
        Command::Agent => {
            minirun_net::cluster::agent::run(&store).context("agent")?;
            Ok(())
        }
        Command::Gc => {
            let mut swept = minirun_net::gc::sweep(&store).context("gc")?;
            // Then the store: what is left of this host there that no record
            // (after the sweep) names. Its failure is one more error.
            match minirun_net::cluster::agent::sweep(&store) {
                Ok(0) => {}
                Ok(keys) => eprintln!(
                    "minirun-net: gc: {keys} key(s) of this host removed from the cluster store"
                ),
                Err(e) => swept.errors.push(format!("cluster store: {e}")),
            }
            eprintln!(
                "minirun-net: gc: {} attachment(s) undone, {} lease(s), {} port claim(s), {} /etc file set(s) removed",
                swept.records, swept.leases, swept.claims, swept.files
            );
            if !swept.errors.is_empty() {
                anyhow::bail!("gc: {}", swept.errors.join("; "));
            }
            Ok(())
        }
        Command::Reload => {
            // Records of containers gone without their poststop go first:
            // their ports must not come back.
            let swept = minirun_net::gc::sweep(&store).context("reload")?;
            for e in &swept.errors {
                eprintln!("minirun-net: reload: {e}");
            }
            let n = bridge::reload(&store).context("reload")?;
            // VXLAN is filtered by the cluster's members, which only the
            // store knows.
            minirun_net::cluster::agent::restore_vxlan_filter(&store).context("reload")?;
            eprintln!(
                "minirun-net: firewall rebuilt; published ports of {n} container(s) restored"
            );
            Ok(())
        }
    }
}

/// The error and its causes on one line; a cause whose text its error
/// already shows (`path: source`) is not repeated.
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn check_aliases(aliases: &[String], origin: &str) -> anyhow::Result<()> {
    if let Some(bad) = aliases
        .iter()
        .find(|a| !minirun_net::networks::valid_alias(a))
    {
        anyhow::bail!("{origin}: {bad:?} is not a host name (letters, digits, '-', '_', '.')");
    }
    Ok(())
}

fn parse_ip(ip: Option<&str>, origin: &str) -> anyhow::Result<Option<std::net::Ipv4Addr>> {
    ip.map(|ip| {
        ip.parse()
            .map_err(|_| anyhow::anyhow!("{origin}: {ip:?} is not an IPv4 address"))
    })
    .transpose()
}

fn parse_ip6(ip: Option<&str>, origin: &str) -> anyhow::Result<Option<std::net::Ipv6Addr>> {
    ip.map(|ip| {
        ip.parse()
            .map_err(|_| anyhow::anyhow!("{origin}: {ip:?} is not an IPv6 address"))
    })
    .transpose()
}

fn attach(state: &HookState, store: Store) -> anyhow::Result<()> {
    let mode = mode::from_annotations(&state.annotations)?.unwrap_or(Mode::Bridge);
    if mode != Mode::Bridge {
        // host, none and container:<id> are namespace choices the runtime
        // makes; there is nothing to attach.
        return Ok(());
    }
    let network = state
        .annotations
        .get(NETWORK_ANNOTATION)
        .cloned()
        .unwrap_or_else(|| DEFAULT_NETWORK.to_string());
    if !minirun_net::networks::valid_name(&network) {
        anyhow::bail!("annotation {NETWORK_ANNOTATION}: {network:?} is not a network name");
    }
    let ports = match state.annotations.get(PORTS_ANNOTATION) {
        Some(list) => {
            ports::parse_list(list).with_context(|| format!("annotation {PORTS_ANNOTATION}"))?
        }
        None => Vec::new(),
    };
    let ip = parse_ip(
        state.annotations.get(IP_ANNOTATION).map(String::as_str),
        &format!("annotation {IP_ANNOTATION}"),
    )?;
    let ip6 = parse_ip6(
        state.annotations.get(IP6_ANNOTATION).map(String::as_str),
        &format!("annotation {IP6_ANNOTATION}"),
    )?;
    let aliases: Vec<String> = state
        .annotations
        .get(ALIASES_ANNOTATION)
        .map(|a| {
            a.split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    check_aliases(&aliases, &format!("annotation {ALIASES_ANNOTATION}"))?;
    let container = Container::from_state(state)?;
    // An earlier container of this id left records (its poststop never ran):
    // undone now, or refused if it lives.
    minirun_net::gc::take_over_id(&store, &state.id)
        .with_context(|| format!("attach container {}", state.id))?;
    let macvlan = Network::load(&store, &network)?.filter(Network::is_macvlan);
    if let Some(net) = macvlan {
        // A definition that asks for IPv6 without a subnet gets one first.
        let net = if net.enable_ipv6 && net.subnet6.is_none() {
            minirun_net::networks::settle_ipv6(&store, &network)?.unwrap_or(net)
        } else {
            net
        };
        if !ports.is_empty() {
            anyhow::bail!(
                "attach container {}: network {network} is macvlan: containers are on the segment itself, nothing is published",
                state.id
            );
        }
        let driver = MacvlanDriver {
            store,
            network: net,
            ip,
            ip6,
            aliases,
        };
        driver
            .attach(&container)
            .with_context(|| format!("attach container {}", state.id))?;
        return Ok(());
    }
    let driver = BridgeDriver {
        store,
        network,
        ports,
        ip,
        ip6,
        aliases,
        connecting: false,
        cni_ifname: None,
        cni_network: None,
    };
    driver
        .attach(&container)
        .with_context(|| format!("attach container {}", state.id))?;
    Ok(())
}

/// Every network the container is on: the connected ones, then its first.
fn detach(state: &HookState, store: Store) -> anyhow::Result<()> {
    // A CNI attachment of the same id (the pod sandbox's, under a CRI
    // runtime) is the CNI runtime's to remove, with DEL.
    let mut records: Vec<_> = store
        .attachments_of(&state.id)?
        .into_iter()
        .filter(|r| r.cni_ifname.is_none())
        .collect();
    records.sort_by_key(|r| !r.connected);
    let mut failed = Vec::new();
    for r in &records {
        if let Err(e) = detach_record(&store, r) {
            failed.push(one_line(&e));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", failed.join("; "))
    }
}

fn detach_record(store: &Store, record: &minirun_net::store::Attachment) -> anyhow::Result<()> {
    let errors = minirun_net::gc::detach_record(store, record);
    if errors.is_empty() {
        return Ok(());
    }
    let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
    anyhow::bail!(
        "detach container {} from {}: {}",
        record.container,
        record.network,
        all.join("; ")
    )
}
