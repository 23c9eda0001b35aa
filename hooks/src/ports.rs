//! Docker's `-p` grammar: `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp]`, with
//! equal-length ranges (`8000-8010:80-90`) and IPv6 host addresses in
//! brackets (`[2001:db8::1]:8080:80`). A spec expands to one mapping per
//! port; host port 0 means "pick a free one" (done at attach). As in
//! Docker, no host address means every address of both families the
//! network has, `0.0.0.0` every IPv4 address and `[::]` every IPv6 one.
//!
//! The runtime carries the specs to the hook in the annotation
//! `org.minirun.net.ports`, comma-separated, so a bundle written for runc can
//! publish ports the same way.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub const PORTS_ANNOTATION: &str = "org.minirun.net.ports";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("port spec {spec:?}: {reason}")]
pub struct PortError {
    pub spec: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// Only traffic to this host address is forwarded (an unspecified one:
    /// any address of its family); `None`: any local address of either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
    /// 0 until attach picks a free port.
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => {}
        }
        write!(
            f,
            "{}:{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

/// Parses one `-p` spec into its mappings.
pub fn parse_spec(spec: &str) -> Result<Vec<PortMapping>, PortError> {
    let err = |reason: &str| PortError {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let (addr, protocol) = match spec.rsplit_once('/') {
        Some((a, "tcp")) => (a, Protocol::Tcp),
        Some((a, "udp")) => (a, Protocol::Udp),
        Some((_, p)) => return Err(err(&format!("unknown protocol {p:?} (tcp or udp)"))),
        None => (spec, Protocol::Tcp),
    };
    // An IPv6 host address is in brackets: its colons are not separators.
    let (v6, rest) = match addr.strip_prefix('[') {
        Some(inner) => {
            let (ip, rest) = inner
                .split_once(']')
                .ok_or_else(|| err("an IPv6 host address needs its closing ']'"))?;
            let ip: std::net::Ipv6Addr = ip
                .parse()
                .map_err(|_| err(&format!("host IP [{ip}] is not an IPv6 address")))?;
            let rest = rest.strip_prefix(':').ok_or_else(|| {
                err("expected [IPV6]:[HOST_PORT:]CONTAINER_PORT after the address")
            })?;
            if let Some(v4) = ip.to_ipv4_mapped() {
                return Err(err(&format!(
                    "[{ip}] is an IPv4 address written as IPv6: write {v4}"
                )));
            }
            if ip.is_loopback() {
                return Err(err(
                    "[::1] cannot be published: the kernel does not route IPv6 loopback \
traffic to another interface (IPv6 has no route_localnet); publish on 127.0.0.1, or on \
[::] or a host address, which [::1] is not",
                ));
            }
            (Some(IpAddr::V6(ip)), rest)
        }
        None => (None, addr),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (host_ip, host, container) = match (v6, parts.as_slice()) {
        (None, [c]) => (None, None, *c),
        (None, [h, c]) => (None, Some(*h), *c),
        (Some(ip), [h, c]) => (Some(ip), Some(*h).filter(|h| !h.is_empty()), *c),
        (None, [ip, h, c]) => {
            let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| {
                err(&format!(
                    "host IP {ip:?} is not an IPv4 address (an IPv6 one goes in brackets)"
                ))
            })?;
            (Some(IpAddr::V4(ip)), Some(*h).filter(|h| !h.is_empty()), *c)
        }
        _ => {
            return Err(err(
                "expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp]",
            ))
        }
    };
    let container = range(container).map_err(|r| err(&format!("container port {r}")))?;
    let host = match host {
        Some(h) => range(h).map_err(|r| err(&format!("host port {r}")))?,
        None => (0, 0),
    };
    let count = container.1 - container.0 + 1;
    if host != (0, 0) && host.1 - host.0 + 1 != count {
        return Err(err(&format!(
            "the host range has {} ports and the container range {count}",
            host.1 - host.0 + 1
        )));
    }
    Ok((0..count)
        .map(|i| PortMapping {
            host_ip,
            host_port: if host == (0, 0) { 0 } else { host.0 + i },
            container_port: container.0 + i,
            protocol,
        })
        .collect())
}

/// `N` or `N-M`, each 1-65535, N <= M.
fn range(text: &str) -> Result<(u16, u16), String> {
    let port = |p: &str| -> Result<u16, String> {
        match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
            Ok(n) => Err(format!("{n} is outside 1-65535")),
            Err(_) => Err(format!("{p:?} is not a port number")),
        }
    };
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if a > b {
                return Err(format!("range {text} runs backwards"));
            }
            Ok((a, b))
        }
        None => {
            let p = port(text)?;
            Ok((p, p))
        }
    }
}

