//! Many hosts sharing overlay networks through etcd.
//!
//! A host joins with `minirun cluster join --store etcd://... --advertise
//! ADDR`: that writes `/etc/minirun/cluster.json` (`MINIRUN_CLUSTER_CONFIG`)
//! and the host's `members/` key. From then on `minirun-net agent` keeps the
//! host's etcd lease alive (its id in `<run dir>/cluster/lease`), and every
//! key a host puts for its containers is attached to that lease, so a host
//! that dies takes its addresses and endpoints with it once the lease ends.
//!
//! - `etcd`: the store's client; `keys`: the key layout;
//! - `networks`: overlay network definitions (create, list, remove);
//! - `ipam`: addresses and endpoints of containers, by transactions;
//! - `agent`: the per-host watcher that programs other hosts' containers
//!   into this host's kernel.

pub mod agent;
pub mod etcd;
pub mod ipam;
pub mod keys;
pub mod networks;
pub mod view;

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::store::{io_err, write_whole, Store, StoreError};
use etcd::{Compare, Etcd, EtcdError, Op};

pub const CONFIG_ENV: &str = "MINIRUN_CLUSTER_CONFIG";
const DEFAULT_CONFIG: &str = "/etc/minirun/cluster.json";
/// Seconds a host's lease outlives its last renewal.
pub const DEFAULT_TTL: u32 = 20;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("this host is not in a cluster (no {0}): run `minirun cluster join --store etcd://HOST:PORT --advertise ADDR` first")]
    NotJoined(PathBuf),
    #[error("{0}")]
    Invalid(String),
    #[error("this host has no live cluster lease ({0}): is `minirun-net agent` running?")]
    NoLease(String),
}

/// What `cluster join` writes: how this host reaches the store and how
/// the others reach this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// etcd's client URLs, `etcd://host:port[,host:port...]`.
    pub store: String,
    /// This host's underlay address: other hosts send VXLAN to it.
    pub advertise: Ipv4Addr,
    /// The name `cluster ls` shows.
    pub name: String,
    /// Seconds the host's lease lives without renewal.
    #[serde(default = "default_ttl")]
    pub ttl: u32,
}

fn default_ttl() -> u32 {
    DEFAULT_TTL
}

/// A host as `members/` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    pub advertise: Ipv4Addr,
}

pub fn config_path() -> PathBuf {
    std::env::var_os(CONFIG_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_CONFIG), PathBuf::from)
}

impl ClusterConfig {
    /// The configuration, `None` when this host never joined.
    pub fn load() -> Result<Option<Self>, ClusterError> {
        let path = config_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e).into()),
        };
        let config: ClusterConfig =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::Decode {
                path: path.clone(),
                source,
            })?;
        etcd::parse_urls(&config.store)?;
        Ok(Some(config))
    }
}

/// A joined host's way to the store.
pub struct Cluster {
    pub config: ClusterConfig,
    pub etcd: Etcd,
}

impl Cluster {
    /// `None` when this host is not in a cluster.
    pub fn open() -> Result<Option<Cluster>, ClusterError> {
        let Some(config) = ClusterConfig::load()? else {
            return Ok(None);
        };
        let etcd = Etcd::new(etcd::parse_urls(&config.store)?);
        Ok(Some(Cluster { config, etcd }))
    }

    /// The cluster, or an error saying how to join one.
    pub fn required() -> Result<Cluster, ClusterError> {
        Self::open()?.ok_or_else(|| ClusterError::NotJoined(config_path()))
    }

    /// This host's key in `endpoints/` and `addresses/` values.
    pub fn host(&self) -> String {
        self.config.advertise.to_string()
    }

    /// The lease the agent keeps alive, which this host's keys are put on.
    pub fn lease(store: &Store) -> Result<i64, ClusterError> {
        let path = lease_path(store);
        let text = fs::read_to_string(&path)
            .map_err(|_| ClusterError::NoLease(format!("no {}", path.display())))?;
        text.trim()
            .parse()
            .map_err(|_| ClusterError::NoLease(format!("{} holds no lease id", path.display())))
    }
}

pub fn lease_path(store: &Store) -> PathBuf {
    store.run_dir.join("cluster").join("lease")
}

/// Whether this host can take `advertise` as its own (binding to it
/// works only for a local address).
fn is_local(addr: Ipv4Addr) -> bool {
    std::net::UdpSocket::bind((addr, 0)).is_ok()
}

/// `cluster join`: registers the host in the store, then writes the local
/// configuration. Nothing is written when the store cannot be reached.
pub fn join(
    urls: &str,
    advertise: Ipv4Addr,
    name: Option<&str>,
    ttl: u32,
) -> Result<ClusterConfig, ClusterError> {
    let endpoints = etcd::parse_urls(urls)?;
    if !(2..=3600).contains(&ttl) {
        return Err(ClusterError::Invalid(format!(
            "--ttl {ttl}: a host lease lives 2 to 3600 seconds"
        )));
    }
    if advertise.is_unspecified() || advertise.is_loopback() || advertise.is_multicast() {
        return Err(ClusterError::Invalid(format!(
            "--advertise {advertise}: other hosts must reach this one there (not loopback, 0.0.0.0 or multicast)"
        )));
    }
    if !is_local(advertise) {
        return Err(ClusterError::Invalid(format!(
            "--advertise {advertise}: not an address of this host"
        )));
    }
    if let Some(current) = ClusterConfig::load()? {
        if etcd::parse_urls(&current.store)? != endpoints || current.advertise != advertise {
            return Err(ClusterError::Invalid(format!(
                "this host is already in the cluster of {} as {}: `minirun cluster leave` first",
                current.store, current.advertise
            )));
        }
    }
    let name = match name {
        Some(n) => n.to_string(),
        None => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| advertise.to_string()),
    };
    let config = ClusterConfig {
        store: urls.to_string(),
        advertise,
        name,
        ttl,
    };
    let etcd = Etcd::new(endpoints);
    let member = Member {
        name: config.name.clone(),
        advertise,
    };
    etcd.txn(
        &[],
        &[Op::Put {
            key: keys::member(&advertise.to_string()),
            value: serde_json::to_vec(&member).expect("a member serializes"),
            lease: 0,
        }],
        &[],
        &format!("cluster join: registering host {advertise}"),
    )?;
    let path = config_path();
    write_whole(
        &path,
        &serde_json::to_vec_pretty(&config).expect("a config serializes"),
    )?;
    Ok(config)
}

