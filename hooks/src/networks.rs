//! User-defined networks: `minirun network create|ls|inspect|rm|prune`.
//!
//! A network is its definition file (`<config dir>/<name>.json`, kept across
//! reboots). Nothing exists in the kernel until the first container attaches:
//! the bridge driver makes the bridge then and takes it down after the last
//! one, so creating a network costs a file and removing it a file.
//!
//! Everything is checked before the file is written, under one lock so two
//! creates cannot take the same name or overlapping subnets.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::cluster::networks::OVERLAY;
use crate::ipam::{is_ipv6_text, Cidr, Family, Subnet, Subnet6};
use crate::store::{Attachment, Network, Store, StoreError, DEFAULT_NETWORK, MACVLAN};

#[derive(Debug, thiserror::Error)]
pub enum NetworksError {
    #[error("{0}")]
    Invalid(String),
    #[error("network with name {0} already exists")]
    Exists(String),
    #[error("network {0} not found")]
    NotFound(String),
    #[error("{0} is a pre-defined network and cannot be removed")]
    Predefined(String),
    #[error("network {name} has containers attached: {}", containers.join(", "))]
    InUse {
        name: String,
        containers: Vec<String>,
    },
    #[error("no free subnet for network {0}: every candidate (172.20-31.0.0/16, 192.168.0-240.0/20) overlaps a network or a host route")]
    NoFreeSubnet(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

impl From<crate::cluster::etcd::EtcdError> for NetworksError {
    fn from(e: crate::cluster::etcd::EtcdError) -> Self {
        NetworksError::Cluster(e.into())
    }
}

fn invalid(what: impl Into<String>) -> NetworksError {
    NetworksError::Invalid(what.into())
}

/// What `network create` was asked.
#[derive(Debug, Default, Clone)]
pub struct CreateRequest {
    pub name: String,
    pub driver: String,
    /// `--subnet`, `--gateway`, `--ip-range`: at most one of each per
    /// address family, told apart by their text.
    pub subnets: Vec<String>,
    pub gateways: Vec<String>,
    pub ip_ranges: Vec<String>,
    /// `--ipv6`: IPv6 too (a ULA /64 unless a subnet is given).
    pub ipv6: bool,
    /// `--ipv4=false`: no IPv4 (with `--ipv6`); `None` is Docker's default, on.
    pub ipv4: Option<bool>,
    pub internal: bool,
    pub mtu: Option<u32>,
    /// `-o key=value`
    pub options: Vec<String>,
    /// `--label key=value`
    pub labels: Vec<String>,
    /// When it was made (RFC 3339), as the caller tells time.
    pub created: String,
}

/// The names `network ls` always shows, as Docker does.
pub const PREDEFINED: [(&str, &str); 3] = [
    (DEFAULT_NETWORK, "bridge"),
    ("host", "host"),
    ("none", "null"),
];

/// Docker's rule for network names (which also keeps them out of paths:
/// they name files).
pub fn valid_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 64
}

/// A name a container may be found by (`--alias`): a host name, so nothing
/// of it can break out of its line in another container's /etc/hosts.
pub fn valid_alias(alias: &str) -> bool {
    !alias.is_empty()
        && alias.len() <= 253
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn check_name(name: &str) -> Result<(), NetworksError> {
    if !valid_name(name) {
        return Err(invalid(format!(
            "network name {name:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit (at most 64)"
        )));
    }
    if PREDEFINED.iter().any(|(n, _)| *n == name) {
        return Err(NetworksError::Exists(name.into()));
    }
    Ok(())
}

fn key_values(list: &[String], what: &str) -> Result<BTreeMap<String, String>, NetworksError> {
    list.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(invalid(format!("{what} {kv:?}: expected key=value"))),
        })
        .collect()
}

fn parse_bool(key: &str, v: &str) -> Result<bool, NetworksError> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(invalid(format!("option {key}={v}: expected true or false"))),
    }
}

fn random_id() -> String {
    let mut bytes = [0u8; 32];
    if fs::File::open("/dev/urandom")
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut bytes))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes[..16].copy_from_slice(&t.to_le_bytes());
        bytes[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every network defined on disk, by name.
pub fn definitions(store: &Store) -> Result<Vec<Network>, StoreError> {
    let entries = match fs::read_dir(&store.config_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StoreError::Io {
                path: store.config_dir.clone(),
                source,
            })
        }
    };
    let mut nets = Vec::new();
    for e in entries.filter_map(|e| e.ok()) {
        let file = e.file_name().to_string_lossy().into_owned();
        if let Some(name) = file.strip_suffix(".json").filter(|n| !n.starts_with('.')) {
            if let Some(n) = Network::load(store, name)? {
                nets.push(n);
            }
        }
    }
    nets.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(nets)
}

/// The subnets user networks are given when none is asked for, in order.
fn candidates() -> impl Iterator<Item = Subnet> {
    let b16 = (20..=31).map(|b| Subnet::new(Ipv4Addr::new(172, b, 0, 0), 16));
    let c20 = (0..16).map(|i| Subnet::new(Ipv4Addr::new(192, 168, i * 16, 0), 20));
    b16.chain(c20).map(|s| s.expect("the candidates are valid"))
}

