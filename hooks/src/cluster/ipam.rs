//! Addresses and endpoints of overlay networks, cluster-wide.
//!
//! An address is taken by creating `addresses/<network>/<ip>` in a
//! transaction that also checks the network is still the one read; the key
//! is on the taking host's lease, so an address held by a host that died
//! (even mid-attach) comes free when its lease ends, and never before. The
//! lowest free address is tried first (Docker's order); a lost race reads
//! again, and after a few losses the next try starts at a point of its own
//! so that thirty simultaneous starts do not all chase the same address.
//!
//! An endpoint (`endpoints/<network>/<host>/<container>`) is put once the
//! container is attached: other hosts program their forwarding from it.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::etcd::{Compare, Op};
use super::{keys, lease_gone, Cluster, ClusterError};
use crate::ipam::Subnet;
use crate::store::Network;

/// Who holds an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub container: String,
    /// The holder's host (its advertise address).
    pub host: String,
}

/// A container attached to an overlay network somewhere in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub container: String,
    pub network: String,
    /// The host it runs on: its underlay address, where VXLAN goes.
    pub host: Ipv4Addr,
    pub ip: Ipv4Addr,
    pub mac: String,
    /// Names the network's containers find it by (id, aliases).
    #[serde(default)]
    pub names: Vec<String>,
}

impl Endpoint {
    pub fn key(&self) -> String {
        keys::endpoint(&self.network, &self.host.to_string(), &self.container)
    }

    /// As a peer in /etc/hosts files.
    pub fn as_peer(&self) -> crate::etc_files::Peer {
        crate::etc_files::Peer {
            container: format!("{}@{}", self.container, self.host),
            ip: Some(self.ip),
            ip6: None,
            names: self.names.clone(),
        }
    }
}

