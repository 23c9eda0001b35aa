//! Address management: the subnets of a network and their leases, IPv4
//! and IPv6 alike.
//!
//! A lease is a file named after the address in the network's lease directory
//! (tmpfs, so reboots reset it). It is written whole under a temporary name and
//! linked into place, so it is never seen half written and two allocators can
//! never both take an address; the network's lock (held by the caller) keeps the
//! round-robin cursor (one per family) consistent. A lease records its owner
//! and the host end of its veth: when that interface no longer exists the
//! lease's container is gone and the address is reclaimed.
//!
//! Allocation walks from the cursor to the first free address, so it costs
//! the leases it meets, never the size of the subnet: a /64 is as cheap as
//! a /24.

mod cidr;

pub use cidr::{is_ipv6_text, Cidr, Family, Subnet, Subnet6};

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("subnet {text:?} is not an {family} CIDR such as {example}")]
    BadCidr {
        text: String,
        family: &'static str,
        example: &'static str,
    },
    #[error("subnet {subnet}: a prefix longer than /{longest} leaves no address for containers")]
    TooSmall { subnet: String, longest: u8 },
    #[error("subnet {subnet}: no free address left ({used} leased)")]
    Exhausted { subnet: String, used: u128 },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{flag} {ip}: not an address for a container in subnet {subnet} (gateway {gateway})")]
    NotAssignable {
        flag: &'static str,
        ip: IpAddr,
        subnet: String,
        gateway: IpAddr,
    },
    #[error("{flag} {ip}: the address is taken by {by}")]
    Taken {
        flag: &'static str,
        ip: IpAddr,
        by: String,
    },
    #[error("lease {}: {source}", path.display())]
    BadLease {
        path: PathBuf,
        source: serde_json::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> IpamError + '_ {
    move |source| IpamError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Who holds an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub ip: IpAddr,
    pub container: String,
    /// The host end of the container's veth: the lease lives as long as it does.
    pub host_interface: String,
}

/// The leases of one subnet of a network, in `dir` (a network's two
/// families share it: a lease is named by its address). The caller holds
/// the network's lock.
pub struct Pool<'a, A: Family> {
    pub dir: &'a Path,
    pub subnet: Cidr<A>,
    pub gateway: A,
    /// Addresses are handed out from this part of the subnet only.
    pub range: Option<Cidr<A>>,
}

impl<A: Family> Pool<'_, A> {
    fn lease_path(&self, ip: A) -> PathBuf {
        self.dir.join(ip.to_string())
    }

    fn cursor_path(&self) -> PathBuf {
        self.dir.join(A::CURSOR)
    }

    fn lease(&self, ip: A, container: &str, host_interface: &str) -> Lease {
        Lease {
            ip: ip.into(),
            container: container.to_string(),
            host_interface: host_interface.to_string(),
        }
    }

    /// Leases the next free address after the last one handed out (Docker's
    /// round robin: an address just released is not reused at once). A lease
    /// whose interface `is_live` says is gone is taken over, the container's
    /// own too (left by an attach of an earlier container of that id): under
    /// the network's lock no attach is between its lease and its interface.
    /// The walk stops at the first free address: it meets at most the
    /// leases there are, whatever the size of the subnet.
    pub fn allocate(
        &self,
        container: &str,
        host_interface: &str,
        is_live: impl Fn(&Lease) -> bool,
    ) -> Result<Lease, IpamError> {
        fs::create_dir_all(self.dir).map_err(io_err(self.dir))?;
        let from = self.range.unwrap_or(self.subnet);
        let first = from.addr().to_bits().max(self.subnet.addr().to_bits() + 1);
        let top = if A::HAS_BROADCAST {
            self.subnet.last().to_bits() - 1
        } else {
            self.subnet.last().to_bits()
        };
        let last = from.last().to_bits().min(top);
        let size = last - first + 1;
        let cursor = fs::read_to_string(self.cursor_path())
            .ok()
            .and_then(|s| s.trim().parse::<A>().ok())
            .map(A::to_bits)
            .filter(|ip| (first..=last).contains(ip))
            .unwrap_or(last);
        let offset = cursor - first;
        let mut used = 0;
        let mut step = 1;
        while step <= size {
            // (offset + step) mod size, without overflowing a /0.
            let index = if step > size - offset - 1 {
                step - (size - offset)
            } else {
                offset + step
            };
            step += 1;
            let ip = A::from_bits(first + index);
            if !self.subnet.is_assignable(ip, self.gateway) {
                continue;
            }
            let lease = self.lease(ip, container, host_interface);
            let mut taken = self.take(&lease)?;
            if !taken {
                match self.read(ip)? {
                    Some(held) if !is_live(&held) => {
                        self.remove(ip)?;
                        taken = self.take(&lease)?;
                    }
                    _ => {}
                }
            }
            if taken {
                let cursor = self.cursor_path();
                fs::write(&cursor, ip.to_string()).map_err(io_err(&cursor))?;
                return Ok(lease);
            }
            used += 1;
        }
        Err(IpamError::Exhausted {
            subnet: self.subnet.to_string(),
            used,
        })
    }

    /// Leases the address asked for (`--ip`, `--ip6`), which must be a host
    /// address of the subnet other than the gateway, and free.
    pub fn allocate_static(
        &self,
        ip: A,
        container: &str,
        host_interface: &str,
        is_live: impl Fn(&Lease) -> bool,
    ) -> Result<Lease, IpamError> {
        if !self.subnet.is_assignable(ip, self.gateway) {
            return Err(IpamError::NotAssignable {
                flag: A::FLAG,
                ip: ip.into(),
                subnet: self.subnet.to_string(),
                gateway: self.gateway.into(),
            });
        }
        fs::create_dir_all(self.dir).map_err(io_err(self.dir))?;
        let lease = self.lease(ip, container, host_interface);
        if self.take(&lease)? {
            return Ok(lease);
        }
        let taken = |by: String| IpamError::Taken {
            flag: A::FLAG,
            ip: ip.into(),
            by,
        };
        match self.read(ip)? {
            Some(held) if !is_live(&held) => {
                self.remove(ip)?;
                if self.take(&lease)? {
                    return Ok(lease);
                }
                Err(taken(held.container))
            }
            Some(held) => Err(taken(held.container)),
            None => Err(taken("another container".into())),
        }
    }

    /// Writes the lease under a temporary name and links it into place: false if
    /// the address is already held.
    fn take(&self, lease: &Lease) -> Result<bool, IpamError> {
        let path = self.dir.join(lease.ip.to_string());
        let body = serde_json::to_vec(lease).expect("a lease serializes");
        crate::store::create_whole(&path, &body).map_err(io_err(&path))
    }

    fn read(&self, ip: A) -> Result<Option<Lease>, IpamError> {
        let path = self.lease_path(ip);
        match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|source| IpamError::BadLease { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    fn remove(&self, ip: A) -> Result<(), IpamError> {
        let path = self.lease_path(ip);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&path)(e)),
            _ => Ok(()),
        }
    }

    /// Gives `ip` back if `container` still holds it (a reclaimed address may
    /// meanwhile belong to someone else). Releasing twice is fine.
    pub fn release(&self, ip: A, container: &str) -> Result<(), IpamError> {
        match self.read(ip) {
            Ok(Some(l)) if l.container == container => self.remove(ip),
            Ok(_) => Ok(()),
            // A lease file that does not parse holds nothing: drop it.
            Err(IpamError::BadLease { .. }) => self.remove(ip),
            Err(e) => Err(e),
        }
    }

    /// How many addresses are leased, of both families.
    pub fn in_use(&self) -> Result<usize, IpamError> {
        lease_count(self.dir).map_err(io_err(self.dir))
    }
}

