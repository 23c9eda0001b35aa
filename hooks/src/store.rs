//! What minirun-net keeps on disk.
//!
//! - Network definitions persist: `/var/lib/minirun/networks/<name>.json`
//!   (`MINIRUN_NET_CONFIG_DIR`).
//! - Everything tied to running containers lives on tmpfs, reset by a reboot:
//!   `/run/minirun/net` (`MINIRUN_NET_DIR`) holds a lock and a lease directory
//!   per network (`networks/<name>/`), the firewall's lock, and one attachment
//!   record per container (`containers/<id>.json`) with the files the container
//!   sees as /etc/hosts, /etc/hostname and /etc/resolv.conf (`containers/<id>/`).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::ipam::{Subnet, Subnet6};
use crate::ports::PortMapping;

pub const RUN_DIR_ENV: &str = "MINIRUN_NET_DIR";
pub const CONFIG_DIR_ENV: &str = "MINIRUN_NET_CONFIG_DIR";
const DEFAULT_RUN_DIR: &str = "/run/minirun/net";
const DEFAULT_CONFIG_DIR: &str = "/var/lib/minirun/networks";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Decode {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{}: {what}", path.display())]
    Invalid { path: PathBuf, what: String },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where the network state lives; the environment can move both halves.
#[derive(Debug, Clone)]
pub struct Store {
    pub run_dir: PathBuf,
    pub config_dir: PathBuf,
}

impl Store {
    pub fn from_env() -> Self {
        let dir = |var: &str, default: &str| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from(default), PathBuf::from)
        };
        Store {
            run_dir: dir(RUN_DIR_ENV, DEFAULT_RUN_DIR),
            config_dir: dir(CONFIG_DIR_ENV, DEFAULT_CONFIG_DIR),
        }
    }

    pub fn network_config(&self, name: &str) -> PathBuf {
        self.config_dir.join(format!("{name}.json"))
    }

    /// The lease directory of a network.
    pub fn leases(&self, name: &str) -> PathBuf {
        self.run_dir.join("networks").join(name)
    }

    /// The record of a container's first network (`eth0`).
    pub fn attachment(&self, id: &str) -> PathBuf {
        self.run_dir.join("containers").join(format!("{id}.json"))
    }

    /// The record of a network connected later (`network connect`).
    pub fn connection(&self, id: &str, network: &str) -> PathBuf {
        self.run_dir
            .join("containers")
            .join(format!("{id}@{network}.json"))
    }

    /// The record of a CNI attachment: keyed by the runtime's container id
    /// and the interface name, as CNI keys attachments.
    pub fn cni_attachment(&self, id: &str, ifname: &str) -> PathBuf {
        self.run_dir
            .join("containers")
            .join(format!("{id}%{ifname}.json"))
    }

    pub fn load_cni_attachment(
        &self,
        id: &str,
        ifname: &str,
    ) -> Result<Option<Attachment>, StoreError> {
        load_record(&self.cni_attachment(id, ifname))
    }

    fn record_path(&self, a: &Attachment) -> PathBuf {
        if let Some(ifname) = &a.cni_ifname {
            self.cni_attachment(&a.container, ifname)
        } else if a.connected {
            self.connection(&a.container, &a.network)
        } else {
            self.attachment(&a.container)
        }
    }

    /// The directory of the container's /etc files.
    /// Kept apart from the records: an id such as `web.json` would
    /// otherwise name container `web`'s record.
    pub fn container_files(&self, id: &str) -> PathBuf {
        self.run_dir.join("files").join(id)
    }

    /// The host-port claims of all networks.
    pub fn ports_dir(&self) -> PathBuf {
        self.run_dir.join("ports")
    }

    /// Every attachment record, for reload.
    pub fn list_attachments(&self) -> Result<Vec<Attachment>, StoreError> {
        let dir = self.run_dir.join("containers");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        let mut out = Vec::new();
        for e in entries.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") && !name.starts_with('.') && e.path().is_file() {
                if let Some(a) = load_record(&dir.join(&name))? {
                    out.push(a);
                }
            }
        }
        out.sort_by(|a, b| (&a.container, a.connected).cmp(&(&b.container, b.connected)));
        Ok(out)
    }

    /// The networks a container is on: its first, then those connected.
    pub fn attachments_of(&self, id: &str) -> Result<Vec<Attachment>, StoreError> {
        Ok(self
            .list_attachments()?
            .into_iter()
            .filter(|a| a.container == id)
            .collect())
    }

    pub fn load_connection(
        &self,
        id: &str,
        network: &str,
    ) -> Result<Option<Attachment>, StoreError> {
        load_record(&self.connection(id, network))
    }

    /// Present while the network's bridge is one minirun made (and so may
    /// delete); a bridge the administrator made is left alone.
    pub fn bridge_marker(&self, name: &str) -> PathBuf {
        self.run_dir.join("networks").join(format!("{name}.bridge"))
    }

    /// Takes the lock of a network (its lease pool, its bridge and the bridge's
    /// firewall elements), blocking until it is free.
    pub fn lock_network(&self, name: &str) -> Result<Flock<File>, StoreError> {
        lock(&self.run_dir.join("networks").join(format!("{name}.lock")))
    }

    /// Network definitions change under this lock (names and subnets are
    /// checked against all the others).
    pub fn lock_definitions(&self) -> Result<Flock<File>, StoreError> {
        lock(&self.config_dir.join(".lock"))
    }

    /// One CNI attachment's lock: ADD holds it from start to end, DEL and
    /// GC take it before they read the record, so a DEL that arrives while
    /// the ADD is at work waits for it and then finds what it made.
    pub fn lock_cni(&self, id: &str, ifname: &str) -> Result<Flock<File>, StoreError> {
        lock(&self.cni_lock(id, ifname))
    }

    pub fn cni_lock(&self, id: &str, ifname: &str) -> PathBuf {
        self.run_dir.join("cni").join(format!("{id}%{ifname}.lock"))
    }

    /// The firewall table is shared by all networks.
    pub fn lock_firewall(&self) -> Result<Flock<File>, StoreError> {
        lock(&self.run_dir.join("firewall.lock"))
    }

    /// Whether a record of the lease's container on `network` names its
    /// address (it may be one of a killed attach, not yet undone).
    pub fn names_lease(&self, lease: &crate::ipam::Lease, network: &str) -> bool {
        let named = |r: &Attachment| {
            r.network == network
                && (Some(lease.ip) == r.ip_address.map(Into::into)
                    || Some(lease.ip) == r.ip6_address.map(Into::into))
        };
        if [
            self.attachment(&lease.container),
            self.connection(&lease.container, network),
        ]
        .iter()
        .filter_map(|p| load_record(p).ok().flatten())
        .any(|r| named(&r))
        {
            return true;
        }
        // CNI records of the container (`<id>%<ifname>.json`): the lease
        // does not say which interface. Only asked for a lease whose veth
        // is missing, so the directory is read rarely.
        let dir = self.run_dir.join("containers");
        let prefix = format!("{}%", lease.container);
        read_dir_or_empty(&dir).is_ok_and(|entries| {
            entries
                .iter()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .filter_map(|e| load_record(&e.path()).ok().flatten())
                .any(|r| named(&r))
        })
    }

    /// The record as it is on disk now (None: gone).
    pub fn reload_record(&self, a: &Attachment) -> Result<Option<Attachment>, StoreError> {
        load_record(&self.record_path(a))
    }

    pub fn load_attachment(&self, id: &str) -> Result<Option<Attachment>, StoreError> {
        load_record(&self.attachment(id))
    }

    pub fn save_attachment(&self, a: &Attachment) -> Result<(), StoreError> {
        write_whole(
            &self.record_path(a),
            &serde_json::to_vec_pretty(a).expect("an attachment serializes"),
        )
    }

    pub fn remove_attachment(&self, a: &Attachment) -> Result<(), StoreError> {
        let path = self.record_path(a);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&path)(e)),
            _ => Ok(()),
        }
    }
}