/// A small deterministic spread (FNV-1a) for retries after lost races.
fn spread(text: &str, round: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(round);
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// An overlay network's subnet and gateway: overlay networks carry IPv4.
fn ipv4(net: &Network) -> Result<(Subnet, Ipv4Addr), ClusterError> {
    net.ipv4().ok_or_else(|| {
        ClusterError::Invalid(format!("overlay network {} has no IPv4 subnet", net.name))
    })
}

/// The addresses a container may get, in order from `start`.
fn assignable(net: &Network) -> Result<(u32, u32), ClusterError> {
    let (subnet, _) = ipv4(net)?;
    let from = net.ip_range.unwrap_or(subnet);
    let first = u32::from(from.addr()).max(u32::from(subnet.addr()) + 1);
    let last = u32::from(from.last()).min(u32::from(subnet.last()) - 1);
    Ok((first, last))
}

/// Picks a free address: the lowest, or in later rounds one from a point
/// of this container's own.
fn pick(net: &Network, taken: &HashSet<u32>, seed: &str, round: u32) -> Option<Ipv4Addr> {
    let (first, last) = assignable(net).ok()?;
    let (_, gateway) = ipv4(net).ok()?;
    if first > last {
        return None;
    }
    let size = u64::from(last - first) + 1;
    let start = if round < 3 {
        0
    } else {
        spread(seed, round) % size
    };
    let gateway = u32::from(gateway);
    (0..size)
        .map(|i| first + ((start + i) % size) as u32)
        .find(|ip| *ip != gateway && !taken.contains(ip))
        .map(Ipv4Addr::from)
}

/// The addresses named by keys under `addresses/<network>/`.
pub fn addresses_of(kvs: &[super::etcd::Kv]) -> HashSet<u32> {
    kvs.iter()
        .filter_map(|kv| kv.key.rsplit('/').next()?.parse::<Ipv4Addr>().ok())
        .map(u32::from)
        .collect()
}

/// Takes an address on `net` (read at `revision`, with the addresses
/// `held` then) for `container`: `want` or a free one. The key is put on
/// `lease`, this host's. Returns it with the network's endpoints as the
/// same transaction read them: the hook holds the network's lock, so every
/// later change reaches this host through the agent, after the attach.
pub fn take(
    cluster: &Cluster,
    net: &Network,
    (revision, held): (i64, &HashSet<u32>),
    container: &str,
    want: Option<Ipv4Addr>,
    lease: i64,
) -> Result<(Ipv4Addr, Vec<Endpoint>), ClusterError> {
    let host = cluster.host();
    let what = format!("network {}: taking an address for {container}", net.name);
    let holder = serde_json::to_vec(&Holder {
        container: container.into(),
        host: host.clone(),
    })
    .expect("a holder serializes");
    let (subnet, gateway) = ipv4(net)?;
    if let Some(ip) = want {
        let (first, last) = assignable(net)?;
        if !(first..=last).contains(&u32::from(ip)) || ip == gateway {
            return Err(ClusterError::Invalid(format!(
                "--ip {ip}: not an address for a container in subnet {subnet} (gateway {gateway})"
            )));
        }
    }
    let seed = format!("{host}/{container}");
    for round in 0..32 {
        let ip = match want {
            Some(ip) => ip,
            None => {
                // The first round goes by what the definition's read saw.
                let taken = if round == 0 {
                    held.clone()
                } else {
                    let (now, _) = cluster
                        .etcd
                        .get_prefix(&keys::addresses(&net.name), &what)?;
                    addresses_of(&now)
                };
                pick(net, &taken, &seed, round).ok_or_else(|| {
                    ClusterError::Invalid(format!(
                        "network {}: {subnet} has no free address ({} taken)",
                        net.name,
                        taken.len()
                    ))
                })?
            }
        };
        let key = keys::address(&net.name, ip);
        let result = cluster.etcd.txn(
            &[
                Compare::Absent(key.clone()),
                super::network_unchanged(&net.name, revision),
            ],
            &[
                Op::Put {
                    key: key.clone(),
                    value: holder.clone(),
                    lease,
                },
                Op::GetPrefix(keys::endpoints(&net.name)),
            ],
            &[Op::Get(key), Op::Get(keys::network(&net.name))],
            &what,
        );
        let result = match result {
            Err(e) if lease_gone(&e) => {
                return Err(ClusterError::NoLease(format!(
                    "lease {lease:x} is not in the store"
                )))
            }
            other => other?,
        };
        if result.succeeded {
            let endpoints = result
                .ranges
                .first()
                .map(|r| {
                    r.iter()
                        .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
                        .collect()
                })
                .unwrap_or_default();
            return Ok((ip, endpoints));
        }
        let holder_now = result.ranges.first().and_then(|r| r.first());
        let network_now = result.ranges.get(1).and_then(|r| r.first());
        if network_now.is_none_or(|kv| kv.mod_revision != revision) {
            return Err(ClusterError::Invalid(format!(
                "network {} was removed or changed while {container} was attaching",
                net.name
            )));
        }
        if want.is_some() {
            let by = holder_now
                .and_then(|kv| serde_json::from_slice::<Holder>(&kv.value).ok())
                .map_or_else(
                    || "another container".into(),
                    |h| format!("{} on {}", h.container, h.host),
                );
            return Err(ClusterError::Invalid(format!(
                "--ip {ip}: the address is taken by {by}"
            )));
        }
    }
    Err(ClusterError::Invalid(format!(
        "{what}: every address tried was taken first by another host; try again"
    )))
}

/// Gives back `container`'s address on `network` if this host still holds
/// it for that container, and removes its endpoint. Idempotent.
pub fn give_back(
    cluster: &Cluster,
    network: &str,
    ip: Ipv4Addr,
    container: &str,
) -> Result<(), ClusterError> {
    let host = cluster.host();
    let what = format!("network {network}: giving back {ip} of {container}");
    let key = keys::address(network, ip);
    let (current, _) = cluster.etcd.get(&key, &what)?;
    let mut compare = Vec::new();
    let mut ops = vec![Op::Delete(keys::endpoint(network, &host, container))];
    if let Some(kv) = current {
        let ours = serde_json::from_slice::<Holder>(&kv.value)
            .is_ok_and(|h| h.container == container && h.host == host);
        if ours {
            compare.push(Compare::ModRevision(key.clone(), kv.mod_revision));
            ops.push(Op::Delete(key));
        }
    }
    // A holder that changed in between is someone else's now: only the
    // endpoint (whose key is this host's alone) goes then.
    cluster.etcd.txn(&compare, &ops, &ops[..1], &what)?;
    Ok(())
}

/// Makes the container visible to every host.
pub fn publish(cluster: &Cluster, endpoint: &Endpoint, lease: i64) -> Result<(), ClusterError> {
    let what = format!(
        "network {}: announcing container {}",
        endpoint.network, endpoint.container
    );
    let put = cluster.etcd.txn(
        &[],
        &[Op::Put {
            key: endpoint.key(),
            value: serde_json::to_vec(endpoint).expect("an endpoint serializes"),
            lease,
        }],
        &[],
        &what,
    );
    match put {
        Err(e) if lease_gone(&e) => Err(ClusterError::NoLease(format!(
            "lease {lease:x} is not in the store"
        ))),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

/// Every endpoint of a network (all hosts), and the revision read at.
pub fn endpoints(cluster: &Cluster, network: &str) -> Result<(Vec<Endpoint>, i64), ClusterError> {
    let (kvs, revision) = cluster.etcd.get_prefix(
        &keys::endpoints(network),
        &format!("network {network}: reading its containers"),
    )?;
    Ok((
        kvs.iter()
            .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
            .collect(),
        revision,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(cidr: &str) -> Network {
        let s: crate::ipam::Subnet = cidr.parse().unwrap();
        Network::new("app", "mr-x", s, s.first_host())
    }

    #[test]
    fn the_lowest_free_address_first_then_spread() {
        let n = net("10.200.0.0/24");
        let mut taken = HashSet::new();
        assert_eq!(
            pick(&n, &taken, "h/a", 0),
            Some(Ipv4Addr::new(10, 200, 0, 2))
        );
        taken.insert(u32::from(Ipv4Addr::new(10, 200, 0, 2)));
        assert_eq!(
            pick(&n, &taken, "h/a", 1),
            Some(Ipv4Addr::new(10, 200, 0, 3))
        );
        let late = pick(&n, &taken, "h/a", 5).unwrap();
        let (subnet, gateway) = n.ipv4().unwrap();
        assert!(subnet.contains(late) && late != gateway);
        let full: HashSet<u32> = (2..=254)
            .map(|i| u32::from(Ipv4Addr::new(10, 200, 0, i)))
            .collect();
        assert_eq!(pick(&n, &full, "h/a", 0), None);
        assert_eq!(pick(&n, &full, "h/a", 7), None);
    }
}
