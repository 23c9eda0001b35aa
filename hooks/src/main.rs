//! `minirun-net attach|detach`: the OCI hook. The runtime (minirun, runc, crun)
//! passes the container's state on stdin.
//!
//! attach runs as `createRuntime` or `prestart` (the container's namespaces
//! exist, its process has not been exec'd); detach runs as `poststop` and
//! works from the attachment record alone.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use minirun_net::bridge::{self, BridgeDriver};
use minirun_net::driver::{Container, NetworkDriver};
use minirun_net::mode::{self, Mode, ALIASES_ANNOTATION, IP_ANNOTATION, NETWORK_ANNOTATION};
use minirun_net::ports::{self, PORTS_ANNOTATION};
use minirun_net::state::HookState;
use minirun_net::store::{Store, DEFAULT_NETWORK};

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
    /// poststop: detach it again (idempotent).
    Detach,
    /// Rebuild minirun's nftables table from the attachment records (after
    /// `nft flush ruleset` or a firewall reload wiped it).
    Reload,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("minirun-net: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let store = Store::from_env();
    let state = || HookState::read(std::io::stdin().lock());
    match cli.command {
        Command::Attach => attach(&state()?, store),
        Command::Detach => detach(&state()?, store),
        Command::Reload => {
            let n = bridge::reload(&store).context("reload")?;
            eprintln!(
                "minirun-net: firewall rebuilt; published ports of {n} container(s) restored"
            );
            Ok(())
        }
    }
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
    let ports = match state.annotations.get(PORTS_ANNOTATION) {
        Some(list) => {
            ports::parse_list(list).with_context(|| format!("annotation {PORTS_ANNOTATION}"))?
        }
        None => Vec::new(),
    };
    let container = Container::from_state(state)?;
    let ip = match state.annotations.get(IP_ANNOTATION) {
        Some(ip) => Some(ip.parse().map_err(|_| {
            anyhow::anyhow!("annotation {IP_ANNOTATION}: {ip:?} is not an IPv4 address")
        })?),
        None => None,
    };
    let aliases = state
        .annotations
        .get(ALIASES_ANNOTATION)
        .map(|a| {
            a.split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let driver = BridgeDriver {
        store,
        network,
        ports,
        ip,
        aliases,
    };
    driver
        .attach(&container)
        .with_context(|| format!("attach container {}", state.id))?;
    Ok(())
}

fn detach(state: &HookState, store: Store) -> anyhow::Result<()> {
    let Some(record) = store.load_attachment(&state.id)? else {
        return Ok(());
    };
    let driver = BridgeDriver {
        store,
        network: record.network.clone(),
        ports: Vec::new(),
        ip: None,
        aliases: Vec::new(),
    };
    let errors = driver.detach(&record);
    if errors.is_empty() {
        return Ok(());
    }
    let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
    anyhow::bail!("detach container {}: {}", state.id, all.join("; "))
}
