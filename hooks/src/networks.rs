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
use std::net::Ipv4Addr;

use crate::cluster::networks::OVERLAY;
use crate::ipam::Subnet;
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
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
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
fn route_overlap(subnet: &Subnet, routes: &[(Ipv4Addr, u8, Option<u32>)]) -> Option<String> {
    routes
        .iter()
        .filter(|(_, prefix, _)| *prefix > 0)
        .find(|(dest, prefix, _)| {
            Subnet::new(*dest, (*prefix).min(30)).is_ok_and(|r| r.overlaps(subnet))
        })
        .map(|(dest, prefix, _)| format!("{dest}/{prefix}"))
}

/// The host's IPv4 routes (destination, prefix, interface index) from
/// /proc/net/route: what a new network's subnet must not overlap.
pub fn host_routes() -> Result<Vec<(Ipv4Addr, u8, Option<u32>)>, NetworksError> {
    let path = std::path::Path::new("/proc/net/route");
    let text = fs::read_to_string(path).map_err(|source| StoreError::Io {
        path: path.into(),
        source,
    })?;
    Ok(parse_proc_routes(&text))
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

/// Checks the request against the networks that exist and the host's routes
/// and writes the definition.
pub fn create(
    store: &Store,
    req: &CreateRequest,
    routes: &[(Ipv4Addr, u8, Option<u32>)],
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
    let parse_cidr = |what: &str, s: &str| {
        s.parse::<Subnet>()
            .map_err(|e| invalid(format!("{what} {s}: {e}")))
    };
    let subnet = req
        .subnet
        .as_deref()
        .map(|s| parse_cidr("subnet", s))
        .transpose()?;
    let ip_range = req
        .ip_range
        .as_deref()
        .map(|s| parse_cidr("ip-range", s))
        .transpose()?;
    let gateway = req
        .gateway
        .as_deref()
        .map(|g| {
            g.parse::<Ipv4Addr>()
                .map_err(|_| invalid(format!("gateway {g}: not an IPv4 address")))
        })
        .transpose()?;
    if subnet.is_none() && (gateway.is_some() || ip_range.is_some()) {
        return Err(invalid("gateway and ip-range need a subnet (--subnet)"));
    }
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
        let placeholder =
            Subnet::new(Ipv4Addr::new(10, 0, 0, 0), 24).expect("10.0.0.0/24 is a subnet");
        let mut net = requested(Network::new(
            &req.name,
            "",
            subnet.unwrap_or(placeholder),
            Ipv4Addr::UNSPECIFIED,
        ));
        net.gateway = gateway.unwrap_or(Ipv4Addr::UNSPECIFIED);
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
    let subnet = match subnet {
        Some(s) => {
            if let Some(other) = existing.iter().find(|n| n.subnet.overlaps(&s)) {
                let kind = if other.is_overlay() {
                    "overlay network"
                } else {
                    "network"
                };
                return Err(invalid(format!(
                    "subnet {s} overlaps subnet {} of {kind} {}",
                    other.subnet, other.name
                )));
            }
            if let Some(route) = route_overlap(&s, routes) {
                return Err(invalid(format!(
                    "subnet {s} overlaps the host's route to {route}"
                )));
            }
            s
        }
        None => candidates()
            .find(|c| {
                !existing.iter().any(|n| n.subnet.overlaps(c)) && route_overlap(c, routes).is_none()
            })
            .ok_or_else(|| NetworksError::NoFreeSubnet(req.name.clone()))?,
    };
    let id = random_id();
    let mut net = requested(Network::new(
        &req.name,
        &format!("mr-{}", &id[..12]),
        subnet,
        gateway.unwrap_or_else(|| subnet.first_host()),
    ));
    net.id = id;
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

/// `network create -d overlay`: checked against this host's networks and
/// routes, then against every overlay network in the cluster store, where
/// it is written.
fn create_overlay(
    store: &Store,
    mut net: Network,
    subnet: Option<Subnet>,
    vni: Option<u32>,
    routes: &[(Ipv4Addr, u8, Option<u32>)],
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
            .find(|n| n.subnet.overlaps(s))
            .map(|n| format!("subnet {} of network {}", n.subnet, n.name))
            .or_else(|| route_overlap(s, routes).map(|r| format!("the host's route to {r}")))
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
                            "IPv4Address": format!("{}/{}", a.ip_address, a.prefix_len),
                            "IPv6Address": "",
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
    let mut config = serde_json::json!({
        "Subnet": net.subnet.to_string(),
        "Gateway": net.gateway.to_string(),
    });
    if let Some(r) = net.ip_range {
        config["IPRange"] = r.to_string().into();
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
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": {}, "Config": [config]},
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
                "IPv4Address": format!("{}/{}", e.ip, net.subnet.prefix()),
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
        let routes = [(Ipv4Addr::new(172, 20, 0, 0), 16, Some(3))];
        let a = create(&s, &req("a"), &routes).unwrap();
        assert_eq!(a.subnet.to_string(), "172.21.0.0/16");
        assert_eq!(a.gateway, Ipv4Addr::new(172, 21, 0, 1));
        assert!(
            a.bridge.starts_with("mr-") && a.bridge.len() == 15,
            "{}",
            a.bridge
        );
        let b = create(&s, &req("b"), &routes).unwrap();
        assert_eq!(b.subnet.to_string(), "172.22.0.0/16");
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
        r.subnet = Some("10.1.0.0/16".into());
        create(&s, &r, &[]).unwrap();
        let e = create(&s, &r, &[]).unwrap_err().to_string();
        assert_eq!(e, "network with name n already exists");
        let mut r = req("m");
        r.subnet = Some("10.1.128.0/17".into());
        let e = create(&s, &r, &[]).unwrap_err().to_string();
        assert_eq!(
            e,
            "subnet 10.1.128.0/17 overlaps subnet 10.1.0.0/16 of network n"
        );
        let e = |f: &dyn Fn(&mut CreateRequest)| {
            let mut r = req("x");
            f(&mut r);
            create(&s, &r, &[(Ipv4Addr::new(10, 9, 0, 0), 24, Some(2))])
                .unwrap_err()
                .to_string()
        };
        assert!(e(&|r| {
            r.subnet = Some("10.2.0.0/16".into());
            r.gateway = Some("10.3.0.1".into());
        })
        .contains("gateway 10.3.0.1 is not a host address of subnet 10.2.0.0/16"));
        assert!(e(&|r| {
            r.subnet = Some("10.2.0.0/16".into());
            r.ip_range = Some("10.4.0.0/24".into());
        })
        .contains("ip-range 10.4.0.0/24 is not inside subnet 10.2.0.0/16"));
        assert!(e(&|r| r.subnet = Some("10.9.0.0/16".into()))
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
        assert!(e(&|r| r.gateway = Some("10.0.0.1".into())).contains("need a subnet"));
        let _ = fs::remove_dir_all(s.run_dir.parent().unwrap());
    }
}