/// A host route (not a default route) overlapping `subnet`.
fn route_overlap<A: Family>(subnet: &Cidr<A>, routes: &[(A, u8, Option<u32>)]) -> Option<String> {
    routes
        .iter()
        .filter(|(_, prefix, _)| *prefix > 0)
        .find(|(dest, prefix, _)| Cidr::covering(*dest, *prefix).overlaps(subnet))
        .map(|(dest, prefix, _)| format!("{dest}/{prefix}"))
}

/// The host's routes (destination, prefix, interface index) of both
/// families: what a new network's subnets must not overlap.
#[derive(Debug, Default, Clone)]
pub struct HostRoutes {
    pub v4: Vec<(Ipv4Addr, u8, Option<u32>)>,
    pub v6: Vec<(Ipv6Addr, u8, Option<u32>)>,
}

/// The host's routes, from /proc/net/route and /proc/net/ipv6_route (the
/// latter missing on a host without IPv6).
pub fn host_routes() -> Result<HostRoutes, NetworksError> {
    let read = |path: &str| {
        fs::read_to_string(path).map_err(|source| StoreError::Io {
            path: path.into(),
            source,
        })
    };
    Ok(HostRoutes {
        v4: parse_proc_routes(&read("/proc/net/route")?),
        v6: parse_proc_ipv6_routes(&read("/proc/net/ipv6_route").unwrap_or_default()),
    })
}

fn parse_proc_routes(text: &str) -> Vec<(Ipv4Addr, u8, Option<u32>)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let hex = |s: &str| u32::from_str_radix(s, 16).ok();
            // Addresses are in the kernel's (little-endian) byte order.
            let dest = Ipv4Addr::from(hex(f.get(1)?)?.to_le_bytes());
            let mask = hex(f.get(7)?)?.swap_bytes();
            Some((dest, mask.count_ones() as u8, None))
        })
        .collect()
}

/// /proc/net/ipv6_route: destination and prefix in hex, first; the
/// kernel's own link-local, multicast and loopback routes left out.
fn parse_proc_ipv6_routes(text: &str) -> Vec<(Ipv6Addr, u8, Option<u32>)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let dest = Ipv6Addr::from(u128::from_str_radix(f.first()?, 16).ok()?);
            let prefix = u8::from_str_radix(f.get(1)?, 16).ok()?;
            let own = dest.segments()[0] & 0xffc0 == 0xfe80
                || dest.segments()[0] >> 8 == 0xff
                || f.get(9) == Some(&"lo");
            (!own).then_some((dest, prefix, None))
        })
        .collect()
}

/// This host's ULA /48 (RFC 4193: fd00::/8 and 40 random bits), chosen
/// once and kept beside the definitions: the IPv6 subnets it gives
/// networks are /64s of it, unlikely to meet another host's.
fn host_ula(store: &Store) -> Result<Subnet6, NetworksError> {
    let path = store.config_dir.join(".ula48");
    if let Some(prefix) = fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().parse::<Subnet6>().ok())
    {
        return Ok(prefix);
    }
    let id = random_id();
    let global = u64::from_str_radix(&id[..10], 16).expect("hex digits");
    let bits = (0xfdu128 << 120) | (u128::from(global) << 80);
    let prefix = Subnet6::new(Ipv6Addr::from(bits), 48).expect("a /48 is a subnet");
    crate::store::write_whole(&path, format!("{prefix}\n").as_bytes())?;
    Ok(prefix)
}

/// Whether the current network namespace has an interface called `name`
/// (/proc/net/dev is per namespace; /sys/class/net is the mounter's).
fn interface_exists(name: &str) -> Result<bool, NetworksError> {
    let path = std::path::Path::new("/proc/net/dev");
    let text = fs::read_to_string(path).map_err(|source| StoreError::Io {
        path: path.into(),
        source,
    })?;
    Ok(text
        .lines()
        .skip(2)
        .filter_map(|l| l.split_once(':'))
        .any(|(n, _)| n.trim() == name))
}

