//! Links, addresses and routes through rtnetlink, behind a small blocking
//! facade: the hook is a short sequential program, so one current-thread tokio
//! runtime drives every request and no thread is ever started.
//!
//! A netlink socket belongs to the network namespace it was opened in;
//! [`Netlink::open_in`] opens one inside a container's namespace by entering it
//! for the moment of the `socket()` call only.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, BorrowedFd};

use futures::TryStreamExt;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use nix::sched::{setns, CloneFlags};
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("{what}: {source}")]
    Request { what: String, source: io::Error },
    #[error("{what}: {message}")]
    Protocol { what: String, message: String },
    #[error("interface {0} does not exist")]
    NoSuchLink(String),
    #[error("opening a netlink socket: {0}")]
    Socket(io::Error),
    #[error("entering the network namespace: {0}")]
    Setns(nix::Error),
}

impl NetlinkError {
    /// The errno the kernel answered with, if it answered with one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Request { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Wraps an rtnetlink error with what was being done.
pub fn describe(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetlinkError {
    move |e| match e {
        rtnetlink::Error::NetlinkError(m) => NetlinkError::Request {
            what: what.into(),
            source: m.to_io(),
        },
        other => NetlinkError::Protocol {
            what: what.into(),
            message: other.to_string(),
        },
    }
}

/// A route as the host's checks need it: destination (if any), prefix,
/// output interface.
type Route = (Option<RouteAddress>, u8, Option<u32>);

pub struct Netlink {
    runtime: tokio::runtime::Runtime,
    handle: Handle,
}

impl Netlink {
    /// A socket in the caller's own network namespace.
    pub fn open() -> Result<Self, NetlinkError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(NetlinkError::Socket)?;
        Self::with_runtime(runtime)
    }

    fn with_runtime(runtime: tokio::runtime::Runtime) -> Result<Self, NetlinkError> {
        let (connection, handle, _) = {
            // The socket is registered with the runtime's reactor when created.
            let _guard = runtime.enter();
            rtnetlink::new_connection().map_err(NetlinkError::Socket)?
        };
        runtime.spawn(connection);
        Ok(Netlink { runtime, handle })
    }

    /// A socket inside the namespace `netns` (an open /proc/<pid>/ns/net).
    /// The calling thread returns to its own namespace before this returns.
    pub fn open_in(netns: BorrowedFd) -> Result<Self, NetlinkError> {
        in_namespace(netns, Self::open)?
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs one request to completion.
    pub fn run<T>(&self, request: impl Future<Output = T>) -> T {
        self.runtime.block_on(request)
    }

    /// The link called `name`, if there is one.
    pub fn link_by_name(&self, name: &str) -> Result<Option<LinkMessage>, NetlinkError> {
        let result = self.run(
            self.handle
                .link()
                .get()
                .match_name(name.to_string())
                .execute()
                .try_next(),
        );
        match result {
            Ok(link) => Ok(link),
            Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code().abs() == libc::ENODEV => {
                Ok(None)
            }
            Err(e) => Err(describe(format!("looking up interface {name}"))(e)),
        }
    }

    /// Whether a link exists; when the kernel cannot be asked, it is taken to
    /// exist (a lease or claim is never taken over on a doubt).
    pub fn link_exists(&self, name: &str) -> bool {
        self.link_by_name(name).map_or(true, |l| l.is_some())
    }

    pub fn link_index(&self, name: &str) -> Result<u32, NetlinkError> {
        self.link_by_name(name)?
            .map(|l| l.header.index)
            .ok_or_else(|| NetlinkError::NoSuchLink(name.to_string()))
    }

    pub fn add_link(&self, what: &str, message: LinkMessage) -> Result<(), NetlinkError> {
        self.run(self.handle.link().add(message).execute())
            .map_err(describe(what))
    }

    pub fn set_mac(&self, name: &str, index: u32, mac: [u8; 6]) -> Result<(), NetlinkError> {
        let msg = LinkUnspec::new_with_index(index)
            .address(mac.to_vec())
            .build();
        self.run(self.handle.link().set(msg).execute())
            .map_err(describe(format!("setting the MAC of {name}")))
    }

    /// No IPv6 link-local address on a link, ever (`addr_gen_mode` none,
    /// through netlink: a sysctl written in a container's namespace costs
    /// every later /proc/sys/net lookup of the host, see
    /// `bridge::RouterAdverts`). Without an address the link sends no
    /// duplicate detection, no multicast report, no router solicitation.
    /// Set before it has carrier.
    pub fn no_link_local(&self, name: &str, index: u32) -> Result<(), NetlinkError> {
        let msg = LinkUnspec::new_with_index(index)
            .append_extra_attribute(no_link_local())
            .build();
        self.run(self.handle.link().set(msg).execute())
            .map_err(describe(format!("turning off IPv6 addresses on {name}")))
    }

    /// Sets bridge-port options of link `index`, already a bridge's port
    /// (they cannot ride on the request that enslaves it).
    pub fn set_bridge_port(
        &self,
        name: &str,
        index: u32,
        options: Vec<netlink_packet_route::link::InfoBridgePort>,
    ) -> Result<(), NetlinkError> {
        use netlink_packet_route::link::{InfoPortData, InfoPortKind};
        let msg = LinkUnspec::new_with_index(index)
            .set_port_kind(InfoPortKind::Bridge)
            .set_port_data(InfoPortData::BridgePort(options))
            .build();
        self.run(self.handle.link().set_port(msg).execute())
            .map_err(describe(format!(
                "setting the bridge port options of {name}"
            )))
    }

    pub fn set_up(&self, name: &str, index: u32) -> Result<(), NetlinkError> {
        let msg = LinkUnspec::new_with_index(index).up().build();
        self.run(self.handle.link().set(msg).execute())
            .map_err(describe(format!("setting {name} up")))
    }

    /// Deletes a link; one that does not exist is already deleted.
    pub fn delete_link(&self, name: &str) -> Result<(), NetlinkError> {
        let Some(link) = self.link_by_name(name)? else {
            return Ok(());
        };
        match self.run(self.handle.link().del(link.header.index).execute()) {
            Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code().abs() == libc::ENODEV => Ok(()),
            other => other.map_err(describe(format!("deleting interface {name}"))),
        }
    }

    /// Deletes interface `name` (and a veth's peer) without waiting for the
    /// kernel to free it. Deleting a device returns only after an RCU
    /// barrier (tens of milliseconds, most of a detach), though the device
    /// is gone from the host's view, its name free again, long before:
    /// the request goes from a short-lived process of its own, which
    /// outlives the caller by that barrier, and this returns once the
    /// device has left the host's view (or, should that take more than a
    /// second, once it is deleted the waiting way).
    pub fn delete_link_unwaited(&self, name: &str) -> Result<(), NetlinkError> {
        let Some(link) = self.link_by_name(name)? else {
            return Ok(());
        };
        if let Err(e) = send_unwaited_dellink(link.header.index) {
            eprintln!("minirun-net: deleting interface {name} in the background: {e}");
            return self.delete_link(name);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while std::time::Instant::now() < deadline {
            match self.link_by_name(name)? {
                Some(l) if l.header.index == link.header.index => {
                    std::thread::sleep(std::time::Duration::from_micros(200))
                }
                _ => return Ok(()),
            }
        }
        self.delete_link(name)
    }

    /// Adds an address; one already there is fine. An IPv6 address skips
    /// duplicate address detection (`nodad`): IPAM made it unique under the
    /// network's lock, and DAD would hold it tentative, unusable as a
    /// source, for a second or more after the container starts.
    pub fn add_address(
        &self,
        name: &str,
        index: u32,
        ip: IpAddr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
        let mut request = self.handle.address().add(index, ip, prefix);
        if ip.is_ipv6() {
            let message = request.message_mut();
            message.header.flags = AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match self.run(request.execute()) {
            Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code().abs() == libc::EEXIST => Ok(()),
            other => other.map_err(describe(format!("adding address {ip}/{prefix} to {name}"))),
        }
    }

    /// The addresses (address, prefix) of the link `index`.
    pub fn addresses(&self, index: u32) -> Result<Vec<(IpAddr, u8)>, NetlinkError> {
        use netlink_packet_route::address::{AddressAttribute, AddressMessage};
        let dump: Vec<AddressMessage> = self
            .run(
                self.handle
                    .address()
                    .get()
                    .set_link_index_filter(index)
                    .execute()
                    .try_collect(),
            )
            .map_err(describe("listing addresses"))?;
        Ok(dump
            .iter()
            .filter_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => Some((*ip, m.header.prefix_len)),
                    _ => None,
                })
            })
            .collect())
    }

