//! The firewall of bridge networks: masquerade for traffic leaving a subnet,
//! and published ports (DNAT from any local address or one host IP, hairpin,
//! 127.0.0.1). One driver per mechanism; nftables is the one there is.

pub mod nftables;

use std::net::Ipv4Addr;

use crate::ports::PortMapping;
use crate::store::Network;

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("nftables: {0}")]
    Nftables(String),
    #[error("libnftables could not make a context")]
    NoContext,
}

/// A published port and where it leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dnat {
    /// `host_port` is resolved (never 0).
    pub mapping: PortMapping,
    pub container_ip: Ipv4Addr,
}

pub trait FirewallDriver {
    /// One transaction: the network's shared rules (made once, doing it again
    /// changes nothing), the container's published ports and, on a network
    /// with icc=false, its bridge port (`isolated_port`, the veth's host end).
    fn attach(
        &self,
        net: &Network,
        ports: &[Dnat],
        isolated_port: Option<&str>,
    ) -> Result<(), FirewallError>;
    /// One transaction: the container's ports go; the network's shared rules
    /// too when `network_unused`, and minirun's whole table when
    /// `table_unused`. Removing what is not there is fine.
    fn detach(
        &self,
        net: &Network,
        ports: &[Dnat],
        isolated_port: Option<&str>,
        network_unused: bool,
        table_unused: bool,
    ) -> Result<(), FirewallError>;
    /// Replaces everything minirun has in the firewall with `networks`,
    /// `ports` and `isolated_ports` (after someone flushed the ruleset), in
    /// one transaction.
    fn rebuild(
        &self,
        networks: &[Network],
        ports: &[Dnat],
        isolated_ports: &[String],
    ) -> Result<(), FirewallError>;
}