fn load_record(path: &Path) -> Result<Option<Attachment>, StoreError> {
    match fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|source| StoreError::Decode {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

fn lock(path: &Path) -> Result<Flock<File>, StoreError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io_err(path)(e.into()))
}

/// Writes a file under a temporary name and renames it into place, so readers
/// see the old content or the new, never a part.
pub fn write_whole(path: &Path, body: &[u8]) -> Result<(), StoreError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    // `.<name>.<pid>`: no reader takes it for a record or lease, and gc
    // knows whose it is.
    let tmp = path.with_file_name(format!(".{name}.{}", std::process::id()));
    // A write that fails (ENOSPC) leaves nothing, not a part.
    fs::write(&tmp, body)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err(path)(e)
        })
}

/// Creates `path` with `body`, written whole under a temporary name and linked
/// into place: false (and nothing written) if `path` exists. Two processes can
/// never both create it, and a reader never sees it half written.
pub fn create_whole(path: &Path, body: &[u8]) -> io::Result<bool> {
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    let tmp = path.with_file_name(format!(".{name}.{}", std::process::id()));
    let linked = fs::write(&tmp, body).and_then(|()| fs::hard_link(&tmp, path));
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// A network, as stored in `<config dir>/<name>.json`. The fields after `mtu`
/// came with user-defined networks (`minirun network create`); a file
/// without them is the default network of an older minirun.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub name: String,
    /// The Linux bridge's name.
    pub bridge: String,
    /// The IPv4 subnet and gateway; none on an IPv6-only network
    /// (`--ipv6 --ipv4=false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<Subnet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default = "default_mtu")]
    pub mtu: u32,
    /// 64 hex digits; the bridge of a user network is `mr-` and the first 12.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created: String,
    /// Addresses are leased from this part of the subnet only.
    #[serde(default, rename = "ipRange", skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Subnet>,
    /// No route out of the network and no masquerade.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
    /// Containers of the network may talk to each other (`-o icc=false`
    /// isolates the bridge's ports from each other).
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub icc: bool,
    /// Frames from a container's port must carry its MAC, IPv4 packets and
    /// ARP its address, and no IPv6 router advertisement may leave it
    /// (`-o anti_spoofing=false` turns it off).
    #[serde(
        default = "yes",
        rename = "antiSpoofing",
        skip_serializing_if = "Clone::clone"
    )]
    pub anti_spoofing: bool,
    /// Containers find each other by name (user networks; not the default).
    #[serde(
        default,
        rename = "nameResolution",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub name_resolution: bool,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// `bridge` (when empty) or `macvlan`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// macvlan: the interface whose segment the containers join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// overlay: the VXLAN id of the network, the same on every host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    /// IPv6 too (`--ipv6`). With no `subnet6` yet (the default network's
    /// definition edited by hand to ask for it) one is picked at first use.
    #[serde(
        default,
        rename = "enableIPv6",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub enable_ipv6: bool,
    /// The IPv6 subnet, gateway and range, as `subnet`, `gateway` and
    /// `ipRange` are IPv4's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet6: Option<Subnet6>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
    #[serde(default, rename = "ipRange6", skip_serializing_if = "Option::is_none")]
    pub ip_range6: Option<Subnet6>,
    /// The secondary bridges of the network's segment (`segment.rs`), where
    /// the firewall needs them: filled in by the caller from the run
    /// directory, never part of the definition.
    #[serde(skip)]
    pub secondaries: Vec<u16>,
}

