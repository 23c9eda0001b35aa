//! This host's copy of the other hosts' endpoints, per overlay network
//! (`<run dir>/cluster/remote/<network>.json`), written under the network's
//! lock by whoever programmed the kernel from it (an attach that made the
//! network's vxlan device, the agent after each change). The hosts files are
//! rewritten from it, and it is the last known state while the store is
//! unreachable.

use std::fs;
use std::path::PathBuf;

use super::ipam::Endpoint;
use crate::store::{write_whole, Store, StoreError};

fn path(store: &Store, network: &str) -> PathBuf {
    store
        .run_dir
        .join("cluster")
        .join("remote")
        .join(format!("{network}.json"))
}

/// The other hosts' endpoints on `network` as last programmed (none when
/// never, or unreadable: a hosts file then lists this host's peers only).
pub fn remote(store: &Store, network: &str) -> Vec<Endpoint> {
    fs::read(path(store, network))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub fn save_remote(store: &Store, network: &str, endpoints: &[Endpoint]) -> Result<(), StoreError> {
    write_whole(
        &path(store, network),
        &serde_json::to_vec(endpoints).expect("endpoints serialize"),
    )
}

/// Whether the view of `network` is kept (see `bridge.rs`' ensure_vxlan).
pub fn exists(store: &Store, network: &str) -> bool {
    path(store, network).exists()
}

/// Forgets a network this host no longer has a vxlan device for.
pub fn forget(store: &Store, network: &str) {
    let _ = fs::remove_file(path(store, network));
}