    /// A permanent neighbour entry: `ip` is at `mac` on link `index`
    /// (replacing what the host had learnt).
    pub fn add_neighbour(&self, index: u32, ip: IpAddr, mac: [u8; 6]) -> Result<(), NetlinkError> {
        self.run(
            self.handle
                .neighbours()
                .add(index, ip)
                .link_layer_address(&mac)
                .replace()
                .execute(),
        )
        .map_err(describe(format!("adding the neighbour entry for {ip}")))
    }

    /// Removes the neighbour entry of `ip` on link `index`; one that is
    /// gone (or whose link is) is fine.
    pub fn delete_neighbour(&self, index: u32, ip: IpAddr) -> Result<(), NetlinkError> {
        use netlink_packet_route::neighbour::{
            NeighbourAddress, NeighbourAttribute, NeighbourMessage,
        };
        use netlink_packet_route::AddressFamily;
        let mut m = NeighbourMessage::default();
        m.header.family = if ip.is_ipv6() {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        m.header.ifindex = index;
        m.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::from(ip)));
        match self.run(self.handle.neighbours().del(m).execute()) {
            Err(rtnetlink::Error::NetlinkError(e))
                if matches!(e.raw_code().abs(), libc::ENOENT | libc::ENODEV) =>
            {
                Ok(())
            }
            other => other.map_err(describe(format!("deleting the neighbour entry for {ip}"))),
        }
    }

    /// A static entry of the bridge's forwarding table: `mac` is behind
    /// port `index` (replacing a learnt one).
    pub fn add_fdb(&self, index: u32, mac: [u8; 6]) -> Result<(), NetlinkError> {
        use netlink_packet_route::neighbour::{NeighbourFlags, NeighbourState};
        self.run(
            self.handle
                .neighbours()
                .add_bridge(index, &mac)
                .flags(NeighbourFlags::Controller)
                .state(NeighbourState::Noarp)
                .replace()
                .execute(),
        )
        .map_err(describe(format!(
            "adding {} to the bridge's forwarding table",
            crate::veth::mac_text(mac)
        )))
    }

    /// Removes `mac`'s entry behind port `index`; one that is gone (or
    /// whose port is) is fine.
    pub fn delete_fdb(&self, index: u32, mac: [u8; 6]) -> Result<(), NetlinkError> {
        use netlink_packet_route::neighbour::{
            NeighbourAttribute, NeighbourFlags, NeighbourMessage,
        };
        use netlink_packet_route::AddressFamily;
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Bridge;
        m.header.ifindex = index;
        m.header.flags = NeighbourFlags::Controller;
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        match self.run(self.handle.neighbours().del(m).execute()) {
            Err(rtnetlink::Error::NetlinkError(e))
                if matches!(e.raw_code().abs(), libc::ENOENT | libc::ENODEV) =>
            {
                Ok(())
            }
            other => other.map_err(describe(format!(
                "removing {} from the bridge's forwarding table",
                crate::veth::mac_text(mac)
            ))),
        }
    }

    pub fn add_default_route6(&self, gateway: Ipv6Addr, index: u32) -> Result<(), NetlinkError> {
        let route = RouteMessageBuilder::<Ipv6Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build();
        self.run(self.handle.route().add(route).execute())
            .map_err(describe(format!(
                "adding the IPv6 default route via {gateway}"
            )))
    }

    /// The IPv6 routes of the main table that are not the kernel's own
    /// (link-local, multicast): (destination, prefix, output interface).
    pub fn ipv6_routes(&self) -> Result<Vec<(Ipv6Addr, u8, Option<u32>)>, NetlinkError> {
        let dump = RouteMessageBuilder::<Ipv6Addr>::new().build();
        let routes = self.main_routes(dump, "listing the host's IPv6 routes")?;
        Ok(routes
            .into_iter()
            .filter_map(|(dest, prefix, oif)| {
                let dest = match dest {
                    Some(RouteAddress::Inet6(ip)) => ip,
                    _ => Ipv6Addr::UNSPECIFIED,
                };
                let own = dest.segments()[0] & 0xffc0 == 0xfe80 || dest.segments()[0] >> 8 == 0xff;
                (!own).then_some((dest, prefix, oif))
            })
            .collect())
    }

    /// A dump's routes of the main table: (destination, prefix, output
    /// interface).
    fn main_routes(&self, dump: RouteMessage, what: &str) -> Result<Vec<Route>, NetlinkError> {
        let routes: Vec<RouteMessage> = self
            .run(self.handle.route().get(dump).execute().try_collect())
            .map_err(describe(what))?;
        Ok(routes
            .iter()
            .filter(|r| r.header.table == libc::RT_TABLE_MAIN)
            .map(|r| {
                let dest = r.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Destination(d) => Some(d.clone()),
                    _ => None,
                });
                let oif = r.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Oif(i) => Some(*i),
                    _ => None,
                });
                (dest, r.header.destination_prefix_length, oif)
            })
            .collect())
    }

    pub fn add_default_route(&self, gateway: Ipv4Addr, index: u32) -> Result<(), NetlinkError> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build();
        self.run(self.handle.route().add(route).execute())
            .map_err(describe(format!("adding the default route via {gateway}")))
    }

    /// The IPv4 routes of the main table: (destination, prefix, output interface).
    pub fn ipv4_routes(&self) -> Result<Vec<(Ipv4Addr, u8, Option<u32>)>, NetlinkError> {
        let dump = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let routes = self.main_routes(dump, "listing the host's routes")?;
        Ok(routes
            .into_iter()
            .map(|(dest, prefix, oif)| {
                let dest = match dest {
                    Some(RouteAddress::Inet(ip)) => ip,
                    _ => Ipv4Addr::UNSPECIFIED,
                };
                (dest, prefix, oif)
            })
            .collect())
    }
}

