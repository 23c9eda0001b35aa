//! A bridge network's layer-2 segment beyond one bridge's ports.
//!
//! A Linux bridge numbers its ports in 10 bits: it takes 1,023, and the
//! 1,024th veth fails with EXFULL. Docker, podman and the CNI bridge stop
//! there. A network here is a star of bridges: the primary (the network's
//! bridge, with the gateway addresses, where the host routes the subnet)
//! holds the containers of the first block of addresses (256), and each
//! further block's containers are on a secondary bridge joined to the
//! primary by a veth pair. Frames cross at most three bridges; the host, the firewall
//! and the containers see one segment.
//!
//! Placement follows the container's address (block k of `BLOCK` host
//! addresses is on secondary k): no count of ports at attach, so attaching
//! the 4,000th container costs what the first did, and detach needs
//! nothing but the record. Past `MAX_SECONDARIES` blocks (a subnet larger
//! than a /15), blocks share secondaries round the ring, and only a network
//! of some 780,000 containers could meet a full bridge (the error names
//! it).
//!
//! Broadcasts are what a segment must keep small: one frame flooded to
//! thousands of veths is queued at once on one CPU's backlog, which holds
//! `netdev_max_backlog` (1,000, host-wide) frames, and what is sent in
//! that moment is dropped (measured at 4,000 containers: an ARP answer
//! lost among 2,600 drops per request). So the primary answers ARP for
//! every container itself: each port on it answers for what is behind it
//! (`proxy_arp_wifi`) from the host's permanent neighbour entries, and a
//! secondary's containers are static entries of the primary's forwarding
//! table, behind their link. A request then floods the requester's own
//! bridge (at most a block's containers) and stops at the primary. It is
//! the answer the container would have given: the entries are the
//! container's own address and MAC, made and removed with it. IPv6
//! neighbour solicitations, multicast and flooded alike, are steered by
//! the firewall instead: one crosses a link only toward its target's
//! bridge (`firewall/nftables.rs`, `nd_up`/`nd_local`).
//!
//! A secondary has no address and must stay out of the host's way: it
//! answers no ARP (`arp_ignore=8`), has no IPv6 (so no link-local address,
//! no DAD, no router solicitations), and neither have its link ends.
//! Secondaries live as long as their network's primary: made on first use,
//! listed in `<run>/networks/<network>.segment` before they are made (a
//! killed attach leaves nothing the teardown does not find), and removed
//! with the primary when the network's last container leaves.

use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};

use netlink_packet_route::link::InfoBridgePort;
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth};

use crate::ipam::Family;
use crate::netlink::{Netlink, NetlinkError};
use crate::store::{write_whole, Network, Store, StoreError};
use crate::veth::name_hash;

/// Host addresses per bridge. Adding a port costs the kernel work in the
/// number of the bridge's ports (measured: the veth's creation 1.2 ms on
/// an empty bridge, 4 ms at 1,000 ports), so bridges are kept small: a
/// /24's worth each, which leaves the primary room for the links to 765
/// secondaries (196,000 addresses; a /16 needs 255).
pub const BLOCK: u128 = 256;
/// 1,023 ports less the primary's block, one VXLAN port and a spare.
pub const MAX_SECONDARIES: u16 = 765;

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0} is missing: its secondary bridge is there without its link")]
    Missing(String),
    #[error("setting {path}: {source}")]
    Sysctl {
        path: String,
        source: std::io::Error,
    },
}

/// The names of secondary `k` of the bridge `primary`: the bridge, its
/// link's end on the primary and its link's end on itself. Named from a
/// hash of the primary's name (bridge names use all of IFNAMSIZ).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secondary {
    pub bridge: String,
    pub uplink: String,
    pub downlink: String,
}

impl Secondary {
    pub fn of(primary: &str, k: u16) -> Secondary {
        let h = name_hash(primary);
        Secondary {
            bridge: format!("mr{h:08x}b{k}"),
            uplink: format!("mr{h:08x}u{k}"),
            downlink: format!("mr{h:08x}d{k}"),
        }
    }

    /// A fixed MAC, so the bridge does not take (and change with) the
    /// lowest of its ports' MACs. Locally administered, never a
    /// container's (02:42).
    fn mac(primary: &str, k: u16) -> [u8; 6] {
        let h = name_hash(primary).to_be_bytes();
        [0x06, k as u8, h[0], h[1], h[2], h[3]]
    }
}

/// Which bridge of the segment a container's port goes on: 0 for the
/// primary, else the secondary of its address's block.
pub fn placement(net: &Network, ip: Option<Ipv4Addr>, ip6: Option<Ipv6Addr>) -> u16 {
    let offset = match (net.subnet.zip(ip), net.subnet6.zip(ip6)) {
        (Some((subnet, ip)), _) => Family::to_bits(ip) - Family::to_bits(subnet.addr()),
        (None, Some((subnet6, ip6))) => Family::to_bits(ip6) - Family::to_bits(subnet6.addr()),
        (None, None) => 0,
    };
    match offset / BLOCK {
        0 => 0,
        block => 1 + ((block - 1) % u128::from(MAX_SECONDARIES)) as u16,
    }
}

fn list_path(store: &Store, network: &str) -> std::path::PathBuf {
    store
        .run_dir
        .join("networks")
        .join(format!("{network}.segment"))
}

