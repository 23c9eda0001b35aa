//! Where minirun keeps the cluster in etcd: everything under one prefix, one
//! key per fact, so each can be compared in a transaction, watched and
//! attached to the lease of the host it belongs to.
//!
//! - `members/<advertise>`: a host that joined (kept until it leaves);
//! - `alive/<advertise>`: on the host's lease, gone within its TTL once the
//!   host stops renewing it;
//! - `networks/<name>`: an overlay network's definition;
//! - `vnis/<vni>`: the network that owns a VXLAN id (one per network);
//! - `addresses/<network>/<ip>`: who holds an address, on the holder host's
//!   lease (a dead host's addresses come free with it);
//! - `endpoints/<network>/<host>/<container>`: a container attached and
//!   reachable (address, MAC, names), on the host's lease: what the other
//!   hosts program their forwarding from.

pub const PREFIX: &str = "/minirun/v1/";

pub fn members() -> String {
    format!("{PREFIX}members/")
}

pub fn member(advertise: &str) -> String {
    format!("{PREFIX}members/{advertise}")
}

pub fn alives() -> String {
    format!("{PREFIX}alive/")
}

pub fn alive(advertise: &str) -> String {
    format!("{PREFIX}alive/{advertise}")
}

pub fn networks() -> String {
    format!("{PREFIX}networks/")
}

pub fn network(name: &str) -> String {
    format!("{PREFIX}networks/{name}")
}

pub fn vni(vni: u32) -> String {
    format!("{PREFIX}vnis/{vni}")
}

pub fn addresses(network: &str) -> String {
    format!("{PREFIX}addresses/{network}/")
}

pub fn address(network: &str, ip: std::net::Ipv4Addr) -> String {
    format!("{PREFIX}addresses/{network}/{ip}")
}

pub fn all_endpoints() -> String {
    format!("{PREFIX}endpoints/")
}

pub fn endpoints(network: &str) -> String {
    format!("{PREFIX}endpoints/{network}/")
}

pub fn endpoint(network: &str, host: &str, container: &str) -> String {
    format!("{PREFIX}endpoints/{network}/{host}/{container}")
}

/// What a key under the prefix is about.
#[derive(Debug, PartialEq, Eq)]
pub enum Key<'a> {
    Member(&'a str),
    Alive(&'a str),
    Network(&'a str),
    Endpoint {
        network: &'a str,
        host: &'a str,
        container: &'a str,
    },
    Other,
}

pub fn parse(key: &str) -> Key<'_> {
    let Some(rest) = key.strip_prefix(PREFIX) else {
        return Key::Other;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["members", host] => Key::Member(host),
        ["alive", host] => Key::Alive(host),
        ["networks", name] => Key::Network(name),
        ["endpoints", network, host, container] => Key::Endpoint {
            network,
            host,
            container,
        },
        _ => Key::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        assert_eq!(
            parse(&endpoint("app", "10.0.0.11", "db1")),
            Key::Endpoint {
                network: "app",
                host: "10.0.0.11",
                container: "db1"
            }
        );
        assert_eq!(parse(&member("10.0.0.11")), Key::Member("10.0.0.11"));
        assert_eq!(parse(&alive("10.0.0.12")), Key::Alive("10.0.0.12"));
        assert_eq!(parse(&network("app")), Key::Network("app"));
        assert_eq!(parse(&vni(4097)), Key::Other);
        assert_eq!(parse("/elsewhere/x"), Key::Other);
    }
}