/// A stable id for the predefined networks in `network ls`.
pub fn predefined_id(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// A subnet, gateway and range of one family, as asked.
type Asked<A> = (Option<Cidr<A>>, Option<A>, Option<Cidr<A>>);

/// `--subnet`, `--gateway` and `--ip-range` sorted into their families,
/// each checked against its family's subnet.
struct Families {
    v4: Asked<Ipv4Addr>,
    v6: Asked<Ipv6Addr>,
}

fn parse_families(req: &CreateRequest) -> Result<Families, NetworksError> {
    fn one<T>(
        list: &[String],
        what: &str,
        v6: bool,
        parse: impl Fn(&str) -> Result<T, NetworksError>,
    ) -> Result<Option<T>, NetworksError> {
        let mine: Vec<&String> = list.iter().filter(|s| is_ipv6_text(s) == v6).collect();
        match mine.as_slice() {
            [] => Ok(None),
            [one] => parse(one).map(Some),
            [a, b, ..] => Err(invalid(format!(
                "{what} {a} and {what} {b}: one {what} per address family"
            ))),
        }
    }
    fn family<A: Family>(req: &CreateRequest, v6: bool) -> Result<Asked<A>, NetworksError> {
        // The parse error names the text itself.
        let cidr = |what: &'static str| {
            move |s: &str| {
                s.parse::<Cidr<A>>().map_err(|e| match what {
                    "subnet" => invalid(e.to_string()),
                    _ => invalid(format!("{what}: {e}")),
                })
            }
        };
        let subnet = one(&req.subnets, "subnet", v6, cidr("subnet"))?;
        let ip_range = one(&req.ip_ranges, "ip-range", v6, cidr("ip-range"))?;
        let gateway = one(&req.gateways, "gateway", v6, |g| {
            g.parse::<A>()
                .map_err(|_| invalid(format!("gateway {g}: not an {} address", A::NAME)))
        })?;
        let Some(s) = subnet else {
            if let Some(g) = gateway {
                return Err(invalid(format!(
                    "gateway {g} needs an {} subnet (--subnet)",
                    A::NAME
                )));
            }
            if let Some(r) = ip_range {
                return Err(invalid(format!(
                    "ip-range {r} needs an {} subnet (--subnet)",
                    A::NAME
                )));
            }
            return Ok((None, None, None));
        };
        if let Some(g) = gateway.filter(|g| !s.is_host(*g)) {
            return Err(invalid(format!(
                "gateway {g} is not a host address of subnet {s}"
            )));
        }
        if let Some(r) = ip_range.filter(|r| !s.contains_subnet(r)) {
            return Err(invalid(format!("ip-range {r} is not inside subnet {s}")));
        }
        Ok((subnet, gateway, ip_range))
    }
    if !req.ipv6 {
        let lists = [
            ("subnet", &req.subnets),
            ("gateway", &req.gateways),
            ("ip-range", &req.ip_ranges),
        ];
        for (what, list) in lists {
            if let Some(v6) = list.iter().find(|s| is_ipv6_text(s)) {
                return Err(invalid(format!("{what} {v6} is IPv6: add --ipv6")));
            }
        }
    }
    let v6 = family::<Ipv6Addr>(req, true)?;
    Ok(Families {
        v4: family::<Ipv4Addr>(req, false)?,
        v6,
    })
}

/// A definition that asks for IPv6 without a subnet (the default
/// network's, edited by hand: `"enableIPv6": true`) gets a ULA /64 and its
/// first address as gateway, saved, under the definitions' lock.
pub fn settle_ipv6(store: &Store, name: &str) -> Result<Option<Network>, NetworksError> {
    // Looked at first without the lock: the common case has nothing to do.
    match Network::load(store, name)? {
        Some(net) if net.enable_ipv6 && net.subnet6.is_none() => {}
        other => return Ok(other),
    }
    let _lock = store.lock_definitions()?;
    let Some(mut net) = Network::load(store, name)? else {
        return Ok(None);
    };
    if net.enable_ipv6 && net.subnet6.is_none() {
        let others: Vec<Network> = definitions(store)?
            .into_iter()
            .filter(|n| n.name != name)
            .collect();
        let routes = host_routes()?;
        let subnet6 = settle(
            None,
            &others,
            |n| n.subnet6,
            &routes.v6,
            |clear| free_ula_subnet(store, clear),
        )?;
        net.subnet6 = Some(subnet6);
        net.gateway6 = Some(subnet6.first_host());
        net.save(store)?;
    }
    Ok(Some(net))
}

/// The first /64 of the host's ULA /48 no network and no route overlaps.
fn free_ula_subnet(
    store: &Store,
    clear: &dyn Fn(&Subnet6) -> bool,
) -> Result<Subnet6, NetworksError> {
    let ula = host_ula(store)?;
    (0..1u128 << 16)
        .filter_map(|i| ula.nth_subnet(64, i))
        .find(|c| clear(c))
        .ok_or_else(|| invalid(format!("no free /64 left in this host's {ula}")))
}