/// The secondaries a network has (or an attach was making when it died).
pub fn load(store: &Store, network: &str) -> Vec<u16> {
    fs::read_to_string(list_path(store, network))
        .map(|text| {
            text.split_whitespace()
                .filter_map(|k| k.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

pub fn save(store: &Store, network: &str, ks: &[u16]) -> Result<(), SegmentError> {
    let text: Vec<String> = ks.iter().map(u16::to_string).collect();
    write_whole(&list_path(store, network), text.join(" ").as_bytes())?;
    Ok(())
}

pub fn forget(store: &Store, network: &str) {
    let _ = fs::remove_file(list_path(store, network));
}

/// The index of secondary `k`, if it is there.
pub fn index(nl: &Netlink, primary: &str, k: u16) -> Result<Option<u32>, SegmentError> {
    Ok(nl
        .link_by_name(&Secondary::of(primary, k).bridge)?
        .map(|l| l.header.index))
}

/// The index of secondary `k`'s link end on the primary, if it is there.
pub fn uplink_index(nl: &Netlink, primary: &str, k: u16) -> Result<Option<u32>, SegmentError> {
    Ok(nl
        .link_by_name(&Secondary::of(primary, k).uplink)?
        .map(|l| l.header.index))
}

/// Makes secondary `k` of `net` and its link to the primary (whatever a
/// killed attach left of them goes first); returns its index.
pub fn make(nl: &Netlink, net: &Network, k: u16, primary_index: u32) -> Result<u32, SegmentError> {
    let s = Secondary::of(&net.bridge, k);
    remove(nl, &net.bridge, &[k])?;
    nl.add_link(
        &format!("creating bridge {} (segment of {})", s.bridge, net.bridge),
        LinkBridge::new(&s.bridge)
            .mtu(net.mtu)
            .address(Secondary::mac(&net.bridge, k).to_vec())
            .build(),
    )?;
    let index = nl.link_index(&s.bridge)?;
    sysctl(
        &format!("/proc/sys/net/ipv4/conf/{}/arp_ignore", s.bridge),
        "8",
    )?;
    crate::netlink::no_ipv6(&s.bridge)?;
    nl.add_link(
        &format!("creating the link {} / {}", s.uplink, s.downlink),
        LinkMessageBuilder::<LinkVeth>::new(&s.uplink, &s.downlink)
            .mtu(net.mtu)
            .controller(primary_index)
            .build(),
    )?;
    crate::netlink::no_ipv6(&s.uplink)?;
    crate::netlink::no_ipv6(&s.downlink)?;
    let up = nl.link_index(&s.uplink)?;
    // ARP for the secondary's containers is answered on the primary.
    nl.set_bridge_port(&s.uplink, up, vec![InfoBridgePort::ProxyARPWifi(true)])?;
    let down = nl.link_index(&s.downlink)?;
    nl.run(
        nl.handle()
            .link()
            .set(LinkUnspec::new_with_index(down).controller(index).build())
            .execute(),
    )
    .map_err(crate::netlink::describe(format!(
        "adding {} to {}",
        s.downlink, s.bridge
    )))?;
    // The secondary learns nothing from its link: its own containers are
    // static entries, and whatever it does not know is up the link (its
    // containers' ports take no unknown unicast). Learning would also
    // move a container's entry to the link when the primary answers ARP
    // for it, with its MAC, to a neighbour on the same secondary.
    nl.set_bridge_port(&s.downlink, down, vec![InfoBridgePort::Learning(false)])?;
    nl.set_up(&s.downlink, down)?;
    nl.set_up(&s.uplink, up)?;
    nl.set_up(&s.bridge, index)?;
    Ok(index)
}

/// Deletes secondaries `ks` of `primary` and their links; missing ones are
/// fine. All are tried; the first error is returned.
pub fn remove(nl: &Netlink, primary: &str, ks: &[u16]) -> Result<(), SegmentError> {
    let mut first = Ok(());
    for &k in ks {
        let s = Secondary::of(primary, k);
        // The pair goes with either end.
        for name in [&s.uplink, &s.bridge] {
            if let Err(e) = nl.delete_link(name) {
                first = first.and(Err(e.into()));
            }
        }
    }
    first
}

fn sysctl(path: &str, value: &str) -> Result<(), SegmentError> {
    fs::write(path, value).map_err(|source| SegmentError::Sysctl {
        path: path.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::{Subnet, Subnet6};

    fn net(subnet: &str) -> Network {
        let s: Subnet = subnet.parse().unwrap();
        Network::new("n", "mr-0123456789ab", s, s.first_host())
    }

    #[test]
    fn placement_follows_the_address_block() {
        let n = net("10.88.0.0/16");
        let at = |ip: &str| placement(&n, Some(ip.parse().unwrap()), None);
        assert_eq!(at("10.88.0.2"), 0);
        assert_eq!(at("10.88.0.255"), 0);
        assert_eq!(at("10.88.1.0"), 1);
        assert_eq!(at("10.88.15.160"), 15);
        assert_eq!(at("10.88.255.254"), 255);
        // Past the last secondary, blocks go round the ring.
        let big = net("10.0.0.0/8");
        let far = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + 766 * 256);
        assert_eq!(placement(&big, Some(far), None), 1);
        let mut v6 = Network::without_addresses("n6", "b6");
        v6.subnet6 = Some("fd00::/64".parse::<Subnet6>().unwrap());
        assert_eq!(placement(&v6, None, Some("fd00::100".parse().unwrap())), 1);
        assert_eq!(placement(&v6, None, Some("fd00::2".parse().unwrap())), 0);
    }

    #[test]
    fn names_fit_ifnamsiz_and_differ() {
        let a = Secondary::of("mr-0123456789ab", MAX_SECONDARIES);
        for name in [&a.bridge, &a.uplink, &a.downlink] {
            assert!(name.len() <= 15, "{name}");
        }
        assert_ne!(
            a.bridge,
            Secondary::of("mr-0123456789ac", MAX_SECONDARIES).bridge
        );
        assert_ne!(a.uplink, a.downlink);
        assert_eq!(Secondary::mac("x", 3)[1], 3);
    }
}
