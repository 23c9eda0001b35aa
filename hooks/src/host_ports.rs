//! Host ports: who has published which, and whether the host itself uses one.
//!
//! A claim is a file `<run dir>/ports/<proto>-<port>-<host ip|any>` holding its
//! container and that container's host veth, made with an atomic link, under
//! the firewall lock. A port claimed on every address conflicts with any claim
//! of the same port and protocol, one on `0.0.0.0` (`::`) with any of IPv4
//! (IPv6); two specific addresses conflict only when equal. A claim whose veth is gone is stale and taken over, as leases are.
//! A port a host process has bound is refused: nftables' DNAT would silently
//! steal its traffic.

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ports::{addresses_meet, runs, PortMapping, PortRun, Protocol};

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

/// A claim's file name: `<proto>-<port>-<ip|any>` for one port (the
/// name older records' claims have), `<proto>-<first>-<last>-<ip|any>`
/// for a run.
fn claim_name(r: &PortRun) -> String {
    let m = &r.first;
    let ip = m
        .host_ip
        .map_or_else(|| "any".to_string(), |ip| ip.to_string());
    if r.count == 1 {
        format!("{}-{}-{ip}", m.protocol, m.host_port)
    } else {
        format!("{}-{}-{}-{ip}", m.protocol, m.host_port, r.last_host_port())
    }
}

/// A claim file's name read back: protocol, first and last port, address
/// (`None`: any; a text that is no address is kept as such and looked at).
struct Named {
    file: String,
    protocol: String,
    ports: (u16, u16),
    ip: Option<Result<IpAddr, ()>>,
}

fn parse_claim_name(file: &str) -> Option<Named> {
    let parts: Vec<&str> = file.splitn(4, '-').collect();
    let (protocol, first, rest) = match parts.as_slice() {
        [p, f, rest @ ..] if !rest.is_empty() => (*p, f.parse::<u16>().ok()?, rest),
        _ => return None,
    };
    let (last, ip) = match rest {
        [last, ip] if last.parse::<u16>().is_ok() => (last.parse().ok()?, *ip),
        [ip] => (first, *ip),
        // `proto-port-ip` where the address holds no '-': three parts.
        [a, b] => (first, &file[file.len() - a.len() - b.len() - 1..]),
        _ => return None,
    };
    Some(Named {
        file: file.to_string(),
        protocol: protocol.to_string(),
        ports: (first, last),
        ip: (ip != "any").then(|| ip.parse::<IpAddr>().map_err(|_| ())),
    })
}

