//! nftables through libnftables, in-process: one context, and every change a
//! single command buffer the kernel applies as one transaction.
//!
//! minirun owns one table for both address families, `inet minirun`. Networks
//! and published ports are elements of its sets and maps, so the rules never
//! change with the number of networks or containers, and attaching the
//! thousandth published container costs what the first did (one map lookup per
//! packet, one element per port). Rules that match interfaces (isolation,
//! internal, icc) hold for IPv4 and IPv6 alike; what is typed by an address
//! has an IPv6 twin (`subnets6`, `publish_any6`, `publish_addr6`):
//! - `subnets`, `subnets6`, `bridges`: the networks; traffic from a subnet
//!   leaving through an interface that is not one of minirun's bridges is
//!   masqueraded;
//! - `publish_any` (proto . port → container ip . port) and `publish_addr`
//!   (host ip . proto . port → …), and their IPv6 twins: DNAT for traffic to a
//!   local address, in prerouting (from outside and from containers) and output
//!   (from the host itself, 127.0.0.1 included; not ::1, which IPv6 cannot
//!   route to a bridge);
//! - DNAT'd traffic from a container subnet (hairpin) or from 127.0.0.0/8
//!   (localhost; `route_localnet` is set on minirun's bridges) is masqueraded
//!   as it enters a bridge, so the answer comes back the same way;
//! - new connections from a bridge to 127.0.0.0/8 are dropped: `route_localnet`
//!   must not open the host's loopback services to containers (CVE-2020-8558);
//! - `bridge_pairs` (bridge . bridge): routed traffic from one of minirun's
//!   bridges to another is dropped (networks are isolated), DNAT'd traffic
//!   (published ports) excepted; `internal` bridges exchange nothing with any
//!   other interface;
//! - `icc=false` (containers of a network may not talk to each other, but may
//!   reach each other's published ports): traffic between two containers of
//!   one bridge is bridged, not routed, and is seen in one of two places.
//!   With br_netfilter calling the IP hooks (`bridge-nf-call-iptables`, as
//!   Docker sets it up), it passes the IP forward hook with the bridge as
//!   both interfaces: bridges in `no_icc` drop it there unless it is DNAT'd
//!   (a published port; br_netfilter bridges the DNAT'd packet straight to
//!   the other port). Without br_netfilter, frames the bridge forwards
//!   between two ports in `no_icc_ports` (the containers' veths, one element
//!   each: this kernel's bridge family can match neither the bridge's name
//!   nor conntrack) are dropped in a second table, `bridge minirun`; a
//!   published port is then reached through the host, which routes and
//!   masquerades it back out of the bridge itself, not a port. Traffic the
//!   host routes back into the bridge (a published port reached from a
//!   container) leaves from the bridge itself, not a port, and passes. (Port
//!   isolation, the bridge's own flag, was tried first: a packet routed back
//!   out keeps its ingress port's isolated mark, and a container could then
//!   not reach its neighbours' published ports.)
//! - anti-spoofing, in `bridge minirun`'s prerouting, where every frame a
//!   container sends enters the bridge through its port (bridged to another
//!   container or routed by the host alike): a port in `guarded` must send
//!   IPv4 from the MAC and address its `port_addr` element names (one lookup,
//!   then accepted: the bulk of traffic pays two), and ARP for that MAC and
//!   address (or an address probe, RFC 5227: a request from 0.0.0.0 with its
//!   MAC), IPv6 from one of its IPv6 addresses (`port_addr6`: its own and its
//!   link-local one; none on an IPv4 network, where IPv6 goes nowhere) or from
//!   `::` for neighbour solicitation, neighbour advertisements only for those
//!   addresses (`nd_target`); nothing else. Router advertisements, redirects
//!   and DHCPv6 server replies are dropped from every container port, guarded
//!   or not (CVE-2020-13401). Three elements per container (seven with IPv6),
//!   keyed by its host veth: the rules never grow. Frames of ports
//!   that are not guarded (other bridges of the host, networks with
//!   anti_spoofing=false) leave at the first rule.
//! - neighbour solicitations on a network of several bridges (`segment.rs`)
//!   cross only the link toward their target, in `bridge minirun`'s forward
//!   hook (where a flooded frame is seen once per port it leaves by): one to
//!   a secondary's link end on the primary (`uplinks`) must ask for an
//!   address behind it (`nd_up`), one leaving a secondary up its link must
//!   not ask for an address of that secondary (`nd_local`). A solicitation
//!   is multicast, flooded like a broadcast: unsteered, each one reached
//!   every port of the network, and at thousands of ports a flood overflows
//!   the CPU's backlog (see the ARP answer in `segment.rs`). Now it reaches
//!   the requester's bridge, the primary's own ports and the target's
//!   bridge. Link-local targets pass (the gateway answers them; nothing is
//!   placed by them). Two elements per container on a secondary.
//! - a container's MLD reports reach the bridge (its snooping and the host
//!   see them) but are not forwarded to other ports: they are for a
//!   querier or a multicast router, and no container is one; with no
//!   querier on the bridge, each report was flooded to every port of the
//!   network, several per container as its addresses are set. Router
//!   solicitations likewise: they are for the host (whose bridge is the
//!   only router there), and a container sends them at start and, unanswered,
//!   again at growing intervals, each flooded to every port.
//!
//! Why libnftables' command buffer rather than raw nf_tables netlink: one
//! transaction per attach holds a handful of element commands, and the
//! library's parser costs microseconds next to the kernel's commit; building
//! expression bytecode by hand would be the bulk of the crate for no
//! measurable gain.
//!
//! libnftables is bound by hand: six functions of a stable C API. The crates
//! that speak nftables either run the `nft` binary per change (which the
//! product must not) or wrap libnftnl's object API, far more code than the
//! command buffer this needs.

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr::NonNull;