/// Address blocks that are not for hosts on a network (RFC 6890): a bridge
/// with 127.0.0.1 and route_localnet on would expose the host's loopback
/// services; multicast and the rest cannot be a host's address at all.
const SPECIAL_BLOCKS: [(&str, &str); 5] = [
    ("0.0.0.0/8", "\"this network\""),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
    (
        "240.0.0.0/4",
        "reserved, with the broadcast address 255.255.255.255",
    ),
];

/// The IPv6 blocks no container address may come from (RFC 6890, 4291).
const SPECIAL_BLOCKS6: [(&str, &str); 4] = [
    ("::/127", "unspecified and loopback"),
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
];

fn default_mtu() -> u32 {
    1500
}

fn yes() -> bool {
    true
}

pub const MACVLAN: &str = "macvlan";

/// Docker's default network, under minirun's names.
pub const DEFAULT_NETWORK: &str = "bridge";
pub const DEFAULT_BRIDGE: &str = "minirun0";

impl Network {
    /// An IPv4 bridge network with Docker's defaults for everything else.
    pub fn new(name: &str, bridge: &str, subnet: Subnet, gateway: Ipv4Addr) -> Network {
        Network {
            subnet: Some(subnet),
            gateway: Some(gateway),
            ..Network::without_addresses(name, bridge)
        }
    }