/// `cluster leave`: refused while containers of this host are on overlay
/// networks; otherwise the host's keys go (its lease revoked) and so does
/// its configuration.
pub fn leave(store: &Store) -> Result<(), ClusterError> {
    let cluster = Cluster::required()?;
    let on_overlay: Vec<String> = store
        .list_attachments()?
        .into_iter()
        .filter(|a| a.vni.is_some())
        .map(|a| format!("{} ({})", a.container, a.network))
        .collect();
    if !on_overlay.is_empty() {
        return Err(ClusterError::Invalid(format!(
            "cluster leave: containers of this host are on overlay networks: {}",
            on_overlay.join(", ")
        )));
    }
    let what = "cluster leave";
    if let Ok(lease) = Cluster::lease(store) {
        cluster.etcd.revoke(lease, what)?;
    }
    let host = cluster.host();
    cluster.etcd.txn(
        &[],
        &[
            Op::Delete(keys::member(&host)),
            Op::Delete(keys::alive(&host)),
        ],
        &[],
        what,
    )?;
    let _ = fs::remove_file(lease_path(store));
    let path = config_path();
    match fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&path)(e).into()),
        _ => Ok(()),
    }
}

/// A row of `cluster ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRow {
    pub member: Member,
    pub alive: bool,
    pub containers: usize,
    pub this: bool,
}

/// Every host that joined, alive or not, with its containers on overlay
/// networks; read in one transaction so the three views agree.
pub fn hosts(cluster: &Cluster) -> Result<Vec<HostRow>, ClusterError> {
    let read = cluster.etcd.txn(
        &[],
        &[
            Op::GetPrefix(keys::members()),
            Op::GetPrefix(keys::alives()),
            Op::GetPrefix(keys::all_endpoints()),
        ],
        &[],
        "cluster ls",
    )?;
    let [members, alive, endpoints] = &read.ranges[..] else {
        return Err(ClusterError::Invalid(
            "cluster ls: etcd answered without the three ranges asked".into(),
        ));
    };
    let mut rows: Vec<HostRow> = members
        .iter()
        .filter_map(|kv| serde_json::from_slice::<Member>(&kv.value).ok())
        .map(|member| {
            let host = member.advertise.to_string();
            HostRow {
                alive: alive
                    .iter()
                    .any(|kv| matches!(keys::parse(&kv.key), keys::Key::Alive(h) if h == host)),
                containers: endpoints
                    .iter()
                    .filter(|kv| {
                        matches!(keys::parse(&kv.key), keys::Key::Endpoint { host: h, .. } if h == host)
                    })
                    .count(),
                this: member.advertise == cluster.config.advertise,
                member,
            }
        })
        .collect();
    rows.sort_by_key(|r| (r.member.name.clone(), r.member.advertise));
    Ok(rows)
}

/// The underlay addresses of every member: where VXLAN may come from.
pub fn member_addresses(cluster: &Cluster, what: &str) -> Result<Vec<Ipv4Addr>, ClusterError> {
    let (kvs, _) = cluster.etcd.get_prefix(&keys::members(), what)?;
    Ok(kvs
        .iter()
        .filter_map(|kv| serde_json::from_slice::<Member>(&kv.value).ok())
        .map(|m| m.advertise)
        .collect())
}

/// Puts this host's `alive` key on `lease` (the agent, at start and after
/// a new lease), and its member key. With `only_if_member`, nothing is put
/// unless the member key is still there (after a lease ended, a `cluster
/// leave` may have just removed it: it must not come back); false then.
pub fn announce(cluster: &Cluster, lease: i64, only_if_member: bool) -> Result<bool, ClusterError> {
    let host = cluster.host();
    let member = Member {
        name: cluster.config.name.clone(),
        advertise: cluster.config.advertise,
    };
    let value = serde_json::to_vec(&member).expect("a member serializes");
    let compare = if only_if_member {
        vec![Compare::Present(keys::member(&host))]
    } else {
        Vec::new()
    };
    let done = cluster.etcd.txn(
        &compare,
        &[
            Op::Put {
                key: keys::member(&host),
                value: value.clone(),
                lease: 0,
            },
            Op::Put {
                key: keys::alive(&host),
                value,
                lease,
            },
        ],
        &[],
        &format!("announcing host {host}"),
    )?;
    Ok(done.succeeded)
}

/// Whether a compare-and-put failed because the lease it named is gone.
pub fn lease_gone(e: &EtcdError) -> bool {
    e.server_message()
        .is_some_and(|m| m.contains("lease not found"))
}

/// The comparisons that say a network definition is still the one read.
pub(crate) fn network_unchanged(name: &str, revision: i64) -> Compare {
    Compare::ModRevision(keys::network(name), revision)
}
