//! Host ports: who has published which, and whether the host itself uses one.
//!
//! A claim is a file `<run dir>/ports/<proto>-<port>-<host ip|any>` holding its
//! container and that container's host veth, made with an atomic link, under
//! the firewall lock. A port claimed on every address conflicts with any claim
//! of the same port and protocol, one on `0.0.0.0` (`::`) with any of IPv4
//! (IPv6); two specific addresses conflict only when equal. A claim whose veth is gone is stale and taken over, as leases are.
//! A port a host process has bound is refused: nftables' DNAT would silently
//! steal its traffic.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ports::{addresses_meet, PortMapping, Protocol};

#[derive(Debug, thiserror::Error)]
pub enum HostPortError {
    #[error("port {spec}: host port {port}/{proto} is already published by container {owner}")]
    Published {
        spec: PortMapping,
        port: u16,
        proto: Protocol,
        owner: String,
    },
    #[error("port {spec}: host port {port}/{proto} is in use by a process of the host")]
    InUse {
        spec: PortMapping,
        port: u16,
        proto: Protocol,
    },
    #[error("port {spec}: host IP {ip} is not an address of this host")]
    NotLocal { spec: PortMapping, ip: IpAddr },
    #[error("port {spec}: no free host port found")]
    NoFreePort { spec: PortMapping },
    #[error("port {spec}: {what}: {source}")]
    Io {
        spec: PortMapping,
        what: String,
        source: io::Error,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Claim {
    container: String,
    host_interface: String,
}

fn claim_name(m: &PortMapping) -> String {
    let ip = m
        .host_ip
        .map_or_else(|| "any".to_string(), |ip| ip.to_string());
    format!("{}-{}-{ip}", m.protocol, m.host_port)
}

/// Resolves and claims the host ports of `mappings` for `container`, on a
/// network of `families`. On error nothing stays claimed. `is_live` says
/// whether a host veth still exists.
/// Linear in the mappings: the claims directory is read once, and each port
/// is looked up in it and among this request's earlier ports.
pub fn claim(
    dir: &Path,
    mappings: &[PortMapping],
    container: &str,
    host_interface: &str,
    families: Families,
    is_live: &dyn Fn(&str) -> bool,
) -> Result<Vec<PortMapping>, HostPortError> {
    let mut claims = Claims {
        dir,
        container,
        host_interface,
        families,
        is_live,
        existing: HashMap::new(),
        earlier: HashMap::new(),
    };
    let mut done: Vec<PortMapping> = Vec::new();
    let result = (|| {
        if let Some(m) = mappings.first() {
            claims.read(m)?;
        }
        for m in mappings {
            let resolved = claims.one(m, host_interface)?;
            done.push(resolved);
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(done),
        Err(e) => {
            release(dir, &done, container, host_interface);
            Err(e)
        }
    }
}

/// One request's view of the claims.
struct Claims<'a> {
    dir: &'a Path,
    container: &'a str,
    /// The claimant's host veth: with the container, what makes a claim
    /// this attachment's own (a pod may have two interfaces).
    host_interface: &'a str,
    families: Families,
    is_live: &'a dyn Fn(&str) -> bool,
    /// (protocol, port) → the addresses claimed there ("any" or an IP), as
    /// the directory was read.
    existing: HashMap<(String, u16), Vec<String>>,
    /// This request's claims so far.
    earlier: HashMap<(Protocol, u16), Vec<Option<IpAddr>>>,
}

impl Claims<'_> {
    fn read(&mut self, m: &PortMapping) -> Result<(), HostPortError> {
        let io = |what: &str| {
            let what = what.to_string();
            move |source| HostPortError::Io {
                spec: *m,
                what,
                source,
            }
        };
        fs::create_dir_all(self.dir).map_err(io("making the claims directory"))?;
        for e in fs::read_dir(self.dir).map_err(io("reading the claims"))? {
            let name = e.map_err(io("reading the claims"))?.file_name();
            let mut parts = name.to_str().unwrap_or_default().splitn(3, '-');
            if let (Some(proto), Some(Ok(port)), Some(ip)) =
                (parts.next(), parts.next().map(str::parse), parts.next())
            {
                self.existing
                    .entry((proto.to_string(), port))
                    .or_default()
                    .push(ip.to_string());
            }
        }
        Ok(())
    }

    /// Whether this request already claimed a port `m` overlaps.
    fn taken_earlier(&self, m: &PortMapping) -> bool {
        self.earlier
            .get(&(m.protocol, m.host_port))
            .is_some_and(|ips| ips.iter().any(|ip| addresses_meet(*ip, m.host_ip)))
    }

    /// The container holding a claim that conflicts with `m`; stale ones are
    /// removed: their veth is gone, or they are this container's own (its
    /// ports are claimed once, on its first network: an earlier claim is an
    /// earlier container's of that id, whose attach was killed).
    fn conflict(&self, m: &PortMapping) -> Option<String> {
        let key = (m.protocol.to_string(), m.host_port);
        for ip in self.existing.get(&key).into_iter().flatten() {
            let theirs = (ip != "any").then(|| ip.parse::<IpAddr>().ok());
            // A claim whose name does not parse is looked at: it may hold.
            if theirs.is_some_and(|t| t.is_some_and(|t| !addresses_meet(Some(t), m.host_ip))) {
                continue;
            }
            let path = self.dir.join(format!("{}-{}-{ip}", key.0, key.1));
            match read_claim(&path) {
                Some(c)
                    if (self.is_live)(&c.host_interface)
                        && (c.container != self.container
                            || c.host_interface != self.host_interface) =>
                {
                    return Some(if c.container == self.container {
                        format!("{} ({})", c.container, c.host_interface)
                    } else {
                        c.container
                    });
                }
                _ => {
                    let _ = fs::remove_file(&path);
                }
            }
        }
        None
    }

    /// Claims one mapping.
    fn one(&mut self, m: &PortMapping, host_interface: &str) -> Result<PortMapping, HostPortError> {
        // An omitted host port: the kernel's choice of a free ephemeral port,
        // not claimed by another container either.
        let mut resolved = *m;
        if m.host_port == 0 {
            for _ in 0..32 {
                resolved.host_port = probe(m, 0, self.families)?;
                if !self.taken_earlier(&resolved) && self.conflict(&resolved).is_none() {
                    break;
                }
                resolved.host_port = 0;
            }
            if resolved.host_port == 0 {
                return Err(HostPortError::NoFreePort { spec: *m });
            }
        } else {
            let owner = if self.taken_earlier(m) {
                Some(self.container.to_string())
            } else {
                self.conflict(m)
            };
            if let Some(owner) = owner {
                return Err(HostPortError::Published {
                    spec: *m,
                    port: m.host_port,
                    proto: m.protocol,
                    owner,
                });
            }
            probe(m, m.host_port, self.families)?;
        }
        let path = self.dir.join(claim_name(&resolved));
        let body = serde_json::to_vec(&Claim {
            container: self.container.into(),
            host_interface: host_interface.into(),
        })
        .expect("a claim serializes");
        let created =
            crate::store::create_whole(&path, &body).map_err(|source| HostPortError::Io {
                spec: *m,
                what: "writing a claim".into(),
                source,
            })?;
        if !created {
            return Err(HostPortError::Published {
                spec: *m,
                port: resolved.host_port,
                proto: m.protocol,
                owner: read_claim(&path).map_or_else(|| "?".into(), |c| c.container),
            });
        }
        self.earlier
            .entry((resolved.protocol, resolved.host_port))
            .or_default()
            .push(resolved.host_ip);
        Ok(resolved)
    }
}

fn read_claim(path: &Path) -> Option<Claim> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// Removes the claims whose veth is gone and whose container `has_record`
/// does not know (what an attach killed before its record left); returns
/// how many.
pub fn sweep(
    dir: &Path,
    is_live: &dyn Fn(&str) -> bool,
    has_record: &dyn Fn(&str) -> bool,
) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for e in entries.filter_map(|e| e.ok()) {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let stale = read_claim(&e.path())
            .is_none_or(|c| !is_live(&c.host_interface) && !has_record(&c.container));
        if stale && fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// The address families a network has: what a mapping without a host
/// address is published on, and so what its port must be free in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families {
    pub ipv4: bool,
    pub ipv6: bool,
}

/// Binds the port as a host process would (TCP with SO_REUSEADDR, as servers
/// do, so connections in TIME_WAIT do not count), in each family the mapping
/// is published in: its host address's, or without one each the network
/// has, IPv6 with IPV6_V6ONLY so each family is asked on its own whatever
/// the host's `bindv6only`. Returns the bound port (picked by the kernel in
/// the first family for port 0, then asked of the second).
fn probe(m: &PortMapping, port: u16, families: Families) -> Result<u16, HostPortError> {
    let addresses: Vec<IpAddr> = match m.host_ip {
        Some(ip) => vec![ip],
        None => [
            families.ipv4.then_some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            families.ipv6.then_some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        ]
        .into_iter()
        .flatten()
        .collect(),
    };
    // A picked port can be free in one family and not in the other: a few
    // more picks.
    let rounds = if port == 0 && addresses.len() > 1 {
        16
    } else {
        1
    };
    let mut last = Ok(port);
    for _ in 0..rounds {
        let mut chosen = port;
        last = addresses.iter().try_fold(port, |_, ip| {
            chosen = bind_once(m, *ip, chosen)?;
            Ok(chosen)
        });
        if !matches!(last, Err(HostPortError::InUse { .. })) {
            break;
        }
    }
    last
}

fn bind_once(m: &PortMapping, ip: IpAddr, port: u16) -> Result<u16, HostPortError> {
    use nix::sys::socket::{
        bind, getsockname, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType,
        SockaddrIn, SockaddrIn6, SockaddrStorage,
    };
    let kind = match m.protocol {
        Protocol::Tcp => SockType::Stream,
        Protocol::Udp => SockType::Datagram,
    };
    let bound = (|| -> nix::Result<u16> {
        let family = if ip.is_ipv6() {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        let fd = socket(family, kind, SockFlag::SOCK_CLOEXEC, None)?;
        if m.protocol == Protocol::Tcp {
            setsockopt(&fd, sockopt::ReuseAddr, &true)?;
        }
        match ip {
            IpAddr::V4(v4) => bind(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                &SockaddrIn::from(std::net::SocketAddrV4::new(v4, port)),
            )?,
            IpAddr::V6(v6) => {
                setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
                bind(
                    std::os::fd::AsRawFd::as_raw_fd(&fd),
                    &SockaddrIn6::from(std::net::SocketAddrV6::new(v6, port, 0, 0)),
                )?
            }
        }
        let addr: SockaddrStorage = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd))?;
        Ok(addr
            .as_sockaddr_in()
            .map(|a| a.port())
            .or_else(|| addr.as_sockaddr_in6().map(|a| a.port()))
            .unwrap_or(port))
    })();
    match bound {
        Ok(p) => Ok(p),
        Err(nix::Error::EADDRINUSE) => Err(HostPortError::InUse {
            spec: *m,
            port,
            proto: m.protocol,
        }),
        Err(nix::Error::EADDRNOTAVAIL) => Err(HostPortError::NotLocal { spec: *m, ip }),
        // A host without IPv6 at all: nothing can be bound there either.
        Err(nix::Error::EAFNOSUPPORT) if m.host_ip.is_none() => Ok(port),
        Err(e) => Err(HostPortError::Io {
            spec: *m,
            what: format!("binding {ip}:{port}/{}", m.protocol),
            source: e.into(),
        }),
    }
}

/// Drops `container`'s claims of `mappings` (resolved); missing ones are fine.
pub fn release(dir: &Path, mappings: &[PortMapping], container: &str, host_interface: &str) {
    for m in mappings {
        let path: PathBuf = dir.join(claim_name(m));
        if read_claim(&path)
            .is_none_or(|c| c.container == container && c.host_interface == host_interface)
        {
            let _ = fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    const BOTH: Families = Families {
        ipv4: true,
        ipv6: true,
    };

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("minirun-ports-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn claims_conflict_by_address_and_go_stale_with_their_veth() {
        let d = tmpdir("claims");
        let live = |_: &str| true;
        // High ports on 127.0.0.1/127.0.0.2, unlikely to be bound here.
        let a: PortMapping = "127.0.0.1:47801:80".parse().unwrap();
        claim(&d, &[a], "c1", "veth1", BOTH, &live).unwrap();
        let same: PortMapping = "127.0.0.1:47801:81".parse().unwrap();
        let e = claim(&d, &[same], "c2", "veth2", BOTH, &live)
            .unwrap_err()
            .to_string();
        assert!(e.contains("already published by container c1"), "{e}");
        let any: PortMapping = "47801:80".parse().unwrap();
        assert!(claim(&d, &[any], "c2", "veth2", BOTH, &live).is_err());
        let other_ip: PortMapping = "127.0.0.2:47801:80".parse().unwrap();
        claim(&d, &[other_ip], "c2", "veth2", BOTH, &live).unwrap();
        let udp: PortMapping = "127.0.0.1:47801:80/udp".parse().unwrap();
        claim(&d, &[udp], "c3", "veth3", BOTH, &live).unwrap();
        // c1's veth is gone: its claim is taken over.
        let got = claim(&d, &[same], "c4", "veth4", BOTH, &|i: &str| i != "veth1").unwrap();
        assert_eq!(got[0].host_port, 47801);
        release(&d, &[a], "c1", "veth1");
        assert!(
            d.join("tcp-47801-127.0.0.1").exists(),
            "c1 no longer holds it"
        );
        // One container, two interfaces (a pod's): the second may not take
        // the first's live port, nor release it.
        let udp2: PortMapping = "127.0.0.1:47801:81/udp".parse().unwrap();
        let e = claim(&d, &[udp2], "c3", "veth3b", BOTH, &live)
            .unwrap_err()
            .to_string();
        assert!(e.contains("c3 (veth3)"), "{e}");
        release(&d, &[udp], "c3", "veth3b");
        assert!(d.join("udp-47801-127.0.0.1").exists());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_omitted_port_is_picked_and_a_bound_one_refused() {
        let d = tmpdir("pick");
        let live = |_: &str| true;
        let m: PortMapping = "127.0.0.1::80".parse().unwrap();
        let got = claim(&d, &[m], "c1", "v", BOTH, &live).unwrap();
        assert_ne!(got[0].host_port, 0);
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let busy: PortMapping = format!("127.0.0.1:{port}:80").parse().unwrap();
        let e = claim(&d, &[busy], "c2", "v", BOTH, &live)
            .unwrap_err()
            .to_string();
        assert!(e.contains("in use by a process of the host"), "{e}");
        assert!(!d.join(format!("tcp-{port}-127.0.0.1")).exists());
        let not_local: PortMapping = "192.0.2.77:8080:80".parse().unwrap();
        let e = claim(&d, &[not_local], "c3", "v", BOTH, &live)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("host IP 192.0.2.77 is not an address of this host"),
            "{e}"
        );
        fs::remove_dir_all(&d).unwrap();
    }
}