    /// A bridge network with Docker's defaults and no subnet yet.
    pub fn without_addresses(name: &str, bridge: &str) -> Network {
        Network {
            name: name.into(),
            bridge: bridge.into(),
            subnet: None,
            gateway: None,
            mtu: default_mtu(),
            id: String::new(),
            created: String::new(),
            ip_range: None,
            internal: false,
            icc: true,
            anti_spoofing: true,
            name_resolution: false,
            labels: Default::default(),
            driver: String::new(),
            parent: None,
            vni: None,
            enable_ipv6: false,
            subnet6: None,
            gateway6: None,
            ip_range6: None,
            secondaries: Vec::new(),
        }
    }

    /// The IPv4 subnet and gateway, unless the network is IPv6-only.
    pub fn ipv4(&self) -> Option<(Subnet, Ipv4Addr)> {
        self.subnet.zip(self.gateway)
    }

    /// The IPv6 subnet and gateway, once the network has them.
    pub fn ipv6(&self) -> Option<(Subnet6, Ipv6Addr)> {
        self.subnet6.zip(self.gateway6)
    }

    /// The IPv4 leases in `dir` (the network's lease directory), unless
    /// the network is IPv6-only.
    pub fn pool<'a>(&self, dir: &'a Path) -> Option<crate::ipam::Pool<'a, Ipv4Addr>> {
        let (subnet, gateway) = self.ipv4()?;
        Some(crate::ipam::Pool {
            dir,
            subnet,
            gateway,
            range: self.ip_range,
        })
    }

    /// The IPv6 leases in `dir`, when the network has IPv6.
    pub fn pool6<'a>(&self, dir: &'a Path) -> Option<crate::ipam::Pool<'a, Ipv6Addr>> {
        let (subnet, gateway) = self.ipv6()?;
        Some(crate::ipam::Pool {
            dir,
            subnet,
            gateway,
            range: self.ip_range6,
        })
    }

    /// Gives `container`'s lease of `ip` in `dir` back to the pool of its
    /// family (a family the network lacks has none to give back).
    pub fn release(
        &self,
        dir: &Path,
        ip: std::net::IpAddr,
        container: &str,
    ) -> Result<(), crate::ipam::IpamError> {
        match ip {
            std::net::IpAddr::V4(ip) => self.pool(dir).map_or(Ok(()), |p| p.release(ip, container)),
            std::net::IpAddr::V6(ip) => {
                self.pool6(dir).map_or(Ok(()), |p| p.release(ip, container))
            }
        }
    }

    pub fn is_macvlan(&self) -> bool {
        self.driver == MACVLAN
    }

    /// An overlay network: defined in the cluster store, the same subnet on
    /// every host, joined by VXLAN.
    pub fn is_overlay(&self) -> bool {
        self.vni.is_some()
    }

    /// Reads a network definition; `None` if there is none. Checks what a hand
    /// edit could get wrong.
    pub fn load(store: &Store, name: &str) -> Result<Option<Network>, StoreError> {
        let path = store.network_config(name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let net: Network = serde_json::from_slice(&bytes).map_err(|source| StoreError::Decode {
            path: path.clone(),
            source,
        })?;
        net.validate()
            .map_err(|what| StoreError::Invalid { path, what })?;
        Ok(Some(net))
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.name != self.name.trim() || self.name.is_empty() || self.name.contains('/') {
            return Err(format!("name {:?} is not a valid network name", self.name));
        }
        if self.bridge.is_empty()
            || self.bridge.len() > 15
            || self
                .bridge
                .contains(|c: char| c == '/' || c == ':' || c.is_whitespace())
        {
            return Err(format!(
                "bridge {:?} is not a valid interface name (1-15 characters, no '/', ':' or spaces)",
                self.bridge
            ));
        }
        match (self.subnet, self.gateway) {
            (Some(s), Some(g)) if !s.is_host(g) => {
                return Err(format!("gateway {g} is not a host address of subnet {s}"));
            }
            (Some(s), None) => return Err(format!("subnet {s} has no gateway")),
            (None, Some(g)) => return Err(format!("gateway {g} has no subnet")),
            (None, None) if !self.enable_ipv6 => {
                return Err("no subnet: a network has IPv4, IPv6 or both".into())
            }
            _ => {}
        }
        if !(68..=65535).contains(&self.mtu) {
            return Err(format!("mtu {} is outside 68-65535", self.mtu));
        }
        if let Some(r) = self.ip_range {
            match self.subnet {
                Some(s) if s.contains_subnet(&r) => {}
                Some(s) => return Err(format!("ip-range {r} is not inside subnet {s}")),
                None => return Err(format!("ip-range {r} has no IPv4 subnet")),
            }
        }
        match (self.subnet6, self.gateway6) {
            (Some(s6), Some(g6)) if !s6.is_host(g6) => {
                return Err(format!("gateway {g6} is not a host address of subnet {s6}"));
            }
            (Some(s6), None) => return Err(format!("subnet {s6} has no gateway (gateway6)")),
            (None, Some(g6)) => return Err(format!("gateway {g6} has no IPv6 subnet (subnet6)")),
            _ => {}
        }
        if let Some(r) = self.ip_range6 {
            match self.subnet6 {
                Some(s6) if s6.contains_subnet(&r) => {}
                Some(s6) => return Err(format!("ip-range {r} is not inside subnet {s6}")),
                None => return Err(format!("ip-range {r} has no IPv6 subnet (subnet6)")),
            }
        }
        if self.subnet6.is_some() && !self.enable_ipv6 {
            return Err("subnet6 is set but enableIPv6 is not".into());
        }
        Ok(())
    }

    /// A new network's subnet must be one hosts may have addresses in. Only
    /// at `network create`: a network made before this rule still loads,
    /// and can be removed.
    pub fn check_host_subnet(&self) -> Result<(), String> {
        let special = |s: String, block: &str, what: &str| {
            Err(format!(
                "subnet {s} overlaps {block}, {what}: no container can have those addresses"
            ))
        };
        if let Some(s) = self.subnet {
            if let Some((block, what)) = SPECIAL_BLOCKS
                .iter()
                .find(|(b, _)| b.parse::<Subnet>().is_ok_and(|b| b.overlaps(&s)))
            {
                return special(s.to_string(), block, what);
            }
        }
        if let Some(s6) = self.subnet6 {
            if let Some((block, what)) = SPECIAL_BLOCKS6
                .iter()
                .find(|(b, _)| Subnet6::block(b).is_some_and(|b| b.overlaps(&s6)))
            {
                return special(s6.to_string(), block, what);
            }
        }
        Ok(())
    }

    pub fn save(&self, store: &Store) -> Result<(), StoreError> {
        let path = store.network_config(&self.name);
        write_whole(
            &path,
            &serde_json::to_vec_pretty(self).expect("a network serializes"),
        )
    }
}