use std::net::Ipv4Addr;

use super::{Dnat, FirewallDriver, FirewallError, Port};
use crate::store::Network;
use crate::vxlan::VXLAN_PORT;

#[allow(non_camel_case_types)]
#[repr(C)]
struct nft_ctx {
    _private: [u8; 0],
}

// Linked by the binaries that use it (hooks/build.rs), not by every crate
// depending on this library: the runtime links statically and has no use for it.
extern "C" {
    fn nft_ctx_new(flags: u32) -> *mut nft_ctx;
    fn nft_ctx_free(ctx: *mut nft_ctx);
    fn nft_ctx_buffer_output(ctx: *mut nft_ctx) -> c_int;
    fn nft_ctx_buffer_error(ctx: *mut nft_ctx) -> c_int;
    fn nft_ctx_get_error_buffer(ctx: *mut nft_ctx) -> *const c_char;
    fn nft_run_cmd_from_buffer(ctx: *mut nft_ctx, buf: *const c_char) -> c_int;
}

pub const TABLE: &str = "minirun";

/// A libnftables context with its output and errors captured.
pub struct Nftables {
    ctx: NonNull<nft_ctx>,
}

impl Nftables {
    pub fn new() -> Result<Self, FirewallError> {
        // SAFETY: nft_ctx_new has no preconditions; NULL means failure.
        let ctx = NonNull::new(unsafe { nft_ctx_new(0) }).ok_or(FirewallError::NoContext)?;
        // SAFETY: ctx is a live context.
        unsafe {
            nft_ctx_buffer_output(ctx.as_ptr());
            nft_ctx_buffer_error(ctx.as_ptr());
        }
        Ok(Nftables { ctx })
    }

    /// Runs a command buffer as one transaction.
    pub fn run(&self, commands: &str) -> Result<(), FirewallError> {
        let buf = CString::new(commands)
            .map_err(|_| FirewallError::Nftables("a command holds a NUL byte".into()))?;
        // SAFETY: ctx is live and buf a NUL-terminated string that outlives the call.
        let rc = unsafe { nft_run_cmd_from_buffer(self.ctx.as_ptr(), buf.as_ptr()) };
        if rc == 0 {
            return Ok(());
        }
        // SAFETY: the error buffer is a NUL-terminated string owned by ctx, valid
        // until the next command; it is copied out at once.
        let err = unsafe { CStr::from_ptr(nft_ctx_get_error_buffer(self.ctx.as_ptr())) };
        let text = err.to_string_lossy();
        let first = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("failed");
        Err(FirewallError::Nftables(first.trim().to_string()))
    }
}

impl Nftables {
    /// Whether the firewall holds what a rebuild from the records must
    /// replace: the table of a minirun before IPv6 (`ip minirun`), or
    /// today's table as it was before published ranges became interval
    /// elements (their ports one element each, which the detach of today
    /// would not remove). Asked where today's table is being made or
    /// changed by detach: never on the common attach path.
    pub fn needs_rebuild(&self) -> bool {
        self.run(&format!("list table ip {TABLE}")).is_ok()
            || (self
                .run(&format!("list chain inet {TABLE} publish"))
                .is_ok()
                && self
                    .run(&format!("list map inet {TABLE} publish_range"))
                    .is_err())
    }
}

impl Drop for Nftables {
    fn drop(&mut self) {
        // SAFETY: ctx came from nft_ctx_new and is freed once.
        unsafe { nft_ctx_free(self.ctx.as_ptr()) }
    }
}