/// Resolves and claims the host ports of `mappings` for `container`, on a
/// network of `families`. On error nothing stays claimed. `is_live` says
/// whether a host veth still exists. Linear in the runs of this request
/// and the claims of the host (one file per published range, not per
/// port): the claims directory is read once.
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
        existing: Vec::new(),
        earlier: Vec::new(),
        bound: None,
    };
    let mut done: Vec<PortRun> = Vec::new();
    let result = (|| {
        let runs = runs(mappings);
        if let Some(r) = runs.first() {
            claims.read(&r.first)?;
        }
        for r in &runs {
            done.push(claims.one(r)?);
        }
        Ok(())
    })();
    let resolved: Vec<PortMapping> = done.iter().flat_map(PortRun::mappings).collect();
    match result {
        Ok(()) => Ok(resolved),
        Err(e) => {
            release(dir, &resolved, container, host_interface);
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
    /// The claims as the directory was read.
    existing: Vec<Named>,
    /// This request's claims so far.
    earlier: Vec<PortRun>,
    /// The host's bound ports, read once for the first run of many ports.
    bound: Option<Vec<Bound>>,
}

/// Whether two runs share a port and an address.
fn runs_meet(a: &PortRun, b: &PortRun) -> bool {
    a.first.protocol == b.first.protocol
        && a.first.host_port <= b.last_host_port()
        && b.first.host_port <= a.last_host_port()
        && addresses_meet(a.first.host_ip, b.first.host_ip)
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
            if let Some(named) = name.to_str().and_then(parse_claim_name) {
                self.existing.push(named);
            }
        }
        Ok(())
    }

    /// The container holding a claim that conflicts with `r`, and the
    /// first port they share; stale ones are removed: their veth is gone,
    /// or they are this container's own (its ports are claimed once, on its
    /// first network: an earlier claim is an earlier container's of that
    /// id, whose attach was killed).
    fn conflict(&self, r: &PortRun) -> Option<(String, u16)> {
        let (first, last) = (r.first.host_port, r.last_host_port());
        for named in &self.existing {
            if named.protocol != r.first.protocol.name()
                || named.ports.0 > last
                || named.ports.1 < first
            {
                continue;
            }
            // A claim whose address does not parse is looked at: it may hold.
            if let Some(Ok(theirs)) = named.ip {
                if !addresses_meet(Some(theirs), r.first.host_ip) {
                    continue;
                }
            }
            let path = self.dir.join(&named.file);
            match read_claim(&path) {
                Some(c)
                    if (self.is_live)(&c.host_interface)
                        && (c.container != self.container
                            || c.host_interface != self.host_interface) =>
                {
                    let owner = if c.container == self.container {
                        format!("{} ({})", c.container, c.host_interface)
                    } else {
                        c.container
                    };
                    return Some((owner, first.max(named.ports.0)));
                }
                _ => {
                    let _ = fs::remove_file(&path);
                }
            }
        }
        None
    }

    /// Claims one run (a picked port alone).
    fn one(&mut self, r: &PortRun) -> Result<PortRun, HostPortError> {
        let m = &r.first;
        // An omitted host port: the kernel's choice of a free ephemeral port,
        // not claimed by another container either.
        let mut resolved = *r;
        if m.host_port == 0 {
            for _ in 0..32 {
                resolved.first.host_port = probe(m, 0, self.families)?;
                let taken = self.earlier.iter().any(|e| runs_meet(e, &resolved));
                if !taken && self.conflict(&resolved).is_none() {
                    break;
                }
                resolved.first.host_port = 0;
            }
            if resolved.first.host_port == 0 {
                return Err(HostPortError::NoFreePort { spec: *m });
            }
        } else {
            let owner = match self.earlier.iter().find(|e| runs_meet(e, r)) {
                Some(e) => Some((
                    self.container.to_string(),
                    m.host_port.max(e.first.host_port),
                )),
                None => self.conflict(r),
            };
            if let Some((owner, port)) = owner {
                return Err(HostPortError::Published {
                    spec: *m,
                    port,
                    proto: m.protocol,
                    owner,
                });
            }
            self.probe_run(r)?;
        }
        let path = self.dir.join(claim_name(&resolved));
        let body = serde_json::to_vec(&Claim {
            container: self.container.into(),
            host_interface: self.host_interface.into(),
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
                port: resolved.first.host_port,
                proto: m.protocol,
                owner: read_claim(&path).map_or_else(|| "?".into(), |c| c.container),
            });
        }
        self.earlier.push(resolved);
        Ok(resolved)
    }

    /// That no host process uses a port of the run: one port is bound as a
    /// server would; a run of many is looked up in the host's bound sockets,
    /// read once (binding each of 65,535 ports costs seconds), its first port
    /// bound as well (which also says whether its address is the host's).
    fn probe_run(&mut self, r: &PortRun) -> Result<(), HostPortError> {
        let m = &r.first;
        probe(m, m.host_port, self.families)?;
        if r.count == 1 {
            return Ok(());
        }
        if self.bound.is_none() {
            self.bound = Some(bound_sockets().map_err(|source| HostPortError::Io {
                spec: *m,
                what: "reading the host's sockets (/proc/net)".into(),
                source,
            })?);
        }
        let families = self.families;
        let in_use = self.bound.iter().flatten().find(|b| {
            b.protocol == m.protocol
                && (m.host_port..=r.last_host_port()).contains(&b.port)
                && socket_meets(b, m.host_ip, families)
        });
        match in_use {
            Some(b) => Err(HostPortError::InUse {
                spec: *m,
                port: b.port,
                proto: m.protocol,
            }),
            None => Ok(()),
        }
    }
}