/// What `attach` did for a container: all `detach` needs, even when the
/// container's namespace is already gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub container: String,
    pub mode: String,
    pub network: String,
    pub bridge: String,
    /// The container's IPv4 address, prefix and gateway; none on an
    /// IPv6-only network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prefix_len: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    /// The container's IPv6 address on a network with IPv6, its prefix
    /// and the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6_address: Option<Ipv6Addr>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prefix6_len: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
    pub mac_address: String,
    /// The veth end on the host, enslaved to the bridge.
    pub host_interface: String,
    /// The veth end in the container.
    pub interface: String,
    pub mtu: u32,
    /// Published ports, host ports resolved (kept as runs: a range is one
    /// entry of the file).
    #[serde(default, with = "crate::ports::as_runs")]
    pub ports: Vec<PortMapping>,
    /// The network is internal: no masquerade to take down.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
    /// The network has icc=false.
    #[serde(default, rename = "noIcc", skip_serializing_if = "std::ops::Not::not")]
    pub no_icc: bool,
    /// The container's port is guarded against spoofing: its MAC and
    /// address are elements of the firewall's port sets.
    #[serde(
        default,
        rename = "antiSpoofing",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub anti_spoofing: bool,
    /// The host veth was put in the firewall's isolated ports (icc=false on a
    /// host whose bridges do not pass the IP hooks): what detach and reload
    /// go by, whatever the host does by then.
    #[serde(
        default,
        rename = "isolatedPort",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub isolated_port: bool,
    /// icc=false on a host whose bridges pass the IP hooks, and the port on
    /// a secondary bridge of the network's segment: the host sees what
    /// crosses to another bridge, not what the secondary bridges between
    /// two of its ports, which the firewall drops at the bridge.
    #[serde(
        default,
        rename = "isolatedInSegment",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub isolated_in_segment: bool,
    /// The secondary bridge of its network's segment the container's port
    /// is on (`segment.rs`); 0 for the primary.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub segment: u16,
    /// Names other containers of the network find this one by: its id and
    /// its aliases (user networks only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Attached by `network connect` to a running container (`eth1`, …),
    /// not as its first network.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub connected: bool,
    /// The attach still at work, while it is: the record is written right
    /// after the lease, before anything else exists, and again once the
    /// host ports are claimed, so that detach (or `gc`, once the attach has
    /// died) undoes whatever a killed attach made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attaching: Option<Process>,
    /// On an overlay network: its VXLAN id (the address and the endpoint
    /// are also in the cluster store, to give back on detach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    /// Attached by `minirun-net` as a CNI plugin (`CNI_IFNAME`): the
    /// container runtime owns the container's /etc files then.
    #[serde(default, rename = "cniIfname", skip_serializing_if = "Option::is_none")]
    pub cni_ifname: Option<String>,
    /// The CNI network (the configuration's `name`) it was added for: what
    /// a GC of that network may remove.
    #[serde(
        default,
        rename = "cniNetwork",
        skip_serializing_if = "Option::is_none"
    )]
    pub cni_network: Option<String>,
}