/// Checks the request against the networks that exist and the host's routes
/// and writes the definition.
pub fn create(
    store: &Store,
    req: &CreateRequest,
    routes: &HostRoutes,
) -> Result<Network, NetworksError> {
    check_name(&req.name)?;
    let driver = if req.driver.is_empty() {
        "bridge"
    } else {
        req.driver.as_str()
    };
    let options = key_values(&req.options, "option")?;
    let labels = key_values(&req.labels, "label")?;
    if driver != "bridge" && driver != MACVLAN && driver != OVERLAY {
        return Err(invalid(format!(
            "driver {driver:?}: unknown (minirun has bridge, macvlan and overlay)"
        )));
    }
    let mut icc = true;
    let mut anti_spoofing = true;
    let mut parent = None;
    let mut vni = None;
    for (k, v) in &options {
        match (driver, k.as_str()) {
            ("bridge" | OVERLAY, "icc" | "com.docker.network.bridge.enable_icc") => {
                icc = parse_bool(k, v)?
            }
            ("bridge" | OVERLAY, "anti_spoofing") => anti_spoofing = parse_bool(k, v)?,
            (OVERLAY, "vni" | "com.docker.network.driver.overlay.vxlanid_list") => {
                vni = Some(v.parse::<u32>().map_err(|_| {
                    invalid(format!(
                        "option {k}={v}: a VXLAN id is a number, 1 to 16777215"
                    ))
                })?)
            }
            (MACVLAN, "parent") => parent = Some(v.clone()),
            ("bridge", "parent") => {
                return Err(invalid(format!(
                    "option parent={v}: only the macvlan driver has a parent"
                )))
            }
            (MACVLAN, "macvlan_mode") if v == "bridge" => {}
            (MACVLAN, "macvlan_mode") => {
                return Err(invalid(format!(
                    "option macvlan_mode={v}: minirun's macvlan networks are in bridge mode"
                )))
            }
            _ => {
                return Err(invalid(format!(
                    "option {k:?}: unknown for driver {driver}"
                )))
            }
        }
    }
    if driver == MACVLAN {
        let parent = parent
            .as_deref()
            .ok_or_else(|| invalid("driver macvlan needs -o parent=IFACE"))?;
        if !interface_exists(parent)? {
            return Err(invalid(format!(
                "option parent={parent}: no such interface on this host"
            )));
        }
    }
    let family = parse_families(req)?;
    let ipv4 = req.ipv4 != Some(false);
    if !ipv4 && !req.ipv6 {
        return Err(invalid(
            "--ipv4=false needs --ipv6: a network without IPv4 has IPv6 only",
        ));
    }
    if !ipv4 && family.v4 != (None, None, None) {
        return Err(invalid(
            "--ipv4=false: an IPv4 subnet, gateway or ip-range makes no sense on an IPv6-only network",
        ));
    }
    if driver == OVERLAY && (req.ipv6 || family.v6.0.is_some()) {
        return Err(invalid(
            "--ipv6: minirun's overlay networks carry IPv4 only",
        ));
    }
    let (subnet, gateway, ip_range) = family.v4;
    // What the request says of any driver's network.
    let requested = move |mut net: Network| {
        net.created = req.created.clone();
        net.ip_range = ip_range;
        net.internal = req.internal;
        net.icc = icc;
        net.anti_spoofing = anti_spoofing;
        net.name_resolution = true;
        net.labels = labels;
        net
    };
    if driver == OVERLAY {
        // Subnet and gateway are settled by the cluster's create.
        let mut net = requested(Network::without_addresses(&req.name, ""));
        net.subnet = subnet;
        net.gateway = gateway;
        net.driver = OVERLAY.into();
        net.mtu = req
            .mtu
            .unwrap_or(1500 - crate::cluster::networks::VXLAN_OVERHEAD);
        return create_overlay(store, net, subnet, vni, routes);
    }

    let _lock = store.lock_definitions()?;
    if store.network_config(&req.name).exists() {
        return Err(NetworksError::Exists(req.name.clone()));
    }
    // On a cluster host the overlay networks are this host's too: their
    // subnets are routed to their bridges here once a container attaches.
    let overlays = overlay_definitions().unwrap_or_else(|e| {
        // A local network needs no store; it is only checked against
        // what the store could have said.
        eprintln!(
            "minirun: network create {}: overlay networks not checked: {e}",
            req.name
        );
        Vec::new()
    });
    if overlays.iter().any(|n| n.name == req.name) {
        return Err(NetworksError::Exists(req.name.clone()));
    }
    let existing: Vec<Network> = definitions(store)?.into_iter().chain(overlays).collect();
    let id = random_id();
    let mut net = requested(Network::without_addresses(
        &req.name,
        &format!("mr-{}", &id[..12]),
    ));
    net.id = id;
    if ipv4 {
        let s = settle(
            subnet,
            &existing,
            |n| n.subnet,
            &routes.v4,
            |clear| {
                candidates()
                    .find(|c| clear(c))
                    .ok_or_else(|| NetworksError::NoFreeSubnet(req.name.clone()))
            },
        )?;
        net.subnet = Some(s);
        net.gateway = Some(gateway.unwrap_or_else(|| s.first_host()));
    }
    if req.ipv6 {
        let (subnet6, gateway6, ip_range6) = family.v6;
        let s6 = settle(
            subnet6,
            &existing,
            |n| n.subnet6,
            &routes.v6,
            |clear| free_ula_subnet(store, clear),
        )?;
        net.enable_ipv6 = true;
        net.subnet6 = Some(s6);
        net.gateway6 = Some(gateway6.unwrap_or_else(|| s6.first_host()));
        net.ip_range6 = ip_range6;
    }
    if driver == MACVLAN {
        net.driver = MACVLAN.into();
        net.parent = parent;
    }
    if let Some(mtu) = req.mtu {
        net.mtu = mtu;
    }
    net.validate().map_err(NetworksError::Invalid)?;
    net.check_host_subnet().map_err(NetworksError::Invalid)?;
    net.save(store)?;
    Ok(net)
}

