//! The container's network mode, turned into what any runc-style runtime
//! reads: namespace entries and hooks.
//!
//! First match wins: `--net` on create/run, the `org.minirun.net.mode`
//! annotation, otherwise config.json's namespaces as they are (runc's reading).
//! `--net NAME` of a user-defined network (`minirun network create`) is bridge
//! mode on that network (annotation `org.minirun.net.network`), with `--ip`
//! and `--alias` passed on to the hook as annotations too.
//! - `host`: no network namespace;
//! - `none`: a new one, with only `lo` (the init brings it up);
//! - `container:<id>`: the network namespace of running container `<id>`;
//! - `bridge`: a new one, and `minirun-net attach` (createRuntime) and
//!   `minirun-net detach` (poststop) written into the hooks as a user would
//!   write them for runc.
//!
//! The chosen mode is also written into the annotations, so the hook, `state`
//! and anyone reading the state see it.

use std::path::{Path, PathBuf};

use minirun_net::mode::{
    Mode, ModeError, ALIASES_ANNOTATION, IP6_ANNOTATION, IP_ANNOTATION, MODE_ANNOTATION,
    NETWORK_ANNOTATION,
};
use minirun_net::ports::{self, PORTS_ANNOTATION};
use minirun_net::store::{Network, Store, DEFAULT_NETWORK};
use minirun_net::store::{CONFIG_DIR_ENV, RUN_DIR_ENV};
use oci_spec::runtime::{
    Hook, HookBuilder, Hooks, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, Spec,
};

use crate::container::{Container, ContainerError, Status};

/// Where the hook binary is, when not beside `minirun`.
pub const HOOK_BIN_ENV: &str = "MINIRUN_NET_BIN";
const HOOK_BIN: &str = "minirun-net";

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("{origin}: {source}")]
    Mode { origin: String, source: ModeError },
    #[error("{origin}: no container {id:?} under this --root")]
    NoSuchContainer { origin: String, id: String },
    #[error("{origin}: container {id} is {status}, not running")]
    NotRunning {
        origin: String,
        id: String,
        status: Status,
    },
    #[error("{origin}: {source}")]
    Container {
        origin: String,
        source: ContainerError,
    },
    #[error("{origin}: {source}")]
    Ports {
        origin: String,
        source: ports::PortError,
    },
    #[error("published ports need bridge networking, not {0}")]
    PortsNeedBridge(Mode),
    #[error("bridge networking needs the {HOOK_BIN} hook binary: {0} does not exist (set {HOOK_BIN_ENV})")]
    NoHookBinary(PathBuf),
    #[error("{origin}: network {name:?} does not exist (see `minirun network ls`)")]
    NoNetwork { origin: String, name: String },
    #[error("--net {0:?}: neither a mode (bridge, host, none, container:<id>) nor a network (see `minirun network ls`)")]
    UnknownNet(String),
    #[error("{origin}: {source}")]
    Store {
        origin: String,
        source: minirun_net::store::StoreError,
    },
    #[error("{origin}: {source}")]
    Lookup {
        origin: String,
        source: minirun_net::networks::NetworksError,
    },
    #[error("{flag} {ip}: {why}")]
    Ip {
        flag: &'static str,
        ip: String,
        why: String,
    },
    #[error("--alias: {0}")]
    Alias(String),
    #[error("{0}")]
    Hook(String),
}

/// What create/run were asked about networking.
#[derive(Debug, Default, Clone, Copy)]
pub struct NetOptions<'a> {
    /// `--net`: a mode or a network's name.
    pub flag: Option<&'a str>,
    /// `-p`
    pub publish: &'a [String],
    /// `--ip`
    pub ip: Option<&'a str>,
    /// `--ip6`
    pub ip6: Option<&'a str>,
    /// `--alias`
    pub aliases: &'a [String],
}

/// A user-defined network's definition, by name.
fn user_network(origin: &str, name: &str) -> Result<Network, NetworkError> {
    if !minirun_net::networks::valid_name(name) {
        return Err(NetworkError::NoNetwork {
            origin: origin.into(),
            name: name.into(),
        });
    }
    minirun_net::networks::find(&Store::from_env(), name)
        .map_err(|source| NetworkError::Lookup {
            origin: origin.into(),
            source,
        })?
        .filter(|_| name != DEFAULT_NETWORK)
        .ok_or_else(|| NetworkError::NoNetwork {
            origin: origin.into(),
            name: name.into(),
        })
}

