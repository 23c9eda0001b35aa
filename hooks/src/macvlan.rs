//! The macvlan driver: containers directly on the parent interface's L2
//! segment, each with its own MAC (macvlan in bridge mode, so containers on
//! one parent also reach each other), no bridge, no NAT, no published ports.
//!
//! attach, in order, finished steps undone in reverse on failure: lease an
//! address (the lease is held while the container's init lives: there is no
//! host-side interface whose existence could say so) → the macvlan, born in
//! the container's namespace as `eth0` → its address, `lo` and the default
//! route to the network's gateway (a router on the segment) → the /etc
//! files → the record. detach: the lease, the files, the record (the macvlan
//! goes with the container's namespace).
//!
//! As with every macvlan, the host itself cannot reach the containers
//! through the parent; other machines (or namespaces) on the segment can.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;

use netlink_packet_route::link::MacVlanMode;
use rtnetlink::LinkMacVlan;

use crate::bridge::{
    configure_ipv6_inside, lease6, BridgeError, RouterAdverts, CONTAINER_INTERFACE,
};
use crate::driver::{Container, NetworkDriver};
use crate::etc_files;
use crate::ipam::{Family, Lease};
use crate::netlink::Netlink;
use crate::store::{start_time, Attachment, Network, Process, Store};
use crate::veth;

pub struct MacvlanDriver {
    pub store: Store,
    pub network: Network,
    pub ip: Option<Ipv4Addr>,
    pub ip6: Option<Ipv6Addr>,
    pub aliases: Vec<String>,
}

enum Done {
    Lease(Lease),
    Record(Box<Attachment>),
    /// The macvlan, in the container's namespace.
    Link,
    Files(PathBuf),
}

/// The lease's holder: the init's pid and start time, alive while the
/// container is.
fn holder(pid: i32) -> String {
    format!("pid:{pid}:{}", start_time(pid).unwrap_or(0))
}