/// A subnet asked for, checked against the subnets of its family the other
/// networks have (`of`) and the host's routes of that family; none asked
/// for: `pick` finds one clear of both.
fn settle<A: Family>(
    asked: Option<Cidr<A>>,
    existing: &[Network],
    of: impl Fn(&Network) -> Option<Cidr<A>>,
    routes: &[(A, u8, Option<u32>)],
    pick: impl FnOnce(&dyn Fn(&Cidr<A>) -> bool) -> Result<Cidr<A>, NetworksError>,
) -> Result<Cidr<A>, NetworksError> {
    let clear = |c: &Cidr<A>| {
        !existing
            .iter()
            .any(|n| of(n).is_some_and(|o| o.overlaps(c)))
            && route_overlap(c, routes).is_none()
    };
    let Some(s) = asked else {
        return pick(&clear);
    };
    if let Some((other, o)) = existing
        .iter()
        .find_map(|n| of(n).filter(|o| o.overlaps(&s)).map(|o| (n, o)))
    {
        let kind = if other.is_overlay() {
            "overlay network"
        } else {
            "network"
        };
        return Err(invalid(format!(
            "subnet {s} overlaps subnet {o} of {kind} {}",
            other.name
        )));
    }
    if let Some(route) = route_overlap(&s, routes) {
        return Err(invalid(format!(
            "subnet {s} overlaps the host's route to {route}"
        )));
    }
    Ok(s)
}

/// `network create -d overlay`: checked against this host's networks and
/// routes, then against every overlay network in the cluster store, where
/// it is written.
fn create_overlay(
    store: &Store,
    mut net: Network,
    subnet: Option<Subnet>,
    vni: Option<u32>,
    routes: &HostRoutes,
) -> Result<Network, NetworksError> {
    let cluster = crate::cluster::Cluster::required()?;
    let _lock = store.lock_definitions()?;
    if store.network_config(&net.name).exists() {
        return Err(NetworksError::Exists(net.name.clone()));
    }
    let local = definitions(store)?;
    let id = random_id();
    net.bridge = format!("mr-{}", &id[..12]);
    net.id = id;
    let also_taken = |s: &Subnet| {
        local
            .iter()
            .find_map(|n| n.subnet.filter(|o| o.overlaps(s)).map(|o| (n, o)))
            .map(|(n, o)| format!("subnet {o} of network {}", n.name))
            .or_else(|| route_overlap(s, &routes.v4).map(|r| format!("the host's route to {r}")))
    };
    crate::cluster::networks::create(&cluster, net, subnet, vni, &also_taken)
}

/// A network by name: this host's definition, else the cluster's overlay
/// network of that name (when the host is in a cluster).
pub fn find(store: &Store, name: &str) -> Result<Option<Network>, NetworksError> {
    if let Some(net) = Network::load(store, name)? {
        return Ok(Some(net));
    }
    match crate::cluster::Cluster::open()? {
        Some(cluster) => Ok(crate::cluster::networks::get(&cluster, name)?.map(|(n, _)| n)),
        None => Ok(None),
    }
}

/// The overlay networks, when this host is in a cluster.
pub fn overlay_definitions() -> Result<Vec<Network>, NetworksError> {
    match crate::cluster::Cluster::open()? {
        Some(cluster) => Ok(crate::cluster::networks::list(&cluster)?),
        None => Ok(Vec::new()),
    }
}

/// The containers attached to `name`, by their records (not those whose
/// attach is still at work, or died at it).
pub fn attached(store: &Store, name: &str) -> Result<Vec<Attachment>, StoreError> {
    Ok(store
        .list_attachments()?
        .into_iter()
        .filter(|a| a.network == name && a.attaching.is_none())
        .collect())
}

/// `network inspect`: Docker's shape.
pub fn inspect(store: &Store, name: &str) -> Result<serde_json::Value, NetworksError> {
    if !valid_name(name) {
        return Err(NetworksError::NotFound(name.into()));
    }
    let (net, containers) = match Network::load(store, name)? {
        Some(net) => {
            let containers: serde_json::Map<String, serde_json::Value> = attached(store, name)?
                .into_iter()
                .map(|a| {
                    (
                        a.container.clone(),
                        serde_json::json!({
                            "Name": a.container,
                            "EndpointID": a.host_interface,
                            "MacAddress": a.mac_address,
                            "IPv4Address": a.ip_address
                                .map_or_else(String::new, |ip| format!("{ip}/{}", a.prefix_len)),
                            "IPv6Address": a.ip6_address
                                .map_or_else(String::new, |ip6| format!("{ip6}/{}", a.prefix6_len)),
                            "Aliases": a.names,
                        }),
                    )
                })
                .collect();
            (net, containers)
        }
        None => match inspect_overlay(name)? {
            Some(found) => found,
            None => return predefined(name).ok_or_else(|| NetworksError::NotFound(name.into())),
        },
    };
    let mut configs = Vec::new();
    if let Some((subnet, gateway)) = net.ipv4() {
        let mut config = serde_json::json!({
            "Subnet": subnet.to_string(),
            "Gateway": gateway.to_string(),
        });
        if let Some(r) = net.ip_range {
            config["IPRange"] = r.to_string().into();
        }
        configs.push(config);
    }
    if let Some((subnet6, gateway6)) = net.ipv6() {
        let mut config6 = serde_json::json!({
            "Subnet": subnet6.to_string(),
            "Gateway": gateway6.to_string(),
        });
        if let Some(r) = net.ip_range6 {
            config6["IPRange"] = r.to_string().into();
        }
        configs.push(config6);
    }
    let mut options = serde_json::Map::new();
    if let Some(parent) = &net.parent {
        options.insert("parent".into(), parent.clone().into());
        options.insert("macvlan_mode".into(), "bridge".into());
    } else {
        options.insert(
            "com.docker.network.bridge.name".into(),
            net.bridge.clone().into(),
        );
        options.insert("icc".into(), net.icc.to_string().into());
        options.insert("anti_spoofing".into(), net.anti_spoofing.to_string().into());
    }
    options.insert(
        "com.docker.network.driver.mtu".into(),
        net.mtu.to_string().into(),
    );
    if let Some(vni) = net.vni {
        options.insert(
            "com.docker.network.driver.overlay.vxlanid_list".into(),
            vni.to_string().into(),
        );
    }
    Ok(serde_json::json!({
        "Id": if net.id.is_empty() { predefined_id(&net.name) } else { net.id.clone() },
        "Name": net.name,
        "Created": net.created,
        "Scope": if net.is_overlay() { "global" } else { "local" },
        "Driver": if net.is_macvlan() { MACVLAN } else if net.is_overlay() { OVERLAY } else { "bridge" },
        "EnableIPv4": net.subnet.is_some(),
        "EnableIPv6": net.enable_ipv6,
        "IPAM": {"Driver": "default", "Options": {}, "Config": configs},
        "Internal": net.internal,
        "Attachable": false,
        "Ingress": false,
        "Containers": containers,
        "Options": options,
        "Labels": net.labels,
    }))
}

