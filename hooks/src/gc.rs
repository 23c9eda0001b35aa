//! Detaching by record, and `minirun-net gc`: the sweep of what attaches
//! killed half way, and containers gone without their poststop hook, left
//! behind. A record is stale when its attach died before finishing, or when
//! its container is gone (its host veth for the bridge driver, its init for
//! macvlan); leases, host-port claims, /etc files and temporary files are
//! stale when no record accounts for them and their holder is gone. Every
//! detach reads its record again under its network's lock, so it undoes
//! what the record says once no attach is at work on it, and a new
//! container of the same id is never taken for an old one.

use std::fs;
use std::io;
use std::path::Path;

use crate::bridge::{BridgeDriver, BridgeError};
use crate::driver::NetworkDriver;
use crate::host_ports;
use crate::ipam;
use crate::macvlan::{self, MacvlanDriver};
use crate::netlink::Netlink;
use crate::store::{self, Attachment, Network, Store, MACVLAN};

/// What `sweep` removed, and what it could not.
#[derive(Debug, Default)]
pub struct Swept {
    pub records: usize,
    pub leases: usize,
    pub claims: usize,
    pub files: usize,
    pub errors: Vec<String>,
}

/// Undoes a record's attachment, as the record reads under its network's
/// lock (an attach that was at work when `record` was read has finished by
/// then, and its record names everything it made).
pub fn detach_record(store: &Store, record: &Attachment) -> Vec<BridgeError> {
    let _lock = match store.lock_network(&record.network) {
        Ok(l) => l,
        Err(e) => return vec![e.into()],
    };
    match store.reload_record(record) {
        Ok(Some(now)) => detach_locked(store, &now),
        Ok(None) => Vec::new(),
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
            ip6: None,
            aliases: Vec::new(),
        }
        .detach(record)
    } else {
        BridgeDriver {
            store: store.clone(),
            network: record.network.clone(),
            ports: Vec::new(),
            ip: None,
            ip6: None,
            aliases: Vec::new(),
            connecting: record.connected,
            cni_ifname: record.cni_ifname.clone(),
            cni_network: record.cni_network.clone(),
        }
        .detach(record)
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

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Live,
    Stale,
    /// A bridge record whose bridge is not in this network namespace: gc
    /// runs elsewhere than the hooks did, and cannot tell.
    Unknown,
}

fn judge(nl: &Netlink, r: &Attachment) -> Verdict {
    if let Some(attach) = &r.attaching {
        return if attach.alive() {
            Verdict::Live
        } else {
            Verdict::Stale
        };
    }
    if r.mode != MACVLAN && !nl.link_exists(&r.bridge) {
        return Verdict::Unknown;
    }
    if holder_lives(nl, &r.host_interface) {
        Verdict::Live
    } else {
        Verdict::Stale
    }
}

/// Before a container's first attach: a first-network record its id already
/// has (the one the new record would replace) is an earlier container's. A
/// gone one is detached now, so that nothing of it (its firewall elements
/// above all) outlives it under the new record; a live one refuses the
/// attach. One file read, whatever else is attached.
pub fn take_over_id(store: &Store, id: &str) -> Result<(), BridgeError> {
    let Some(earlier) = store.load_attachment(id)? else {
        return Ok(());
    };
    if judge(&Netlink::open()?, &earlier) == Verdict::Live {
        return Err(BridgeError::AlreadyOn {
            container: id.into(),
            network: earlier.network,
        });
    }
    match detach_record(store, &earlier).into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The sweep; an error only when the store cannot be read at all.
pub fn sweep(store: &Store) -> Result<Swept, BridgeError> {
    let nl = Netlink::open()?;
    let mut swept = Swept::default();
    for r in store.list_attachments()? {
        if judge(&nl, &r) != Verdict::Stale {
            continue;
        }
        let _lock = store.lock_network(&r.network)?;
        // Judged again under the lock: an attach of a new container of the
        // same id may have written its record since.
        match store.reload_record(&r)? {
            Some(now) if now == r && judge(&nl, &now) == Verdict::Stale => {}
            _ => continue,
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
    for entry in store::read_dir_or_empty(&store.run_dir.join("networks"))? {
        if !entry.path().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let _lock = store.lock_network(&name)?;
        match ipam::sweep(&entry.path(), &live, &has_record) {
            Ok(n) => swept.leases += n,
            Err(e) => swept.errors.push(format!("leases of {name}: {e}")),
        }
        sweep_temporary(&entry.path(), &mut swept);
    }
    {
        let _lock = store.lock_firewall()?;
        let claims = store.ports_dir();
        match host_ports::sweep(&claims, &live, &has_record) {
            Ok(n) => swept.claims += n,
            Err(e) => swept.errors.push(format!("{}: {e}", claims.display())),
        }
        sweep_temporary(&claims, &mut swept);
    }
    sweep_files(store, &has_record, &mut swept)?;
    sweep_temporary(&store.run_dir.join("containers"), &mut swept);
    Ok(swept)
}

/// /etc files of containers no record names (before records were written
/// first, or an older minirun's under `containers/`); each judged again just
/// before it goes, since a new attach writes its record before its files.
fn sweep_files(
    store: &Store,
    has_record: &dyn Fn(&str) -> bool,
    swept: &mut Swept,
) -> Result<(), BridgeError> {
    for parent in [
        store.run_dir.join("files"),
        store.run_dir.join("containers"),
    ] {
        for entry in store::read_dir_or_empty(&parent)? {
            let id = entry.file_name().to_string_lossy().into_owned();
            // The listing above, then the one record a new attach would
            // have written since (files come only after it).
            if !entry.path().is_dir() || has_record(&id) || store.load_attachment(&id)?.is_some() {
                continue;
            }
            match fs::remove_dir_all(entry.path()) {
                Ok(()) => swept.files += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => swept
                    .errors
                    .push(format!("{}: {e}", entry.path().display())),
            }
        }
    }
    Ok(())
}

/// Temporary files (`.<name>.<pid>`) of writers that died before renaming
/// or linking them into place.
fn sweep_temporary(dir: &Path, swept: &mut Swept) {
    let Ok(entries) = store::read_dir_or_empty(dir) else {
        return;
    };
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let writer = name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once('.'))
            .and_then(|(_, pid)| pid.parse::<i32>().ok());
        if writer.is_some_and(|pid| store::start_time(pid).is_none())
            && fs::remove_file(entry.path()).is_ok()
        {
            swept.files += 1;
        }
    }
}