/// Reads the mode (flag first, then annotation) and rewrites the spec for it.
/// Returns the mode, or `None` when neither asked for one.
pub fn apply(
    spec: &mut Spec,
    net: NetOptions,
    root: &Path,
    own_id: &str,
) -> Result<Option<Mode>, NetworkError> {
    let (flag, publish) = (net.flag, net.publish);
    // A flag that is no mode names a user network: bridge mode on it.
    let mut network: Option<Network> = None;
    let flag = match flag {
        Some(f) if f.parse::<Mode>().is_err() && !f.contains(':') => {
            network = Some(user_network("--net", f).map_err(|e| match e {
                NetworkError::NoNetwork { .. } => NetworkError::UnknownNet(f.into()),
                other => other,
            })?);
            Some("bridge")
        }
        other => other,
    };
    if network.is_none() {
        let annotated = spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(NETWORK_ANNOTATION))
            .filter(|n| n.as_str() != DEFAULT_NETWORK)
            .cloned();
        // The hook is the authority here: it may keep its networks elsewhere
        // (a hooks.d file sets its environment; podman's runtime gets none),
        // and says so itself if the network is missing. What the runtime can
        // see it checks.
        if let Some(name) = annotated {
            network = match user_network(
                &format!("config.json: annotations.{NETWORK_ANNOTATION}"),
                &name,
            ) {
                Ok(n) => Some(n),
                Err(NetworkError::NoNetwork { .. }) => None,
                Err(e) => return Err(e),
            };
        }
    }
    let annotated_ports = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(PORTS_ANNOTATION))
        .cloned();
    let ports = if publish.is_empty() {
        annotated_ports
            .map(|list| {
                ports::parse_list(&list).map_err(|source| NetworkError::Ports {
                    origin: format!("config.json: annotations.{PORTS_ANNOTATION}"),
                    source,
                })?;
                Ok(list)
            })
            .transpose()?
    } else {
        let list = publish.join(",");
        ports::parse_list(&list).map_err(|source| NetworkError::Ports {
            origin: "-p".into(),
            source,
        })?;
        Some(list)
    };
    let mode = match flag {
        Some(f) => f.parse().map_err(|source| NetworkError::Mode {
            origin: "--net".into(),
            source,
        })?,
        None => match spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(MODE_ANNOTATION))
        {
            Some(a) => a.parse().map_err(|source| NetworkError::Mode {
                origin: format!("config.json: annotations.{MODE_ANNOTATION}"),
                source,
            })?,
            // Publishing a port means Docker's default network.
            None if ports.is_some() => Mode::Bridge,
            None => return Ok(None),
        },
    };
    if ports.is_some() && mode != Mode::Bridge {
        return Err(NetworkError::PortsNeedBridge(mode));
    }
    if let (Some(n), Some(list)) = (&network, &ports) {
        // A host address of a family the network does not have.
        let has = |v6: bool| {
            if v6 {
                n.enable_ipv6
            } else {
                n.subnet.is_some()
            }
        };
        let stray = ports::parse_list(list)
            .unwrap_or_default()
            .into_iter()
            .find(|m| m.host_ip.is_some_and(|ip| !has(ip.is_ipv6())));
        if let Some(m) = stray {
            let family = if m.host_ip.is_some_and(|ip| ip.is_ipv6()) {
                "IPv6"
            } else {
                "IPv4"
            };
            return Err(NetworkError::Ports {
                origin: "-p".into(),
                source: ports::PortError {
                    spec: m.to_string(),
                    reason: format!(
                        "network {} has no {family}: nothing is published on an {family} host address",
                        n.name
                    ),
                },
            });
        }
        let why = if n.internal {
            Some("is internal: nothing from outside reaches it")
        } else if n.is_macvlan() {
            Some("is macvlan: its containers are on the segment themselves")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(NetworkError::Ports {
                origin: "-p".into(),
                source: ports::PortError {
                    spec: list.clone(),
                    reason: format!("network {} {why}", n.name),
                },
            });
        }
    }
    let user_net = network.as_ref().filter(|_| mode == Mode::Bridge);
    if let Some(ip) = net.ip {
        let n = user_net.ok_or_else(|| chosen_needs_network("--ip", ip))?;
        check_chosen(ip, n.ipv4(), &n.name)?;
    }
    if let Some(ip) = net.ip6 {
        let n = user_net.ok_or_else(|| chosen_needs_network("--ip6", ip))?;
        check_chosen(ip, n.ipv6(), &n.name)?;
    }
    if !net.aliases.is_empty() {
        if user_net.is_none() {
            return Err(NetworkError::Alias(
                "aliases need a user-defined network (--net NAME)".into(),
            ));
        }
        if let Some(bad) = net
            .aliases
            .iter()
            .find(|a| !minirun_net::networks::valid_alias(a))
        {
            return Err(NetworkError::Alias(format!(
                "{bad:?} is not a host name (letters, digits, '-', '_', '.')"
            )));
        }
    }
    match &mode {
        Mode::Host => set_network_namespace(spec, None, false),
        Mode::None => set_network_namespace(spec, None, true),
        Mode::Container(id) => {
            let path = namespace_of(root, id, own_id)?;
            set_network_namespace(spec, Some(path), true)
        }
        Mode::Bridge => {
            set_network_namespace(spec, None, true);
            add_hooks(spec, &hook_binary()?);
        }
    }
    let mut annotations = spec.annotations().clone().unwrap_or_default();
    annotations.insert(MODE_ANNOTATION.to_string(), mode.to_string());
    if let Some(list) = ports {
        annotations.insert(PORTS_ANNOTATION.to_string(), list);
    }
    if let Some(n) = user_net {
        annotations.insert(NETWORK_ANNOTATION.to_string(), n.name.clone());
    }
    if let Some(ip) = net.ip {
        annotations.insert(IP_ANNOTATION.to_string(), ip.to_string());
    }
    if let Some(ip) = net.ip6 {
        annotations.insert(IP6_ANNOTATION.to_string(), ip.to_string());
    }
    if !net.aliases.is_empty() {
        annotations.insert(ALIASES_ANNOTATION.to_string(), net.aliases.join(","));
    }
    spec.set_annotations(Some(annotations));
    Ok(Some(mode))
}

