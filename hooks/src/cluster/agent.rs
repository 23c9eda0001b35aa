//! `minirun-net agent`: the one process a cluster host runs.
//!
//! It keeps the host's lease alive (a thread renewing it every third of its
//! TTL; a lease found gone is replaced and this host's keys put again on the
//! new one), and keeps the kernel in step with the other hosts: at start,
//! and again after any break in the stream, it reconciles everything (this
//! host's keys against its records, each overlay device's entries against
//! the store, the hosts files, the VXLAN peers in the firewall) and then
//! follows a watch on the cluster prefix from the revision it read, so no
//! change between the two is missed. While the store is unreachable the
//! kernel keeps the last known state and the agent retries.
//!
//! Hooks and the agent share the network lock: an attach that makes a
//! network's vxlan device programs it itself from one read, and an event
//! the agent applies is applied under the lock, after or before that read,
//! never in the middle.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::time::Duration;

use super::etcd::{Compare, Event, Op, WatchMessage};
use super::ipam::{Endpoint, Holder};
use super::{
    announce, keys, lease_path, member_addresses, view, Cluster, ClusterConfig, ClusterError,
};
use crate::firewall::nftables::Nftables;
use crate::firewall::FirewallDriver;
use crate::netlink::Netlink;
use crate::store::{write_whole, Attachment, Store};
use crate::vxlan;

fn log(message: impl std::fmt::Display) {
    eprintln!("minirun-net agent: {message}");
}