/// `Containers` of `network inspect`, by name.
type ContainersJson = serde_json::Map<String, serde_json::Value>;

/// An overlay network and its containers on every host, each with its host.
fn inspect_overlay(name: &str) -> Result<Option<(Network, ContainersJson)>, NetworksError> {
    let Some(cluster) = crate::cluster::Cluster::open()? else {
        return Ok(None);
    };
    let Some((net, _)) = crate::cluster::networks::get(&cluster, name)? else {
        return Ok(None);
    };
    let hosts = crate::cluster::hosts(&cluster)?;
    let (endpoints, _) = crate::cluster::ipam::endpoints(&cluster, name)?;
    let mut containers = serde_json::Map::new();
    for e in endpoints {
        let host_name = hosts
            .iter()
            .find(|h| h.member.advertise == e.host)
            .map_or_else(|| e.host.to_string(), |h| h.member.name.clone());
        let key = if containers.contains_key(&e.container) {
            format!("{}@{}", e.container, e.host)
        } else {
            e.container.clone()
        };
        containers.insert(
            key,
            serde_json::json!({
                "Name": e.container,
                "EndpointID": format!("{}/{}", e.host, e.container),
                "MacAddress": e.mac,
                "IPv4Address": format!("{}/{}", e.ip, net.subnet.map_or(32, |s| s.prefix())),
                "IPv6Address": "",
                "Aliases": e.names,
                "Host": host_name,
                "HostAddress": e.host.to_string(),
            }),
        );
    }
    Ok(Some((net, containers)))
}

/// `host`, `none`, and `bridge` before its first container chose its subnet.
fn predefined(name: &str) -> Option<serde_json::Value> {
    let (_, driver) = PREDEFINED.iter().find(|(n, _)| *n == name)?;
    let options = if name == DEFAULT_NETWORK {
        serde_json::json!({"com.docker.network.bridge.name": crate::store::DEFAULT_BRIDGE})
    } else {
        serde_json::json!({})
    };
    Some(serde_json::json!({
        "Name": name,
        "Id": predefined_id(name),
        "Created": "",
        "Scope": "local",
        "Driver": driver,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": {}, "Config": []},
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "Containers": {},
        "Options": options,
        "Labels": {},
    }))
}

/// `network rm`: refused while containers are attached, naming them.
pub fn remove(store: &Store, name: &str) -> Result<(), NetworksError> {
    if PREDEFINED.iter().any(|(n, _)| *n == name) {
        return Err(NetworksError::Predefined(name.into()));
    }
    if !valid_name(name) {
        return Err(NetworksError::NotFound(name.into()));
    }
    let _lock = store.lock_definitions()?;
    let Some(_net) = Network::load(store, name)? else {
        return match crate::cluster::Cluster::open()? {
            Some(cluster) => crate::cluster::networks::remove(&cluster, name),
            None => Err(NetworksError::NotFound(name.into())),
        };
    };
    let _net_lock = store.lock_network(name)?;
    // Every record counts, also a killed attach's: its detach (or gc) needs
    // the network's bridge marker and leases to undo it.
    let containers: Vec<String> = store
        .list_attachments()?
        .into_iter()
        .filter(|a| a.network == name)
        .map(|a| a.container)
        .collect();
    if !containers.is_empty() {
        return Err(NetworksError::InUse {
            name: name.into(),
            containers,
        });
    }
    let path = store.network_config(name);
    fs::remove_file(&path).map_err(|source| StoreError::Io { path, source })?;
    // What the last detach left: an empty lease directory and the lock.
    let _ = fs::remove_dir_all(store.leases(name));
    let _ = fs::remove_file(store.bridge_marker(name));
    crate::segment::forget(store, name);
    crate::etc_files::forget_network(store, name);
    let _ = fs::remove_file(store.run_dir.join("networks").join(format!("{name}.lock")));
    Ok(())
}

