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

/// What the firewall knows of one container's bridge port (its host veth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub host_interface: String,
    /// Kept from the other containers' ports (icc=false on a host whose
    /// bridges do not call the IP hooks).
    pub isolated: bool,
    /// Guarded against spoofing: frames from it must carry this MAC, IPv4
    /// packets and ARP this address.
    pub guard: Option<(String, Ipv4Addr)>,
}

impl Port {}

pub trait FirewallDriver {
    /// One transaction: the network's shared rules (made once, doing it again
    /// changes nothing), the container's published ports and its bridge
    /// port's elements (`port`).
    fn attach(
        &self,
        net: &Network,
        ports: &[Dnat],
        port: Option<&Port>,
    ) -> Result<(), FirewallError>;
    /// One transaction: the container's ports and port elements go; the
    /// network's shared rules too when `network_unused`, and minirun's whole
    /// table when `table_unused`. Removing what is not there is fine.
    fn detach(
        &self,
        net: &Network,
        ports: &[Dnat],
        port: Option<&Port>,
        network_unused: bool,
        table_unused: bool,
    ) -> Result<(), FirewallError>;
    /// Replaces everything minirun has in the firewall with `networks`,
    /// `ports` and the containers' bridge `ports_of_bridges` (after someone
    /// flushed the ruleset), in one transaction.
    fn rebuild(
        &self,
        networks: &[Network],
        ports: &[Dnat],
        ports_of_bridges: &[Port],
    ) -> Result<(), FirewallError>;
    /// One transaction: VXLAN to `here` (this host's underlay address) is
    /// accepted only from `peers`, the cluster's members; `None` when the
    /// host has no overlay network left.
    fn vxlan_peers(&self, here: Option<Ipv4Addr>, peers: &[Ipv4Addr]) -> Result<(), FirewallError>;
}