/// Runs until killed. Returns only for what retrying cannot mend (no
/// cluster configuration).
pub fn run(store: &Store) -> Result<(), ClusterError> {
    let cluster = Cluster::required()?;
    log(format!(
        "host {} ({}) in the cluster of {}",
        cluster.config.name,
        cluster.config.advertise,
        cluster.etcd.endpoints()
    ));
    let lease = retry("taking this host's lease", || obtain_lease(&cluster, store));
    let keeper_store = store.clone();
    let ttl = cluster.config.ttl;
    std::thread::Builder::new()
        .name("keepalive".into())
        .spawn(move || keep_alive(keeper_store, lease, ttl))
        .map_err(|e| ClusterError::Invalid(format!("starting the keepalive thread: {e}")))?;
    // Apart from the renewals: a sweep waits on network locks and the store,
    // and a renewal must never wait for either.
    let sweeper_store = store.clone();
    std::thread::Builder::new()
        .name("sweep".into())
        .spawn(move || sweep_every_minute(sweeper_store))
        .map_err(|e| ClusterError::Invalid(format!("starting the sweep thread: {e}")))?;
    let nl = retry("opening netlink", || {
        Netlink::open().map_err(|e| e.to_string())
    });
    let mut backoff = Duration::from_millis(200);
    loop {
        stop_if_left();
        let followed = reconcile(&cluster, store, &nl).and_then(|(revision, mut state)| {
            backoff = Duration::from_millis(200);
            follow(&cluster, store, &nl, revision, &mut state)
        });
        if let Err(e) = followed {
            log(format!(
                "{e}; the kernel keeps the last known state, retrying"
            ));
        }
        std::thread::sleep(backoff);
        // Short enough that a host is back in step soon after the store.
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Once the host left the cluster (`minirun cluster leave` removed its
/// configuration and revoked its lease), the agent must not announce it
/// again: it stops.
fn stop_if_left() {
    if matches!(ClusterConfig::load(), Ok(None)) {
        log("this host left the cluster; stopping");
        std::process::exit(0);
    }
}

/// Calls `f` until it succeeds, saying why each failure happened.
fn retry<T, E: std::fmt::Display>(what: &str, mut f: impl FnMut() -> Result<T, E>) -> T {
    let mut delay = Duration::from_millis(200);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) => log(format!("{what}: {e}")),
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// The sweep of this host's unrecorded keys, once a minute.
fn sweep_every_minute(store: Store) {
    let cluster = match Cluster::required() {
        Ok(c) => c,
        Err(e) => return log(format!("sweep: {e}")),
    };
    loop {
        std::thread::sleep(Duration::from_secs(60));
        if let Err(e) = sweep_with(&cluster, &store) {
            log(format!("sweeping this host's keys: {e}"));
        }
    }
}

/// A new lease after the old one ended, the host announced on it only if
/// it is still a member (`cluster leave` may have just revoked the old one).
fn renew_lease(cluster: &Cluster, store: &Store) -> Result<i64, ClusterError> {
    let id = cluster
        .etcd
        .grant(cluster.config.ttl, "taking a new lease for this host")?;
    if !announce(cluster, id, true)? {
        stop_if_left();
        return Err(ClusterError::Invalid(
            "this host is no longer a member of the cluster (cluster leave elsewhere?)".into(),
        ));
    }
    write_whole(&lease_path(store), format!("{id}\n").as_bytes())?;
    Ok(id)
}

/// The lease of the last run if it still lives (an agent restarted within
/// the TTL loses nothing), else a new one; this host announced on it.
fn obtain_lease(cluster: &Cluster, store: &Store) -> Result<i64, ClusterError> {
    let what = "taking this host's lease";
    let kept = Cluster::lease(store)
        .ok()
        .map(|id| {
            cluster
                .etcd
                .time_to_live(id, what)
                .map(|ttl| ttl.map(|_| id))
        })
        .transpose()?
        .flatten();
    let id = match kept {
        Some(id) => id,
        None => {
            let id = cluster.etcd.grant(cluster.config.ttl, what)?;
            write_whole(&lease_path(store), format!("{id}\n").as_bytes())?;
            id
        }
    };
    announce(cluster, id, false)?;
    Ok(id)
}

/// Renews the lease every third of its TTL. A lease that is gone (the store
/// was out of reach for longer than the TTL) is replaced, and this host's
/// containers are put again on the new one.
fn keep_alive(store: Store, mut lease: i64, ttl: u32) {
    let cluster = match Cluster::required() {
        Ok(c) => c,
        Err(e) => return log(format!("keepalive: {e}")),
    };
    let period = Duration::from_millis(u64::from(ttl) * 1000 / 3).max(Duration::from_millis(500));
    let mut failing = false;
    // Renewed at once, then every period: a lease kept from before a
    // restart may have less than a period left.
    let mut first = true;
    loop {
        if !first {
            std::thread::sleep(period);
        }
        first = false;
        match cluster.etcd.keep_alive(lease, "renewing this host's lease") {
            Ok(Some(_)) => {
                if failing {
                    log("the store answers again; lease renewed");
                    failing = false;
                }
            }
            Ok(None) => {
                stop_if_left();
                log(format!("lease {lease:x} expired; taking a new one"));
                // The file is replaced by the new lease's, not removed first:
                // an attach meanwhile fails on the store, not on a missing file.
                match renew_lease(&cluster, &store) {
                    Ok(new) => {
                        lease = new;
                        if let Err(e) = publish_local(&cluster, &store, lease) {
                            log(format!("putting this host's containers back: {e}"));
                        }
                    }
                    Err(e) => log(e),
                }
            }
            Err(e) => {
                if !failing {
                    log(e);
                    failing = true;
                }
            }
        }
    }
}

/// This host's finished overlay attachments.
fn local_overlay(store: &Store) -> Result<Vec<Attachment>, ClusterError> {
    Ok(store
        .list_attachments()?
        .into_iter()
        .filter(|a| a.vni.is_some() && a.attaching.is_none())
        .collect())
}

/// Puts every local overlay container's address and endpoint on `lease`:
/// after a new lease, or when the store lost them. An address another host
/// took meanwhile is reported, not taken back.
fn publish_local(cluster: &Cluster, store: &Store, lease: i64) -> Result<(), ClusterError> {
    let host = cluster.host();
    for r in local_overlay(store)? {
        let what = format!("putting back {} on {}", r.container, r.network);
        // Overlay networks carry IPv4: every record of one has an address.
        let Some(ip) = r.ip_address else { continue };
        let key = keys::address(&r.network, ip);
        let read = cluster.etcd.txn(
            &[],
            &[Op::Get(key.clone()), Op::Get(keys::network(&r.network))],
            &[],
            &what,
        )?;
        let current = read.ranges.first().and_then(|r| r.first());
        // The network may have been removed while the store could not be
        // reached (its addresses were gone with this host's lease), and
        // made again since: nothing of the old one is put into the new.
        let Some(definition) = read.ranges.get(1).and_then(|r| r.first()).filter(|kv| {
            serde_json::from_slice::<crate::store::Network>(&kv.value)
                .is_ok_and(|n| n.vni == r.vni && n.bridge == r.bridge)
        }) else {
            log(format!(
                "{what}: network {} is no longer the one it attached to; its container stays unreachable from other hosts",
                r.network
            ));
            continue;
        };
        let compare = match current {
            None => Compare::Absent(key.clone()),
            Some(kv) => {
                let ours = serde_json::from_slice::<Holder>(&kv.value)
                    .is_ok_and(|h| h.container == r.cluster_name() && h.host == host);
                if !ours {
                    log(format!(
                        "{what}: address {ip} is now held by another container ({}); this container is unreachable from other hosts",
                        String::from_utf8_lossy(&kv.value)
                    ));
                    continue;
                }
                Compare::ModRevision(key.clone(), kv.mod_revision)
            }
        };
        let holder = Holder {
            container: r.cluster_name(),
            host: host.clone(),
        };
        let endpoint = endpoint_of(cluster, &r, ip);
        cluster.etcd.txn(
            &[
                compare,
                Compare::ModRevision(definition.key.clone(), definition.mod_revision),
            ],
            &[
                Op::Put {
                    key,
                    value: serde_json::to_vec(&holder).expect("a holder serializes"),
                    lease,
                },
                Op::Put {
                    key: endpoint.key(),
                    value: serde_json::to_vec(&endpoint).expect("an endpoint serializes"),
                    lease,
                },
            ],
            &[],
            &what,
        )?;
    }
    Ok(())
}

fn endpoint_of(cluster: &Cluster, r: &Attachment, ip: Ipv4Addr) -> Endpoint {
    Endpoint {
        container: r.cluster_name(),
        network: r.network.clone(),
        host: cluster.config.advertise,
        ip,
        mac: r.mac_address.clone(),
        names: r.names.clone(),
    }
}

/// What the agent knows of the other hosts.
#[derive(Default)]
struct State {
    /// Per network, the other hosts' endpoints.
    remote: HashMap<String, Vec<Endpoint>>,
}

/// Brings everything in step with the store; the revision it read at.
fn reconcile(cluster: &Cluster, store: &Store, nl: &Netlink) -> Result<(i64, State), ClusterError> {
    let lease = Cluster::lease(store)?;
    publish_local(cluster, store, lease)?;
    let read = cluster.etcd.txn(
        &[],
        &[
            Op::GetPrefix(keys::all_endpoints()),
            Op::GetPrefix(format!("{}addresses/", keys::PREFIX)),
        ],
        &[],
        "reading the cluster",
    )?;
    let [endpoints, addresses] = &read.ranges[..] else {
        return Err(ClusterError::Invalid(
            "reading the cluster: etcd answered without the ranges asked".into(),
        ));
    };
    let me = cluster.config.advertise;
    let records = local_overlay(store)?;
    remove_unrecorded(cluster, store, endpoints, addresses)?;

    let mut state = State::default();
    for kv in endpoints {
        if let Ok(e) = serde_json::from_slice::<Endpoint>(&kv.value) {
            if e.host != me {
                state.remote.entry(e.network.clone()).or_default().push(e);
            }
        }
    }
    let here: BTreeSet<&str> = records.iter().map(|r| r.network.as_str()).collect();
    for network in &here {
        let remote = state.remote.get(*network).cloned().unwrap_or_default();
        // One network's trouble (a bad entry, a hosts file) is its own:
        // the others, and the watch, go on.
        if let Err(e) = apply(store, nl, network, &remote, &[], &remote) {
            log(format!("network {network}: {e}"));
        }
    }
    set_vxlan_peers(cluster, store)?;
    Ok((read.revision, state))
}

/// Deletes this host's keys that no record names (a detach that could not
/// reach the store, a crash between the store and the record), each judged
/// again under its network's lock: an attach holds it from taking an
/// address to writing its record.
fn remove_unrecorded(
    cluster: &Cluster,
    store: &Store,
    endpoints: &[super::etcd::Kv],
    addresses: &[super::etcd::Kv],
) -> Result<usize, ClusterError> {
    let host = cluster.host();
    let named = |records: &[Attachment], network: &str, container: &str, ip: Option<Ipv4Addr>| {
        records.iter().any(|r| {
            r.network == network
                && r.vni.is_some()
                && r.cluster_name() == container
                && ip.is_none_or(|ip| Some(ip) == r.ip_address)
        })
    };
    // One listing for every key; a key it does not account for (rare) is
    // judged again under its network's lock before it goes.
    let records = store.list_attachments()?;
    let unrecorded = |network: &str, container: &str, ip: Option<Ipv4Addr>| {
        if named(&records, network, container, ip) {
            return Ok(false);
        }
        let _lock = store.lock_network(network)?;
        Ok::<_, ClusterError>(!named(&store.list_attachments()?, network, container, ip))
    };
    let remove = |kv: &super::etcd::Kv, what: &str| {
        cluster.etcd.txn(
            &[Compare::ModRevision(kv.key.clone(), kv.mod_revision)],
            &[Op::Delete(kv.key.clone())],
            &[],
            what,
        )
    };
    let mut removed = 0;
    for kv in endpoints {
        if let keys::Key::Endpoint {
            network,
            host: h,
            container,
        } = keys::parse(&kv.key)
        {
            if h == host && unrecorded(network, container, None)? {
                log(format!(
                    "removing the endpoint of {container} on {network}: no record names it"
                ));
                remove(kv, "removing an unrecorded endpoint")?;
                removed += 1;
            }
        }
    }
    for kv in addresses {
        let Ok(holder) = serde_json::from_slice::<Holder>(&kv.value) else {
            continue;
        };
        let mut parts = kv.key.rsplit('/');
        let (Some(ip), Some(network)) = (
            parts.next().and_then(|ip| ip.parse::<Ipv4Addr>().ok()),
            parts.next(),
        ) else {
            continue;
        };
        if holder.host == host && unrecorded(network, &holder.container, Some(ip))? {
            log(format!(
                "giving back {ip} on {network}: no record of {} names it",
                holder.container
            ));
            remove(kv, "giving back an unrecorded address")?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// This host's keys in the store that no record names (an attach killed
/// between taking its address and writing its record, a detach that could
/// not reach the store): removed. `minirun-net gc` runs it, and the agent
/// every minute. How many keys went; nothing when the host is in no cluster.
pub fn sweep(store: &Store) -> Result<usize, ClusterError> {
    let Some(cluster) = Cluster::open()? else {
        return Ok(0);
    };
    sweep_with(&cluster, store)
}

fn sweep_with(cluster: &Cluster, store: &Store) -> Result<usize, ClusterError> {
    let read = cluster.etcd.txn(
        &[],
        &[
            Op::GetPrefix(keys::all_endpoints()),
            Op::GetPrefix(format!("{}addresses/", keys::PREFIX)),
        ],
        &[],
        "reading this host's keys",
    )?;
    match &read.ranges[..] {
        [endpoints, addresses] => remove_unrecorded(cluster, store, endpoints, addresses),
        _ => Err(ClusterError::Invalid(
            "reading this host's keys: etcd answered without the ranges asked".into(),
        )),
    }
}

/// Programs one network's changes under its lock, if this host has its
/// device: `gone` removed, `changed` added, and `all` (the other hosts'
/// endpoints now) kept as the view the hosts files are written from.
fn apply(
    store: &Store,
    nl: &Netlink,
    network: &str,
    changed: &[Endpoint],
    gone: &[Endpoint],
    all: &[Endpoint],
) -> Result<(), ClusterError> {
    let _lock = store.lock_network(network)?;
    let Some(record) = local_overlay(store)?
        .into_iter()
        .find(|r| r.network == network)
    else {
        // Not on this host (or no longer): nothing to program.
        view::forget(store, network);
        return Ok(());
    };
    let device = vxlan::device_name(&record.bridge);
    let Some(link) = nl.link_by_name(&device).map_err(netlink)? else {
        return Ok(());
    };
    let index = link.header.index;
    if gone.is_empty() && changed.len() == all.len() {
        vxlan::sync(nl, index, all).map_err(netlink)?;
    } else {
        for e in gone {
            vxlan::remove_remote(nl, index, e).map_err(netlink)?;
        }
        for e in changed {
            vxlan::add_remote(nl, index, e).map_err(netlink)?;
        }
    }
    view::save_remote(store, network, all)?;
    crate::etc_files::refresh_remote(store, network)?;
    Ok(())
}

fn netlink(e: crate::netlink::NetlinkError) -> ClusterError {
    ClusterError::Invalid(e.to_string())
}

/// The firewall's VXLAN filter: this host's address and the members', when
/// it has overlay containers (also one still attaching: its attach may
/// have read the members before this change). Read and written under the
/// firewall lock, as an attach that makes a vxlan device does, so the last
/// writer wrote the newest list.
pub(crate) fn set_vxlan_peers(cluster: &Cluster, store: &Store) -> Result<(), ClusterError> {
    let _lock = store.lock_firewall()?;
    let any_overlay = store.list_attachments()?.iter().any(|a| a.vni.is_some());
    if !any_overlay {
        return Ok(());
    }
    let members = member_addresses(cluster, "reading the cluster's hosts")?;
    write_vxlan_filter(cluster, store, &members)
}

/// Writes the filter (the firewall lock is held) and keeps the list, from
/// which `reload` restores it when the store cannot be asked.
pub(crate) fn write_vxlan_filter(
    cluster: &Cluster,
    store: &Store,
    members: &[Ipv4Addr],
) -> Result<(), ClusterError> {
    Nftables::new()
        .and_then(|nft| nft.vxlan_peers(Some(cluster.config.advertise), members))
        .map_err(|e| ClusterError::Invalid(format!("firewall: {e}")))?;
    write_whole(
        &members_path(store),
        &serde_json::to_vec(members).expect("addresses serialize"),
    )?;
    Ok(())
}

fn members_path(store: &Store) -> std::path::PathBuf {
    store.run_dir.join("cluster").join("members.json")
}

/// The VXLAN filter from the members last written, without asking the
/// store (the firewall lock is held: a rebuild of the firewall from the
/// records, which emptied it). A host without a cluster has none to write.
pub(crate) fn vxlan_filter_from_disk(store: &Store) -> Result<(), ClusterError> {
    let Some(cluster) = Cluster::open()? else {
        return Ok(());
    };
    let Some(kept) = std::fs::read(members_path(store))
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<Ipv4Addr>>(&b).ok())
    else {
        return Ok(());
    };
    write_vxlan_filter(&cluster, store, &kept)
}

/// After `reload` rebuilt the firewall: the VXLAN filter again, if this
/// host has overlay containers.
pub fn restore_vxlan_filter(store: &Store) -> Result<(), ClusterError> {
    if local_overlay(store)?.is_empty() {
        return Ok(());
    }
    let cluster = Cluster::required()?;
    match set_vxlan_peers(&cluster, store) {
        Err(ClusterError::Etcd(e)) => {
            // The store is away: the list last written, rather than no
            // filter at all until the agent next writes one.
            let kept: Vec<Ipv4Addr> = std::fs::read(members_path(store))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or(ClusterError::Etcd(e))?;
            let _lock = store.lock_firewall()?;
            write_vxlan_filter(&cluster, store, &kept)
        }
        other => other,
    }
}

/// Follows the store from `revision`; returns when the stream breaks.
fn follow(
    cluster: &Cluster,
    store: &Store,
    nl: &Netlink,
    revision: i64,
    state: &mut State,
) -> Result<(), ClusterError> {
    let me = cluster.config.advertise;
    let mut watch = cluster
        .etcd
        .watch(keys::PREFIX, revision + 1, "watching the cluster")?;
    loop {
        let events = match watch.next_message()? {
            WatchMessage::Events { events, .. } => events,
            WatchMessage::Progress(_) => continue,
            WatchMessage::Compacted(r) => {
                return Err(ClusterError::Invalid(format!(
                    "the store compacted past revision {r}: reading everything again"
                )))
            }
        };
        let mut changed: HashMap<String, (Vec<Endpoint>, Vec<Endpoint>)> = HashMap::new();
        let mut members_changed = false;
        for event in events {
            let key = match &event {
                Event::Put(kv) => kv.key.clone(),
                Event::Delete(key, _) => key.clone(),
            };
            match keys::parse(&key) {
                keys::Key::Endpoint {
                    network,
                    host,
                    container,
                } if host != me.to_string() => {
                    let remote = state.remote.entry(network.to_string()).or_default();
                    let (added, gone) = changed.entry(network.to_string()).or_default();
                    let old = remote
                        .iter()
                        .position(|e| e.container == container && e.host.to_string() == host)
                        .map(|i| remote.remove(i));
                    match &event {
                        Event::Put(kv) => {
                            if let Ok(e) = serde_json::from_slice::<Endpoint>(&kv.value) {
                                if let Some(old) = old.filter(|o| o.ip != e.ip || o.mac != e.mac) {
                                    gone.push(old);
                                }
                                remote.push(e.clone());
                                added.push(e);
                            }
                        }
                        Event::Delete(_, prev) => {
                            let prev = old.or_else(|| {
                                prev.as_ref()
                                    .and_then(|kv| serde_json::from_slice(&kv.value).ok())
                            });
                            gone.extend(prev);
                        }
                    }
                }
                keys::Key::Alive(h) if h == me.to_string() => stop_if_left(),
                keys::Key::Member(_) => members_changed = true,
                _ => {}
            }
        }
        for (network, (added, gone)) in &changed {
            let all = state.remote.get(network).cloned().unwrap_or_default();
            // An endpoint that came and went within one batch is gone.
            let added: Vec<Endpoint> = added.iter().filter(|e| all.contains(e)).cloned().collect();
            if let Err(e) = apply(store, nl, network, &added, gone, &all) {
                log(format!("network {network}: {e}"));
            }
        }
        if members_changed {
            set_vxlan_peers(cluster, store)?;
        }
    }
}