/// Parses the annotation's comma-separated specs; the same host port twice is
/// refused here, before anything exists. Linear in the ports: each host port
/// is looked up among those taken so far, not compared with all of them (a
/// range of 65535 is 65535 lookups).
pub fn parse_list(list: &str) -> Result<Vec<PortMapping>, PortError> {
    let mut all: Vec<PortMapping> = Vec::new();
    // (protocol, host port) → indices in `all`.
    let mut taken: std::collections::HashMap<(Protocol, u16), Vec<usize>> = Default::default();
    for spec in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        for m in parse_spec(spec)? {
            if m.host_port != 0 {
                let same_port = taken.entry((m.protocol, m.host_port)).or_default();
                let clash = same_port
                    .iter()
                    .map(|&i| &all[i])
                    .find(|o| addresses_meet(o.host_ip, m.host_ip));
                if let Some(o) = clash {
                    return Err(PortError {
                        spec: spec.to_string(),
                        reason: format!(
                            "host port {}/{} is already published by {o}",
                            m.host_port, m.protocol
                        ),
                    });
                }
                same_port.push(all.len());
            }
            all.push(m);
        }
    }
    Ok(all)
}

/// A run of mappings: `first` and the `count - 1` that follow it port by
/// port on both sides (same protocol and host address). A published range
/// is one run, whatever its size: claims, firewall elements and records go
/// by runs, so publishing costs the specs, not the ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortRun {
    #[serde(flatten)]
    pub first: PortMapping,
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl PortRun {
    /// The last host port of the run.
    pub fn last_host_port(&self) -> u16 {
        (u32::from(self.first.host_port) + self.count - 1) as u16
    }

    /// Host and container ports are the same all along the run.
    pub fn is_identity(&self) -> bool {
        self.first.host_port == self.first.container_port
    }

    /// The mappings of the run, port by port.
    pub fn mappings(&self) -> impl Iterator<Item = PortMapping> + '_ {
        (0..self.count).map(|i| PortMapping {
            host_port: (u32::from(self.first.host_port) + i) as u16,
            container_port: (u32::from(self.first.container_port) + i) as u16,
            ..self.first
        })
    }
}

/// Consecutive mappings folded into runs (a picked host port, 0, is a run
/// of its own: each is picked alone).
pub fn runs(mappings: &[PortMapping]) -> Vec<PortRun> {
    let mut out: Vec<PortRun> = Vec::new();
    for m in mappings {
        if let Some(last) = out.last_mut() {
            let next = u32::from(last.first.host_port) + last.count;
            let next_container = u32::from(last.first.container_port) + last.count;
            if m.host_port != 0
                && last.first.host_port != 0
                && m.protocol == last.first.protocol
                && m.host_ip == last.first.host_ip
                && u32::from(m.host_port) == next
                && u32::from(m.container_port) == next_container
            {
                last.count += 1;
                continue;
            }
        }
        out.push(PortRun {
            first: *m,
            count: 1,
        });
    }
    out
}