fn chosen_needs_network(flag: &'static str, ip: &str) -> NetworkError {
    NetworkError::Ip {
        flag,
        ip: ip.into(),
        why: "a chosen address needs a user-defined network (--net NAME)".into(),
    }
}

/// An address asked for (`--ip`, `--ip6`): of the family, a container's
/// address of the network's subnet of that family.
fn check_chosen<A: minirun_net::ipam::Family>(
    ip: &str,
    subnet: Option<(minirun_net::ipam::Cidr<A>, A)>,
    network: &str,
) -> Result<(), NetworkError> {
    let err = |why: String| NetworkError::Ip {
        flag: A::FLAG,
        ip: ip.into(),
        why,
    };
    let addr: A = ip
        .parse()
        .map_err(|_| err(format!("not an {} address", A::NAME)))?;
    let (s, gateway) =
        subnet.ok_or_else(|| err(format!("network {network} has no {} subnet", A::NAME)))?;
    if !s.is_assignable(addr, gateway) {
        return Err(err(format!(
            "not an address for a container on network {network} (subnet {s}, gateway {gateway})"
        )));
    }
    Ok(())
}

/// /proc/<pid>/ns/net of running container `id`, its init checked to still be
/// that container's (by start time, against pid reuse).
fn namespace_of(root: &Path, id: &str, own_id: &str) -> Result<PathBuf, NetworkError> {
    let origin = format!("--net container:{id}");
    if id == own_id {
        return Err(NetworkError::NoSuchContainer {
            origin,
            id: id.into(),
        });
    }
    let c = live_container(root, id, &origin, &[Status::Running])?;
    Ok(PathBuf::from(format!("/proc/{}/ns/net", c.state.pid)))
}

/// Container `id`, refused (naming `origin`) unless its status is one of `ok`.
fn live_container(
    root: &Path,
    id: &str,
    origin: &str,
    ok: &[Status],
) -> Result<Container, NetworkError> {
    let c = Container::load(root, id).map_err(|e| match e {
        ContainerError::NotFound(_) => NetworkError::NoSuchContainer {
            origin: origin.into(),
            id: id.into(),
        },
        source => NetworkError::Container {
            origin: origin.into(),
            source,
        },
    })?;
    if !ok.contains(&c.state.status) {
        return Err(NetworkError::NotRunning {
            origin: origin.into(),
            id: id.into(),
            status: c.state.status,
        });
    }
    Ok(c)
}