/// The tables, their sets, maps and rules, made if missing; the rules are
/// rewritten so a table left by an older minirun gets today's. (A table of
/// the `ip` family is what minirun before IPv6 had: the drivers' attach and
/// detach find it and say so, and the caller rebuilds from the records,
/// which removes it.)
fn ensure_table() -> String {
    format!(
        "add table bridge {TABLE}
add set bridge {TABLE} no_icc_ports {{ type ifname; }}
add set bridge {TABLE} guarded {{ type ifname; }}
add set bridge {TABLE} container_ports {{ type ifname; }}
add set bridge {TABLE} port_mac {{ type ifname . ether_addr; }}
add set bridge {TABLE} port_addr {{ type ifname . ether_addr . ipv4_addr; }}
add set bridge {TABLE} port_addr6 {{ type ifname . ether_addr . ipv6_addr; }}
add set bridge {TABLE} nd_target {{ typeof iifname . ether saddr . @th,64,128; }}
add set bridge {TABLE} no_icc_segment_ports {{ type ifname; }}
add set bridge {TABLE} links {{ type ifname; }}
add set bridge {TABLE} link_gateway {{ type ifname . ether_addr; }}
add set bridge {TABLE} uplinks {{ type ifname; }}
add set bridge {TABLE} nd_up {{ typeof oifname . @th,64,128; }}
add set bridge {TABLE} nd_local {{ typeof oifname . @th,64,128; }}
add chain bridge {TABLE} forward {{ type filter hook forward priority filter; policy accept; }}
add chain bridge {TABLE} spoof {{ type filter hook prerouting priority filter; policy accept; }}
flush chain bridge {TABLE} forward
flush chain bridge {TABLE} spoof
add rule bridge {TABLE} forward iifname @no_icc_ports oifname @no_icc_ports drop
add rule bridge {TABLE} forward iifname @links oifname @no_icc_ports iifname . ether saddr != @link_gateway drop
add rule bridge {TABLE} forward iifname @no_icc_segment_ports oifname @no_icc_segment_ports drop
add rule bridge {TABLE} forward oifname @uplinks icmpv6 type nd-neighbor-solicit @th,64,16 != 0xfe80 oifname . @th,64,128 != @nd_up drop
add rule bridge {TABLE} forward icmpv6 type nd-neighbor-solicit oifname . @th,64,128 @nd_local drop
add rule bridge {TABLE} forward iifname @container_ports icmpv6 type {{ mld-listener-report, mld2-listener-report, nd-router-solicit }} drop
add rule bridge {TABLE} spoof iifname @container_ports icmpv6 type {{ nd-router-advert, nd-redirect }} drop
add rule bridge {TABLE} spoof iifname @container_ports ether type ip6 udp sport 547 udp dport 546 drop
add rule bridge {TABLE} spoof iifname != @guarded accept
add rule bridge {TABLE} spoof ether type ip iifname . ether saddr . ip saddr @port_addr accept
add rule bridge {TABLE} spoof ether type ip drop
add rule bridge {TABLE} spoof iifname . ether saddr != @port_mac drop
add rule bridge {TABLE} spoof ether type arp iifname . arp saddr ether . arp saddr ip @port_addr accept
add rule bridge {TABLE} spoof ether type arp arp operation request arp saddr ip 0.0.0.0 iifname . arp saddr ether @port_mac accept
add rule bridge {TABLE} spoof icmpv6 type nd-neighbor-advert iifname . ether saddr . @th,64,128 != @nd_target drop
add rule bridge {TABLE} spoof ether type ip6 iifname . ether saddr . ip6 saddr @port_addr6 accept
add rule bridge {TABLE} spoof ether type ip6 ip6 saddr :: icmpv6 type {{ nd-neighbor-solicit, mld2-listener-report }} accept
add rule bridge {TABLE} spoof drop
add table inet {TABLE}
add set inet {TABLE} subnets {{ type ipv4_addr; flags interval; }}
add set inet {TABLE} subnets6 {{ type ipv6_addr; flags interval; }}
add set inet {TABLE} bridges {{ type ifname; }}
add set inet {TABLE} bridge_pairs {{ type ifname . ifname; }}
add set inet {TABLE} internal {{ type ifname; }}
add set inet {TABLE} no_icc {{ type ifname; }}
add set inet {TABLE} secondaries {{ type ifname; }}
add set inet {TABLE} vxlan_here {{ type ipv4_addr; }}
add set inet {TABLE} vxlan_peers {{ type ipv4_addr; }}
add map inet {TABLE} publish_any {{ type inet_proto . inet_service : ipv4_addr . inet_service; }}
add map inet {TABLE} publish_addr {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }}
add map inet {TABLE} publish_any6 {{ type inet_proto . inet_service : ipv6_addr . inet_service; }}
add map inet {TABLE} publish_addr6 {{ type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; }}
add map inet {TABLE} publish_range {{ type inet_proto . inet_service : ipv4_addr; flags interval; }}
add map inet {TABLE} publish_addr_range {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr; flags interval; }}
add map inet {TABLE} publish_range6 {{ type inet_proto . inet_service : ipv6_addr; flags interval; }}
add map inet {TABLE} publish_addr_range6 {{ type ipv6_addr . inet_proto . inet_service : ipv6_addr; flags interval; }}
add chain inet {TABLE} publish
add chain inet {TABLE} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}
add chain inet {TABLE} output {{ type nat hook output priority -100; policy accept; }}
add chain inet {TABLE} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
add chain inet {TABLE} input {{ type filter hook input priority filter; policy accept; }}
add chain inet {TABLE} forward {{ type filter hook forward priority filter; policy accept; }}
add chain inet {TABLE} untracked {{ type filter hook prerouting priority raw; policy accept; }}
flush chain inet {TABLE} publish
flush chain inet {TABLE} prerouting
flush chain inet {TABLE} output
flush chain inet {TABLE} postrouting
flush chain inet {TABLE} input
flush chain inet {TABLE} forward
flush chain inet {TABLE} untracked
add rule inet {TABLE} untracked iifname @secondaries notrack
add rule inet {TABLE} publish meta nfproto ipv4 dnat ip to ip daddr . meta l4proto . th dport map @publish_addr
add rule inet {TABLE} publish meta nfproto ipv4 dnat ip to meta l4proto . th dport map @publish_any
add rule inet {TABLE} publish meta nfproto ipv6 dnat ip6 to ip6 daddr . meta l4proto . th dport map @publish_addr6
add rule inet {TABLE} publish meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @publish_any6
add rule inet {TABLE} publish meta nfproto ipv4 dnat ip to ip daddr . meta l4proto . th dport map @publish_addr_range
add rule inet {TABLE} publish meta nfproto ipv4 dnat ip to meta l4proto . th dport map @publish_range
add rule inet {TABLE} publish meta nfproto ipv6 dnat ip6 to ip6 daddr . meta l4proto . th dport map @publish_addr_range6
add rule inet {TABLE} publish meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @publish_range6
add rule inet {TABLE} prerouting fib daddr type local jump publish
add rule inet {TABLE} output ip6 daddr ::1 return
add rule inet {TABLE} output fib daddr type local jump publish
add rule inet {TABLE} postrouting ct status dnat oifname @bridges ip saddr 127.0.0.0/8 masquerade
add rule inet {TABLE} postrouting ct status dnat oifname @bridges ip saddr @subnets masquerade
add rule inet {TABLE} postrouting ct status dnat oifname @bridges ip6 saddr @subnets6 masquerade
add rule inet {TABLE} postrouting ip saddr @subnets oifname != @bridges masquerade
add rule inet {TABLE} postrouting ip6 saddr @subnets6 oifname != @bridges masquerade
add rule inet {TABLE} input iifname @bridges ip daddr 127.0.0.0/8 ct state != {{ established, related }} drop
add rule inet {TABLE} input ip daddr @vxlan_here udp dport {VXLAN_PORT} ip saddr != @vxlan_peers drop
add rule inet {TABLE} forward ct status dnat accept
add rule inet {TABLE} forward iifname @no_icc iifname . oifname @bridge_pairs drop
add rule inet {TABLE} forward iifname @bridges oifname @bridges iifname . oifname != @bridge_pairs drop
add rule inet {TABLE} forward iifname @internal oifname != @internal drop
add rule inet {TABLE} forward oifname @internal iifname != @internal drop
"
    )
}

