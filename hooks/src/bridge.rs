//! The bridge driver: Docker's `bridge` mode on a Linux bridge.
//!
//! attach, in order, each finished step undone in reverse when a later one
//! fails: lease an address (and an IPv6 one on a dual-stack network) → the
//! bridge (made on first use) with the gateway addresses and `route_localnet`
//! → the veth pair, its container end born in the container's namespace →
//! eth0's addresses (IPv6 without router advertisements or DAD), `lo` and the
//! default routes, through a netlink socket inside that namespace → host-port claims and one
//! firewall transaction (the network's shared elements and the container's
//! published ports) → stale UDP conntrack entries → the /etc files → the
//! attachment record. All of it under the network's lock, so the last
//! container to leave can take the bridge down without racing the next one to
//! arrive; claims and firewall also under the firewall's lock (host ports are
//! shared by all networks).
//!
//! detach, from the record alone, firewall first so no packet is forwarded to
//! an address about to go: published ports and claims → veth → lease → when
//! the network has no container left, its firewall elements and its bridge →
//! files → record.

use std::fs::{self, File};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::fcntl::Flock;
use rtnetlink::LinkBridge;

use crate::cluster::ipam::Endpoint;
use crate::cluster::{self, Cluster, ClusterError};
use crate::conntrack::{self, UdpDestination};
use crate::driver::{Container, NetworkDriver};
use crate::etc_files::{self, EtcError};
use crate::firewall::nftables::Nftables;
use crate::firewall::{Dnat, FirewallDriver, FirewallError, Guard, Port, SegmentLink};
use crate::host_ports::{self, HostPortError};
use crate::ipam::{Family, IpamError, Lease, Pool, Subnet};
use crate::netlink::{Netlink, NetlinkError};
use crate::ports::{PortMapping, Protocol};
use crate::segment::{self, SegmentError};
use crate::store::{
    write_whole, Attachment, Network, Process, Store, StoreError, DEFAULT_BRIDGE, DEFAULT_NETWORK,
};
use crate::{veth, vxlan};