/// Mappings as a record keeps them: as runs, so a container publishing
/// every port of the host has a record of one line, which every other
/// attach that lists the records reads at the cost of any other.
pub mod as_runs {
    use super::{runs, PortMapping, PortRun};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(ports: &[PortMapping], s: S) -> Result<S::Ok, S::Error> {
        runs(ports).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PortMapping>, D::Error> {
        let runs = Vec::<PortRun>::deserialize(d)?;
        // A run stays inside 1-65535 on both sides (a hand-edited or
        // damaged record must not wrap around or allocate without end).
        for r in &runs {
            let fits = |first: u16| u32::from(first) + r.count <= 65536;
            let picked_alone = r.first.host_port != 0 || r.count == 1;
            if r.count == 0
                || !fits(r.first.host_port)
                || !fits(r.first.container_port)
                || !picked_alone
            {
                return Err(serde::de::Error::custom(format!(
                    "port run {} of {} ports leaves 1-65535",
                    r.first, r.count
                )));
            }
        }
        Ok(runs.iter().flat_map(PortRun::mappings).collect())
    }
}

/// Whether two host addresses of mappings share an address: no address
/// (every one) meets all, an unspecified one every address of its family.
pub fn addresses_meet(a: Option<IpAddr>, b: Option<IpAddr>) -> bool {
    match (a, b) {
        (None, _) | (_, None) => true,
        (Some(a), Some(b)) => {
            a.is_ipv4() == b.is_ipv4() && (a.is_unspecified() || b.is_unspecified() || a == b)
        }
    }
}

impl FromStr for PortMapping {
    type Err = PortError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut v = parse_spec(s)?;
        if v.len() != 1 {
            return Err(PortError {
                spec: s.into(),
                reason: "a range where one port was expected".into(),
            });
        }
        Ok(v.remove(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> PortMapping {
        s.parse().unwrap()
    }

    #[test]
    fn docker_forms() {
        assert_eq!(
            one("80"),
            PortMapping {
                host_ip: None,
                host_port: 0,
                container_port: 80,
                protocol: Protocol::Tcp
            }
        );
        assert_eq!(one("8080:80").host_port, 8080);
        assert_eq!(one("53:53/udp").protocol, Protocol::Udp);
        let m = one("127.0.0.1:8080:80");
        let localhost: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(m.host_ip, Some(localhost));
        assert_eq!(m.to_string(), "127.0.0.1:8080:80/tcp");
        let m = one("127.0.0.1::80");
        assert_eq!((m.host_ip, m.host_port), (Some(localhost), 0));
        assert_eq!(
            one("0.0.0.0:8080:80").host_ip,
            Some("0.0.0.0".parse().unwrap())
        );
        let m = one("[2001:db8::1]:8080:80/udp");
        assert_eq!(m.host_ip, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(m.to_string(), "[2001:db8::1]:8080:80/udp");
        assert_eq!(one("[::]::80").host_port, 0);
        assert_eq!(one(&one("[fd00::1]:9:9").to_string()), one("[fd00::1]:9:9"));
        let r = parse_spec("8000-8002:80-82/udp").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!((r[2].host_port, r[2].container_port), (8002, 82));
        assert_eq!(
            parse_spec("80-81")
                .unwrap()
                .iter()
                .map(|m| m.host_port)
                .collect::<Vec<_>>(),
            [0, 0]
        );
    }

    #[test]
    fn malformed_specs_say_why() {
        let why = |s: &str| parse_spec(s).unwrap_err().to_string();
        assert_eq!(
            why("0:80"),
            "port spec \"0:80\": host port 0 is outside 1-65535"
        );
        assert!(why("8080:70000").contains("container port 70000 is outside 1-65535"));
        assert!(
            why("8000-8001:80-82").contains("the host range has 2 ports and the container range 3")
        );
        assert!(why("80/sctp").contains("unknown protocol \"sctp\""));
        assert!(why("1.2.3:80:80").contains("host IP \"1.2.3\" is not an IPv4 address"));
        assert!(why("::1:80:80").contains("expected [HOST_IP:]"));
        assert!(why("[::1:80:80").contains("closing ']'"));
        assert!(why("[1.2.3.4]:80:80").contains("not an IPv6 address"));
        assert!(why("[::2]80").contains("expected [IPV6]:"));
        assert!(why("[::1]:8080:80").contains("IPv6 has no route_localnet"));
        assert!(why("[::ffff:127.0.0.1]:8080:80").contains("write 127.0.0.1"));
        assert!(why("a:b:c:d").contains("expected [HOST_IP:]"));
        assert!(why("90-80").contains("runs backwards"));
        assert!(why("x").contains("\"x\" is not a port number"));
    }

    #[test]
    fn lists_refuse_a_host_port_twice() {
        assert_eq!(parse_list("8080:80, 53:53/udp,").unwrap().len(), 2);
        assert!(parse_list("8080:80,8080:81/udp").is_ok());
        let e = parse_list("8080:80,127.0.0.1:8080:81")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("host port 8080/tcp is already published by 8080:80/tcp"),
            "{e}"
        );
        // One address of each family, or all of each: no clash.
        assert!(parse_list("0.0.0.0:8080:80,[::]:8080:81").is_ok());
        assert!(parse_list("[fd00::1]:8080:80,[::]:8080:81").is_err());
        assert!(parse_list("127.0.0.1:8080:80,[fd00::1]:8080:81").is_ok());
    }

    #[test]
    fn ranges_fold_into_runs_and_records_keep_runs() {
        let all =
            parse_list("20000-29999:20000-29999,8000-8001:80-81,90,[fd00::1]:7-8:7-8/udp").unwrap();
        let r = runs(&all);
        assert_eq!(r.len(), 4, "{r:?}");
        assert_eq!(
            (r[0].count, r[0].last_host_port(), r[0].is_identity()),
            (10000, 29999, true)
        );
        assert_eq!((r[1].count, r[1].is_identity()), (2, false));
        assert_eq!(r[2].first.host_port, 0);
        assert_eq!(r[3].count, 2);
        assert_eq!(
            r.iter().flat_map(PortRun::mappings).collect::<Vec<_>>(),
            all
        );
        // Picked ports stay one each, even when they happen to follow.
        let picked = parse_list("80,81").unwrap();
        assert_eq!(runs(&picked).len(), 2);
        #[derive(Serialize, Deserialize)]
        struct Record {
            #[serde(with = "as_runs")]
            ports: Vec<PortMapping>,
        }
        let text = serde_json::to_string(&Record { ports: all.clone() }).unwrap();
        assert!(text.len() < 400, "{text}");
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back.ports, all);
        // A record of an older minirun: one entry per port.
        let old = r#"{"ports":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}"#;
        assert_eq!(serde_json::from_str::<Record>(old).unwrap().ports.len(), 1);
    }
}