/// The network's elements: (set, element). Its bridge, and the pair that lets
/// traffic from the bridge back into it (anything else from one of minirun's
/// bridges to another is dropped: networks are isolated from each other);
/// the subnet to masquerade, or for an internal network its bridge in
/// `internal` (no traffic in or out).
fn network_elements(net: &Network) -> Vec<(&'static str, String)> {
    let bridge = format!("\"{}\"", net.bridge);
    let mut e = vec![
        ("bridges", bridge.clone()),
        ("bridge_pairs", format!("{bridge} . {bridge}")),
    ];
    if !net.icc {
        e.push(("no_icc", bridge.clone()));
    }
    e.extend(secondary_elements(net));
    if net.internal {
        e.push(("internal", bridge));
    } else {
        if let Some(s) = net.subnet {
            e.push(("subnets", s.to_string()));
        }
        if let Some(s6) = net.subnet6 {
            e.push(("subnets6", s6.to_string()));
        }
    }
    e
}

/// The secondary bridges of a network's segment (`segment.rs`). With
/// br_netfilter, a frame crossing a secondary passes the IP hooks there
/// before it reaches the primary: it is left untracked there
/// (`secondaries`), so conntrack and NAT decide once, where the host routes
/// it (or bridges a DNAT'd packet on), as for a container on the primary.
/// `icc=false`: with br_netfilter, traffic between two bridges crosses the
/// primary, whose IP hooks drop it as today, and a secondary's ports are
/// kept from each other at the bridge (`no_icc_segment_ports`); without it,
/// frames reaching an isolated port from a link end must come from the
/// gateway (`links`, `link_gateway`): the host routing, a published port.
/// Neighbour solicitations go through a link end on the primary only for
/// the secondary's own addresses (`uplinks`; the addresses are its
/// containers' elements).
fn secondary_elements(net: &Network) -> Vec<(&'static str, String)> {
    let gateway = crate::veth::mac_text(crate::veth::mac_of(net.gateway, net.gateway6));
    let mut e = Vec::new();
    for &k in &net.secondaries {
        let s = crate::segment::Secondary::of(&net.bridge, k);
        e.push(("secondaries", format!("\"{}\"", s.bridge)));
        e.push(("uplinks", format!("\"{}\"", s.uplink)));
        if !net.icc {
            for end in [&s.uplink, &s.downlink] {
                e.push(("links", format!("\"{end}\"")));
                e.push(("link_gateway", format!("\"{end}\" . {gateway}")));
            }
        }
    }
    e
}