/// The interface name the container sees.
pub const CONTAINER_INTERFACE: &str = "eth0";

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("network {0:?} does not exist (no {1})")]
    NoNetwork(String, PathBuf),
    #[error("network {name}: subnet {subnet} overlaps the host's route to {route}; choose another subnet in {path}")]
    Overlap {
        name: String,
        subnet: String,
        route: String,
        path: PathBuf,
    },
    #[error("no free /16 in 172.20.0.0-172.31.0.0 for the default network: each overlaps a route of the host")]
    NoFreeSubnet,
    #[error("container {container} is already on network {network}")]
    AlreadyOn { container: String, network: String },
    #[error("setting {0}: {1}")]
    Forwarding(&'static str, io::Error),
    #[error("--ip6 {ip}: on an IPv6-only network a container's MAC is the last 32 bits of its address, and {other} has the same ones")]
    MacTaken { ip: Ipv6Addr, other: Ipv6Addr },
    #[error("network {network} is full: its bridge {bridge} has 1,023 ports, the most a Linux bridge takes{why}")]
    BridgeFull {
        network: String,
        bridge: String,
        why: &'static str,
    },
    #[error("network {network} is full: {subnet} has no free address")]
    NetworkFull { network: String, subnet: String },
    #[error("network {network} has no {family}: {what}")]
    NoFamily {
        network: String,
        family: &'static str,
        what: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error("network {network}: {source}")]
    Firewall {
        network: String,
        source: FirewallError,
    },
    #[error(transparent)]
    Etc(#[from] EtcError),
    #[error(transparent)]
    HostPort(#[from] HostPortError),
    #[error("setting {path}: {source}")]
    Sysctl { path: String, source: io::Error },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Networks(#[from] Box<crate::networks::NetworksError>),
    #[error("network {network}: {source}")]
    Segment {
        network: String,
        source: SegmentError,
    },
}

impl From<crate::networks::NetworksError> for BridgeError {
    fn from(e: crate::networks::NetworksError) -> Self {
        BridgeError::Networks(Box::new(e))
    }
}

pub struct BridgeDriver {
    pub store: Store,
    /// The network to attach to (`org.minirun.net.network`, default `bridge`).
    pub network: String,
    /// Ports to publish (`org.minirun.net.ports`); host port 0 is picked.
    pub ports: Vec<PortMapping>,
    /// The address asked for (`--ip`, `org.minirun.net.ip`).
    pub ip: Option<Ipv4Addr>,
    /// The IPv6 address asked for (`--ip6`, `org.minirun.net.ip6`).
    pub ip6: Option<Ipv6Addr>,
    /// More names the container has on a user network (`--alias`).
    pub aliases: Vec<String>,
    /// `network connect`: a further network of a running container, on
    /// the next free `ethN`, without a default route or /etc files of its own.
    pub connecting: bool,
    /// CNI: the interface the runtime named (`CNI_IFNAME`); the attachment
    /// is keyed by container id and interface, and has no /etc files (the
    /// CRI runtime writes them).
    pub cni_ifname: Option<String>,
    /// CNI: the network configuration's name, kept in the record for GC.
    pub cni_network: Option<String>,
}

/// What an attach to an overlay network needs besides the definition: the
/// store, the revision the definition was read at (an address is taken
/// only if it is still that one) and this host's lease.
pub struct Overlay {
    pub cluster: Cluster,
    pub revision: i64,
    /// The addresses held on the network when it was read.
    pub held: std::collections::HashSet<u32>,
    pub lease: i64,
}

/// A container's address of each family, where the network has it.
type Addresses = (Option<Ipv4Addr>, Option<Ipv6Addr>);

/// A finished attach step, for the undo.
enum Done {
    /// An address taken in the cluster store (overlay networks), by container.
    ClusterAddress(Ipv4Addr, String),
    Lease(Lease),
    Record(Box<Attachment>),
    Veth(String),
    /// Claimed and in the firewall, as the record says (resolved ports, the
    /// port's elements).
    Published(Box<Attachment>),
    /// The container's permanent neighbour entries on the bridge.
    Neighbours(u32, Vec<IpAddr>),
    /// A secondary's container's MAC behind its link on the primary.
    Fdb(u32, [u8; 6]),
    /// The container's lines in a network's hosts file (network, container).
    Named(String, String),
    Files(PathBuf),
}

/// Where a container's port goes: its bridge, and for a secondary the
/// index of its link's end on the primary.
struct PortBridge {
    index: u32,
    name: String,
    uplink: Option<u32>,
}

/// A record's addresses, both families.
pub(crate) fn addresses_of(r: &Attachment) -> Vec<IpAddr> {
    let v4 = r.ip_address.map(IpAddr::V4);
    v4.into_iter()
        .chain(r.ip6_address.map(IpAddr::V6))
        .collect()
}

/// The DNATs of a record's published ports, both families.
fn dnats(r: &Attachment) -> Vec<Dnat> {
    Dnat::of(&r.ports, r.ip_address, r.ip6_address)
}

impl BridgeDriver {
    /// The network's definition; the default network is defined on first use
    /// with the first /16 of 172.20-172.31 no host route overlaps.
    fn network(&self, nl: &Netlink) -> Result<(Network, Option<Overlay>), BridgeError> {
        if let Some(net) = Network::load(&self.store, &self.network)? {
            return Ok((net, None));
        }
        if self.network != DEFAULT_NETWORK {
            if let Some(cluster) = Cluster::open()? {
                if let Some((net, revision, held)) =
                    cluster::networks::get_for_attach(&cluster, &self.network)?
                {
                    let lease = Cluster::lease(&self.store)?;
                    let overlay = Overlay {
                        cluster,
                        revision,
                        held,
                        lease,
                    };
                    return Ok((net, Some(overlay)));
                }
            }
            return Err(BridgeError::NoNetwork(
                self.network.clone(),
                self.store.network_config(&self.network),
            ));
        }
        // Under the definitions' lock, like `network create`: the two must
        // not take the same subnet.
        let _defs = self.store.lock_definitions()?;
        if let Some(net) = Network::load(&self.store, &self.network)? {
            return Ok((net, None));
        }
        let routes = nl.ipv4_routes()?;
        let defined = crate::networks::definitions(&self.store)?;
        let subnet = (20..=31)
            .map(|b| Subnet::new(Ipv4Addr::new(172, b, 0, 0), 16).expect("a /16 is valid"))
            .find(|s| {
                overlapping_route(s, &routes, None).is_none()
                    && !defined
                        .iter()
                        .any(|n| n.subnet.is_some_and(|d| d.overlaps(s)))
            })
            .ok_or(BridgeError::NoFreeSubnet)?;
        let net = Network::new(DEFAULT_NETWORK, DEFAULT_BRIDGE, subnet, subnet.first_host());
        net.save(&self.store)?;
        Ok((net, None))
    }

    fn fw_err(net: &Network) -> impl FnOnce(FirewallError) -> BridgeError + '_ {
        move |source| BridgeError::Firewall {
            network: net.name.clone(),
            source,
        }
    }

    /// Claims the host ports, names them in the container's record (so that
    /// a detach after a killed attach finds them), and installs the network,
    /// the ports and the port's elements in one transaction, under the
    /// firewall lock. Returns the resolved mappings and the lock, which the
    /// attach keeps until its record is whole: a `reload` (which takes it)
    /// then never meets a record still at work whose elements are in.
    fn publish(
        &self,
        nl: &Netlink,
        net: &Network,
        record: &mut Attachment,
    ) -> Result<(Vec<PortMapping>, Flock<File>), BridgeError> {
        let lock = self.store.lock_firewall()?;
        let is_live = |name: &str| nl.link_exists(name);
        let claims = self.store.ports_dir();
        let host_if = record.host_interface.clone();
        let families = host_ports::Families {
            ipv4: net.subnet.is_some(),
            ipv6: net.subnet6.is_some(),
        };
        let ports = host_ports::claim(
            &claims,
            &self.ports,
            &record.container,
            &host_if,
            families,
            &is_live,
        )?;
        let mut installed = Ok(());
        if !ports.is_empty() {
            record.ports = ports.clone();
            installed = self.store.save_attachment(record).map_err(Into::into);
        }
        let installed = installed.and_then(|()| {
            let port = firewall_port(record);
            let dnat = Dnat::of(&ports, record.ip_address, record.ip6_address);
            self.migrating(net, || {
                Nftables::new().and_then(|nft| nft.attach(net, &dnat, Some(&port)))
            })
        });
        if let Err(e) = installed {
            host_ports::release(&claims, &ports, &record.container, &host_if);
            record.ports.clear();
            return Err(e);
        }
        Ok((ports, lock))
    }

    /// Removes published ports and their claims (not the network's elements).
    /// Deleted elements are freed after an RCU grace period, and the kernel
    /// makes the release of the nftables socket wait for it: the caller keeps
    /// `nft` open while it deletes the veth (another grace period), so the two
    /// waits overlap instead of adding up.
    fn unpublish(&self, nft: &Nftables, net: &Network, r: &Attachment) -> Result<(), BridgeError> {
        let port = firewall_port(r);
        let _lock = self.store.lock_firewall()?;
        let removed = self.migrating(net, || {
            nft.detach(net, &dnats(r), Some(&port), false, false)
        });
        host_ports::release(
            &self.store.ports_dir(),
            &r.ports,
            &r.container,
            &r.host_interface,
        );
        removed
    }

    /// The network's shared firewall elements go (and the table with the last
    /// network).
    fn firewall_remove_network(&self, net: &Network) -> Result<(), BridgeError> {
        let _lock = self.store.lock_firewall()?;
        let table_unused = !self.any_network_in_use()?;
        self.migrating(net, || {
            Nftables::new().and_then(|nft| nft.detach(net, &[], None, true, table_unused))
        })
    }

    /// Runs a firewall change (the firewall lock is held); if the table of
    /// a minirun before IPv6 is in the way, rebuilds the firewall from the
    /// records first (what `reload` does), so the running containers of an
    /// upgraded host keep their ports, then runs it again.
    fn migrating(
        &self,
        net: &Network,
        change: impl Fn() -> Result<(), FirewallError>,
    ) -> Result<(), BridgeError> {
        match change() {
            Err(FirewallError::LegacyTable) => {
                rebuild_locked(&self.store)?;
                change().map_err(Self::fw_err(net))
            }
            other => other.map_err(Self::fw_err(net)),
        }
    }

    /// With the last overlay network of the host gone, no VXLAN is accepted
    /// here any more (nor filtered: the port is closed with the devices).
    fn firewall_forget_vxlan(&self, net: &Network) -> Result<(), BridgeError> {
        let _lock = self.store.lock_firewall()?;
        let other_overlay = self
            .store
            .list_attachments()?
            .iter()
            .any(|a| a.vni.is_some() && a.network != net.name);
        if other_overlay {
            return Ok(());
        }
        Nftables::new()
            .and_then(|nft| nft.vxlan_peers(None, &[]))
            .map_err(Self::fw_err(net))
    }

    /// Whether any network still has a lease (the firewall lock is held).
    fn any_network_in_use(&self) -> Result<bool, BridgeError> {
        let dir = self.store.run_dir.join("networks");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(StoreError::Io { path: dir, source }.into()),
        };
        Ok(entries
            .filter_map(|e| e.ok())
            .any(|e| e.path().is_dir() && crate::ipam::lease_count(&e.path()).is_ok_and(|n| n > 0)))
    }

    fn refresh_hosts(&self, network: &str, also: Option<&str>) -> Result<(), BridgeError> {
        etc_files::refresh_hosts(&self.store, network, also).map_err(Into::into)
    }

    /// The record as attach writes it first, right after the lease.
    fn first_record(
        &self,
        net: &Network,
        c: &Container,
        (ip, ip6): Addresses,
        host_if: &str,
        interface: &str,
    ) -> Result<Attachment, BridgeError> {
        // Decided once: detach and reload follow the record, not the host's
        // br_netfilter setting of their day.
        let calls_ip_hooks = bridge_calls_ip_hooks();
        let isolate = !net.icc && !calls_ip_hooks;
        let on_secondary = segment::placement(net, ip, ip6) != 0;
        let names: Vec<String> = if net.name_resolution {
            std::iter::once(c.id.clone())
                .chain(self.aliases.iter().cloned())
                .collect()
        } else {
            Vec::new()
        };
        Ok(Attachment {
            container: c.id.clone(),
            mode: "bridge".into(),
            network: net.name.clone(),
            bridge: net.bridge.clone(),
            ip_address: ip,
            prefix_len: net
                .subnet
                .filter(|_| ip.is_some())
                .map_or(0, |s| s.prefix()),
            gateway: net.gateway.filter(|_| ip.is_some()),
            ip6_address: ip6,
            prefix6_len: net
                .subnet6
                .filter(|_| ip6.is_some())
                .map_or(0, |s| s.prefix()),
            gateway6: net.gateway6.filter(|_| ip6.is_some()),
            mac_address: veth::mac_text(veth::mac_of(ip, ip6)),
            host_interface: host_if.to_string(),
            interface: interface.to_string(),
            mtu: net.mtu,
            // The host ports asked for, whose claims a detach must find if
            // this attach dies while claiming them (picked ones come later).
            ports: self
                .ports
                .iter()
                .filter(|m| m.host_port != 0)
                .copied()
                .collect(),
            internal: net.internal,
            no_icc: !net.icc,
            anti_spoofing: net.anti_spoofing,
            isolated_port: isolate,
            isolated_in_segment: !net.icc && calls_ip_hooks && on_secondary,
            // Which secondary, once the port is on one (attach_steps).
            segment: 0,
            names,
            connected: self.connecting,
            attaching: Some(Process::this_one()?),
            vni: net.vni,
            cni_ifname: self.cni_ifname.clone(),
            cni_network: self.cni_network.clone(),
        })
    }

    /// The container's side: its addresses, `lo`, and (first network, not
    /// internal) the default routes, through a netlink socket inside its
    /// namespace. With IPv6 the interface takes no router advertisements
    /// and configures nothing by itself, and its link-local address is the
    /// one the anti-spoofing guard knows, without duplicate detection; set
    /// while it is still down, so no advertisement is ever taken.
    fn configure_inside(
        &self,
        net: &Network,
        c: &Container,
        interface: &str,
        record: &Attachment,
        gateway_mac: Option<[u8; 6]>,
    ) -> Result<(), BridgeError> {
        let inside = Netlink::open_in(c.netns.as_fd())?;
        let index = inside.link_index(interface)?;
        // The gateway's MAC is known (minirun's bridges have a fixed one):
        // a permanent entry, which the kernel does not count against the
        // neighbour table's gc_thresh, shared by every namespace of the
        // host (thousands of containers each with a learnt entry for their
        // gateway would overflow it); it also spares the first packet an
        // ARP round trip.
        if let Some(mac) = gateway_mac {
            for gateway in [
                record.gateway.map(IpAddr::V4),
                record.gateway6.map(IpAddr::V6),
            ]
            .into_iter()
            .flatten()
            {
                inside.add_neighbour(index, gateway, mac)?;
            }
        }
        if let Some(ip) = record.ip_address {
            inside.add_address(interface, index, ip.into(), record.prefix_len)?;
        }
        if record.ip6_address.is_none() {
            // No IPv6 on an interface of a network without it (Docker 26
            // turns it off there too): its link-local address's duplicate
            // detection and multicast reports, sent from `::`, would be
            // flooded to every port of the network, work that grows with
            // the containers at each one that starts.
            inside.no_link_local(interface, index)?;
        }
        if let Some(ip6) = record.ip6_address {
            let mac = veth::mac_of(record.ip_address, record.ip6_address);
            configure_ipv6_inside(
                &inside,
                c,
                (interface, index),
                mac,
                (ip6, record.prefix6_len),
                RouterAdverts::Filtered,
            )?;
        }
        inside.set_up(interface, index)?;
        let lo = inside.link_index("lo")?;
        inside.set_up("lo", lo)?;
        // An internal network has no way out; a connected one reaches its
        // subnet only (the first network keeps the default route, as Docker).
        if !net.internal && !self.connecting {
            // A pod's second CNI interface: its first keeps the route.
            let second =
                |e: &NetlinkError| self.cni_ifname.is_some() && e.errno() == Some(libc::EEXIST);
            if let Some(gateway) = record.gateway {
                match inside.add_default_route(gateway, index) {
                    Err(e) if second(&e) => {}
                    other => other?,
                }
            }
            if let Some(gateway6) = record.gateway6 {
                match inside.add_default_route6(gateway6, index) {
                    Err(e) if second(&e) => {}
                    other => other?,
                }
            }
        }
        Ok(())
    }

    /// The host veth's name and the container's interface: `eth0`, or for a
    /// connected network the next free `ethN`, with the veth named after the
    /// pair (the container has one per network).
    fn interface_names(
        &self,
        net: &Network,
        c: &Container,
    ) -> Result<(String, String), BridgeError> {
        if let Some(ifname) = &self.cni_ifname {
            if self.store.load_cni_attachment(&c.id, ifname)?.is_some() {
                return Err(BridgeError::AlreadyOn {
                    container: format!("{} ({ifname})", c.id),
                    network: net.name.clone(),
                });
            }
            return Ok((
                veth::host_name(&format!("{}%{ifname}", c.id)),
                ifname.clone(),
            ));
        }
        Ok(if self.connecting {
            if self.store.load_connection(&c.id, &net.name)?.is_some()
                || self
                    .store
                    .load_attachment(&c.id)?
                    .is_some_and(|a| a.network == net.name)
            {
                return Err(BridgeError::AlreadyOn {
                    container: c.id.clone(),
                    network: net.name.clone(),
                });
            }
            let inside = Netlink::open_in(c.netns.as_fd())?;
            let free = (0..)
                .map(|n| format!("eth{n}"))
                .find(|name| !inside.link_exists(name))
                .expect("some ethN is free");
            (veth::host_name(&format!("{}@{}", c.id, net.name)), free)
        } else {
            (veth::host_name(&c.id), CONTAINER_INTERFACE.to_string())
        })
    }

    /// The network's bridge, made on first use, with the gateway address,
    /// forwarding and `route_localnet`; returns its index, and its MAC when
    /// the bridge is minirun's (an administrator's bridge is used as it is:
    /// its MAC may change, and it gets no secondaries).
    fn ensure_bridge(
        &self,
        nl: &Netlink,
        net: &Network,
        existing: Option<&netlink_packet_route::link::LinkMessage>,
    ) -> Result<(u32, Option<[u8; 6]>), BridgeError> {
        // A MAC of its own, the gateway's as Docker makes containers'
        // (02:42 and the address): a bridge left to take the lowest of its
        // ports' changes it as containers come and go, which flushes the
        // host's neighbour entries on it and leaves the containers' entry
        // for the gateway stale.
        let mac = veth::mac_of(net.gateway, net.gateway6);
        let (bridge_index, ours) = match existing {
            Some(link) => {
                let index = link.header.index;
                // A bridge of an older minirun still takes its ports' MAC:
                // given its own once (never an administrator's bridge).
                let ours = fs::read_to_string(self.store.bridge_marker(&net.name))
                    .is_ok_and(|b| b == net.bridge);
                if ours && crate::netlink::link_mac(link) != Some(mac) {
                    nl.set_mac(&net.bridge, index, mac)?;
                }
                (index, ours)
            }
            None => {
                write_whole(&self.store.bridge_marker(&net.name), net.bridge.as_bytes())?;
                nl.add_link(
                    &format!("creating bridge {}", net.bridge),
                    LinkBridge::new(&net.bridge)
                        .mtu(net.mtu)
                        .address(mac.to_vec())
                        .up()
                        .build(),
                )?;
                let index = nl.link_index(&net.bridge)?;
                // No ports yet, so no carrier and no address yet: an IPv4
                // network's bridge never gets one (no multicast reports
                // flooded to every port). An IPv6 network's keeps it.
                if net.ipv6().is_none() {
                    nl.no_link_local(&net.bridge, index)?;
                }
                (index, true)
            }
        };
        if let Some((subnet, gateway)) = net.ipv4() {
            nl.add_address(&net.bridge, bridge_index, gateway.into(), subnet.prefix())?;
        }
        if let Some((subnet6, gateway6)) = net.ipv6() {
            nl.add_address(&net.bridge, bridge_index, gateway6.into(), subnet6.prefix())?;
        }
        nl.set_up(&net.bridge, bridge_index)?;
        // An internal network has no way out: nothing to forward.
        if !net.internal {
            enable_forwarding(&net.name, net.ipv4().is_some(), net.ipv6().is_some())?;
        }
        // 127.0.0.1:PORT reaches published ports only if the kernel routes
        // loopback sources out of the bridge; only minirun's bridges, never
        // `all` (the firewall drops containers' own traffic to 127/8).
        sysctl(
            &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", net.bridge),
            "1",
        )?;
        Ok((bridge_index, ours.then_some(mac)))
    }

    /// The bridge a container's port goes on: the primary, or the
    /// secondary of its address's block (`segment.rs`), made on first use:
    /// listed before it is made, so the network's teardown finds what a
    /// killed attach made, and added to the firewall's sets once made. An
    /// existing one costs two lookups (it and its link's end on the
    /// primary, returned too).
    fn port_bridge(
        &self,
        nl: &Netlink,
        net: &Network,
        (ip, ip6): Addresses,
        (primary, ours): (u32, bool),
    ) -> Result<PortBridge, BridgeError> {
        let k = segment::placement(net, ip, ip6);
        if k == 0 || !ours {
            return Ok(PortBridge {
                index: primary,
                name: net.bridge.clone(),
                uplink: None,
            });
        }
        let name = segment::Secondary::of(&net.bridge, k).bridge;
        let seg_err = |source| BridgeError::Segment {
            network: net.name.clone(),
            source,
        };
        let uplink = |nl: &Netlink| {
            segment::uplink_index(nl, &net.bridge, k)
                .map_err(seg_err)?
                .ok_or_else(|| {
                    seg_err(segment::SegmentError::Missing(
                        segment::Secondary::of(&net.bridge, k).uplink,
                    ))
                })
        };
        if let Some(index) = segment::index(nl, &net.bridge, k).map_err(seg_err)? {
            return Ok(PortBridge {
                index,
                name,
                uplink: Some(uplink(nl)?),
            });
        }
        let mut known = segment::load(&self.store, &net.name);
        if !known.contains(&k) {
            known.push(k);
            known.sort_unstable();
            segment::save(&self.store, &net.name, &known).map_err(seg_err)?;
        }
        let index = segment::make(nl, net, k, primary).map_err(seg_err)?;
        let with = Network {
            secondaries: known,
            ..net.clone()
        };
        let _lock = self.store.lock_firewall()?;
        self.migrating(&with, || {
            Nftables::new().and_then(|nft| nft.attach(&with, &[], None))
        })?;
        Ok(PortBridge {
            index,
            name,
            uplink: Some(uplink(nl)?),
        })
    }

    /// What the cluster store calls the attachment being made (see
    /// `Attachment::cluster_name`).
    fn cluster_name(&self, id: &str) -> String {
        match &self.cni_ifname {
            Some(ifname) => format!("{id}%{ifname}"),
            None => id.to_string(),
        }
    }

    /// An overlay network's vxlan port on the bridge, made on first use with
    /// the other hosts' containers programmed into it, and the firewall told
    /// which hosts may send VXLAN; their endpoints saved as the network's
    /// view, which the network's hosts file starts from.
    fn ensure_vxlan(
        &self,
        nl: &Netlink,
        net: &Network,
        o: &Overlay,
        bridge_index: u32,
        endpoints: Vec<Endpoint>,
    ) -> Result<(), BridgeError> {
        let (vx_index, created) = vxlan::ensure(nl, net, bridge_index, o.cluster.config.advertise)?;
        // Read with the address, under the network's lock: an endpoint the
        // agent skipped for want of a device is in that read, and any later
        // change waits for the lock, when the device exists.
        let remote: Vec<Endpoint> = endpoints
            .into_iter()
            .filter(|e| e.host != o.cluster.config.advertise)
            .collect();
        // The agent keeps a device and its view in step only while a
        // finished attachment of the network is here; it forgets the view
        // otherwise (a device left by a killed attach or a failed teardown).
        if created || !cluster::view::exists(&self.store, &net.name) {
            vxlan::sync(nl, vx_index, &remote)?;
            cluster::view::save_remote(&self.store, &net.name, &remote)?;
            cluster::agent::set_vxlan_peers(&o.cluster, &self.store)?;
        }
        Ok(())
    }

    /// What must hold before anything is made: the subnets clear of the
    /// host's routes (other than through the network's own bridge), and
    /// what is asked of each family possible on this network.
    fn check(
        &self,
        nl: &Netlink,
        net: &Network,
        own_bridge: Option<u32>,
    ) -> Result<(), BridgeError> {
        check_families(net, self.ip, self.ip6, &self.ports)?;
        let overlap = |subnet: String, route: String| BridgeError::Overlap {
            name: net.name.clone(),
            subnet,
            route,
            path: self.store.network_config(&net.name),
        };
        if let Some(s) = net.subnet {
            if let Some(route) = overlapping_route(&s, &nl.ipv4_routes()?, own_bridge) {
                return Err(overlap(s.to_string(), route));
            }
        }
        if let Some(s6) = net.subnet6 {
            if let Some(route) = overlapping_route(&s6, &nl.ipv6_routes()?, own_bridge) {
                return Err(overlap(s6.to_string(), route));
            }
        }
        Ok(())
    }

    /// Leases the container's address of each family the network has
    /// (`--ip`, `--ip6` or the next free ones); on an overlay network the
    /// cluster decides the IPv4 one, and its endpoints come back with it.
    fn lease_addresses(
        &self,
        nl: &Netlink,
        net: &Network,
        overlay: Option<&Overlay>,
        c: &Container,
        host_if: &str,
        done: &mut Vec<Done>,
    ) -> Result<(Addresses, Vec<Endpoint>), BridgeError> {
        let leases = self.store.leases(&net.name);
        // A lease whose veth is missing is still held while a record names
        // it: that record's detach (or gc) would otherwise unpublish what a
        // new holder of the address publishes the same way.
        let is_live =
            |l: &Lease| nl.link_exists(&l.host_interface) || self.store.names_lease(l, &net.name);
        let mut endpoints = Vec::new();
        let lease = match (net.pool(&leases), overlay, self.ip) {
            // The cluster decides the address; the local lease mirrors it,
            // so this host's count of users (and gc) works as for a bridge.
            (Some(pool), Some(o), want) => {
                let name = self.cluster_name(&c.id);
                let (ip, all) = cluster::ipam::take(
                    &o.cluster,
                    net,
                    (o.revision, &o.held),
                    &name,
                    want,
                    o.lease,
                )?;
                endpoints = all;
                done.push(Done::ClusterAddress(ip, name));
                Some(pool.allocate_static(ip, &c.id, host_if, is_live)?)
            }
            (Some(pool), None, Some(ip)) => {
                Some(pool.allocate_static(ip, &c.id, host_if, is_live)?)
            }
            (Some(pool), None, None) => Some(pool.allocate(&c.id, host_if, is_live)?),
            (None, _, _) => None,
        };
        done.extend(lease.iter().cloned().map(Done::Lease));
        let lease6 = match net.pool6(&leases) {
            Some(pool6) => {
                let mac_from_v6 = lease.is_none();
                Some(lease6(
                    &pool6,
                    self.ip6,
                    (&c.id, host_if),
                    is_live,
                    mac_from_v6,
                )?)
            }
            None => None,
        };
        done.extend(lease6.iter().cloned().map(Done::Lease));
        let ip = lease.and_then(|l| Ipv4Addr::from_ip(l.ip));
        let ip6 = lease6.and_then(|l| Ipv6Addr::from_ip(l.ip));
        Ok(((ip, ip6), endpoints))
    }

    /// The steps of attach after the lock is taken; `done` records what to undo.
    fn attach_steps(
        &self,
        nl: &Netlink,
        net: &Network,
        overlay: Option<&Overlay>,
        c: &Container,
        done: &mut Vec<Done>,
        firewall: &mut Option<Flock<File>>,
    ) -> Result<Attachment, BridgeError> {
        let mut trace = Trace::from_env();
        let bridge = nl.link_by_name(&net.bridge)?;
        self.check(nl, net, bridge.as_ref().map(|b| b.header.index))?;

        let (host_if, interface) = self.interface_names(net, c)?;
        let ((ip, ip6), endpoints) = self
            .lease_addresses(nl, net, overlay, c, &host_if, done)
            .map_err(|e| match e {
                BridgeError::Ipam(IpamError::Exhausted { subnet, .. }) => {
                    BridgeError::NetworkFull {
                        network: net.name.clone(),
                        subnet,
                    }
                }
                other => other,
            })?;
        let mac = veth::mac_of(ip, ip6);
        // Before anything else exists: a killed attach leaves a record
        // detach and gc undo it from.
        let mut record = self.first_record(net, c, (ip, ip6), &host_if, &interface)?;
        self.store.save_attachment(&record)?;
        done.push(Done::Record(Box::new(record.clone())));
        trace.step("checks, lease and record");

        let (bridge_index, bridge_mac) = self.ensure_bridge(nl, net, bridge.as_ref())?;
        let port_bridge =
            self.port_bridge(nl, net, (ip, ip6), (bridge_index, bridge_mac.is_some()))?;
        if port_bridge.uplink.is_some() {
            // Its neighbour solicitations are steered to its secondary's link
            // (firewall elements), which a detach after a killed attach must
            // find in the record.
            record.segment = segment::placement(net, ip, ip6);
            if record.ip6_address.is_some() {
                self.store.save_attachment(&record)?;
            }
        }
        if let Some(o) = overlay {
            self.ensure_vxlan(nl, net, o, bridge_index, endpoints)?;
        }
        trace.step("bridge");
        // Ports and the port's guard go in before the veth exists (elements
        // are keyed by its name): no frame ever leaves it unguarded, which
        // matters for `network connect` of a container already running.
        let (ports, lock) = self.publish(nl, net, &mut record)?;
        *firewall = Some(lock);
        trace.step("ports and firewall");
        done.push(Done::Published(Box::new(record.clone())));
        let udp: Vec<UdpDestination> = crate::ports::runs(&ports)
            .iter()
            .filter(|r| r.first.protocol == Protocol::Udp)
            .map(|r| UdpDestination {
                ip: r.first.host_ip,
                ports: (r.first.host_port, r.last_host_port()),
            })
            .collect();
        if let Err(e) = conntrack::flush_udp(&udp) {
            eprintln!("minirun-net: {}: {e}", c.id);
        }

        veth::create(
            nl,
            &veth::Pair {
                host: &host_if,
                bridge_index: port_bridge.index,
                container: &interface,
                container_netns: c.netns.as_fd(),
                mac,
                mtu: net.mtu,
                // Only minirun's bridges: an administrator's may have
                // neighbours the host knows less well than its containers.
                answers_arp: port_bridge.uplink.is_none() && bridge_mac.is_some(),
            },
        )
        .map_err(|e| match e.errno() {
            // EXCHFULL: the bridge has the most ports a Linux bridge takes.
            Some(libc::EXFULL) => BridgeError::BridgeFull {
                network: net.name.clone(),
                bridge: port_bridge.name.clone(),
                why: if bridge_mac.is_some() {
                    " (a network's bridges take some 780,000 containers; this one's addresses all fell on it)"
                } else {
                    " (the bridge is not minirun's, so the network cannot grow past it)"
                },
            },
            _ => e.into(),
        })?;
        done.push(Done::Veth(host_if.clone()));
        if let Some(uplink) = port_bridge.uplink {
            // The primary answers ARP for it only if it knows where it is.
            done.push(Done::Fdb(uplink, mac));
            nl.add_fdb(uplink, mac)?;
        }
        trace.step("veth pair");

        self.configure_inside(net, c, &interface, &record, bridge_mac)?;
        // The host knows the container's MAC without asking: a permanent
        // entry, which the kernel does not count against the neighbour
        // table's gc_thresh (a host with thousands of containers would
        // overflow the table, shared by all namespaces, otherwise), and
        // which no ARP the container sends can change.
        let addresses = addresses_of(&record);
        done.push(Done::Neighbours(bridge_index, addresses.clone()));
        for ip in addresses {
            nl.add_neighbour(bridge_index, ip, mac)?;
        }
        trace.step("eth0, lo, route");

        self.write_files(net, c, &record, done)?;
        trace.step("/etc files");

        record.attaching = None;
        self.store.save_attachment(&record)?;
        *firewall = None;
        if let (Some(o), Some(ip)) = (overlay, ip) {
            // Last, and with the host's firewall lock let go (the store may
            // be slow): the other hosts program their forwarding to a
            // container that is ready. Undone with the address and the
            // record if it fails.
            let endpoint = Endpoint {
                container: self.cluster_name(&c.id),
                network: net.name.clone(),
                host: o.cluster.config.advertise,
                ip,
                mac: record.mac_address.clone(),
                names: record.names.clone(),
            };
            cluster::ipam::publish(&o.cluster, &endpoint, o.lease)?;
            trace.step("endpoint announced");
        }
        if net.name_resolution {
            // The container is attached; a hosts file that could not be
            // rewritten does not undo that.
            let also = self.connecting.then_some(c.id.as_str());
            if let Err(e) = self.refresh_hosts(&net.name, also) {
                eprintln!("minirun-net: {}: updating /etc/hosts files: {e}", c.id);
            }
        }
        trace.step("record");
        trace.report(&c.id);
        Ok(record)
    }

    /// The container's /etc files (its first network; none for CNI, where
    /// the CRI runtime writes them) and its names on a name-resolving
    /// network: its lines in the network's hosts file, which it shares
    /// unless its hostname is taken there; a running container joining a
    /// second such network gets a file of its own (`etc_files`).
    fn write_files(
        &self,
        net: &Network,
        c: &Container,
        record: &Attachment,
        done: &mut Vec<Done>,
    ) -> Result<(), BridgeError> {
        let mut shared = false;
        if net.name_resolution && !record.names.is_empty() {
            // A network connected later (or a pod's) names the container,
            // not its host.
            let second = self.connecting || self.cni_ifname.is_some();
            let hostname = if second { "" } else { &c.hostname };
            done.push(Done::Named(net.name.clone(), record.cluster_name()));
            let own = etc_files::Peer {
                container: record.cluster_name(),
                ..etc_files::Peer::from(record)
            };
            shared = etc_files::join(&self.store, &net.name, &own, hostname)? && !second;
        }
        if self.cni_ifname.is_some() {
            return Ok(());
        }
        let files = self.store.container_files(&c.id);
        if self.connecting {
            if net.name_resolution && files.join("hosts").exists() {
                if etc_files::is_shared(&files) {
                    let first = self.store.load_attachment(&c.id)?;
                    let ips = first
                        .as_ref()
                        .map_or((None, None), |a| (a.ip_address, a.ip6_address));
                    etc_files::go_private(&files, c.pid, ips, &c.hostname, &c.id)?;
                    if let Some(first) = first.filter(|a| !a.names.is_empty()) {
                        etc_files::mark_private(&self.store, &first.network, &c.id)?;
                    }
                }
                etc_files::mark_private(&self.store, &net.name, &c.id)?;
            }
            return Ok(());
        }
        done.push(Done::Files(files.clone()));
        if shared {
            etc_files::write_shared(&self.store, &net.name, &files, &c.hostname)?;
        } else {
            let ips = (record.ip_address, record.ip6_address);
            etc_files::write_for(&files, ips, &c.hostname, &c.id, &[])?;
            if net.name_resolution {
                etc_files::mark_private(&self.store, &net.name, &c.id)?;
            }
        }
        etc_files::mount_into(&files, c.pid, &c.rootfs)?;
        Ok(())
    }

    /// Undoes finished attach steps in reverse; errors are secondary to the one
    /// that made attach fail, so they are only collected.
    fn undo(
        &self,
        nl: &Netlink,
        net: &Network,
        overlay: Option<&Overlay>,
        done: Vec<Done>,
    ) -> Vec<BridgeError> {
        let mut errors = Vec::new();
        for step in done.into_iter().rev() {
            let result = match step {
                Done::ClusterAddress(ip, id) => match overlay {
                    Some(o) => {
                        cluster::ipam::give_back(&o.cluster, &net.name, ip, &id).map_err(Into::into)
                    }
                    None => Ok(()),
                },
                Done::Files(dir) => remove_dir(&dir),
                Done::Named(network, id) => {
                    etc_files::leave(&self.store, &network, &id).map_err(Into::into)
                }
                // What could not be undone stays named, for detach or gc.
                Done::Record(_) if !errors.is_empty() => Ok(()),
                Done::Record(r) => self.store.remove_attachment(&r).map_err(Into::into),
                Done::Veth(name) => nl.delete_link(&name).map_err(Into::into),
                Done::Fdb(index, mac) => nl.delete_fdb(index, mac).map_err(Into::into),
                Done::Neighbours(index, ips) => ips
                    .iter()
                    .try_for_each(|ip| nl.delete_neighbour(index, *ip))
                    .map_err(Into::into),
                Done::Published(r) => Nftables::new()
                    .map_err(Self::fw_err(net))
                    .and_then(|nft| self.unpublish(&nft, net, &r)),
                Done::Lease(lease) => net
                    .release(&self.store.leases(&net.name), lease.ip, &lease.container)
                    .map_err(Into::into),
            };
            errors.extend(result.err());
        }
        errors.extend(self.teardown_if_unused(nl, net));
        errors
    }

    /// Takes the network's bridge and firewall elements away once no container
    /// holds a lease on it (the network lock is held).
    fn teardown_if_unused(&self, nl: &Netlink, net: &Network) -> Vec<BridgeError> {
        let leases = self.store.leases(&net.name);
        match crate::ipam::lease_count(&leases) {
            Ok(0) => {}
            Ok(_) => return Vec::new(),
            Err(source) => {
                return vec![StoreError::Io {
                    path: leases,
                    source,
                }
                .into()]
            }
        }
        let mut errors = Vec::new();
        if net.is_overlay() {
            errors.extend(self.firewall_forget_vxlan(net).err());
        }
        let net = &Network {
            secondaries: segment::load(&self.store, &net.name),
            ..net.clone()
        };
        errors.extend(self.firewall_remove_network(net).err());
        etc_files::forget_network(&self.store, &net.name);
        match segment::remove(nl, &net.bridge, &net.secondaries) {
            Ok(()) => segment::forget(&self.store, &net.name),
            Err(source) => errors.push(BridgeError::Segment {
                network: net.name.clone(),
                source,
            }),
        }
        if net.is_overlay() {
            // Enslaved, not owned: deleting the bridge leaves it.
            let device = vxlan::device_name(&net.bridge);
            errors.extend(nl.delete_link(&device).err().map(Into::into));
            cluster::view::forget(&self.store, &net.name);
        }
        let marker = self.store.bridge_marker(&net.name);
        if fs::read_to_string(&marker).is_ok_and(|b| b == net.bridge) {
            match nl.delete_link_unwaited(&net.bridge) {
                Ok(()) => {
                    let _ = fs::remove_file(&marker);
                }
                Err(e) => errors.push(e.into()),
            }
        }
        errors
    }
}

impl NetworkDriver for BridgeDriver {
    type Error = BridgeError;

    fn attach(&self, c: &Container) -> Result<Attachment, BridgeError> {
        let nl = Netlink::open()?;
        let mut lock = self.store.lock_network(&self.network)?;
        let (mut net, mut overlay) = self.network(&nl)?;
        if net.enable_ipv6 && net.subnet6.is_none() {
            // Settled without the network's lock: settling takes the
            // definitions' lock, which `network rm` holds while it takes
            // the network's. Rare (once per definition), so read again.
            drop(lock);
            crate::networks::settle_ipv6(&self.store, &self.network)?;
            lock = self.store.lock_network(&self.network)?;
            (net, overlay) = self.network(&nl)?;
        }
        let _lock = lock;
        let mut done = Vec::new();
        let mut firewall = None;
        match self.attach_steps(&nl, &net, overlay.as_ref(), c, &mut done, &mut firewall) {
            Ok(record) => Ok(record),
            Err(e) => {
                // The undo takes the firewall lock itself.
                drop(firewall.take());
                for undo_error in self.undo(&nl, &net, overlay.as_ref(), done) {
                    eprintln!(
                        "minirun-net: while undoing attach of {}: {undo_error}",
                        c.id
                    );
                }
                Err(e)
            }
        }
    }

    fn detach(&self, r: &Attachment) -> Vec<BridgeError> {
        let mut errors = Vec::new();
        let nl = match Netlink::open() {
            Ok(nl) => nl,
            Err(e) => return vec![e.into()],
        };
        let net = match network_of(&self.store, r) {
            Ok(n) => n,
            Err(e) => return vec![e],
        };
        // Kept open until the end (see unpublish).
        let nft = match Nftables::new() {
            Ok(nft) => Some(nft),
            Err(e) => {
                errors.push(Self::fw_err(&net)(e));
                None
            }
        };
        if let Some(nft) = &nft {
            errors.extend(self.unpublish(nft, &net, r).err());
        }
        // Gone from the host when this returns; the kernel frees it after
        // an RCU barrier, not waited for here (`delete_link_unwaited`).
        errors.extend(
            nl.delete_link_unwaited(&r.host_interface)
                .err()
                .map(Into::into),
        );
        let k = segment::placement(&net, r.ip_address, r.ip6_address);
        if k != 0 {
            // Its entry behind the link, if it is on a secondary (not on an
            // administrator's bridge, which has none).
            let mac = veth::parse_mac(&r.mac_address);
            match (segment::uplink_index(&nl, &r.bridge, k), mac) {
                (Ok(Some(uplink)), Some(mac)) => {
                    errors.extend(nl.delete_fdb(uplink, mac).err().map(Into::into))
                }
                (Ok(_), _) => {}
                (Err(source), _) => errors.push(BridgeError::Segment {
                    network: r.network.clone(),
                    source,
                }),
            }
        }
        // The bridge may be gone (a network torn down): its entries with it.
        if let Ok(Some(bridge)) = nl.link_by_name(&r.bridge) {
            for ip in addresses_of(r) {
                errors.extend(
                    nl.delete_neighbour(bridge.header.index, ip)
                        .err()
                        .map(Into::into),
                );
            }
        }
        let leases = self.store.leases(&r.network);
        for ip in addresses_of(r) {
            errors.extend(net.release(&leases, ip, &r.container).err().map(Into::into));
        }
        if r.vni.is_some() {
            give_back_overlay(r);
        }
        if !r.names.is_empty() {
            errors.extend(
                etc_files::leave(&self.store, &r.network, &r.cluster_name())
                    .err()
                    .map(Into::into),
            );
        }
        errors.extend(self.teardown_if_unused(&nl, &net));
        if !r.connected && r.cni_ifname.is_none() {
            // The /etc files belong to the first network's attachment.
            errors.extend(remove_dir(&self.store.container_files(&r.container)).err());
        }
        if errors.is_empty() {
            errors.extend(self.store.remove_attachment(r).err().map(Into::into));
            if !r.names.is_empty() {
                // The others no longer find it (nor it them, if it stays).
                let also = r.connected.then_some(r.container.as_str());
                errors.extend(self.refresh_hosts(&r.network, also).err());
            }
        }
        errors
    }
}

/// Gives an overlay container's address and endpoint back to the cluster.
/// A store that cannot be reached does not fail the detach: the keys stay
/// on this host's lease, and the agent removes those no record names when
/// it next reaches the store (the address is not reused meanwhile).
fn give_back_overlay(r: &Attachment) {
    let given = Cluster::open().and_then(|c| match c {
        Some(c) => match r.ip_address {
            Some(ip) => cluster::ipam::give_back(&c, &r.network, ip, &r.cluster_name()),
            None => Ok(()),
        },
        None => Ok(()),
    });
    if let Err(e) = given {
        eprintln!(
            "minirun-net: detach {} from {}: {e} (the cluster agent removes its keys later)",
            r.container, r.network
        );
    }
}

/// Step timings of attach on stderr when `MINIRUN_NET_TRACE` is set: what
/// the benchmark's profile reads.
struct Trace {
    last: Option<std::time::Instant>,
    steps: Vec<(&'static str, f64)>,
}

impl Trace {
    fn from_env() -> Self {
        Trace {
            last: std::env::var_os("MINIRUN_NET_TRACE").map(|_| std::time::Instant::now()),
            steps: Vec::new(),
        }
    }

    fn step(&mut self, name: &'static str) {
        if let Some(last) = self.last {
            let now = std::time::Instant::now();
            self.steps.push((name, (now - last).as_secs_f64() * 1000.0));
            self.last = Some(now);
        }
    }

    fn report(&self, id: &str) {
        if self.last.is_some() {
            let steps: Vec<String> = self
                .steps
                .iter()
                .map(|(n, ms)| format!("{n} {ms:.3}"))
                .collect();
            eprintln!("minirun-net trace {id}: {}", steps.join("; "));
        }
    }
}

/// br_netfilter hands bridged IPv4 to the IP hooks in this namespace.
fn bridge_calls_ip_hooks() -> bool {
    fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables")
        .is_ok_and(|v| v.trim() == "1")
}

/// A host route (other than a default route, or one through `own_bridge`)
/// whose destination overlaps `subnet`.
fn overlapping_route<A: Family>(
    subnet: &crate::ipam::Cidr<A>,
    routes: &[(A, u8, Option<u32>)],
    own_bridge: Option<u32>,
) -> Option<String> {
    routes
        .iter()
        .filter(|(_, prefix, oif)| *prefix > 0 && (own_bridge.is_none() || *oif != own_bridge))
        .find(|(dest, prefix, _)| crate::ipam::Cidr::covering(*dest, *prefix).overlaps(subnet))
        .map(|(dest, prefix, _)| format!("{dest}/{prefix}"))
}

/// Rebuilds minirun's firewall from the attachment records (after someone
/// flushed the ruleset). Returns how many containers' ports it restored.
pub fn reload(store: &Store) -> Result<usize, BridgeError> {
    let _lock = store.lock_firewall()?;
    rebuild_locked(store)
}

/// `reload`'s work, the firewall lock held: every finished attachment's
/// network, ports and bridge port, in one transaction that also removes
/// what was there (the table of an older minirun too). A network's
/// families are those of all its records and its definition (a container
/// attached before the network got IPv6 has no IPv6 address).
fn rebuild_locked(store: &Store) -> Result<usize, BridgeError> {
    let records = store.list_attachments()?;
    let mut networks: Vec<Network> = Vec::new();
    let mut ports = Vec::new();
    // macvlan attachments have nothing in the firewall; an attach at work
    // installs its own ports (its record may name some it has not claimed).
    let records: Vec<Attachment> = records
        .into_iter()
        .filter(|r| r.mode != "macvlan" && r.attaching.is_none())
        .collect();
    for r in &records {
        let net = network_of(store, r)?;
        match networks.iter_mut().find(|n| n.name == net.name) {
            Some(known) => merge_families(known, &net),
            None => networks.push(net),
        }
        ports.extend(dnats(r));
    }
    let bridge_ports: Vec<Port> = records.iter().map(firewall_port).collect();
    for net in &mut networks {
        net.secondaries = segment::load(store, &net.name);
        sysctl(
            &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", net.bridge),
            "1",
        )?;
    }
    let fw = |source| BridgeError::Firewall {
        network: networks
            .first()
            .map_or_else(String::new, |n| n.name.clone()),
        source,
    };
    Nftables::new()
        .and_then(|nft| nft.rebuild(&networks, &ports, &bridge_ports))
        .map_err(fw)?;
    if records.iter().any(|r| r.vni.is_some()) {
        // The VXLAN filter went with the table: the members last written.
        cluster::agent::vxlan_filter_from_disk(store)?;
    }
    Ok(records.iter().filter(|r| !r.ports.is_empty()).count())
}

/// The network a record is on, as far as detach and reload need it: the
/// record's, with the families the definition of the same bridge has and
/// the record lacks (an address of the container's is not the network's
/// only subnet).
fn network_of(store: &Store, r: &Attachment) -> Result<Network, BridgeError> {
    let mut net = r.network_def()?;
    if let Ok(Some(defined)) = Network::load(store, &r.network) {
        if defined.bridge == net.bridge {
            merge_families(&mut net, &defined);
        }
    }
    Ok(net)
}

/// Fills the subnets `into` lacks from `from`.
fn merge_families(into: &mut Network, from: &Network) {
    if into.subnet.is_none() {
        into.subnet = from.subnet;
        into.gateway = from.gateway;
    }
    if into.subnet6.is_none() && from.subnet6.is_some() {
        into.enable_ipv6 = true;
        into.subnet6 = from.subnet6;
        into.gateway6 = from.gateway6;
    }
}

/// A container's bridge port as the firewall knows it, from its record.
fn firewall_port(r: &Attachment) -> Port {
    Port {
        host_interface: r.host_interface.clone(),
        isolated: r.isolated_port,
        isolated_in_segment: r.isolated_in_segment,
        guard: r.anti_spoofing.then(|| Guard {
            mac: r.mac_address.clone(),
            ipv4: r.ip_address,
            // Its IPv6 address and the link-local one attach gave it.
            ipv6: r
                .ip6_address
                .map(|ip6| vec![ip6, veth::link_local(veth::mac_of(r.ip_address, Some(ip6)))])
                .unwrap_or_default(),
        }),
        segment_link: r.ip6_address.filter(|_| r.segment != 0).map(|ipv6| {
            let s = segment::Secondary::of(&r.bridge, r.segment);
            SegmentLink {
                uplink: s.uplink,
                downlink: s.downlink,
                ipv6,
            }
        }),
    }
}

fn sysctl(path: &str, value: &str) -> Result<(), BridgeError> {
    if fs::read_to_string(path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    fs::write(path, value).map_err(|source| BridgeError::Sysctl {
        path: path.to_string(),
        source,
    })
}

/// Routing between the bridges and the world, for the families the network
/// has (IPv6 forwarding never for an IPv4 network). Turning IPv6 forwarding on
/// makes the host stop taking router advertisements on interfaces whose
/// `accept_ra` is 1 (a host configured by SLAAC needs 2 there), so it is
/// said on stderr when it happens, as Docker says it.
fn enable_forwarding(network: &str, ipv4: bool, ipv6: bool) -> Result<(), BridgeError> {
    const V4: &str = "/proc/sys/net/ipv4/ip_forward";
    const V6: &str = "/proc/sys/net/ipv6/conf/all/forwarding";
    let on = |path: &'static str| -> Result<bool, BridgeError> {
        if fs::read_to_string(path).is_ok_and(|v| v.trim() == "1") {
            return Ok(false);
        }
        fs::write(path, "1").map_err(|e| BridgeError::Forwarding(path, e))?;
        Ok(true)
    };
    if ipv4 {
        on(V4)?;
    }
    if ipv6 && on(V6)? {
        eprintln!(
            "minirun-net: network {network}: turned on IPv6 forwarding (net.ipv6.conf.all.forwarding=1); \
interfaces with accept_ra=1 now ignore router advertisements (set accept_ra=2 where the host needs them)"
        );
    }
    Ok(())
}

/// Addresses asked for and published host addresses of the families the
/// network has, and at least one family: `--ip` or an IPv4 host address on
/// an IPv6-only network is refused as `--ip6` or an IPv6 one is on a
/// network without IPv6 (both drivers).
pub(crate) fn check_families(
    net: &Network,
    ip: Option<Ipv4Addr>,
    ip6: Option<Ipv6Addr>,
    ports: &[PortMapping],
) -> Result<(), BridgeError> {
    let no = |family: &'static str, what: String| BridgeError::NoFamily {
        network: net.name.clone(),
        family,
        what,
    };
    let host_ip_of = |v6: bool| {
        ports
            .iter()
            .find(move |m| m.host_ip.is_some_and(|h| h.is_ipv6() == v6))
    };
    if net.subnet.is_none() {
        if let Some(ip) = ip {
            return Err(no("IPv4", format!("--ip {ip} cannot be given")));
        }
        if let Some(m) = host_ip_of(false) {
            return Err(no(
                "IPv4",
                format!("port {m} cannot be published on an IPv4 host address"),
            ));
        }
    }
    if net.subnet6.is_none() {
        if let Some(ip6) = ip6 {
            return Err(no("IPv6", format!("--ip6 {ip6} cannot be given")));
        }
        if let Some(m) = host_ip_of(true) {
            return Err(no(
                "IPv6",
                format!("port {m} cannot be published on an IPv6 host address"),
            ));
        }
    }
    if net.subnet.is_none() && net.subnet6.is_none() {
        return Err(no(
            "subnet",
            "its definition has neither an IPv4 nor an IPv6 subnet".into(),
        ));
    }
    Ok(())
}

/// Leases the container's IPv6 address (`want` or the next free one). On an
/// IPv6-only network (`mac_from_v6`) the MAC is made of the address's last
/// 32 bits: an address whose MAC another lease of the network would share
/// is refused when asked for and passed over when picked.
pub(crate) fn lease6(
    pool6: &Pool<Ipv6Addr>,
    want: Option<Ipv6Addr>,
    (id, holder): (&str, &str),
    is_live: impl Fn(&Lease) -> bool,
    mac_from_v6: bool,
) -> Result<Lease, BridgeError> {
    // Picked addresses walk upwards from the cursor: a clash with a chosen
    // address is passed in one step, a run of them in as many.
    let mut last_clash = None;
    for _ in 0..64 {
        let lease = match want {
            Some(ip) => pool6.allocate_static(ip, id, holder, &is_live)?,
            None => pool6.allocate(id, holder, &is_live)?,
        };
        let ip = Ipv6Addr::from_ip(lease.ip).expect("an IPv6 pool leases IPv6");
        if !mac_from_v6 {
            return Ok(lease);
        }
        // The bridge's MAC is made the same way, of the gateway's address.
        let low = |a: Ipv6Addr| u128::from(a) as u32;
        let gateway = (low(ip) == low(pool6.gateway)).then_some(pool6.gateway);
        let clash = match gateway {
            Some(g) => Some(g),
            None => crate::ipam::same_low_bits(pool6.dir, ip).map_err(|source| StoreError::Io {
                path: pool6.dir.to_path_buf(),
                source,
            })?,
        };
        let Some(other) = clash else {
            return Ok(lease);
        };
        pool6.release(ip, id)?;
        if want.is_some() {
            return Err(BridgeError::MacTaken { ip, other });
        }
        last_clash = Some((ip, other));
    }
    let (ip, other) = last_clash.expect("the loop ran");
    Err(BridgeError::MacTaken { ip, other })
}

/// Where a container's interface could hear router advertisements from.
pub(crate) enum RouterAdverts {
    /// Behind minirun's bridge: its firewall drops any a container sends,
    /// and the host sends none of its own. The interface keeps the kernel's
    /// settings, untouched: a sysctl written in the container's namespace
    /// through the host's /proc leaves a dentry of that namespace's
    /// `/proc/sys/net` in one hash chain with every other namespace's (same
    /// parent, same name), and every later lookup of `/proc/sys/net` on the
    /// host walks it — 13% of a dual-stack attach's CPU at 2,000 containers.
    Filtered,
    /// On a LAN (macvlan), where routers do advertise: none taken, no
    /// address configured from one.
    Refused,
}

/// IPv6 on a container's interface, still down: no link-local address of
/// the kernel's; then the link-local address of its MAC (the one the
/// anti-spoofing guard knows) and its own, both without duplicate address
/// detection (see `Netlink::add_address`).
pub(crate) fn configure_ipv6_inside(
    inside: &Netlink,
    c: &Container,
    (interface, index): (&str, u32),
    mac: [u8; 6],
    (ip6, prefix6): (Ipv6Addr, u8),
    adverts: RouterAdverts,
) -> Result<(), BridgeError> {
    if let RouterAdverts::Refused = adverts {
        crate::netlink::in_namespace(c.netns.as_fd(), || {
            for key in ["accept_ra", "autoconf"] {
                sysctl(&format!("/proc/sys/net/ipv6/conf/{interface}/{key}"), "0")?;
            }
            Ok::<(), BridgeError>(())
        })??;
    }
    inside.no_link_local(interface, index)?;
    inside.add_address(interface, index, veth::link_local(mac).into(), 64)?;
    inside.add_address(interface, index, ip6.into(), prefix6)?;
    Ok(())
}

fn remove_dir(dir: &std::path::Path) -> Result<(), BridgeError> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::Io {
            path: dir.to_path_buf(),
            source: e,
        }
        .into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_ignores_default_routes_and_our_bridge() {
        let s: Subnet = "172.20.0.0/16".parse().unwrap();
        let ip = |t: &str| t.parse::<Ipv4Addr>().unwrap();
        let routes = vec![
            (ip("0.0.0.0"), 0, Some(2)),
            (ip("10.0.0.0"), 8, Some(2)),
            (ip("172.20.0.0"), 16, Some(7)),
        ];
        assert_eq!(overlapping_route(&s, &routes, Some(7)), None);
        assert_eq!(
            overlapping_route(&s, &routes, None).as_deref(),
            Some("172.20.0.0/16")
        );
        let host = vec![(ip("172.20.5.9"), 32, Some(3))];
        assert_eq!(
            overlapping_route(&s, &host, Some(7)).as_deref(),
            Some("172.20.5.9/32")
        );
    }
}
