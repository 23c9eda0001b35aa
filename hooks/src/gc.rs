//! Detaching by record, and `minirun-net gc`: the sweep of what attaches
//! killed half way, and containers gone without their poststop hook, left
//! behind. A record is stale when its attach died before finishing, or when
//! its container is gone (its host veth for the bridge driver, its init for
//! macvlan); leases, host-port claims and /etc files are stale when no
//! record accounts for them and their interface is gone. Each record is
//! judged again under its network's lock and detached there, so an attach
//! of a new container of the same id cannot be taken for an old one.

use std::fs;
use std::io;

use crate::bridge::{BridgeDriver, BridgeError};
use crate::host_ports;
use crate::ipam;
use crate::macvlan::{self, MacvlanDriver};
use crate::netlink::Netlink;
use crate::store::{Attachment, Network, Store, StoreError, MACVLAN};

/// What `sweep` removed, and what it could not.
#[derive(Debug, Default)]
pub struct Swept {
    pub records: usize,
    pub leases: usize,
    pub claims: usize,
    pub files: usize,
    pub errors: Vec<String>,
}

/// Undoes a record's attachment (the network's lock taken here).
pub fn detach_record(store: &Store, record: &Attachment) -> Vec<BridgeError> {
    match store.lock_network(&record.network) {
        Ok(_lock) => detach_locked(store, record),
        Err(e) => vec![e.into()],
    }
}

fn detach_locked(store: &Store, record: &Attachment) -> Vec<BridgeError> {
    if record.mode == MACVLAN {
        let network = match Network::load(store, &record.network) {
            Ok(Some(n)) => n,
            Ok(None) => match record.network_def() {
                Ok(n) => n,
                Err(e) => return vec![e.into()],
            },
            Err(e) => return vec![e.into()],
        };
        MacvlanDriver {
            store: store.clone(),
            network,
            ip: None,
            aliases: Vec::new(),
        }
        .detach_locked(record)
    } else {
        BridgeDriver {
            store: store.clone(),
            network: record.network.clone(),
            ports: Vec::new(),
            ip: None,
            aliases: Vec::new(),
            connecting: record.connected,
        }
        .detach_locked(record)
    }
}

/// Whether a lease's or claim's holder lives: a host veth, or (macvlan) an
/// init named `pid:<pid>:<start time>`.
fn holder_lives(nl: &Netlink, holder: &str) -> bool {
    if holder.starts_with("pid:") {
        macvlan::holder_lives(holder)
    } else {
        nl.link_exists(holder)
    }
}

fn stale(nl: &Netlink, r: &Attachment) -> bool {
    match &r.attaching {
        Some(attach) => !attach.alive(),
        None => !holder_lives(nl, &r.host_interface),
    }
}

/// The sweep; an error only when the store cannot be read at all.
pub fn sweep(store: &Store) -> Result<Swept, BridgeError> {
    let nl = Netlink::open()?;
    let mut swept = Swept::default();
    for r in store.list_attachments()? {
        if !stale(&nl, &r) {
            continue;
        }
        let _lock = store.lock_network(&r.network)?;
        let now = store
            .list_attachments()?
            .into_iter()
            .find(|a| a.container == r.container && a.network == r.network);
        if now.as_ref() != Some(&r) || !stale(&nl, &r) {
            continue;
        }
        let errors = detach_locked(store, &r);
        if errors.is_empty() {
            swept.records += 1;
        }
        swept.errors.extend(
            errors
                .iter()
                .map(|e| format!("{} on {}: {e}", r.container, r.network)),
        );
    }
    let records = store.list_attachments()?;
    let has_record = |id: &str| records.iter().any(|r| r.container == id);
    let live = |holder: &str| holder_lives(&nl, holder);
    let networks = store.run_dir.join("networks");
    for entry in read_dir(&networks)? {
        if !entry.path().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let _lock = store.lock_network(&name)?;
        match ipam::sweep(&entry.path(), &live, &has_record) {
            Ok(n) => swept.leases += n,
            Err(e) => swept.errors.push(format!("leases of {name}: {e}")),
        }
    }
    {
        let _lock = store.lock_firewall()?;
        let claims = store.ports_dir();
        match host_ports::sweep(&claims, &live, &has_record) {
            Ok(n) => swept.claims += n,
            Err(e) => swept.errors.push(format!("{}: {e}", claims.display())),
        }
    }
    let containers = store.run_dir.join("containers");
    for entry in read_dir(&containers)? {
        let id = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && !has_record(&id) {
            match fs::remove_dir_all(entry.path()) {
                Ok(()) => swept.files += 1,
                Err(e) => swept
                    .errors
                    .push(format!("{}: {e}", entry.path().display())),
            }
        }
    }
    Ok(swept)
}

fn read_dir(dir: &std::path::Path) -> Result<Vec<fs::DirEntry>, StoreError> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.filter_map(Result::ok).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(StoreError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}
