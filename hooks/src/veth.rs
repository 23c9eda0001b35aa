//! The veth pair between a bridge and a container.
//!
//! One netlink request makes both ends: the host end enslaved to the bridge
//! and up, the container end born inside the container's namespace with its
//! final name and MAC. Moving a device between namespaces afterwards would cost
//! an RCU grace period (tens of milliseconds) per container.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_route::link::{InfoBridgePort, InfoData, InfoVeth};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth};

use crate::netlink::{Netlink, NetlinkError};

/// Docker's MAC for an address: 02:42 and the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// The MAC of a container: of its IPv4 address, or on an IPv6-only network
/// 02:42 and the last four bytes of its IPv6 address (unique in a subnet
/// of /96 or longer, and IPAM hands out low addresses in a /64).
pub fn mac_of(ipv4: Option<Ipv4Addr>, ipv6: Option<Ipv6Addr>) -> [u8; 6] {
    match (ipv4, ipv6) {
        (Some(ip4), _) => mac_for(ip4),
        (None, Some(ip6)) => {
            let o = ip6.octets();
            [0x02, 0x42, o[12], o[13], o[14], o[15]]
        }
        (None, None) => [0x02, 0x42, 0, 0, 0, 0],
    }
}

/// A MAC from its text (`aa:bb:...`), as a record keeps it.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The link-local address of a MAC (modified EUI-64, RFC 4291): what the
/// kernel would give the interface, given by minirun instead so the
/// anti-spoofing guard knows it.
pub fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    let m = mac;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The host end's name for a container: `veth` and 8 hex digits of a hash of
/// its id, so the name is known from the id alone.
pub fn host_name(container: &str) -> String {
    format!("veth{:08x}", name_hash(container))
}

/// 32 bits of FNV-1a: stable across builds, unlike std's hasher, for link
/// names derived from other names.
pub fn name_hash(text: &str) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h ^ (h >> 32)) as u32
}

pub struct Pair<'a> {
    pub host: &'a str,
    pub bridge_index: u32,
    pub container: &'a str,
    pub container_netns: BorrowedFd<'a>,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// The port is on a network's primary bridge, which answers ARP for
    /// the containers behind it (see `segment.rs`).
    pub answers_arp: bool,
}

/// Creates the pair. The caller deletes the host end to undo it (that takes
/// the container end with it); a pair made but not configured is deleted
/// here before the error returns.
pub fn create(nl: &Netlink, p: &Pair) -> Result<(), NetlinkError> {
    let peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(p.container.to_string())
        .address(p.mac.to_vec())
        .mtu(p.mtu)
        .setns_by_fd(p.container_netns.as_raw_fd())
        .build();
    let pair = LinkMessageBuilder::<LinkVeth>::new(p.host, p.container)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .mtu(p.mtu)
        .controller(p.bridge_index)
        .up()
        .build();
    nl.add_link(
        &format!(
            "creating veth pair {} (host) / {} (container)",
            p.host, p.container
        ),
        pair,
    )?;
    let configured = configure_host_end(nl, p);
    if configured.is_err() {
        // The first error is the one to report; this delete is best effort.
        let _ = nl.delete_link(p.host);
    }
    configured
}

/// The host end's IPv6 and bridge-port options, and the container's MAC as
/// a static entry of its port.
fn configure_host_end(nl: &Netlink, p: &Pair) -> Result<(), NetlinkError> {
    // Hairpin: a container reaching its own published port through the
    // host's address gets its packets back out of the port they came in by.
    // No unknown unicast: frames for a MAC the bridge does not know (a
    // container gone without its detach, whose address the host still has
    // as a permanent neighbour) are not flooded to the other containers;
    // the container's own MAC is a static entry of its port, so frames for
    // it never are unknown. On a network's primary bridge, ARP for the
    // container is answered by the bridge from the host's permanent
    // neighbour entry instead of flooded to every port of the segment
    // (`segment.rs`). Bridge-port options cannot ride on the creating
    // request.
    let index = nl.link_index(p.host)?;
    // IPv6 off before the end has carrier: with it on, even without an
    // address, each host end is a multicast route of the host's IPv6 table,
    // and every link event of a host end (its carrier coming up, an
    // attribute set) makes the kernel walk that whole table under the
    // global netlink lock: the veth step of attach grew 1.2 → 2.2 ms over
    // 2,000 containers. With it off the kernel skips those events.
    crate::netlink::no_ipv6(p.host)?;
    let mut options = vec![
        InfoBridgePort::HairpinMode(true),
        InfoBridgePort::UnicastFlood(false),
    ];
    if p.answers_arp {
        options.push(InfoBridgePort::ProxyARPWifi(true));
    }
    nl.set_bridge_port(p.host, index, options)?;
    nl.add_fdb(index, p.mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_macs() {
        assert_eq!(
            mac_text(mac_for("172.20.0.2".parse().unwrap())),
            "02:42:ac:14:00:02"
        );
        assert_eq!(
            link_local(mac_for("172.20.0.2".parse().unwrap())).to_string(),
            "fe80::42:acff:fe14:2"
        );
        let mac = mac_of(None, Some("fd42::1:a0b:c0d".parse().unwrap()));
        assert_eq!(mac_text(mac), "02:42:0a:0b:0c:0d");
        assert_eq!(parse_mac(&mac_text(mac)), Some(mac));
        assert_eq!(parse_mac("02:42"), None);
        let n = host_name("abc");
        assert_eq!(n, host_name("abc"));
        assert_ne!(n, host_name("abd"));
        assert!(n.starts_with("veth") && n.len() == 12 && n.len() <= 15);
    }
}