pub fn holder_lives(holder: &str) -> bool {
    let mut parts = holder.split(':');
    let (Some("pid"), Some(pid), Some(time)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    match (pid.parse::<i32>(), time.parse::<u64>()) {
        (Ok(pid), Ok(time)) => start_time(pid) == Some(time),
        _ => false,
    }
}

impl MacvlanDriver {
    fn attach_steps(&self, c: &Container, done: &mut Vec<Done>) -> Result<Attachment, BridgeError> {
        let net = &self.network;
        crate::bridge::check_families(net, self.ip, self.ip6, &[])?;
        let parent = net.parent.clone().unwrap_or_default();
        let nl = Netlink::open()?;
        let parent_index = nl.link_index(&parent)?;
        let leases = self.store.leases(&net.name);
        let tag = holder(c.pid);
        let live = |l: &Lease| holder_lives(&l.host_interface);
        let lease = match (self.network.pool(&leases), self.ip) {
            (Some(pool), Some(ip)) => Some(pool.allocate_static(ip, &c.id, &tag, live)?),
            (Some(pool), None) => Some(pool.allocate(&c.id, &tag, live)?),
            (None, _) => None,
        };
        done.extend(lease.iter().cloned().map(Done::Lease));
        let lease6 = match self.network.pool6(&leases) {
            Some(pool6) => Some(lease6(
                &pool6,
                self.ip6,
                (&c.id, &tag),
                live,
                lease.is_none(),
            )?),
            None => None,
        };
        done.extend(lease6.iter().cloned().map(Done::Lease));
        let ip = lease.and_then(|l| Ipv4Addr::from_ip(l.ip));
        let ip6 = lease6.and_then(|l| Ipv6Addr::from_ip(l.ip));
        let mac = veth::mac_of(ip, ip6);
        let names: Vec<String> = std::iter::once(c.id.clone())
            .chain(self.aliases.iter().cloned())
            .collect();
        // Before anything else exists: a killed attach leaves a record
        // detach and gc undo it from.
        let mut record = Attachment {
            container: c.id.clone(),
            mode: "macvlan".into(),
            network: net.name.clone(),
            bridge: parent.clone(),
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
            mac_address: veth::mac_text(mac),
            host_interface: tag,
            interface: CONTAINER_INTERFACE.into(),
            mtu: net.mtu,
            ports: Vec::new(),
            internal: net.internal,
            no_icc: false,
            anti_spoofing: false,
            isolated_port: false,
            isolated_in_segment: false,
            segment: 0,
            names,
            connected: false,
            attaching: Some(Process::this_one()?),
            vni: None,
            cni_ifname: None,
            cni_network: None,
        };
        self.store.save_attachment(&record)?;
        done.push(Done::Record(Box::new(record.clone())));

        let link = LinkMacVlan::new(CONTAINER_INTERFACE, parent_index, MacVlanMode::Bridge)
            .address(mac.to_vec())
            .mtu(net.mtu)
            .setns_by_fd(c.netns.as_fd().as_raw_fd())
            .build();
        nl.add_link(
            &format!("creating macvlan {CONTAINER_INTERFACE} on {parent}"),
            link,
        )?;
        // From here the link lives in the container's namespace and dies
        // with it; undoing the attach deletes it there.
        done.push(Done::Link);
        let inside = Netlink::open_in(c.netns.as_fd())?;
        let configured = (|| {
            let index = inside.link_index(CONTAINER_INTERFACE)?;
            if let (Some(ip), Some(subnet)) = (ip, net.subnet) {
                inside.add_address(CONTAINER_INTERFACE, index, ip.into(), subnet.prefix())?;
            }
            if let (Some(ip6), Some(subnet6)) = (ip6, net.subnet6) {
                let interface = (CONTAINER_INTERFACE, index);
                configure_ipv6_inside(
                    &inside,
                    c,
                    interface,
                    mac,
                    (ip6, subnet6.prefix()),
                    RouterAdverts::Refused,
                )?;
            }
            inside.set_up(CONTAINER_INTERFACE, index)?;
            let lo = inside.link_index("lo")?;
            inside.set_up("lo", lo)?;
            if !net.internal {
                if let (Some(_), Some(gateway)) = (ip, net.gateway) {
                    inside.add_default_route(gateway, index)?;
                }
                if let (Some(_), Some(gateway6)) = (ip6, net.gateway6) {
                    inside.add_default_route6(gateway6, index)?;
                }
            }
            Ok::<(), BridgeError>(())
        })();
        configured?;
        drop(inside);

        let files = self.store.container_files(&c.id);
        done.push(Done::Files(files.clone()));
        let peers: Vec<etc_files::Peer> = crate::networks::attached(&self.store, &net.name)?
            .iter()
            .map(etc_files::Peer::from)
            .collect();
        etc_files::write_for(&files, (ip, ip6), &c.hostname, &c.id, &peers)?;
        // Its file is its own, rewritten as the network changes (a macvlan
        // network has no shared hosts file: no bridge wall to scale past).
        etc_files::mark_private(&self.store, &net.name, &c.id)?;
        etc_files::mount_into(&files, c.pid, &c.rootfs)?;

        record.attaching = None;
        self.store.save_attachment(&record)?;
        if let Err(e) = etc_files::refresh_hosts(&self.store, &net.name, None) {
            eprintln!("minirun-net: {}: updating /etc/hosts files: {e}", c.id);
        }
        Ok(record)
    }
}

impl NetworkDriver for MacvlanDriver {
    type Error = BridgeError;

    fn attach(&self, c: &Container) -> Result<Attachment, BridgeError> {
        let _lock = self.store.lock_network(&self.network.name)?;
        // `network rm` takes this lock too: the network is still there now.
        if Network::load(&self.store, &self.network.name)?.is_none() {
            return Err(BridgeError::NoNetwork(
                self.network.name.clone(),
                self.store.network_config(&self.network.name),
            ));
        }
        let mut done = Vec::new();
        let result = self.attach_steps(c, &mut done);
        if result.is_err() {
            let leases = self.store.leases(&self.network.name);
            let mut failed = false;
            for step in done.into_iter().rev() {
                let undone = match step {
                    Done::Files(dir) => std::fs::remove_dir_all(&dir).map_err(|e| e.to_string()),
                    // What could not be undone stays named, for detach or gc.
                    Done::Record(_) if failed => Ok(()),
                    Done::Record(r) => self.store.remove_attachment(&r).map_err(|e| e.to_string()),
                    Done::Link => Netlink::open_in(c.netns.as_fd())
                        .and_then(|inside| inside.delete_link(CONTAINER_INTERFACE))
                        .map_err(|e| e.to_string()),
                    Done::Lease(l) => self
                        .network
                        .release(&leases, l.ip, &c.id)
                        .map_err(|e| e.to_string()),
                };
                if let Err(e) = undone {
                    failed = true;
                    eprintln!("minirun-net: while undoing attach of {}: {e}", c.id);
                }
            }
        }
        result
    }

    fn detach(&self, r: &Attachment) -> Vec<BridgeError> {
        let mut errors = Vec::new();
        let leases = self.store.leases(&r.network);
        for ip in crate::bridge::addresses_of(r) {
            errors.extend(
                self.network
                    .release(&leases, ip, &r.container)
                    .err()
                    .map(Into::into),
            );
        }
        let files = self.store.container_files(&r.container);
        if let Err(e) = std::fs::remove_dir_all(&files) {
            if e.kind() != std::io::ErrorKind::NotFound {
                errors.push(
                    crate::store::StoreError::Io {
                        path: files,
                        source: e,
                    }
                    .into(),
                );
            }
        }
        errors.extend(
            etc_files::leave(&self.store, &r.network, &r.container)
                .err()
                .map(Into::into),
        );
        if errors.is_empty() {
            errors.extend(self.store.remove_attachment(r).err().map(Into::into));
            errors.extend(
                etc_files::refresh_hosts(&self.store, &r.network, None)
                    .err()
                    .map(Into::into),
            );
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_held_while_its_process_lives() {
        let me = holder(std::process::id() as i32);
        assert!(holder_lives(&me), "{me}");
        assert!(!holder_lives("pid:999999999:1"));
        assert!(!holder_lives("veth1234"));
    }
}