/// `network prune`: every user network of this host without containers
/// goes (overlay networks are removed by name).
pub fn prune(store: &Store) -> Result<Vec<String>, NetworksError> {
    let mut removed = Vec::new();
    // This host's networks only: an overlay network is the cluster's, and
    // an unused one may be about to be used on another host.
    for net in definitions(store)? {
        if net.name == DEFAULT_NETWORK {
            continue;
        }
        match remove(store, &net.name) {
            Ok(()) => removed.push(net.name),
            Err(NetworksError::InUse { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(name: &str) -> Store {
        let dir =
            std::env::temp_dir().join(format!("minirun-networks-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        Store {
            run_dir: dir.join("run"),
            config_dir: dir.join("config"),
        }
    }

    fn req(name: &str) -> CreateRequest {
        CreateRequest {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn proc_routes_parse() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        assert_eq!(
            parse_proc_routes(text),
            [
                (Ipv4Addr::new(0, 0, 0, 0), 0, None),
                (Ipv4Addr::new(10, 0, 0, 0), 16, None)
            ]
        );
    }

    #[test]
    fn subnets_are_picked_around_networks_and_routes() {
        let s = store("pick");
        let routes = HostRoutes {
            v4: vec![(Ipv4Addr::new(172, 20, 0, 0), 16, Some(3))],
            v6: Vec::new(),
        };
        let a = create(&s, &req("a"), &routes).unwrap();
        assert_eq!(a.subnet.unwrap().to_string(), "172.21.0.0/16");
        assert_eq!(a.gateway, Some(Ipv4Addr::new(172, 21, 0, 1)));
        assert!(
            a.bridge.starts_with("mr-") && a.bridge.len() == 15,
            "{}",
            a.bridge
        );
        let b = create(&s, &req("b"), &routes).unwrap();
        assert_eq!(b.subnet.unwrap().to_string(), "172.22.0.0/16");
        assert!(matches!(
            create(&s, &req("a"), &routes),
            Err(NetworksError::Exists(_))
        ));
        assert!(matches!(
            create(&s, &req("host"), &routes),
            Err(NetworksError::Exists(_))
        ));
        let names: Vec<String> = definitions(&s)
            .unwrap()
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
        remove(&s, "a").unwrap();
        assert!(matches!(remove(&s, "a"), Err(NetworksError::NotFound(_))));
        assert!(matches!(
            remove(&s, "../config/b"),
            Err(NetworksError::NotFound(_))
        ));
        assert!(!valid_name("../x") && !valid_name(".x") && valid_name("a.b-c_1"));
        assert_eq!(prune(&s).unwrap(), ["b"]);
        assert_eq!(inspect(&s, "none").unwrap()["Driver"], "null");
        assert_eq!(
            inspect(&s, "bridge").unwrap()["Options"]["com.docker.network.bridge.name"],
            "minirun0"
        );
        assert!(matches!(inspect(&s, "b"), Err(NetworksError::NotFound(_))));
        let _ = fs::remove_dir_all(s.run_dir.parent().unwrap());
    }

    #[test]
    fn bad_requests_name_what_is_wrong() {
        let s = store("bad");
        let mut r = req("n");
        r.subnets = vec!["10.1.0.0/16".into()];
        create(&s, &r, &HostRoutes::default()).unwrap();
        let e = create(&s, &r, &HostRoutes::default())
            .unwrap_err()
            .to_string();
        assert_eq!(e, "network with name n already exists");
        let mut r = req("m");
        r.subnets = vec!["10.1.128.0/17".into()];
        let e = create(&s, &r, &HostRoutes::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "subnet 10.1.128.0/17 overlaps subnet 10.1.0.0/16 of network n"
        );
        let e = |f: &dyn Fn(&mut CreateRequest)| {
            let mut r = req("x");
            f(&mut r);
            create(
                &s,
                &r,
                &HostRoutes {
                    v4: vec![(Ipv4Addr::new(10, 9, 0, 0), 24, Some(2))],
                    v6: vec![("fd99::".parse().unwrap(), 16, None)],
                },
            )
            .unwrap_err()
            .to_string()
        };
        assert!(e(&|r| {
            r.subnets = vec!["10.2.0.0/16".into()];
            r.gateways = vec!["10.3.0.1".into()];
        })
        .contains("gateway 10.3.0.1 is not a host address of subnet 10.2.0.0/16"));
        assert!(e(&|r| {
            r.subnets = vec!["10.2.0.0/16".into()];
            r.ip_ranges = vec!["10.4.0.0/24".into()];
        })
        .contains("ip-range 10.4.0.0/24 is not inside subnet 10.2.0.0/16"));
        assert!(e(&|r| r.subnets = vec!["10.9.0.0/16".into()])
            .contains("overlaps the host's route to 10.9.0.0/24"));
        assert!(e(&|r| r.driver = "ipvlan".into()).contains("driver \"ipvlan\": unknown"));
        if !crate::cluster::config_path().exists() {
            assert!(e(&|r| r.driver = "overlay".into()).contains("not in a cluster"));
        }
        assert!(e(&|r| {
            r.driver = "overlay".into();
            r.options = vec!["vni=x".into()];
        })
        .contains("a VXLAN id is a number"));
        assert!(e(&|r| r.driver = "macvlan".into()).contains("needs -o parent=IFACE"));
        assert!(e(&|r| {
            r.driver = "macvlan".into();
            r.options = vec!["parent=no-such-if0".into()];
        })
        .contains("parent=no-such-if0: no such interface"));
        assert!(e(&|r| r.options = vec!["parent=lo".into()]).contains("only the macvlan driver"));
        assert!(e(&|r| r.options = vec!["foo=1".into()]).contains("option \"foo\": unknown"));
        assert!(e(&|r| r.options = vec!["icc=maybe".into()]).contains("expected true or false"));
        assert!(e(&|r| r.name = "-x".into()).contains("network name \"-x\""));
        assert!(e(&|r| r.gateways = vec!["10.0.0.1".into()])
            .contains("gateway 10.0.0.1 needs an IPv4 subnet (--subnet)"));
        let _ = fs::remove_dir_all(s.run_dir.parent().unwrap());
    }

    #[test]
    fn dual_stack_requests() {
        let s = store("v6");
        let mut r = req("d");
        r.ipv6 = true;
        r.subnets = vec!["10.5.0.0/24".into(), "fd42:5::/64".into()];
        r.gateways = vec!["fd42:5::fe".into()];
        let d = create(&s, &r, &HostRoutes::default()).unwrap();
        assert_eq!(d.subnet.unwrap().to_string(), "10.5.0.0/24");
        assert_eq!(d.gateway, Some(Ipv4Addr::new(10, 5, 0, 1)));
        assert_eq!(d.subnet6.unwrap().to_string(), "fd42:5::/64");
        assert_eq!(d.gateway6.unwrap().to_string(), "fd42:5::fe");
        let text = inspect(&s, "d").unwrap();
        assert_eq!(text["EnableIPv6"], true);
        assert_eq!(text["IPAM"]["Config"][1]["Subnet"], "fd42:5::/64");
        // Without a subnet: /64s of one ULA /48 of this host, in turn.
        let mut r = req("u1");
        r.ipv6 = true;
        let u1 = create(&s, &r, &HostRoutes::default())
            .unwrap()
            .subnet6
            .unwrap();
        r.name = "u2".into();
        let u2 = create(&s, &r, &HostRoutes::default())
            .unwrap()
            .subnet6
            .unwrap();
        let ula: Subnet6 = fs::read_to_string(s.config_dir.join(".ula48"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(ula.prefix(), 48);
        assert_eq!(ula.addr().segments()[0] >> 8, 0xfd);
        assert!(ula.contains_subnet(&u1) && ula.contains_subnet(&u2) && u1 != u2);
        assert_eq!((u1.prefix(), u2.prefix()), (64, 64));
        let e = |f: &dyn Fn(&mut CreateRequest)| {
            let mut r = req("x");
            r.ipv6 = true;
            f(&mut r);
            create(&s, &r, &HostRoutes::default())
                .unwrap_err()
                .to_string()
        };
        assert!(e(&|r| r.subnets = vec!["fd42:6::/129".into()])
            .contains("subnet \"fd42:6::/129\" is not an IPv6 CIDR such as"));
        assert!(e(&|r| {
            r.subnets = vec!["fd42:6::/64".into()];
            r.gateways = vec!["fd42:7::1".into()];
        })
        .contains("gateway fd42:7::1 is not a host address of subnet fd42:6::/64"));
        assert!(e(&|r| r.gateways = vec!["fd42:7::1".into()])
            .contains("gateway fd42:7::1 needs an IPv6 subnet"));
        assert!(e(&|r| r.subnets = vec!["fd42:5:0:0:8000::/65".into()])
            .contains("overlaps subnet fd42:5::/64 of network d"));
        assert!(
            e(&|r| r.subnets = vec!["fd42:6::/64".into(), "fd42:7::/64".into()])
                .contains("one subnet per address family")
        );
        assert!(e(&|r| r.subnets = vec!["fe80::/64".into()]).contains("link-local"));
        assert!(e(&|r| {
            r.ipv6 = false;
            r.subnets = vec!["fd42:6::/64".into()];
        })
        .contains("subnet fd42:6::/64 is IPv6: add --ipv6"));
        assert!(e(&|r| {
            r.ipv6 = false;
            r.ipv4 = Some(false);
        })
        .contains("--ipv4=false needs --ipv6"));
        assert!(e(&|r| {
            r.ipv4 = Some(false);
            r.subnets = vec!["10.7.0.0/24".into()];
        })
        .contains("makes no sense on an IPv6-only network"));
        // IPv6 only: no IPv4 in the definition at all.
        let mut r = req("only6");
        r.ipv6 = true;
        r.ipv4 = Some(false);
        r.subnets = vec!["fd42:8::/64".into()];
        let only6 = create(&s, &r, &HostRoutes::default()).unwrap();
        assert_eq!((only6.subnet, only6.gateway), (None, None));
        assert_eq!(only6.gateway6.unwrap().to_string(), "fd42:8::1");
        let text = fs::read_to_string(s.network_config("only6")).unwrap();
        assert!(
            !text.contains("\"subnet\"") && text.contains("\"subnet6\""),
            "{text}"
        );
        let inspected = inspect(&s, "only6").unwrap();
        assert_eq!(inspected["EnableIPv4"], false);
        assert_eq!(inspected["IPAM"]["Config"][0]["Subnet"], "fd42:8::/64");
        let _ = fs::remove_dir_all(s.run_dir.parent().unwrap());
    }
}