/// A socket of the host bound to a port: listening TCP, or any UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bound {
    protocol: Protocol,
    ip: IpAddr,
    port: u16,
}

/// Whether a bound socket takes traffic a mapping's host address would be
/// published on: an unspecified IPv6 socket may take IPv4 too (unless
/// V6ONLY, which /proc does not show: counted as taking it).
fn socket_meets(b: &Bound, host_ip: Option<IpAddr>, families: Families) -> bool {
    let dual = b.ip == IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    match host_ip {
        None => (families.ipv4 && (b.ip.is_ipv4() || dual)) || (families.ipv6 && b.ip.is_ipv6()),
        Some(ip) => addresses_meet(Some(b.ip), Some(ip)) || (dual && ip.is_ipv4()),
    }
}

/// The host's bound sockets, from /proc/net/{tcp,tcp6,udp,udp6} (the
/// current network namespace's).
fn bound_sockets() -> io::Result<Vec<Bound>> {
    let mut out = Vec::new();
    for (file, protocol, v6) in [
        ("tcp", Protocol::Tcp, false),
        ("tcp6", Protocol::Tcp, true),
        ("udp", Protocol::Udp, false),
        ("udp6", Protocol::Udp, true),
    ] {
        let text = match fs::read_to_string(format!("/proc/net/{file}")) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        out.extend(parse_proc_sockets(&text, protocol, v6));
    }
    Ok(out)
}

/// Lines of /proc/net/tcp* and udp*: `sl local_address rem_address st ...`,
/// the local address in hex (each 32-bit word in the kernel's byte order)
/// and the port; TCP counts when listening (st 0A), UDP when bound and not
/// connected (st 07: a client's connected socket holds an ephemeral port
/// only for its own flow, which conntrack keeps from any DNAT).
fn parse_proc_sockets(text: &str, protocol: Protocol, v6: bool) -> Vec<Bound> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (addr, port) = f.get(1)?.split_once(':')?;
            let listening = match protocol {
                Protocol::Tcp => "0A",
                Protocol::Udp => "07",
            };
            if *f.get(3)? != listening {
                return None;
            }
            let port = u16::from_str_radix(port, 16).ok()?;
            let word = |i: usize| -> Option<[u8; 4]> {
                Some(
                    u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16)
                        .ok()?
                        .to_ne_bytes(),
                )
            };
            let ip = if v6 {
                let mut b = [0u8; 16];
                for i in 0..4 {
                    b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
                }
                IpAddr::V6(Ipv6Addr::from(b))
            } else {
                IpAddr::V4(Ipv4Addr::from(word(0)?))
            };
            Some(Bound { protocol, ip, port })
        })
        .collect()
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