/// Whether a file of a lease directory is a lease: named by its address.
fn is_lease_name(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|n| n.parse::<IpAddr>().is_ok())
}

/// Removes the leases in a network's lease directory `dir` whose interface
/// is gone and whose container `has_record` does not know (what an attach
/// killed before its record left), and leases that do not parse; returns how
/// many. The caller holds the network's lock.
pub fn sweep(
    dir: &Path,
    is_live: &dyn Fn(&str) -> bool,
    has_record: &dyn Fn(&str) -> bool,
) -> Result<usize, IpamError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut removed = 0;
    for e in entries.filter_map(|e| e.ok()) {
        if !is_lease_name(&e.file_name()) {
            continue;
        }
        let path = e.path();
        let stale = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Lease>(&b).ok())
            .is_none_or(|l| !is_live(&l.host_interface) && !has_record(&l.container));
        if stale {
            fs::remove_file(&path).map_err(io_err(&path))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Another IPv6 lease of `dir` whose address ends in the same 32 bits as
/// `ip`: on an IPv6-only network those bits are the container's MAC.
pub fn same_low_bits(dir: &Path, ip: std::net::Ipv6Addr) -> io::Result<Option<std::net::Ipv6Addr>> {
    let low = |a: std::net::Ipv6Addr| u128::from(a) as u32;
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<std::net::Ipv6Addr>().ok())
        .find(|other| *other != ip && low(*other) == low(ip)))
}