fn is_zero<T: Default + PartialEq>(n: &T) -> bool {
    *n == T::default()
}

/// A process, by pid and start time (a pid alone may be reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub pid: i32,
    pub start_time: u64,
}

impl Process {
    /// This process; an error if /proc cannot tell its start time (an
    /// attach that could not be told alive would look dead to gc at once).
    pub fn this_one() -> Result<Self, StoreError> {
        let pid = std::process::id() as i32;
        let path = PathBuf::from("/proc/self/stat");
        let start_time = start_time(pid).ok_or_else(|| {
            io_err(&path)(io::Error::other("cannot read this process's start time"))
        })?;
        Ok(Process { pid, start_time })
    }

    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }
}

/// A directory's entries; a directory that does not exist has none.
pub fn read_dir_or_empty(dir: &Path) -> Result<Vec<fs::DirEntry>, StoreError> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.filter_map(Result::ok).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err(dir)(e)),
    }
}

/// A process's start time (clock ticks after boot), None once it is gone.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

impl Attachment {
    /// What the cluster store calls this attachment (address holder,
    /// endpoint): the container id, and for a CNI attachment the interface
    /// too (`<id>%<ifname>`: a pod may have two on one network).
    pub fn cluster_name(&self) -> String {
        match &self.cni_ifname {
            Some(ifname) => format!("{}%{ifname}", self.container),
            None => self.container.clone(),
        }
    }