/// The table a set or map is in: the bridge table's filter frames on
/// bridges.
fn family(set: &str) -> &'static str {
    match set {
        "no_icc_ports"
        | "guarded"
        | "container_ports"
        | "port_mac"
        | "port_addr"
        | "port_addr6"
        | "nd_target"
        | "no_icc_segment_ports"
        | "links"
        | "link_gateway"
        | "uplinks"
        | "nd_up"
        | "nd_local" => "bridge",
        _ => "inet",
    }
}

/// A container port's elements: (set, element).
fn port_elements(p: &Port) -> Vec<(&'static str, String)> {
    let name = format!("\"{}\"", p.host_interface);
    // Every container port: no container is a router or a DHCPv6 server
    // for the host or its neighbours, guarded or not (CVE-2020-13401).
    let mut e = vec![("container_ports", name.clone())];
    if p.isolated {
        e.push(("no_icc_ports", name.clone()));
    }
    if p.isolated_in_segment {
        e.push(("no_icc_segment_ports", name.clone()));
    }
    if let Some(g) = &p.guard {
        let mac = &g.mac;
        e.push(("guarded", name.clone()));
        e.push(("port_mac", format!("{name} . {mac}")));
        if let Some(ip4) = g.ipv4 {
            e.push(("port_addr", format!("{name} . {mac} . {ip4}")));
        }
        for ip in &g.ipv6 {
            e.push(("port_addr6", format!("{name} . {mac} . {ip}")));
            // The target of its neighbour advertisements, as the raw 128
            // bits the rule reads (nftables 1.0.6 has no `icmpv6 taddr`).
            let bits = u128::from(*ip);
            e.push(("nd_target", format!("{name} . {mac} . 0x{bits:032x}")));
        }
    }
    if let Some(l) = &p.segment_link {
        let target = u128::from(l.ipv6);
        e.push(("nd_up", format!("\"{}\" . 0x{target:032x}", l.uplink)));
        e.push(("nd_local", format!("\"{}\" . 0x{target:032x}", l.downlink)));
    }
    e
}

/// The maps of published ports, by family and by what the key holds.
fn port_map(v6: bool, by_address: bool, range: bool) -> &'static str {
    match (v6, by_address, range) {
        (false, false, false) => "publish_any",
        (false, true, false) => "publish_addr",
        (true, false, false) => "publish_any6",
        (true, true, false) => "publish_addr6",
        (false, false, true) => "publish_range",
        (false, true, true) => "publish_addr_range",
        (true, false, true) => "publish_range6",
        (true, true, true) => "publish_addr_range6",
    }
}

/// A published run's elements: (map, key, value). A run whose host and
/// container ports are equal is one interval element, however many ports
/// (the DNAT rewrites the address and keeps the port); another run is one
/// element per port. An unspecified host address is every address of its
/// family: the `any` maps.
fn port_elements_of(d: &Dnat) -> Vec<(&'static str, String, String)> {
    let r = &d.run;
    let v6 = d.container_ip.is_ipv6();
    let host = r.first.host_ip.filter(|ip| !ip.is_unspecified());
    let proto = r.first.protocol;
    let key = |ports: String| match host {
        Some(ip) => format!("{ip} . {proto} . {ports}"),
        None => format!("{proto} . {ports}"),
    };
    if r.count > 1 && r.is_identity() {
        let map = port_map(v6, host.is_some(), true);
        let ports = format!("{}-{}", r.first.host_port, r.last_host_port());
        return vec![(map, key(ports), d.container_ip.to_string())];
    }
    let map = port_map(v6, host.is_some(), false);
    r.mappings()
        .map(|m| {
            (
                map,
                key(m.host_port.to_string()),
                format!("{} . {}", d.container_ip, m.container_port),
            )
        })
        .collect()
}

/// Published ports' elements: (map, key : value).
fn ports_elements(ports: &[Dnat]) -> Vec<(&'static str, String)> {
    ports
        .iter()
        .flat_map(port_elements_of)
        .map(|(map, key, value)| (map, format!("{key} : {value}")))
        .collect()
}