/// How many leases a network's lease directory holds (a missing one: none).
/// A lease is a file named after its address.
pub fn lease_count(dir: &Path) -> io::Result<usize> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries
            .filter_map(|e| e.ok())
            .filter(|e| is_lease_name(&e.file_name()))
            .count()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn any(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_parsing_and_arithmetic() {
        let n: Subnet = "172.20.3.4/16".parse().unwrap();
        assert_eq!(n.to_string(), "172.20.0.0/16");
        assert_eq!(n.last(), ip("172.20.255.255"));
        assert_eq!(n.first_host(), ip("172.20.0.1"));
        assert!(n.contains(ip("172.20.9.9")) && !n.contains(ip("172.21.0.1")));
        for bad in [
            "172.20.0.0",
            "172.20.0.0/33",
            "300.1.1.1/8",
            "x/8",
            "10.0.0.0/-1",
        ] {
            assert!(
                matches!(bad.parse::<Subnet>(), Err(IpamError::BadCidr { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            "10.0.0.0/31".parse::<Subnet>(),
            Err(IpamError::TooSmall { .. })
        ));
        let a: Subnet = "10.0.0.0/8".parse().unwrap();
        assert!(a.overlaps(&"10.1.0.0/16".parse().unwrap()));
        assert!("10.1.0.0/16".parse::<Subnet>().unwrap().overlaps(&a));
        assert!(!a.overlaps(&"11.0.0.0/8".parse().unwrap()));
        assert!(a.overlaps(&"0.0.0.0/0".parse().unwrap()));
    }

    fn pool<'a, A: Family>(dir: &'a Path, cidr: &str) -> Pool<'a, A> {
        let subnet: Cidr<A> = cidr.parse().ok().unwrap();
        Pool {
            dir,
            subnet,
            gateway: subnet.first_host(),
            range: None,
        }
    }

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("minirun-ipam-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn round_robin_skips_reserved_and_exhausts() {
        let d = tmpdir("rr");
        let p = pool::<Ipv4Addr>(&d, "10.9.0.0/29"); // .1 gateway, .2-.6 for containers, .7 broadcast
        let live = |_: &Lease| true;
        let got: Vec<_> = (0..5)
            .map(|i| p.allocate(&format!("c{i}"), "v", live).unwrap().ip)
            .collect();
        assert_eq!(
            got,
            ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"].map(any)
        );
        assert!(matches!(
            p.allocate("c5", "v", live),
            Err(IpamError::Exhausted { used: 5, .. })
        ));
        // Released addresses come back only after the cursor passes them.
        p.release(ip("10.9.0.3"), "c1").unwrap();
        p.release(ip("10.9.0.3"), "c1").unwrap();
        assert_eq!(p.allocate("c6", "v", live).unwrap().ip, any("10.9.0.3"));
        assert_eq!(p.in_use().unwrap(), 5);
        // Another container's lease is not released by a stale owner.
        p.release(ip("10.9.0.3"), "c1").unwrap();
        assert_eq!(p.in_use().unwrap(), 5);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn leases_of_gone_interfaces_are_reclaimed() {
        let d = tmpdir("reclaim");
        let p = pool::<Ipv4Addr>(&d, "10.9.0.0/30"); // one address: .2
        assert_eq!(
            p.allocate("a", "veth-a", |_| true).unwrap().ip,
            any("10.9.0.2")
        );
        assert!(p.allocate("b", "veth-b", |_| true).is_err());
        let lease = p
            .allocate("b", "veth-b", |l: &Lease| l.host_interface != "veth-a")
            .unwrap();
        assert_eq!((lease.ip, lease.container.as_str()), (any("10.9.0.2"), "b"));
        p.release(ip("10.9.0.2"), "a").unwrap();
        assert_eq!(p.in_use().unwrap(), 1, "a's late release leaves b's lease");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn ipv6_leases_walk_to_the_first_free_address_beside_ipv4_ones() {
        let d = tmpdir("v6");
        let p6 = pool::<Ipv6Addr>(&d, "fd42:1::/64");
        let p4 = pool::<Ipv4Addr>(&d, "10.9.0.0/24");
        let live = |_: &Lease| true;
        let a = p6.allocate("a", "va", live).unwrap();
        let b = p6.allocate("b", "vb", live).unwrap();
        assert_eq!((a.ip, b.ip), (any("fd42:1::2"), any("fd42:1::3")));
        assert_eq!(p4.allocate("a", "va", live).unwrap().ip, any("10.9.0.2"));
        // Each family keeps its own cursor; the directory counts both.
        assert_eq!(p6.allocate("c", "vc", live).unwrap().ip, any("fd42:1::4"));
        assert_eq!(p6.in_use().unwrap(), 4);
        // The end of a /64 wraps to its start, skipping what is held.
        let top: Ipv6Addr = "fd42:1::ffff:ffff:ffff:ffff".parse().unwrap();
        p6.allocate_static(top, "t", "vt", live).unwrap();
        fs::write(d.join("last6"), "fd42:1::ffff:ffff:ffff:fffe").unwrap();
        assert_eq!(p6.allocate("d", "vd", live).unwrap().ip, any("fd42:1::5"));
        let e = p6
            .allocate_static("fd42:1::1".parse().unwrap(), "x", "vx", live)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--ip6 fd42:1::1: not an address for a container"),
            "{e}"
        );
        let e = p6
            .allocate_static("fd42:1::2".parse().unwrap(), "x", "vx", live)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "--ip6 fd42:1::2: the address is taken by a");
        // A small IPv6 subnet runs out like an IPv4 one.
        let d2 = tmpdir("v6small");
        let small = pool::<Ipv6Addr>(&d2, "fd42:2::/126"); // ::2 and ::3
        small.allocate("a", "va", live).unwrap();
        small.allocate("b", "vb", live).unwrap();
        assert!(matches!(
            small.allocate("c", "vc", live),
            Err(IpamError::Exhausted { used: 2, .. })
        ));
        fs::remove_dir_all(&d).unwrap();
        fs::remove_dir_all(&d2).unwrap();
    }
}