    /// The network it is on, as far as detach and reload need it.
    pub fn network_def(&self) -> Result<Network, crate::ipam::IpamError> {
        let subnet = self
            .ip_address
            .map(|ip| Subnet::new(ip, self.prefix_len))
            .transpose()?;
        let subnet6 = self
            .ip6_address
            .map(|ip| Subnet6::new(ip, self.prefix6_len))
            .transpose()?;
        Ok(Network {
            subnet,
            gateway: self.gateway,
            internal: self.internal,
            icc: !self.no_icc,
            mtu: self.mtu,
            vni: self.vni,
            enable_ipv6: subnet6.is_some(),
            subnet6,
            gateway6: self.gateway6,
            ..Network::without_addresses(&self.network, &self.bridge)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(subnet: &str, gateway: &str) -> Network {
        Network::new(
            "bridge",
            "minirun0",
            subnet.parse().unwrap(),
            gateway.parse().unwrap(),
        )
    }

    #[test]
    fn a_network_is_checked() {
        assert!(net("172.20.0.0/16", "172.20.0.1").validate().is_ok());
        let e = net("172.20.0.0/16", "172.21.0.1").validate().unwrap_err();
        assert!(e.contains("gateway 172.21.0.1 is not a host address of subnet 172.20.0.0/16"));
        assert!(net("172.20.0.0/16", "172.20.255.255").validate().is_err());
        let mut n = net("172.20.0.0/16", "172.20.0.1");
        n.bridge = "a-name-far-too-long".into();
        assert!(n
            .validate()
            .unwrap_err()
            .contains("not a valid interface name"));
        for (subnet, gateway, what) in [
            ("127.0.0.0/8", "127.0.0.1", "loopback"),
            ("224.0.0.0/4", "224.0.0.1", "multicast"),
            ("169.254.0.0/16", "169.254.0.1", "link-local"),
            ("0.0.0.0/8", "0.0.0.1", "this network"),
            ("255.255.255.0/24", "255.255.255.1", "reserved"),
            ("120.0.0.0/5", "120.0.0.1", "loopback"),
        ] {
            assert!(
                net(subnet, gateway).validate().is_ok(),
                "{subnet} still loads"
            );
            let e = net(subnet, gateway).check_host_subnet().unwrap_err();
            assert!(
                e.contains(what) && e.contains("no container can have"),
                "{subnet}: {e}"
            );
        }
    }

    #[test]
    fn a_network_file_round_trips_and_bad_cidrs_name_the_field() {
        let n = net("172.20.0.0/16", "172.20.0.1");
        let text = serde_json::to_string(&n).unwrap();
        assert!(text.contains(r#""subnet":"172.20.0.0/16""#), "{text}");
        assert_eq!(serde_json::from_str::<Network>(&text).unwrap(), n);
        let bad = text.replace("172.20.0.0/16", "172.20.0.0/40");
        let e = serde_json::from_str::<Network>(&bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an IPv4 CIDR"), "{e}");
    }
}
