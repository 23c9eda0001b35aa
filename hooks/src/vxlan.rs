//! The data plane of overlay networks: per host and network, a vxlan device
//! (one VNI per network, UDP 4789) enslaved to the network's bridge, so
//! containers attach by veth exactly as on a bridge network.
//!
//! Unicast only, nothing learned by flooding: the device has learning off
//! and ARP proxying on, and for every container on another host three
//! entries are programmed from the store: its MAC → that host's underlay
//! address in the device's forwarding table (where VXLAN goes), its address
//! → MAC as a permanent neighbour of the device (ARP requests for it are
//! answered on the spot, never sent across), and its MAC on the vxlan port
//! in the bridge's own table (frames for it are not flooded to local ports).
//! Broadcast therefore never leaves a host; the gateway address is the same
//! on every host's bridge and answered locally.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::AddressFamily;
use rtnetlink::LinkVxlan;

use crate::cluster::ipam::Endpoint;
use crate::netlink::{describe, Netlink, NetlinkError};
use crate::store::Network;

pub const VXLAN_PORT: u16 = 4789;

/// The vxlan device of a network's bridge (`mr-<id>` → `vx-<id>`).
pub fn device_name(bridge: &str) -> String {
    format!("vx-{}", bridge.strip_prefix("mr-").unwrap_or(bridge))
}

/// The network's vxlan device, made if missing and enslaved to the bridge;
/// its index, and whether it was made now.
pub fn ensure(
    nl: &Netlink,
    net: &Network,
    bridge_index: u32,
    local: Ipv4Addr,
) -> Result<(u32, bool), NetlinkError> {
    let name = device_name(&net.bridge);
    if let Some(link) = nl.link_by_name(&name)? {
        return Ok((link.header.index, false));
    }
    let vni = net.vni.unwrap_or_default();
    nl.add_link(
        &format!("creating vxlan device {name} (VNI {vni})"),
        LinkVxlan::new(&name, vni)
            .port(VXLAN_PORT)
            .local(local)
            .learning(false)
            .proxy(true)
            // RFC 7348: the outer UDP checksum of VXLAN over IPv4 SHOULD be
            // zero (the inner frame carries its own); it also saves a sum.
            .udp_csum(false)
            .mtu(net.mtu)
            .controller(bridge_index)
            .up()
            .build(),
    )?;
    Ok((nl.link_index(&name)?, true))
}

fn mac_bytes(mac: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = mac.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn bad_mac(ep: &Endpoint) -> NetlinkError {
    NetlinkError::Protocol {
        what: format!("container {} on {}", ep.container, ep.host),
        message: format!("MAC {:?} is not a MAC address", ep.mac),
    }
}

/// Programs a container of another host into the device (replacing what
/// was there for its address or MAC).
pub fn add_remote(nl: &Netlink, vx_index: u32, ep: &Endpoint) -> Result<(), NetlinkError> {
    let mac = mac_bytes(&ep.mac).ok_or_else(|| bad_mac(ep))?;
    let what = |e: &str| format!("{e} for {} ({} on {})", ep.ip, ep.container, ep.host);
    let neigh = nl.handle().neighbours();
    nl.run(
        neigh
            .add_bridge(vx_index, &mac)
            .flags(NeighbourFlags::Own)
            .destination(IpAddr::V4(ep.host))
            .replace()
            .execute(),
    )
    .map_err(describe(what("adding the vxlan forwarding entry")))?;
    nl.run(
        neigh
            .add_bridge(vx_index, &mac)
            .flags(NeighbourFlags::Controller)
            .state(NeighbourState::Noarp)
            .replace()
            .execute(),
    )
    .map_err(describe(what("adding the bridge forwarding entry")))?;
    nl.run(
        neigh
            .add(vx_index, IpAddr::V4(ep.ip))
            .link_layer_address(&mac)
            .replace()
            .execute(),
    )
    .map_err(describe(what("adding the neighbour entry")))?;
    Ok(())
}

fn delete(nl: &Netlink, message: NeighbourMessage, what: String) -> Result<(), NetlinkError> {
    match nl.run(nl.handle().neighbours().del(message).execute()) {
        Err(rtnetlink::Error::NetlinkError(m))
            if matches!(m.raw_code().abs(), libc::ENOENT | libc::ENODEV) =>
        {
            Ok(())
        }
        other => other.map_err(describe(what)),
    }
}

fn fdb_message(vx_index: u32, mac: &[u8; 6], flags: NeighbourFlags) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Bridge;
    m.header.ifindex = vx_index;
    m.header.flags = flags;
    m.attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    m
}

fn neigh_message(vx_index: u32, ip: Ipv4Addr) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.ifindex = vx_index;
    m.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
    m
}

/// Removes a container of another host from the device. Entries already
/// gone are fine.
pub fn remove_remote(nl: &Netlink, vx_index: u32, ep: &Endpoint) -> Result<(), NetlinkError> {
    let what = |e: &str| format!("{e} for {} ({} on {})", ep.ip, ep.container, ep.host);
    // Forwarding entries first: the neighbour entry is what `sync` finds
    // stale entries by, so it goes last, once nothing of it is left.
    if let Some(mac) = mac_bytes(&ep.mac) {
        delete(
            nl,
            fdb_message(vx_index, &mac, NeighbourFlags::Own),
            what("deleting the vxlan forwarding entry"),
        )?;
        delete(
            nl,
            fdb_message(vx_index, &mac, NeighbourFlags::Controller),
            what("deleting the bridge forwarding entry"),
        )?;
    }
    delete(
        nl,
        neigh_message(vx_index, ep.ip),
        what("deleting the neighbour entry"),
    )
}

/// Makes the device's entries exactly `remote`: each programmed, and the
/// neighbour entries of containers no longer there removed with their
/// forwarding entries (what a restarted agent, or a host back from a store
/// outage, finds stale).
pub fn sync(nl: &Netlink, vx_index: u32, remote: &[Endpoint]) -> Result<(), NetlinkError> {
    for ep in remote {
        add_remote(nl, vx_index, ep)?;
    }
    let dump: Vec<NeighbourMessage> = nl
        .run(
            nl.handle()
                .neighbours()
                .get()
                .set_address_family(AddressFamily::Inet)
                .execute()
                .try_collect(),
        )
        .map_err(describe("listing neighbour entries"))?;
    for m in dump.iter().filter(|m| m.header.ifindex == vx_index) {
        let ip = m.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(*ip),
            _ => None,
        });
        let mac = m.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::LinkLayerAddress(mac) if mac.len() == 6 => {
                Some(crate::veth::mac_text([
                    mac[0], mac[1], mac[2], mac[3], mac[4], mac[5],
                ]))
            }
            _ => None,
        });
        let (Some(ip), Some(mac)) = (ip, mac) else {
            continue;
        };
        if !remote.iter().any(|ep| ep.ip == ip && ep.mac == mac) {
            let stale = Endpoint {
                container: "(gone)".into(),
                network: String::new(),
                host: Ipv4Addr::UNSPECIFIED,
                ip,
                mac,
                names: Vec::new(),
            };
            remove_remote(nl, vx_index, &stale)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_macs() {
        assert_eq!(device_name("mr-0123456789ab"), "vx-0123456789ab");
        assert_eq!(
            mac_bytes("02:42:0a:c8:00:02"),
            Some([2, 0x42, 10, 0xc8, 0, 2])
        );
        assert_eq!(mac_bytes("02:42:0a:c8:00"), None);
        assert_eq!(mac_bytes("02:42:0a:c8:00:02:03"), None);
    }
}
