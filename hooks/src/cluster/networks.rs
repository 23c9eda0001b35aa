//! Overlay network definitions, in etcd: created, listed and removed from
//! any host, each change one transaction that compares what it checked
//! (no other network written since the read, the name and the VXLAN id
//! still free; no address leased anywhere, for a removal).

use std::collections::HashSet;
use std::net::Ipv4Addr;

use super::etcd::{Compare, Op};
use super::{keys, Cluster, ClusterError};
use crate::ipam::Subnet;
use crate::networks::NetworksError;
use crate::store::Network;

pub const OVERLAY: &str = "overlay";
/// The first VXLAN id handed out (Docker's overlay driver starts there too,
/// leaving the low ids to hand-made tunnels).
pub const FIRST_VNI: u32 = 4097;
pub const MAX_VNI: u32 = (1 << 24) - 1;
/// The VXLAN header, outer UDP, IP and Ethernet: what an overlay frame
/// carries on the underlay more than the container sent.
pub const VXLAN_OVERHEAD: u32 = 50;

/// A definition and the revision it was last written at.
pub fn get(cluster: &Cluster, name: &str) -> Result<Option<(Network, i64)>, ClusterError> {
    let (kv, _) = cluster.etcd.get(
        &keys::network(name),
        &format!("reading overlay network {name}"),
    )?;
    kv.map(|kv| decode(&kv.key, &kv.value).map(|n| (n, kv.mod_revision)))
        .transpose()
}

/// What an attach reads in one round trip: the definition, the revision it
/// was written at, and the addresses held on the network then.
pub fn get_for_attach(
    cluster: &Cluster,
    name: &str,
) -> Result<Option<(Network, i64, HashSet<u32>)>, ClusterError> {
    let read = cluster.etcd.txn(
        &[],
        &[
            Op::Get(keys::network(name)),
            Op::GetPrefix(keys::addresses(name)),
        ],
        &[],
        &format!("reading overlay network {name}"),
    )?;
    let Some(kv) = read.ranges.first().and_then(|r| r.first()) else {
        return Ok(None);
    };
    let net = decode(&kv.key, &kv.value)?;
    let held = read
        .ranges
        .get(1)
        .map(|r| super::ipam::addresses_of(r))
        .unwrap_or_default();
    Ok(Some((net, kv.mod_revision, held)))
}

fn decode(key: &str, value: &[u8]) -> Result<Network, ClusterError> {
    let net: Network = serde_json::from_slice(value)
        .map_err(|e| ClusterError::Invalid(format!("etcd key {key}: {e}")))?;
    net.validate()
        .map_err(|e| ClusterError::Invalid(format!("etcd key {key}: {e}")))?;
    Ok(net)
}

/// Every overlay network, by name.
pub fn list(cluster: &Cluster) -> Result<Vec<Network>, ClusterError> {
    let (kvs, _) = cluster
        .etcd
        .get_prefix(&keys::networks(), "listing overlay networks")?;
    let mut nets = kvs
        .iter()
        .map(|kv| decode(&kv.key, &kv.value))
        .collect::<Result<Vec<_>, _>>()?;
    nets.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(nets)
}

/// The subnets an overlay network gets when none is asked for: /24s of
/// 10.0.0.0/8, as Docker's overlay driver hands them out.
fn candidates() -> impl Iterator<Item = Subnet> {
    (0..=255u8).flat_map(|b| {
        (0..=255u8).map(move |c| Subnet::new(Ipv4Addr::new(10, b, c, 0), 24).expect("a /24"))
    })
}

