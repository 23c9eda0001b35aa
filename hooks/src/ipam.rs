//! Address management: IPv4 subnets and the leases of a network.
//!
//! A lease is a file named after the address in the network's lease directory
//! (tmpfs, so reboots reset it). It is written whole under a temporary name and
//! linked into place, so it is never seen half written and two allocators can
//! never both take an address; the network's lock (held by the caller) keeps the
//! round-robin cursor consistent. A lease records its owner and the host end of
//! its veth: when that interface no longer exists the lease's container is gone
//! and the address is reclaimed.

use std::fmt;
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("subnet {0:?} is not an IPv4 CIDR such as 172.20.0.0/16")]
    BadCidr(String),
    #[error("subnet {0}: a prefix longer than /30 leaves no address for containers")]
    TooSmall(Subnet),
    #[error("subnet {subnet}: no free address left ({used} leased)")]
    Exhausted { subnet: Subnet, used: usize },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("--ip {ip}: not an address for a container in subnet {subnet} (gateway {gateway})")]
    NotAssignable {
        ip: Ipv4Addr,
        subnet: Subnet,
        gateway: Ipv4Addr,
    },
    #[error("--ip {ip}: the address is taken by {by}")]
    Taken { ip: Ipv4Addr, by: String },
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

/// An IPv4 network: its address with the host bits cleared, and its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, IpamError> {
        if prefix > 32 {
            return Err(IpamError::BadCidr(format!("{addr}/{prefix}")));
        }
        let net = Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        };
        if prefix > 30 {
            return Err(IpamError::TooSmall(net));
        }
        Ok(net)
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !mask(self.prefix))
    }

    /// The first host address, which Docker gives the bridge as gateway.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + 1)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.addr)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let m = mask(self.prefix.min(other.prefix));
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }

    /// Addresses a container may get: all but network, broadcast and gateway.
    fn is_assignable(&self, ip: Ipv4Addr, gateway: Ipv4Addr) -> bool {
        self.contains(ip) && ip != self.addr && ip != self.broadcast() && ip != gateway
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

impl FromStr for Subnet {
    type Err = IpamError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IpamError::BadCidr(s.to_string());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Subnet::new(addr, prefix)
    }
}

impl TryFrom<String> for Subnet {
    type Error = IpamError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Who holds an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub ip: Ipv4Addr,
    pub container: String,
    /// The host end of the container's veth: the lease lives as long as it does.
    pub host_interface: String,
}

/// The leases of one network, in `dir`. The caller holds the network's lock.
pub struct Pool<'a> {
    pub dir: &'a Path,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// Addresses are handed out from this part of the subnet only.
    pub range: Option<Subnet>,
}