fn set_network_namespace(spec: &mut Spec, path: Option<PathBuf>, wanted: bool) {
    let Some(linux) = spec.linux_mut() else {
        return;
    };
    let mut namespaces: Vec<LinuxNamespace> = linux.namespaces().clone().unwrap_or_default();
    namespaces.retain(|n| n.typ() != LinuxNamespaceType::Network);
    if wanted {
        let mut ns = LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::Network)
            .build()
            .expect("a namespace with a type builds");
        ns.set_path(path);
        namespaces.push(ns);
    }
    linux.set_namespaces(Some(namespaces));
}

/// `network connect|disconnect NAME ID`: the hook binary does it, given the
/// container's state as a hook would be (the runtime links no netlink or
/// nftables code of its own).
pub fn connect(
    root: &Path,
    id: &str,
    network: &str,
    join: bool,
    ip: Option<&str>,
    ip6: Option<&str>,
    aliases: &[String],
) -> Result<(), NetworkError> {
    let verb = if join { "connect" } else { "disconnect" };
    let origin = format!("network {verb}");
    let c = live_container(root, id, &origin, &[Status::Running, Status::Created])?;
    let mut args: Vec<String> = vec![verb.into(), "--network".into(), network.into()];
    if let Some(ip) = ip {
        args.extend(["--ip".into(), ip.into()]);
    }
    if let Some(ip) = ip6 {
        args.extend(["--ip6".into(), ip.into()]);
    }
    for a in aliases {
        args.extend(["--alias".into(), a.clone()]);
    }
    let state = serde_json::to_vec(&c.state.public_json()).unwrap_or_default();
    run_hook_binary(&args, &state)?;
    if join && !c.state.networks_connected {
        // `delete` then detaches it whether or not its config runs the hook.
        let _lock = c.lock().map_err(|source| NetworkError::Container {
            origin: origin.clone(),
            source,
        })?;
        let mut c = Container::load(root, id).map_err(|source| NetworkError::Container {
            origin: origin.clone(),
            source,
        })?;
        c.state.networks_connected = true;
        c.save_state()
            .map_err(|source| NetworkError::Container { origin, source })?;
    }
    Ok(())
}

/// `delete` of a container that was given networks with `network connect`:
/// the hook detaches it from all of them (idempotent, so a poststop hook
/// that did it already costs nothing but the call).
pub fn detach_connected(state_json: &[u8]) -> Result<(), NetworkError> {
    run_hook_binary(&["detach".into()], state_json)
}

fn run_hook_binary(args: &[String], stdin: &[u8]) -> Result<(), NetworkError> {
    use std::io::Write;
    let binary = hook_binary()?;
    let mut child = std::process::Command::new(&binary)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| NetworkError::Hook(format!("{}: {e}", binary.display())))?;
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetworkError::Hook(format!("{}: {e}", binary.display())))?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let text = text.trim();
    Err(NetworkError::Hook(
        text.strip_prefix("minirun-net: ")
            .unwrap_or(text)
            .to_string(),
    ))
}

/// `MINIRUN_NET_BIN`, else `minirun-net` beside this binary.
fn hook_binary() -> Result<PathBuf, NetworkError> {
    let path = match std::env::var_os(HOOK_BIN_ENV).filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join(HOOK_BIN)))
            .unwrap_or_else(|| PathBuf::from(HOOK_BIN)),
    };
    if path.is_absolute() && path.is_file() {
        Ok(path)
    } else {
        Err(NetworkError::NoHookBinary(path))
    }
}

/// Adds attach (createRuntime) and detach (poststop) unless the config already
/// runs minirun-net itself (a bundle written for runc).
const CLUSTER_CONFIG_ENV: &str = minirun_net::cluster::CONFIG_ENV;