/// Drops `container`'s claims of `mappings` (resolved); missing ones are
/// fine. A run's claim is found by its name; a run claimed otherwise —
/// picked ports (claimed one by one, folded here) or an older minirun's
/// range (one claim per port) — by the names of its ports, or for a long
/// one by one read of the directory. Only claims of this container and
/// interface go.
pub fn release(dir: &Path, mappings: &[PortMapping], container: &str, host_interface: &str) {
    let ours = |path: &Path| {
        read_claim(path)
            .is_none_or(|c| c.container == container && c.host_interface == host_interface)
    };
    let mut scan: Vec<PortRun> = Vec::new();
    for r in runs(mappings) {
        let path = dir.join(claim_name(&r));
        if path.exists() || r.count == 1 {
            if ours(&path) {
                let _ = fs::remove_file(&path);
            }
        } else if r.count <= 64 {
            for single in r.mappings() {
                let path = dir.join(claim_name(&PortRun {
                    first: single,
                    count: 1,
                }));
                if ours(&path) {
                    let _ = fs::remove_file(&path);
                }
            }
        } else {
            scan.push(r);
        }
    }
    if scan.is_empty() {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let Some(named) = e.file_name().to_str().and_then(parse_claim_name) else {
            continue;
        };
        let overlaps = scan.iter().any(|r| {
            named.protocol == r.first.protocol.name()
                && named.ports.0 <= r.last_host_port()
                && r.first.host_port <= named.ports.1
        });
        let path = dir.join(&named.file);
        if overlaps && ours(&path) {
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

    fn tmpdir(name: &str) -> std::path::PathBuf {
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

    #[test]
    fn a_range_is_one_claim_and_conflicts_anywhere_in_it() {
        let d = tmpdir("ranges");
        let live = |_: &str| true;
        let range = crate::ports::parse_list("127.0.0.1:47000-47999:47000-47999").unwrap();
        let got = claim(&d, &range, "c1", "veth1", BOTH, &live).unwrap();
        assert_eq!(got.len(), 1000);
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        assert!(d.join("tcp-47000-47999-127.0.0.1").exists());
        let inside: PortMapping = "47500:80".parse().unwrap();
        let e = claim(&d, &[inside], "c2", "veth2", BOTH, &live)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("host port 47500/tcp is already published by container c1"),
            "{e}"
        );
        let elsewhere: PortMapping = "127.0.0.2:47500:80".parse().unwrap();
        claim(&d, &[elsewhere], "c3", "veth3", BOTH, &live).unwrap();
        release(&d, &got, "c1", "veth1");
        assert!(!d.join("tcp-47000-47999-127.0.0.1").exists());
        claim(&d, &[inside], "c2", "veth2", BOTH, &live).unwrap_err();
        // Claims of an older minirun, one per port, go with the range.
        let d2 = tmpdir("oldclaims");
        fs::create_dir_all(&d2).unwrap();
        let body = r#"{"container":"old","hostInterface":"vold"}"#;
        for p in [46000, 46001, 46002] {
            fs::write(d2.join(format!("tcp-{p}-any")), body).unwrap();
        }
        let old = crate::ports::parse_list("46000-46002:46000-46002").unwrap();
        release(&d2, &old, "old", "vold");
        assert_eq!(fs::read_dir(&d2).unwrap().count(), 0);
        // A long one is looked for in one read of the directory.
        for p in 45000..45100 {
            fs::write(d2.join(format!("tcp-{p}-any")), body).unwrap();
        }
        fs::write(d2.join("tcp-45200-any"), body).unwrap();
        let long = crate::ports::parse_list("45000-45099:45000-45099").unwrap();
        release(&d2, &long, "old", "vold");
        assert_eq!(
            fs::read_dir(&d2).unwrap().count(),
            1,
            "the claim outside stays"
        );
        fs::remove_dir_all(&d2).unwrap();
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn proc_sockets_parse() {
        let tcp = "  sl  local_address rem_address   st\n   0: 0100007F:1F90 00000000:0000 0A\n   1: 0100007F:1F91 0200007F:1234 01\n";
        let b = parse_proc_sockets(tcp, Protocol::Tcp, false);
        assert_eq!(b.len(), 1);
        assert_eq!((b[0].ip, b[0].port), ("127.0.0.1".parse().unwrap(), 8080));
        let tcp6 = "  sl  local_address rem_address st\n   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A\n";
        let b = parse_proc_sockets(tcp6, Protocol::Tcp, true);
        assert_eq!((b[0].ip, b[0].port), ("::".parse().unwrap(), 80));
        let v4only = Families {
            ipv4: true,
            ipv6: false,
        };
        assert!(socket_meets(&b[0], None, v4only), "[::] may take IPv4 too");
        assert!(socket_meets(
            &b[0],
            Some("10.0.0.1".parse().unwrap()),
            v4only
        ));
    }
}
