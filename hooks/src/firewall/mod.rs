//! The firewall of bridge networks, both address families: masquerade for
//! traffic leaving a subnet, and published ports (DNAT from any local address
//! or one host IP, hairpin, 127.0.0.1 and ::1). One driver per mechanism;
//! nftables is the one there is.

pub mod nftables;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ports::{runs, PortMapping, PortRun};
use crate::store::Network;

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("nftables: {0}")]
    Nftables(String),
    #[error("libnftables could not make a context")]
    NoContext,
    /// The firewall holds the table of an older minirun: it is rebuilt
    /// from the records before anything changes.
    #[error("the firewall holds the table of an older minirun: rebuild it from the records (minirun-net reload)")]
    LegacyTable,
}

/// A published run of ports and where it leads, in one address family
/// (the container's address's): a run without a host address on a
/// dual-stack network is two of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dnat {
    /// Host ports resolved (never 0).
    pub run: PortRun,
    pub container_ip: IpAddr,
}

impl Dnat {
    /// The DNATs of a container's mappings: each to the container's
    /// address of its host address's family, or without one to each
    /// address the container has.
    pub fn of(ports: &[PortMapping], ipv4: Option<Ipv4Addr>, ipv6: Option<Ipv6Addr>) -> Vec<Dnat> {
        let mut out = Vec::new();
        for run in runs(ports) {
            let v4 = run.first.host_ip.is_none_or(|ip| ip.is_ipv4());
            let v6 = run.first.host_ip.is_none_or(|ip| ip.is_ipv6());
            if let (true, Some(ip4)) = (v4, ipv4) {
                out.push(Dnat {
                    run,
                    container_ip: ip4.into(),
                });
            }
            if let (true, Some(ip6)) = (v6, ipv6) {
                out.push(Dnat {
                    run,
                    container_ip: ip6.into(),
                });
            }
        }
        out
    }
}

/// What a guarded port may send from: its MAC and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    pub mac: String,
    /// Its IPv4 address (none on an IPv6-only network, where IPv4 goes nowhere).
    pub ipv4: Option<Ipv4Addr>,
    /// Its IPv6 address and link-local one (none on an IPv4 network).
    pub ipv6: Vec<Ipv6Addr>,
}

/// What the firewall knows of one container's bridge port (its host veth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub host_interface: String,
    /// Kept from the other containers' ports (icc=false on a host whose
    /// bridges do not call the IP hooks).
    pub isolated: bool,
    /// Kept from the other containers' ports of its own (secondary) bridge
    /// only: icc=false where the IP hooks see the rest (`segment.rs`).
    pub isolated_in_segment: bool,
    /// Guarded against spoofing: frames from it must carry this MAC, IPv4
    /// packets and ARP its IPv4 address, IPv6 packets and neighbour
    /// advertisements one of its IPv6 addresses.
    pub guard: Option<Guard>,
    /// On a secondary bridge with an IPv6 address: neighbour solicitations
    /// for that address cross this link of the segment and no other.
    pub segment_link: Option<SegmentLink>,
}

/// A secondary's link (`segment.rs`) as neighbour discovery uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentLink {
    /// Its end on the primary: the way in to the secondary.
    pub uplink: String,
    /// Its end on the secondary: the way out to the rest of the segment.
    pub downlink: String,
    pub ipv6: Ipv6Addr,
}

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