/// Runs `f` with the calling thread inside the network namespace `netns`
/// (for a socket opened there, or a sysctl of that namespace: /proc/sys/net
/// is the namespace of the thread that opens it), then returns to its own.
pub fn in_namespace<T>(netns: BorrowedFd, f: impl FnOnce() -> T) -> Result<T, NetlinkError> {
    let own = std::fs::File::open("/proc/thread-self/ns/net").map_err(NetlinkError::Socket)?;
    setns(netns, CloneFlags::CLONE_NEWNET).map_err(NetlinkError::Setns)?;
    let result = f();
    // Not being able to go back would leave every later step in the wrong
    // namespace: nothing sensible can follow.
    setns(own.as_fd(), CloneFlags::CLONE_NEWNET)
        .expect("returning to the hook's own network namespace");
    Ok(result)
}

/// IPv6 off on a link of the host's that only bridges or links bridges (a
/// container's host veth end, a segment's bridge and link ends): it needs no
/// address, and links with IPv6 on cost the kernel work on every link event
/// that grows with their number (see `veth::create`). The write's own walk
/// of the IPv6 table stays short while no such link has IPv6. A sysctl, as
/// netlink cannot set it; a kernel without IPv6 has no such file and
/// nothing to turn off.
pub fn no_ipv6(link: &str) -> Result<(), NetlinkError> {
    let path = format!("/proc/sys/net/ipv6/conf/{link}/disable_ipv6");
    match std::fs::write(&path, "1") {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other.map_err(|source| NetlinkError::Request {
            what: format!("turning off IPv6 on {link} ({path})"),
            source,
        }),
    }
}