/// Writes `net` (subnet `None`: one picked) to the store, with `vni` or the
/// first free VXLAN id, checked against every overlay network and, through
/// `also_taken`, this host's own networks and routes.
pub fn create(
    cluster: &Cluster,
    mut net: Network,
    subnet: Option<Subnet>,
    vni: Option<u32>,
    also_taken: &dyn Fn(&Subnet) -> Option<String>,
) -> Result<Network, NetworksError> {
    if let Some(v) = vni {
        if !(1..=MAX_VNI).contains(&v) {
            return Err(NetworksError::Invalid(format!(
                "option vni={v}: a VXLAN id is 1 to {MAX_VNI}"
            )));
        }
    }
    let what = format!("network create {}", net.name);
    // A lost race (another create between the read and the write) is read
    // again; a handful of rounds settles any real contention.
    for _ in 0..8 {
        let (kvs, revision) = cluster.etcd.get_prefix(&keys::networks(), &what)?;
        let existing = kvs
            .iter()
            .map(|kv| decode(&kv.key, &kv.value))
            .collect::<Result<Vec<_>, _>>()?;
        if existing.iter().any(|n| n.name == net.name) {
            return Err(NetworksError::Exists(net.name.clone()));
        }
        let chosen = match subnet {
            Some(s) => {
                if let Some((other, o)) = existing
                    .iter()
                    .find_map(|n| n.subnet.filter(|o| o.overlaps(&s)).map(|o| (n, o)))
                {
                    return Err(NetworksError::Invalid(format!(
                        "subnet {s} overlaps subnet {o} of overlay network {}",
                        other.name
                    )));
                }
                if let Some(what) = also_taken(&s) {
                    return Err(NetworksError::Invalid(format!(
                        "subnet {s} overlaps {what}"
                    )));
                }
                s
            }
            None => candidates()
                .find(|c| {
                    !existing
                        .iter()
                        .any(|n| n.subnet.is_some_and(|o| o.overlaps(c)))
                        && also_taken(c).is_none()
                })
                .ok_or_else(|| NetworksError::NoFreeSubnet(net.name.clone()))?,
        };
        let used = |v: u32| existing.iter().any(|n| n.vni == Some(v));
        let v = match vni {
            Some(v) if used(v) => {
                let owner = existing.iter().find(|n| n.vni == Some(v)).expect("used");
                return Err(NetworksError::Invalid(format!(
                    "option vni={v}: VXLAN id {v} is taken by overlay network {}",
                    owner.name
                )));
            }
            Some(v) => v,
            None => (FIRST_VNI..=MAX_VNI)
                .find(|v| !used(*v))
                .ok_or_else(|| NetworksError::Invalid("no free VXLAN id".into()))?,
        };
        if subnet.is_none() || net.gateway.is_none() {
            net.gateway = Some(chosen.first_host());
        }
        net.subnet = Some(chosen);
        net.vni = Some(v);
        net.validate().map_err(NetworksError::Invalid)?;
        net.check_host_subnet().map_err(NetworksError::Invalid)?;
        let written = cluster.etcd.txn(
            &[
                Compare::Absent(keys::network(&net.name)),
                Compare::Absent(keys::vni(v)),
                Compare::UnchangedUnderSince(keys::networks(), revision),
            ],
            &[
                Op::Put {
                    key: keys::network(&net.name),
                    value: serde_json::to_vec_pretty(&net).expect("a network serializes"),
                    lease: 0,
                },
                Op::Put {
                    key: keys::vni(v),
                    value: net.name.clone().into_bytes(),
                    lease: 0,
                },
            ],
            &[],
            &what,
        )?;
        if written.succeeded {
            return Ok(net);
        }
    }
    Err(NetworksError::Invalid(format!(
        "{what}: the store kept changing under it; try again"
    )))
}

/// Removes an overlay network: refused while any host holds an address on
/// it, naming who.
pub fn remove(cluster: &Cluster, name: &str) -> Result<(), NetworksError> {
    let what = format!("network rm {name}");
    let Some((net, revision)) = get(cluster, name)? else {
        return Err(NetworksError::NotFound(name.into()));
    };
    let mut ops = vec![Op::Delete(keys::network(name))];
    if let Some(v) = net.vni {
        ops.push(Op::Delete(keys::vni(v)));
    }
    let done = cluster.etcd.txn(
        &[
            super::network_unchanged(name, revision),
            Compare::NoneUnder(keys::addresses(name)),
        ],
        &ops,
        &[Op::GetPrefix(keys::addresses(name))],
        &what,
    )?;
    if done.succeeded {
        return Ok(());
    }
    let containers: Vec<String> = done
        .ranges
        .first()
        .map(|holders| {
            holders
                .iter()
                .filter_map(|kv| serde_json::from_slice::<super::ipam::Holder>(&kv.value).ok())
                .map(|h| format!("{} on {}", h.container, h.host))
                .collect()
        })
        .unwrap_or_default();
    if containers.is_empty() {
        // The definition changed between the read and the write.
        return Err(NetworksError::Invalid(format!(
            "{what}: the network changed meanwhile; try again"
        )));
    }
    Err(NetworksError::InUse {
        name: name.into(),
        containers,
    })
}
