//! `minirun-net` as a CNI plugin: when `CNI_COMMAND` is set, the binary
//! speaks the CNI protocol (spec 1.1, and 1.0.0 and 0.4.0 for older
//! callers) instead of the OCI hook's: the network configuration on stdin,
//! the container in `CNI_CONTAINERID`, `CNI_NETNS` and `CNI_IFNAME`, the
//! result or the error as JSON on stdout.
//!
//! ADD attaches with the bridge driver exactly as the hook does (same IPAM,
//! leases, nftables table and isolation, so pods and `minirun run`
//! containers of one network reach each other), with these differences: the
//! attachment is keyed by container id and interface name, its interface
//! is the one the runtime named, and no /etc file is written (the CRI
//! runtime owns /etc/hosts and resolv.conf). Ports come from
//! `runtimeConfig.portMappings`. DEL always succeeds when there is nothing
//! to remove, also when the namespace is gone; CHECK compares `prevResult`
//! with the attachment and the namespace; GC removes every attachment of
//! its CNI network (the configuration's `name`) not in
//! `cni.dev/valid-attachments`; STATUS says whether ADDs can work (the
//! firewall can be written, the network is defined and not macvlan).
//!
//! The configuration's own keys: `network` (a minirun network: `bridge`
//! by default, a user-defined or an overlay one) and `aliases` (more names
//! the pod is found by on a user network); Kubernetes' `K8S_POD_NAME` from
//! `CNI_ARGS` is such a name too.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::bridge::BridgeDriver;
use crate::driver::{Container, NetworkDriver};
use crate::ports::{PortMapping, Protocol};
use crate::store::{Attachment, Network, Store};

/// The versions this plugin answers, newest last.
pub const SUPPORTED: [&str; 3] = ["0.4.0", "1.0.0", "1.1.0"];

/// An error as CNI reports it: a well-known code (spec, "Error codes"),
/// a message and details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

/// Codes of the spec used here.
pub const INCOMPATIBLE_VERSION: u32 = 1;
pub const UNKNOWN_CONTAINER: u32 = 3;
pub const INVALID_ENVIRONMENT: u32 = 4;
pub const IO_FAILURE: u32 = 5;
pub const DECODE_FAILURE: u32 = 6;
pub const INVALID_CONFIG: u32 = 7;
pub const TRY_AGAIN_LATER: u32 = 11;
pub const NOT_AVAILABLE: u32 = 50;

impl CniError {
    fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        CniError {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    pub fn to_json(&self, version: &str) -> Value {
        json!({"cniVersion": version, "code": self.code, "msg": self.msg, "details": self.details})
    }
}

/// A port mapping as Kubernetes passes it (`runtimeConfig.portMappings`):
/// the spec's keys, or go-cni's capitalised ones (containerd 1.6 sends
/// `HostPort`, `ContainerPort`, `Protocol`, `HostIP`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CniPort {
    #[serde(alias = "HostPort")]
    host_port: u16,
    #[serde(alias = "ContainerPort")]
    container_port: u16,
    #[serde(default, alias = "Protocol")]
    protocol: String,
    #[serde(default, rename = "hostIP", alias = "HostIP")]
    host_ip: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuntimeConfig {
    #[serde(default)]
    port_mappings: Vec<CniPort>,
}

/// One attachment GC must keep.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct ValidAttachment {
    #[serde(rename = "containerID")]
    container_id: String,
    ifname: String,
}

/// The network configuration on stdin (the plugin's entry of a conflist,
/// with `name` and `cniVersion` from the list). Unknown keys are another
/// plugin's or the runtime's business, and pass.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NetConf {
    cni_version: String,
    /// The CNI network's name (kept with each attachment: GC is per name).
    #[serde(default)]
    name: String,
    /// The minirun network (default `bridge`).
    #[serde(default)]
    network: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    runtime_config: RuntimeConfig,
    #[serde(default, rename = "cni.dev/valid-attachments")]
    valid_attachments: Option<Vec<ValidAttachment>>,
    /// CHECK: the result the attachment was made with.
    #[serde(default)]
    prev_result: Option<Value>,
}