/// The attribute that keeps the kernel from giving a link an IPv6
/// link-local address.
pub fn no_link_local() -> netlink_packet_route::link::LinkAttribute {
    use netlink_packet_route::link::{AfSpecInet6, AfSpecUnspec, In6AddrGenMode, LinkAttribute};
    LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(
        In6AddrGenMode::None,
    )])])
}

/// The MAC address of a link message.
pub fn link_mac(link: &LinkMessage) -> Option<[u8; 6]> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(mac) => mac.as_slice().try_into().ok(),
        _ => None,
    })
}

/// The interface name of a link message.
pub fn link_name(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

/// Sends RTM_DELLINK for `index` from a grandchild process, which is
/// orphaned at once (the caller reaps only the child, which exits
/// straight away). It keeps the caller's netlink sockets and nothing else: no
/// lock, pipe or runtime's stdout stays open while the kernel finishes,
/// and the caller's netlink sockets are released by the grandchild, last:
/// releasing an nftables socket that changed the ruleset waits for an
/// RCU grace period too, which the caller then does not.
fn send_unwaited_dellink(index: u32) -> io::Result<()> {
    // The hook's descriptors are all low; above this, all are closed.
    const KEEP_SCAN_FDS: libc::c_int = 256;
    use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NLM_F_REQUEST};
    use netlink_packet_route::RouteNetlinkMessage;
    let mut link = LinkMessage::default();
    link.header.index = index;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    let mut message = NetlinkMessage::new(header, RouteNetlinkMessage::DelLink(link).into());
    message.finalize();
    let mut bytes = vec![0u8; message.buffer_len()];
    message.serialize(&mut bytes);
    // SAFETY: plain system calls on a socket made here.
    let sock = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if sock < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: between fork and _exit the children make only
    // async-signal-safe system calls on memory prepared before the fork.
    let child = unsafe { libc::fork() };
    match child {
        -1 => {
            let e = io::Error::last_os_error();
            unsafe { libc::close(sock) };
            Err(e)
        }
        0 => unsafe {
            if libc::fork() == 0 {
                libc::setsid();
                for fd in 0..KEEP_SCAN_FDS {
                    let mut domain: libc::c_int = 0;
                    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
                    let netlink = libc::getsockopt(
                        fd,
                        libc::SOL_SOCKET,
                        libc::SO_DOMAIN,
                        (&mut domain as *mut libc::c_int).cast(),
                        &mut len,
                    ) == 0
                        && domain == libc::AF_NETLINK;
                    if !netlink {
                        libc::close(fd);
                    }
                }
                libc::syscall(
                    libc::SYS_close_range,
                    KEEP_SCAN_FDS as libc::c_uint,
                    libc::c_uint::MAX,
                    0,
                );
                libc::send(sock, bytes.as_ptr().cast(), bytes.len(), 0);
            }
            libc::_exit(0)
        },
        pid => {
            unsafe { libc::close(sock) };
            let mut status = 0;
            // SAFETY: waits for the child forked above.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            Ok(())
        }
    }
}