impl Pool<'_> {
    fn lease_path(&self, ip: Ipv4Addr) -> PathBuf {
        self.dir.join(ip.to_string())
    }

    fn cursor_path(&self) -> PathBuf {
        self.dir.join("last")
    }

    /// Leases the next free address after the last one handed out (Docker's
    /// round robin: an address just released is not reused at once). A lease
    /// whose interface `is_live` says is gone is taken over, the container's
    /// own too (left by an attach of an earlier container of that id): under
    /// the network's lock no attach is between its lease and its interface.
    pub fn allocate(
        &self,
        container: &str,
        host_interface: &str,
        is_live: impl Fn(&Lease) -> bool,
    ) -> Result<Lease, IpamError> {
        fs::create_dir_all(self.dir).map_err(io_err(self.dir))?;
        let from = self.range.unwrap_or(self.subnet);
        let first = u32::from(from.addr()).max(u32::from(self.subnet.addr()) + 1);
        let last = u32::from(from.broadcast()).min(u32::from(self.subnet.broadcast()) - 1);
        let size = last - first + 1;
        let cursor = fs::read_to_string(self.cursor_path())
            .ok()
            .and_then(|s| s.trim().parse::<Ipv4Addr>().ok())
            .map(u32::from)
            .filter(|ip| (first..=last).contains(ip))
            .unwrap_or(last);
        let mut used = 0;
        for step in 1..=size {
            let ip = Ipv4Addr::from(first + (cursor - first + step) % size);
            if !self.subnet.is_assignable(ip, self.gateway) {
                continue;
            }
            let lease = Lease {
                ip,
                container: container.to_string(),
                host_interface: host_interface.to_string(),
            };
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
            subnet: self.subnet,
            used,
        })
    }

    /// Leases the address asked for (`--ip`), which must be a host address of
    /// the subnet other than the gateway, and free.
    pub fn allocate_static(
        &self,
        ip: Ipv4Addr,
        container: &str,
        host_interface: &str,
        is_live: impl Fn(&Lease) -> bool,
    ) -> Result<Lease, IpamError> {
        if !self.subnet.is_assignable(ip, self.gateway) {
            return Err(IpamError::NotAssignable {
                ip,
                subnet: self.subnet,
                gateway: self.gateway,
            });
        }
        fs::create_dir_all(self.dir).map_err(io_err(self.dir))?;
        let lease = Lease {
            ip,
            container: container.to_string(),
            host_interface: host_interface.to_string(),
        };
        if self.take(&lease)? {
            return Ok(lease);
        }
        match self.read(ip)? {
            Some(held) if !is_live(&held) => {
                self.remove(ip)?;
                if self.take(&lease)? {
                    return Ok(lease);
                }
                Err(IpamError::Taken {
                    ip,
                    by: held.container,
                })
            }
            Some(held) => Err(IpamError::Taken {
                ip,
                by: held.container,
            }),
            None => Err(IpamError::Taken {
                ip,
                by: "another container".into(),
            }),
        }
    }

    /// Writes the lease under a temporary name and links it into place: false if
    /// the address is already held.
    fn take(&self, lease: &Lease) -> Result<bool, IpamError> {
        let path = self.lease_path(lease.ip);
        let body = serde_json::to_vec(lease).expect("a lease serializes");
        crate::store::create_whole(&path, &body).map_err(io_err(&path))
    }

    fn read(&self, ip: Ipv4Addr) -> Result<Option<Lease>, IpamError> {
        let path = self.lease_path(ip);
        match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|source| IpamError::BadLease { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    fn remove(&self, ip: Ipv4Addr) -> Result<(), IpamError> {
        let path = self.lease_path(ip);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&path)(e)),
            _ => Ok(()),
        }
    }

    /// Gives `ip` back if `container` still holds it (a reclaimed address may
    /// meanwhile belong to someone else). Releasing twice is fine.
    pub fn release(&self, ip: Ipv4Addr, container: &str) -> Result<(), IpamError> {
        match self.read(ip) {
            Ok(Some(l)) if l.container == container => self.remove(ip),
            Ok(_) => Ok(()),
            // A lease file that does not parse holds nothing: drop it.
            Err(IpamError::BadLease { .. }) => self.remove(ip),
            Err(e) => Err(e),
        }
    }

    /// How many addresses are leased.
    pub fn in_use(&self) -> Result<usize, IpamError> {
        lease_count(self.dir).map_err(io_err(self.dir))
    }
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
        if e.file_name()
            .to_str()
            .and_then(|n| n.parse::<Ipv4Addr>().ok())
            .is_none()
        {
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

/// How many leases a network's lease directory holds (a missing one: none).
/// A lease is a file named after its address.
pub fn lease_count(dir: &Path) -> io::Result<usize> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.parse::<Ipv4Addr>().is_ok())
            })
            .count()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_parsing_and_arithmetic() {
        let n: Subnet = "172.20.3.4/16".parse().unwrap();
        assert_eq!(n.to_string(), "172.20.0.0/16");
        assert_eq!(n.broadcast(), ip("172.20.255.255"));
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
                matches!(bad.parse::<Subnet>(), Err(IpamError::BadCidr(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            "10.0.0.0/31".parse::<Subnet>(),
            Err(IpamError::TooSmall(_))
        ));
        let a: Subnet = "10.0.0.0/8".parse().unwrap();
        assert!(a.overlaps(&"10.1.0.0/16".parse().unwrap()));
        assert!("10.1.0.0/16".parse::<Subnet>().unwrap().overlaps(&a));
        assert!(!a.overlaps(&"11.0.0.0/8".parse().unwrap()));
        assert!(a.overlaps(&"0.0.0.0/0".parse().unwrap()));
    }

    fn pool<'a>(dir: &'a Path, cidr: &str) -> Pool<'a> {
        let subnet: Subnet = cidr.parse().unwrap();
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
        let p = pool(&d, "10.9.0.0/29"); // .1 gateway, .2-.6 for containers, .7 broadcast
        let live = |_: &Lease| true;
        let got: Vec<_> = (0..5)
            .map(|i| p.allocate(&format!("c{i}"), "v", live).unwrap().ip)
            .collect();
        assert_eq!(
            got,
            ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"].map(ip)
        );
        assert!(matches!(
            p.allocate("c5", "v", live),
            Err(IpamError::Exhausted { used: 5, .. })
        ));
        // Released addresses come back only after the cursor passes them.
        p.release(ip("10.9.0.3"), "c1").unwrap();
        p.release(ip("10.9.0.3"), "c1").unwrap();
        assert_eq!(p.allocate("c6", "v", live).unwrap().ip, ip("10.9.0.3"));
        assert_eq!(p.in_use().unwrap(), 5);
        // Another container's lease is not released by a stale owner.
        p.release(ip("10.9.0.3"), "c1").unwrap();
        assert_eq!(p.in_use().unwrap(), 5);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn leases_of_gone_interfaces_are_reclaimed() {
        let d = tmpdir("reclaim");
        let p = pool(&d, "10.9.0.0/30"); // one address: .2
        assert_eq!(
            p.allocate("a", "veth-a", |_| true).unwrap().ip,
            ip("10.9.0.2")
        );
        assert!(p.allocate("b", "veth-b", |_| true).is_err());
        let lease = p
            .allocate("b", "veth-b", |l: &Lease| l.host_interface != "veth-a")
            .unwrap();
        assert_eq!((lease.ip, lease.container.as_str()), (ip("10.9.0.2"), "b"));
        p.release(ip("10.9.0.2"), "a").unwrap();
        assert_eq!(p.in_use().unwrap(), 1, "a's late release leaves b's lease");
        fs::remove_dir_all(&d).unwrap();
    }
}