fn add_hooks(spec: &mut Spec, binary: &Path) {
    let mut hooks = spec.hooks().clone().unwrap_or_default();
    let ours = |h: &Hook| h.path().file_name().is_some_and(|n| n == HOOK_BIN);
    let present = [hooks.prestart(), hooks.create_runtime(), hooks.poststop()]
        .iter()
        .any(|list| list.iter().flatten().any(ours));
    if present {
        return;
    }
    // The hook inherits none of the runtime's environment: pass on where the
    // network state lives if it was moved.
    let env: Vec<String> = [RUN_DIR_ENV, CONFIG_DIR_ENV, CLUSTER_CONFIG_ENV, "PATH"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| format!("{k}={v}")))
        .collect();
    let hook = |verb: &str| -> Hook {
        HookBuilder::default()
            .path(binary)
            .args(vec![HOOK_BIN.to_string(), verb.to_string()])
            .env(env.clone())
            .build()
            .expect("a hook with a path builds")
    };
    push(
        &mut hooks,
        |h| h.create_runtime().clone(),
        Hooks::set_create_runtime,
        hook("attach"),
    );
    push(
        &mut hooks,
        |h| h.poststop().clone(),
        Hooks::set_poststop,
        hook("detach"),
    );
    spec.set_hooks(Some(hooks));
}

fn push(
    hooks: &mut Hooks,
    get: impl Fn(&Hooks) -> Option<Vec<Hook>>,
    set: impl Fn(&mut Hooks, Option<Vec<Hook>>) -> &mut Hooks,
    hook: Hook,
) {
    let mut list = get(hooks).unwrap_or_default();
    list.push(hook);
    set(hooks, Some(list));
}

/// The network part of `state`'s output: the mode and, in bridge mode, what
/// the hook attached (in the spirit of `docker inspect`'s NetworkSettings).
pub fn settings(
    id: &str,
    annotations: Option<&std::collections::HashMap<String, String>>,
) -> Option<serde_json::Value> {
    let mode = annotations.and_then(|a| a.get(MODE_ANNOTATION))?;
    let mut out = serde_json::json!({ "mode": mode });
    let store = minirun_net::store::Store::from_env();
    if let Ok(Some(a)) = store.load_attachment(id) {
        if let (Some(obj), Ok(serde_json::Value::Object(rec))) =
            (out.as_object_mut(), serde_json::to_value(&a))
        {
            for (k, v) in rec {
                if k != "container" && k != "mode" {
                    obj.insert(k, v);
                }
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts<'a>(flag: Option<&'a str>, publish: &'a [String]) -> NetOptions<'a> {
        NetOptions {
            flag,
            publish,
            ..Default::default()
        }
    }

    fn spec_with_netns() -> Spec {
        Spec::default()
    }

    #[test]
    fn host_removes_and_none_adds_the_network_namespace() {
        let mut s = spec_with_netns();
        let root = Path::new("/nonexistent");
        apply(&mut s, opts(Some("host"), &[]), root, "me").unwrap();
        let ns = s.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert!(!ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
        assert_eq!(s.annotations().as_ref().unwrap()[MODE_ANNOTATION], "host");
        apply(&mut s, opts(Some("none"), &[]), root, "me").unwrap();
        let ns = s.linux().as_ref().unwrap().namespaces().clone().unwrap();
        let net: Vec<_> = ns
            .iter()
            .filter(|n| n.typ() == LinuxNamespaceType::Network)
            .collect();
        assert_eq!(net.len(), 1);
        assert!(net[0].path().is_none());
    }

    #[test]
    fn the_flag_wins_and_bad_modes_name_their_origin() {
        let mut s = spec_with_netns();
        let root = Path::new("/nonexistent");
        let mut a = std::collections::HashMap::new();
        a.insert(MODE_ANNOTATION.to_string(), "overlay".to_string());
        s.set_annotations(Some(a));
        let e = apply(&mut s, opts(None, &[]), root, "me")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("config.json: annotations.org.minirun.net.mode:"),
            "{e}"
        );
        assert_eq!(
            apply(&mut s, opts(Some("none"), &[]), root, "me").unwrap(),
            Some(Mode::None)
        );
        let e = apply(&mut s, opts(Some("container:ghost"), &[]), root, "me").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--net container:ghost: no container \"ghost\" under this --root"
        );
    }

    #[test]
    fn published_ports_are_checked_and_need_bridge() {
        let root = Path::new("/nonexistent");
        let mut s = spec_with_netns();
        let e = apply(&mut s, opts(None, &["0:80".into()]), root, "me").unwrap_err();
        assert_eq!(
            e.to_string(),
            "-p: port spec \"0:80\": host port 0 is outside 1-65535"
        );
        let e = apply(&mut s, opts(Some("host"), &["8080:80".into()]), root, "me").unwrap_err();
        assert_eq!(
            e.to_string(),
            "published ports need bridge networking, not host"
        );
    }
}