impl NetConf {
    fn network(&self) -> &str {
        self.network
            .as_deref()
            .unwrap_or(crate::store::DEFAULT_NETWORK)
    }
}

/// What the runtime says in the environment.
#[derive(Debug, Default, Clone)]
struct Env {
    container_id: String,
    netns: String,
    ifname: String,
    args: BTreeMap<String, String>,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// The longest container id: `<id>%<ifname>.json`, written under a
/// temporary `.<name>.<pid>`, must stay a file name (255 bytes).
const MAX_ID: usize = 200;

/// The spec's container id (`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`), short
/// enough to name the attachment's record.
fn valid_container_id(id: &str) -> bool {
    id.len() <= MAX_ID
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A Linux interface name that is also a file name.
fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name.contains(|c: char| c == '/' || c == ':' || c == '%' || c.is_whitespace())
}

impl Env {
    fn read(needs_netns: bool) -> Result<Env, CniError> {
        let e = Env {
            container_id: env("CNI_CONTAINERID"),
            netns: env("CNI_NETNS"),
            ifname: env("CNI_IFNAME"),
            args: env("CNI_ARGS")
                .split(';')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let bad = |what: String| Err(CniError::new(INVALID_ENVIRONMENT, what, ""));
        if !valid_container_id(&e.container_id) {
            return bad(format!(
                "CNI_CONTAINERID {:?} is not a container id (a letter or digit, then letters, digits, '_', '.', '-'; at most {MAX_ID} characters)",
                e.container_id
            ));
        }
        if !valid_ifname(&e.ifname) {
            return bad(format!(
                "CNI_IFNAME {:?} is not an interface name (1-15 characters, no '/', ':', '%' or spaces)",
                e.ifname
            ));
        }
        if needs_netns && e.netns.is_empty() {
            return bad("CNI_NETNS is not set".into());
        }
        Ok(e)
    }
}

fn decode(input: &[u8]) -> Result<NetConf, CniError> {
    let conf: NetConf = serde_json::from_slice(input).map_err(|e| {
        CniError::new(
            DECODE_FAILURE,
            "the network configuration on stdin is not valid",
            e.to_string(),
        )
    })?;
    if !SUPPORTED.contains(&conf.cni_version.as_str()) {
        return Err(CniError::new(
            INCOMPATIBLE_VERSION,
            format!("cniVersion {:?} is not supported", conf.cni_version),
            format!("supported: {}", SUPPORTED.join(", ")),
        ));
    }
    if !crate::networks::valid_name(conf.network()) {
        return Err(CniError::new(
            INVALID_CONFIG,
            format!("network {:?} is not a network name", conf.network()),
            "",
        ));
    }
    if let Some(bad) = conf
        .aliases
        .iter()
        .find(|a| !crate::networks::valid_alias(a))
    {
        return Err(CniError::new(
            INVALID_CONFIG,
            format!("aliases: {bad:?} is not a host name"),
            "",
        ));
    }
    Ok(conf)
}

fn ports(conf: &NetConf) -> Result<Vec<PortMapping>, CniError> {
    let mut out = Vec::new();
    for p in &conf.runtime_config.port_mappings {
        let invalid = |what: String| CniError::new(INVALID_CONFIG, what, "");
        let protocol = match p.protocol.to_ascii_lowercase().as_str() {
            "" | "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            // Kubernetes allows it, and the pod must still start: skipped,
            // as the reference portmap plugin skips what it cannot map.
            "sctp" => {
                eprintln!(
                    "minirun-net: hostPort {}/sctp not published: minirun publishes tcp and udp",
                    p.host_port
                );
                continue;
            }
            other => {
                return Err(invalid(format!(
                    "runtimeConfig.portMappings: protocol {other:?} (tcp, udp or sctp)"
                )))
            }
        };
        let host_ip = match p.host_ip.as_str() {
            "" => None,
            ip => Some(ip.parse::<IpAddr>().map_err(|_| {
                invalid(format!(
                    "runtimeConfig.portMappings: hostIP {ip:?} is not an IP address"
                ))
            })?),
        };
        if p.host_port == 0 || p.container_port == 0 {
            return Err(invalid(format!(
                "runtimeConfig.portMappings: {}:{} (ports are 1-65535)",
                p.host_port, p.container_port
            )));
        }
        out.push(PortMapping {
            host_ip,
            host_port: p.host_port,
            container_port: p.container_port,
            protocol,
        });
    }
    Ok(out)
}

/// Maps an attach or detach failure to the spec's codes: a store that
/// cannot be reached is worth a retry, anything else is the plugin's.
fn failure(what: &str, e: &dyn std::fmt::Display) -> CniError {
    let text = e.to_string();
    let code = if text.contains("is unreachable") || text.contains("no live cluster lease") {
        TRY_AGAIN_LATER
    } else if text.contains("does not exist (no ") {
        INVALID_CONFIG
    } else {
        IO_FAILURE
    };
    CniError::new(code, format!("{what}: {text}"), "")
}

/// The result of an ADD, in the caller's version.
fn result(version: &str, r: &Attachment, host_mac: &str, netns: &str) -> Value {
    let mut ips = Vec::new();
    let mut routes = Vec::new();
    if let (Some(ip4), Some(gateway)) = (r.ip_address, r.gateway) {
        let mut ip = json!({
            "address": format!("{ip4}/{}", r.prefix_len),
            "gateway": gateway.to_string(),
            "interface": 1,
        });
        if version == "0.4.0" {
            ip["version"] = "4".into();
        }
        ips.push(ip);
        if !r.internal {
            routes.push(json!({"dst": "0.0.0.0/0", "gw": gateway.to_string()}));
        }
    }
    if let (Some(ip6), Some(gateway6)) = (r.ip6_address, r.gateway6) {
        let mut ip = json!({
            "address": format!("{ip6}/{}", r.prefix6_len),
            "gateway": gateway6.to_string(),
            "interface": 1,
        });
        if version == "0.4.0" {
            ip["version"] = "6".into();
        }
        ips.push(ip);
        if !r.internal {
            routes.push(json!({"dst": "::/0", "gw": gateway6.to_string()}));
        }
    }
    json!({
        "cniVersion": version,
        "interfaces": [
            {"name": r.host_interface, "mac": host_mac},
            {"name": r.interface, "mac": r.mac_address, "sandbox": netns},
        ],
        "ips": ips,
        "routes": routes,
        "dns": {},
    })
}

/// The host end's MAC, as the kernel gave it (asked through netlink:
/// /sys/class/net is the namespace of whoever mounted /sys).
fn host_mac(name: &str) -> String {
    use netlink_packet_route::link::LinkAttribute;
    crate::netlink::Netlink::open()
        .ok()
        .and_then(|nl| nl.link_by_name(name).ok().flatten())
        .and_then(|link| {
            link.attributes.iter().find_map(|a| match a {
                LinkAttribute::Address(mac) if mac.len() == 6 => Some(crate::veth::mac_text([
                    mac[0], mac[1], mac[2], mac[3], mac[4], mac[5],
                ])),
                _ => None,
            })
        })
        .unwrap_or_default()
}

/// The namespace `CNI_NETNS` names, held open.
fn open_netns(e: &Env) -> Result<File, CniError> {
    File::open(&e.netns).map_err(|err| {
        CniError::new(
            INVALID_ENVIRONMENT,
            format!("CNI_NETNS {}: {err}", e.netns),
            "",
        )
    })
}

fn add(store: Store, conf: &NetConf, e: &Env) -> Result<Value, CniError> {
    let netns = open_netns(e)?;
    if crate::driver::is_own_namespace(&netns)
        .map_err(|err| CniError::new(IO_FAILURE, format!("CNI_NETNS {}: {err}", e.netns), ""))?
    {
        return Err(CniError::new(
            INVALID_ENVIRONMENT,
            format!("CNI_NETNS {} is the host's own network namespace", e.netns),
            "",
        ));
    }
    let network = conf.network().to_string();
    let local = Network::load(&store, &network).ok().flatten();
    if local.as_ref().is_some_and(|n| n.is_macvlan()) {
        return Err(CniError::new(
            INVALID_CONFIG,
            format!("network {network} is macvlan: the CNI plugin attaches to bridge and overlay networks"),
            "",
        ));
    }
    let mut ports = ports(conf)?;
    // The other family's host address is skipped, as portmap does: the
    // pod must still start.
    // (A network not defined here is an overlay network: IPv4.)
    let has_ipv4 = local.as_ref().is_none_or(|n| n.subnet.is_some());
    let has_ipv6 = local.as_ref().is_some_and(|n| n.enable_ipv6);
    ports.retain(|m| {
        let (has, family) = match m.host_ip {
            Some(ip) if ip.is_ipv6() => (has_ipv6, "IPv6"),
            Some(_) => (has_ipv4, "IPv4"),
            None => (true, ""),
        };
        if !has {
            eprintln!("minirun-net: hostPort {m} not published: network {network} has no {family}");
        }
        has
    });
    let _attachment = store
        .lock_cni(&e.container_id, &e.ifname)
        .map_err(|err| failure("locking the attachment", &err))?;
    let mut aliases = conf.aliases.clone();
    if let Some(pod) = e
        .args
        .get("K8S_POD_NAME")
        .filter(|p| crate::networks::valid_alias(p))
    {
        aliases.push(pod.clone());
    }
    let container = Container {
        id: e.container_id.clone(),
        pid: 0,
        netns,
        rootfs: PathBuf::new(),
        hostname: e.container_id.chars().take(12).collect(),
    };
    let driver = BridgeDriver {
        store,
        network: network.clone(),
        ports,
        ip: None,
        ip6: None,
        aliases,
        connecting: false,
        cni_ifname: Some(e.ifname.clone()),
        cni_network: Some(conf.name.clone()),
    };
    let record = driver
        .attach(&container)
        .map_err(|err| failure(&format!("attach {} to {network}", e.container_id), &err))?;
    let mac = host_mac(&record.host_interface);
    Ok(result(&conf.cni_version, &record, &mac, &e.netns))
}

fn del(store: &Store, e: &Env) -> Result<(), CniError> {
    let _attachment = store
        .lock_cni(&e.container_id, &e.ifname)
        .map_err(|err| failure("locking the attachment", &err))?;
    let lock_file = store.cni_lock(&e.container_id, &e.ifname);
    let Some(record) = store
        .load_cni_attachment(&e.container_id, &e.ifname)
        .map_err(|err| failure("reading the attachment", &err))?
    else {
        let _ = std::fs::remove_file(&lock_file);
        return Ok(());
    };
    let errors = crate::gc::detach_record(store, &record);
    match errors.first() {
        None => {
            let _ = std::fs::remove_file(&lock_file);
            Ok(())
        }
        Some(_) => {
            let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
            Err(failure(
                &format!("detach {} from {}", record.container, record.network),
                &all.join("; "),
            ))
        }
    }
}

/// CHECK: the attachment is there and whole, as `prevResult` says it was
/// made: its record finished, the address the result names, its host veth,
/// and inside the namespace the interface with that address.
fn check(store: &Store, conf: &NetConf, e: &Env) -> Result<(), CniError> {
    let invalid = |what: String| CniError::new(INVALID_CONFIG, what, "");
    let prev = conf
        .prev_result
        .as_ref()
        .ok_or_else(|| invalid("CHECK needs prevResult (the result of the ADD)".into()))?;
    let record = store
        .load_cni_attachment(&e.container_id, &e.ifname)
        .map_err(|err| failure("reading the attachment", &err))?
        .filter(|r| r.attaching.is_none())
        .ok_or_else(|| {
            CniError::new(
                UNKNOWN_CONTAINER,
                format!(
                    "container {} has no attachment on {}",
                    e.container_id, e.ifname
                ),
                "",
            )
        })?;
    if record.network != conf.network() {
        return Err(invalid(format!(
            "container {} ({}) is on network {}, not {}",
            e.container_id,
            e.ifname,
            record.network,
            conf.network()
        )));
    }
    let addresses: Vec<(IpAddr, u8)> = record
        .ip_address
        .map(|ip| (IpAddr::V4(ip), record.prefix_len))
        .into_iter()
        .chain(
            record
                .ip6_address
                .map(|ip| (IpAddr::V6(ip), record.prefix6_len)),
        )
        .collect();
    for (ip, prefix) in &addresses {
        let address = format!("{ip}/{prefix}");
        let named = prev["ips"]
            .as_array()
            .is_some_and(|ips| ips.iter().any(|ip| ip["address"] == address.as_str()));
        if !named {
            return Err(invalid(format!(
                "prevResult does not name {address}, an address of {} ({})",
                e.container_id, e.ifname
            )));
        }
    }
    let gone = |what: String| CniError::new(IO_FAILURE, what, "");
    let nl = crate::netlink::Netlink::open().map_err(|err| failure("netlink", &err))?;
    if !nl.link_exists(&record.host_interface) {
        return Err(gone(format!(
            "the host end {} of {}'s veth is gone",
            record.host_interface, e.container_id
        )));
    }
    let netns = open_netns(e)?;
    let inside = crate::netlink::Netlink::open_in(std::os::fd::AsFd::as_fd(&netns))
        .map_err(|err| failure("netlink in the container", &err))?;
    let index = inside.link_index(&record.interface).map_err(|_| {
        gone(format!(
            "interface {} is gone from {}",
            record.interface, e.netns
        ))
    })?;
    let has = inside
        .addresses(index)
        .map_err(|err| failure("listing the interface's addresses", &err))?;
    if let Some((ip, prefix)) = addresses.iter().find(|a| !has.contains(a)) {
        return Err(gone(format!(
            "interface {} in {} lost its address {ip}/{prefix}",
            record.interface, e.netns
        )));
    }
    Ok(())
}

/// STATUS: ADDs can work when the firewall can be written and the
/// network exists and is one the plugin attaches to.
fn status(store: &Store, conf: &NetConf) -> Result<(), CniError> {
    use crate::firewall::nftables::Nftables;
    let unavailable = |what: String| CniError::new(NOT_AVAILABLE, what, "");
    Nftables::new()
        .and_then(|nft| nft.run("list tables"))
        .map_err(|err| unavailable(format!("the firewall cannot be written: {err}")))?;
    let network = conf.network();
    if network == crate::store::DEFAULT_NETWORK {
        return Ok(());
    }
    match crate::networks::find(store, network).map_err(|err| unavailable(err.to_string()))? {
        None => Err(unavailable(format!(
            "network {network} is not defined (minirun network create)"
        ))),
        Some(net) if net.is_macvlan() => Err(unavailable(format!(
            "network {network} is macvlan: the CNI plugin attaches to bridge and overlay networks"
        ))),
        Some(_) => Ok(()),
    }
}

/// GC: every attachment added for this CNI network (its configuration's
/// `name`) and not named valid goes; one whose ADD is still at work stays.
fn gc(store: &Store, conf: &NetConf) -> Result<(), CniError> {
    let valid = conf.valid_attachments.as_ref().ok_or_else(|| {
        CniError::new(
            INVALID_CONFIG,
            "GC needs cni.dev/valid-attachments (the spec's list of attachments to keep)",
            "",
        )
    })?;
    let records = store
        .list_attachments()
        .map_err(|err| failure("listing attachments", &err))?;
    let mut errors = Vec::new();
    for r in &records {
        let (Some(ifname), Some(cni_network)) = (&r.cni_ifname, &r.cni_network) else {
            continue;
        };
        if cni_network != &conf.name
            || r.attaching.is_some_and(|p| p.alive())
            || valid
                .iter()
                .any(|v| v.container_id == r.container && &v.ifname == ifname)
        {
            continue;
        }
        let Ok(_attachment) = store.lock_cni(&r.container, ifname) else {
            continue;
        };
        let undone: Vec<String> = crate::gc::detach_record(store, r)
            .iter()
            .map(ToString::to_string)
            .collect();
        if undone.is_empty() {
            let _ = std::fs::remove_file(store.cni_lock(&r.container, ifname));
        }
        errors.extend(undone);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CniError::new(
            IO_FAILURE,
            format!("gc: {}", errors.join("; ")),
            "",
        ))
    }
}

/// The plugin: reads the command, prints the result or the error, and
/// returns the exit status.
pub fn main(store: Store) -> i32 {
    let command = env("CNI_COMMAND");
    let mut input = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut input);
    let newest = SUPPORTED[SUPPORTED.len() - 1];
    // Errors answer in the caller's version when it said one it can read.
    let version = serde_json::from_slice::<Value>(&input)
        .ok()
        .and_then(|v| v["cniVersion"].as_str().map(String::from))
        .filter(|v| SUPPORTED.contains(&v.as_str()))
        .unwrap_or_else(|| newest.to_string());
    let outcome = match command.as_str() {
        // Answered in the caller's version, as the spec asks.
        "VERSION" => Ok(Some(
            json!({"cniVersion": version, "supportedVersions": SUPPORTED}),
        )),
        "ADD" | "DEL" | "CHECK" | "STATUS" | "GC" => decode(&input).and_then(|conf| {
            match command.as_str() {
                "ADD" => Env::read(true)
                    .and_then(|e| add(store, &conf, &e))
                    .map(Some),
                // DEL must succeed with whatever is left: no netns needed,
                // and an id or interface no ADD could have taken has
                // nothing to remove.
                "DEL" => match Env::read(false) {
                    Ok(e) => del(&store, &e).map(|()| None),
                    Err(e) if e.code == INVALID_ENVIRONMENT => Ok(None),
                    Err(e) => Err(e),
                },
                "CHECK" => Env::read(true)
                    .and_then(|e| check(&store, &conf, &e))
                    .map(|()| None),
                "STATUS" => status(&store, &conf).map(|()| None),
                _ => gc(&store, &conf).map(|()| None),
            }
        }),
        "" => Err(CniError::new(
            INVALID_ENVIRONMENT,
            "CNI_COMMAND is empty",
            "",
        )),
        other => Err(CniError::new(
            INVALID_ENVIRONMENT,
            format!("CNI_COMMAND {other:?}: expected ADD, DEL, CHECK, STATUS, GC or VERSION"),
            "",
        )),
    };
    match outcome {
        Ok(Some(v)) => {
            println!("{v}");
            0
        }
        Ok(None) => 0,
        Err(e) => {
            println!("{}", e.to_json(&version));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn configs_are_read_as_the_spec_writes_them() {
        let conf = decode(
            br#"{"cniVersion":"1.1.0","name":"k8s-pod-network","type":"minirun-net","network":"bridge",
                "capabilities":{"portMappings":true},
                "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"TCP","hostIP":""}]}}"#,
        )
        .unwrap();
        assert_eq!(conf.network(), "bridge");
        let p = ports(&conf).unwrap();
        assert_eq!(
            (
                p[0].host_port,
                p[0].container_port,
                p[0].protocol,
                p[0].host_ip
            ),
            (8080, 80, Protocol::Tcp, None)
        );
        assert_eq!(
            decode(br#"{"cniVersion":"0.3.1"}"#).unwrap_err().code,
            INCOMPATIBLE_VERSION
        );
        assert_eq!(decode(b"{").unwrap_err().code, DECODE_FAILURE);
        assert_eq!(
            decode(br#"{"cniVersion":"1.0.0","network":"../x"}"#)
                .unwrap_err()
                .code,
            INVALID_CONFIG
        );
        let gc = decode(
            br#"{"cniVersion":"1.1.0","cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]}"#,
        )
        .unwrap();
        assert_eq!(gc.valid_attachments.unwrap()[0].container_id, "a");
    }

    #[test]
    fn containerds_capitalised_port_mappings_are_read() {
        let conf = decode(
            br#"{"cniVersion":"1.0.0","runtimeConfig":{"portMappings":[
                {"HostPort":8080,"ContainerPort":80,"Protocol":"tcp","HostIP":""}]}}"#,
        )
        .unwrap();
        let p = ports(&conf).unwrap();
        assert_eq!((p[0].host_port, p[0].container_port), (8080, 80));
    }

    #[test]
    fn what_cannot_be_published_is_skipped_and_ids_are_the_specs() {
        let conf = decode(
            br#"{"cniVersion":"1.0.0","runtimeConfig":{"portMappings":[
                {"hostPort":81,"containerPort":80,"protocol":"sctp"},
                {"hostPort":82,"containerPort":80,"protocol":"tcp","hostIP":"::"},
                {"hostPort":83,"containerPort":80,"protocol":"udp"}]}}"#,
        )
        .unwrap();
        // sctp is skipped here; the IPv6 host address is kept, for a
        // network with IPv6 (ADD skips it on one without).
        let p = ports(&conf).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].host_ip, Some("::".parse().unwrap()));
        assert_eq!((p[1].host_port, p[1].protocol), (83, Protocol::Udp));
        assert!(valid_container_id("abc-1.2_x"));
        assert!(!valid_container_id(".hidden"));
        assert!(!valid_container_id("a+b"));
        assert!(!valid_container_id(&"a".repeat(MAX_ID + 1)));
        assert!(!valid_ifname("a/b") && !valid_ifname("0123456789abcdef") && valid_ifname("eth0"));
    }

    #[test]
    fn results_follow_the_callers_version() {
        let r = Attachment {
            container: "c".into(),
            mode: "bridge".into(),
            network: "bridge".into(),
            bridge: "minirun0".into(),
            ip_address: Some(Ipv4Addr::new(172, 20, 0, 2)),
            prefix_len: 16,
            gateway: Some(Ipv4Addr::new(172, 20, 0, 1)),
            ip6_address: None,
            prefix6_len: 0,
            gateway6: None,
            mac_address: "02:42:ac:14:00:02".into(),
            host_interface: "vethx".into(),
            interface: "eth0".into(),
            mtu: 1500,
            ports: vec![],
            internal: false,
            no_icc: false,
            anti_spoofing: true,
            isolated_port: false,
            isolated_in_segment: false,
            segment: 0,
            names: vec![],
            connected: false,
            attaching: None,
            vni: None,
            cni_ifname: Some("eth0".into()),
            cni_network: Some("k8s-pod-network".into()),
        };
        let v = result("1.1.0", &r, "02:00:00:00:00:01", "/run/netns/p");
        assert_eq!(v["ips"][0]["address"], "172.20.0.2/16");
        assert_eq!(v["ips"][0]["interface"], 1);
        assert_eq!(v["interfaces"][1]["sandbox"], "/run/netns/p");
        assert!(v["ips"][0].get("version").is_none());
        assert_eq!(result("0.4.0", &r, "", "/p")["ips"][0]["version"], "4");
        assert_eq!(v["interfaces"][0]["mac"], "02:00:00:00:00:01");
        assert_eq!(v["routes"][0]["dst"], "0.0.0.0/0");
    }
}
