//! Flushing stale UDP conntrack entries for a newly published port.
//!
//! A UDP "connection" to host:port made before the port was published (a
//! client retrying, say) has a conntrack entry without the DNAT, and keeps
//! being answered by the host until it times out. Deleting the entries whose
//! original destination is the published port makes the next packet go
//! through the new DNAT, as CNI's portmap does. ctnetlink, through
//! netlink-packet-netfilter: dump, then delete each match by its tuple.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_netfilter::conntrack::{
    ConntrackAttribute, ConntrackMessage, IPTuple, ProtoTuple, Protocol, Tuple,
};
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterProtoFamily};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

#[derive(Debug, thiserror::Error)]
pub enum ConntrackError {
    #[error("conntrack: {what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
    #[error("conntrack: undecodable answer: {0}")]
    Decode(String),
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> ConntrackError {
    move |source| ConntrackError::Io { what, source }
}

/// A UDP destination: a range of ports (first, last) on one host address
/// (an unspecified one: any of its family), or on any of either family.
#[derive(Debug, Clone, Copy)]
pub struct UdpDestination {
    pub ip: Option<IpAddr>,
    pub ports: (u16, u16),
}

/// Deletes the UDP entries whose original destination is one of `dests`,
/// in each family a destination can be in. Returns how many were deleted.
pub fn flush_udp(dests: &[UdpDestination]) -> Result<usize, ConntrackError> {
    let mut deleted = 0;
    if dests.iter().any(|d| d.ip.is_none_or(|ip| ip.is_ipv4())) {
        deleted += flush_family(NetfilterProtoFamily::IPv4, dests)?;
    }
    if dests.iter().any(|d| d.ip.is_none_or(|ip| ip.is_ipv6())) {
        deleted += flush_family(NetfilterProtoFamily::IPv6, dests)?;
    }
    Ok(deleted)
}

fn flush_family(
    family: NetfilterProtoFamily,
    dests: &[UdpDestination],
) -> Result<usize, ConntrackError> {
    let mut socket = Socket::new(NETLINK_NETFILTER).map_err(io_err("opening a socket"))?;
    socket.bind_auto().map_err(io_err("binding"))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(io_err("connecting"))?;

    let mut stale = Vec::new();
    send(
        &socket,
        family,
        NLM_F_REQUEST | NLM_F_DUMP,
        ConntrackMessage::Get(vec![]),
    )?;
    receive(&socket, |message| {
        if let ConntrackMessage::New(attrs) | ConntrackMessage::Get(attrs) = message {
            if let Some(tuple) = orig_tuple(&attrs) {
                if matches_any(&tuple, dests) {
                    stale.push(tuple);
                }
            }
        }
    })?;
    let mut deleted = 0;
    for tuple in stale {
        send(
            &socket,
            family,
            NLM_F_REQUEST | NLM_F_ACK,
            ConntrackMessage::Delete(vec![ConntrackAttribute::CtaTupleOrig(tuple)]),
        )?;
        // An entry that expired meanwhile answers ENOENT: it is gone either way.
        match receive(&socket, |_| {}) {
            Ok(()) => deleted += 1,
            Err(ConntrackError::Io { source, .. })
                if source.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

fn orig_tuple(attrs: &[ConntrackAttribute]) -> Option<Vec<Tuple>> {
    attrs.iter().find_map(|a| match a {
        ConntrackAttribute::CtaTupleOrig(t) => Some(t.clone()),
        _ => None,
    })
}

fn matches_any(tuple: &[Tuple], dests: &[UdpDestination]) -> bool {
    let mut dst_ip = None;
    let mut dst_port = None;
    let mut udp = false;
    for t in tuple {
        match t {
            Tuple::Ip(ips) => {
                for ip in ips {
                    if let IPTuple::DestinationAddress(a) = ip {
                        dst_ip = Some(*a);
                    }
                }
            }
            Tuple::Proto(protos) => {
                for p in protos {
                    match p {
                        ProtoTuple::Protocol(Protocol::Udp) => udp = true,
                        ProtoTuple::DestinationPort(port) => dst_port = Some(*port),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    udp && dests.iter().any(|d| {
        dst_port.is_some_and(|p| (d.ports.0..=d.ports.1).contains(&p))
            && d.ip.is_none_or(|ip| {
                dst_ip.is_some_and(|dst| crate::ports::addresses_meet(Some(ip), Some(dst)))
            })
    })
}

fn send(
    socket: &Socket,
    family: NetfilterProtoFamily,
    flags: u16,
    message: ConntrackMessage,
) -> Result<(), ConntrackError> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    let mut packet = NetlinkMessage::new(
        header,
        NetlinkPayload::from(NetfilterMessage::new(
            NetfilterHeader::new(family, 0, 0),
            message,
        )),
    );
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket.send(&buf, 0).map_err(io_err("sending"))?;
    Ok(())
}

/// Reads answers until the dump's end or the request's ACK; a netlink error
/// becomes an io error with its errno.
fn receive(socket: &Socket, mut each: impl FnMut(ConntrackMessage)) -> Result<(), ConntrackError> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let size = socket
            .recv(&mut &mut buf[..], 0)
            .map_err(io_err("receiving"))?;
        let mut offset = 0;
        while offset < size {
            let packet = <NetlinkMessage<NetfilterMessage>>::deserialize(&buf[offset..size])
                .map_err(|e| ConntrackError::Decode(e.to_string()))?;
            let len = packet.header.length as usize;
            match packet.payload {
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(e) if e.code.is_none() => return Ok(()),
                NetlinkPayload::Error(e) => {
                    return Err(ConntrackError::Io {
                        what: "request",
                        source: e.to_io(),
                    })
                }
                NetlinkPayload::InnerMessage(m) => {
                    if let netlink_packet_netfilter::NetfilterMessageInner::Conntrack(c) = m.inner {
                        each(c);
                    }
                }
                _ => {}
            }
            if len == 0 {
                break;
            }
            offset += len;
        }
    }
}