/// One command per set or map with all its elements: libnftables parses
/// and evaluates each command on its own, so ten thousand elements in one
/// command cost half of ten thousand commands.
fn render(verb: &str, elements: &[(&'static str, String)]) -> String {
    let mut order: Vec<&'static str> = Vec::new();
    let mut by_set: std::collections::HashMap<&'static str, Vec<&str>> = Default::default();
    for (set, element) in elements {
        by_set
            .entry(set)
            .or_insert_with(|| {
                order.push(set);
                Vec::new()
            })
            .push(element);
    }
    order
        .iter()
        .map(|set| {
            let f = family(set);
            format!(
                "{verb} element {f} {TABLE} {set} {{ {} }}\n",
                by_set[set].join(", ")
            )
        })
        .collect()
}

/// Deleting what is missing is an error in nftables, so the elements are
/// first added: the pair always succeeds and leaves them gone. (An element
/// of the same key with another value is not ours: the add fails and the
/// transaction with it, which is what must happen.)
fn remove(elements: &[(&'static str, String)]) -> String {
    render("add", elements) + &render("delete", elements)
}

/// The elements alone: what attach sends when the table is in place.
pub fn attach_elements(net: &Network, ports: &[Dnat], port: Option<&Port>) -> String {
    let mut all = port.map(port_elements).unwrap_or_default();
    all.extend(network_elements(net));
    all.extend(ports_elements(ports));
    render("add", &all)
}

/// The table (made if missing, rules rewritten) and the elements.
pub fn attach_commands(net: &Network, ports: &[Dnat], port: Option<&Port>) -> String {
    ensure_table() + &attach_elements(net, ports, port)
}

pub fn detach_commands(
    net: &Network,
    ports: &[Dnat],
    port: Option<&Port>,
    network_unused: bool,
    table_unused: bool,
) -> String {
    let mut c = ensure_table();
    if table_unused {
        c.push_str(&format!(
            "delete table inet {TABLE}\ndelete table bridge {TABLE}\n"
        ));
        return c;
    }
    let mut all = ports_elements(ports);
    all.extend(port.map(port_elements).unwrap_or_default());
    if network_unused {
        all.extend(network_elements(net));
    }
    c.push_str(&remove(&all));
    c
}

/// The host's own VXLAN address and the cluster members allowed to send
/// to it, replacing what the sets held; `None`: no VXLAN filtered (and
/// none received: the devices are gone).
pub fn vxlan_commands(here: Option<Ipv4Addr>, peers: &[Ipv4Addr]) -> String {
    let mut c = format!("flush set inet {TABLE} vxlan_here\nflush set inet {TABLE} vxlan_peers\n");
    if let Some(here) = here {
        let mut all = vec![("vxlan_here", here.to_string())];
        all.extend(peers.iter().map(|p| ("vxlan_peers", p.to_string())));
        c.push_str(&render("add", &all));
    }
    c
}

pub fn rebuild_commands(networks: &[Network], ports: &[Dnat], bridge_ports: &[Port]) -> String {
    let mut c = format!(
        "add table ip {TABLE}\ndelete table ip {TABLE}\nadd table inet {TABLE}\ndelete table inet {TABLE}\nadd table bridge {TABLE}\ndelete table bridge {TABLE}\n"
    );
    if networks.is_empty() {
        return c;
    }
    c.push_str(&ensure_table());
    let mut all: Vec<(&'static str, String)> = networks.iter().flat_map(network_elements).collect();
    all.extend(ports_elements(ports));
    all.extend(bridge_ports.iter().flat_map(port_elements));
    c.push_str(&render("add", &all));
    c
}

impl FirewallDriver for Nftables {
    /// Elements only when the table is there (the common case), the whole
    /// table when not. Rewriting the rules on every attach would be correct
    /// but slow: replaced rules are freed after an RCU grace period, and the
    /// kernel makes the next release of an nftables socket wait for it (10-15
    /// ms here). Adding elements frees nothing. The fast path trusts that a
    /// table with these set and map names has this version's rules: a change
    /// of the rule layout must rename a set or map.
    fn attach(
        &self,
        net: &Network,
        ports: &[Dnat],
        port: Option<&Port>,
    ) -> Result<(), FirewallError> {
        let first = self.run(&attach_elements(net, ports, port)).or_else(|_| {
            if self.needs_rebuild() {
                return Err(FirewallError::LegacyTable);
            }
            self.run(&attach_commands(net, ports, port))
        });
        if matches!(first, Err(FirewallError::LegacyTable)) {
            return first;
        }
        if first.is_ok() || ports.is_empty() {
            return first;
        }
        // An element of one of these keys with another value is a dead
        // container's, left by a detach that never ran: the caller holds the
        // claims of these ports, which say whose they are now.
        for (map, key, _) in ports.iter().flat_map(port_elements_of) {
            let _ = self.run(&format!("delete element inet {TABLE} {map} {{ {key} }}\n"));
        }
        self.run(&attach_elements(net, ports, port))
    }

    fn detach(
        &self,
        net: &Network,
        ports: &[Dnat],
        port: Option<&Port>,
        network_unused: bool,
        table_unused: bool,
    ) -> Result<(), FirewallError> {
        if self.needs_rebuild() {
            return Err(FirewallError::LegacyTable);
        }
        match self.run(&detach_commands(
            net,
            ports,
            port,
            network_unused,
            table_unused,
        )) {
            Ok(()) => Ok(()),
            // One element that is no longer ours fails the whole batch: remove
            // the rest one by one. An element of our key with another value
            // (the add of ours fails with EEXIST) is someone else's now and
            // stays; other failures are reported. (libnftables reports errors
            // as text only: the errno's is what there is to match.)
            Err(_) if !table_unused && !ports.is_empty() => {
                let mut result = Ok(());
                for element in ports_elements(ports) {
                    let removed = self.run(&remove(&[element]));
                    if !matches!(&removed, Err(FirewallError::Nftables(e)) if e.contains("File exists"))
                    {
                        result = result.and(removed);
                    }
                }
                if result.is_ok() {
                    self.run(&detach_commands(net, &[], port, network_unused, false))?;
                }
                result
            }
            Err(e) => Err(e),
        }
    }

    fn rebuild(
        &self,
        networks: &[Network],
        ports: &[Dnat],
        bridge_ports: &[Port],
    ) -> Result<(), FirewallError> {
        self.run(&rebuild_commands(networks, ports, bridge_ports))
    }

    fn vxlan_peers(&self, here: Option<Ipv4Addr>, peers: &[Ipv4Addr]) -> Result<(), FirewallError> {
        let sets = vxlan_commands(here, peers);
        self.run(&sets)
            .or_else(|_| self.run(&(ensure_table() + &sets)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::{Guard, SegmentLink};
    use crate::ports::PortMapping;

    fn net() -> Network {
        Network::new(
            "bridge",
            "minirun0",
            "172.20.0.0/16".parse().unwrap(),
            "172.20.0.1".parse().unwrap(),
        )
    }

    fn dnat(spec: &str) -> Dnat {
        Dnat {
            run: crate::ports::PortRun {
                first: spec.parse::<PortMapping>().unwrap(),
                count: 1,
            },
            container_ip: "172.20.0.2".parse().unwrap(),
        }
    }

    #[test]
    fn a_dual_stack_port_is_one_element_per_family() {
        let ports: Vec<PortMapping> = ["8080:80", "0.0.0.0:81:81", "[::]:82:82", "[fd00::9]:83:83"]
            .iter()
            .map(|p| p.parse().unwrap())
            .collect();
        let dnats = Dnat::of(
            &ports,
            Some("172.20.0.2".parse().unwrap()),
            Some("fd42::2".parse().unwrap()),
        );
        let c = attach_elements(&net(), &dnats, None);
        for line in [
            "add element inet minirun publish_any { tcp . 8080 : 172.20.0.2 . 80, tcp . 81 : 172.20.0.2 . 81 }",
            "add element inet minirun publish_any6 { tcp . 8080 : fd42::2 . 80, tcp . 82 : fd42::2 . 82 }",
            "add element inet minirun publish_addr6 { fd00::9 . tcp . 83 : fd42::2 . 83 }",
        ] {
            assert!(c.contains(line), "{line}\n{c}");
        }
        assert_eq!(dnats.len(), 5);
        // An IPv4 container has nothing for IPv6 host addresses.
        assert_eq!(
            Dnat::of(&ports, Some("172.20.0.2".parse().unwrap()), None).len(),
            2
        );
        // A range of equal ports is one interval element, however long;
        // another range one element per port.
        let ranged = crate::ports::parse_list("1-65535:1-65535/udp,8000-8002:80-82").unwrap();
        let dnats = Dnat::of(&ranged, Some("172.20.0.2".parse().unwrap()), None);
        let c = attach_elements(&net(), &dnats, None);
        assert!(
            c.contains("add element inet minirun publish_range { udp . 1-65535 : 172.20.0.2 }\n")
        );
        assert!(c.contains("add element inet minirun publish_any { tcp . 8000 : 172.20.0.2 . 80, tcp . 8001 : 172.20.0.2 . 81, tcp . 8002 : 172.20.0.2 . 82 }\n"), "{c}");
        assert!(c.len() < 1000, "{}", c.len());
        // An IPv6-only one has nothing for IPv4 host addresses.
        assert_eq!(
            Dnat::of(&ports, None, Some("fd42::2".parse().unwrap())).len(),
            3
        );
    }

    #[test]
    fn attach_is_the_network_and_one_element_per_port() {
        let c = attach_commands(
            &net(),
            &[dnat("8080:80"), dnat("127.0.0.1:5353:53/udp")],
            None,
        );
        assert!(c.contains("ip saddr @subnets oifname != @bridges masquerade"));
        assert!(
            c.contains("iifname @bridges oifname @bridges iifname . oifname != @bridge_pairs drop")
        );
        assert!(c.ends_with(
            "add element inet minirun bridges { \"minirun0\" }
add element inet minirun bridge_pairs { \"minirun0\" . \"minirun0\" }
add element inet minirun subnets { 172.20.0.0/16 }
add element inet minirun publish_any { tcp . 8080 : 172.20.0.2 . 80 }
add element inet minirun publish_addr { 127.0.0.1 . udp . 5353 : 172.20.0.2 . 53 }
"
        ));
    }

    #[test]
    fn detach_removes_only_what_it_names() {
        let c = detach_commands(&net(), &[dnat("8080:80")], None, false, false);
        assert!(
            c.contains("delete element inet minirun publish_any { tcp . 8080 : 172.20.0.2 . 80 }")
        );
        assert!(!c.contains("delete element inet minirun subnets"));
        let c = detach_commands(&net(), &[], None, true, false);
        assert!(c.contains("delete element inet minirun subnets { 172.20.0.0/16 }"));
        assert!(!c.contains("delete table inet"));
        assert!(detach_commands(&net(), &[], None, true, true)
            .ends_with("delete table inet minirun\ndelete table bridge minirun\n"));
    }

    #[test]
    fn rebuild_starts_from_nothing() {
        let c = rebuild_commands(&[net()], &[dnat("8080:80")], &[]);
        assert!(
            c.starts_with("add table ip minirun\ndelete table ip minirun\nadd table inet minirun\ndelete table inet minirun\nadd table bridge minirun\ndelete table bridge minirun\nadd table bridge minirun\n")
        );
        assert!(
            c.ends_with("add element inet minirun publish_any { tcp . 8080 : 172.20.0.2 . 80 }\n")
        );
        assert_eq!(
            rebuild_commands(&[], &[], &[]),
            "add table ip minirun\ndelete table ip minirun\nadd table inet minirun\ndelete table inet minirun\nadd table bridge minirun\ndelete table bridge minirun\n"
        );
    }

    #[test]
    fn a_guarded_port_is_three_elements_keyed_by_its_veth() {
        let port = Port {
            host_interface: "vethmr1".into(),
            isolated: true,
            isolated_in_segment: false,
            segment_link: None,
            guard: Some(Guard {
                mac: "02:42:ac:14:00:02".into(),
                ipv4: Some("172.20.0.2".parse().unwrap()),
                ipv6: vec!["fd42::2".parse().unwrap()],
            }),
        };
        let c = attach_elements(&net(), &[], Some(&port));
        for line in [
            "add element bridge minirun no_icc_ports { \"vethmr1\" }",
            "add element bridge minirun guarded { \"vethmr1\" }",
            "add element bridge minirun port_mac { \"vethmr1\" . 02:42:ac:14:00:02 }",
            "add element bridge minirun port_addr { \"vethmr1\" . 02:42:ac:14:00:02 . 172.20.0.2 }",
            "add element bridge minirun port_addr6 { \"vethmr1\" . 02:42:ac:14:00:02 . fd42::2 }",
            "add element bridge minirun nd_target { \"vethmr1\" . 02:42:ac:14:00:02 . 0xfd420000000000000000000000000002 }",
        ] {
            assert!(c.contains(line), "{line}\n{c}");
        }
        let c = detach_commands(&net(), &[], Some(&port), false, false);
        assert!(c.contains(
            "delete element bridge minirun port_mac { \"vethmr1\" . 02:42:ac:14:00:02 }"
        ));
        let unguarded = Port {
            guard: None,
            isolated: false,
            ..port
        };
        // Not guarded, still no router: its one element is the router guard's.
        let c = attach_elements(&net(), &[], Some(&unguarded));
        assert!(
            c.contains("add element bridge minirun container_ports { \"vethmr1\" }"),
            "{c}"
        );
        assert!(!c.contains("guarded"), "{c}");
        assert!(ensure_table().contains("add rule bridge minirun spoof iifname != @guarded accept"));
        assert!(ensure_table().contains("icmpv6 type { nd-router-advert, nd-redirect } drop"));
    }

    #[test]
    fn a_port_on_a_secondary_steers_solicitations_for_its_address() {
        let port = Port {
            host_interface: "vethmr2".into(),
            isolated: false,
            isolated_in_segment: false,
            guard: None,
            segment_link: Some(SegmentLink {
                uplink: "mr0000abcdu4".into(),
                downlink: "mr0000abcdd4".into(),
                ipv6: "fd42::4:10".parse().unwrap(),
            }),
        };
        let c = attach_elements(&net(), &[], Some(&port));
        for line in [
            "add element bridge minirun nd_up { \"mr0000abcdu4\" . 0xfd420000000000000000000000040010 }",
            "add element bridge minirun nd_local { \"mr0000abcdd4\" . 0xfd420000000000000000000000040010 }",
        ] {
            assert!(c.contains(line), "{line}\n{c}");
        }
        let c = detach_commands(&net(), &[], Some(&port), false, false);
        assert!(c.contains("delete element bridge minirun nd_up"), "{c}");
        assert!(c.contains("delete element bridge minirun nd_local"), "{c}");
        let mut segmented = net();
        segmented.secondaries = vec![4];
        let c = attach_elements(&segmented, &[], None);
        let uplink = crate::segment::Secondary::of(&segmented.bridge, 4).uplink;
        assert!(
            c.contains(&format!(
                "add element bridge minirun uplinks {{ \"{uplink}\" }}"
            )),
            "{c}"
        );
        let t = ensure_table();
        assert!(
            t.contains("oifname @uplinks icmpv6 type nd-neighbor-solicit"),
            "{t}"
        );
        assert!(t.contains("oifname . @th,64,128 @nd_local drop"), "{t}");
    }
}
