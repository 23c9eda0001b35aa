//! nftables through libnftables, in-process: one context, and every change a
//! single command buffer the kernel applies as one transaction.
//!
//! minirun owns one table, `ip minirun`. Networks are elements of its sets, so
//! the rules never change with the number of networks or containers:
//! - `subnets`: the networks' subnets; traffic from them that leaves through an
//!   interface that is not one of minirun's bridges is masqueraded;
//! - `bridges`: the networks' bridge interfaces.
//!
//! libnftables is bound by hand: six functions of a stable C API. The crates
//! that speak nftables either run the `nft` binary per change (which the
//! product must not) or wrap libnftnl's object API, far more code than the
//! command buffer this needs.

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr::NonNull;

use super::{FirewallDriver, FirewallError};
use crate::store::Network;

#[allow(non_camel_case_types)]
#[repr(C)]
struct nft_ctx {
    _private: [u8; 0],
}

#[link(name = "nftables")]
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

impl Drop for Nftables {
    fn drop(&mut self) {
        // SAFETY: ctx came from nft_ctx_new and is freed once.
        unsafe { nft_ctx_free(self.ctx.as_ptr()) }
    }
}

/// The table, its sets and its rules, made if missing; the rules are rewritten
/// so a table left by an older minirun gets today's.
fn ensure_table() -> String {
    format!(
        "add table ip {TABLE}
add set ip {TABLE} subnets {{ type ipv4_addr; flags interval; }}
add set ip {TABLE} bridges {{ type ifname; }}
add chain ip {TABLE} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
flush chain ip {TABLE} postrouting
add rule ip {TABLE} postrouting ip saddr @subnets oifname != @bridges masquerade
"
    )
}

fn elements(net: &Network) -> [(&'static str, String); 2] {
    [
        ("subnets", net.subnet.to_string()),
        ("bridges", format!("\"{}\"", net.bridge)),
    ]
}

pub fn add_network_commands(net: &Network) -> String {
    let mut c = ensure_table();
    for (set, element) in elements(net) {
        c.push_str(&format!("add element ip {TABLE} {set} {{ {element} }}\n"));
    }
    c
}

/// Deleting what is missing is an error in nftables, so each element (and the
/// table) is first added: the pair always succeeds and leaves it gone.
pub fn remove_network_commands(net: &Network, last: bool) -> String {
    let mut c = ensure_table();
    if last {
        c.push_str(&format!("delete table ip {TABLE}\n"));
        return c;
    }
    for (set, element) in elements(net) {
        c.push_str(&format!(
            "add element ip {TABLE} {set} {{ {element} }}\ndelete element ip {TABLE} {set} {{ {element} }}\n"
        ));
    }
    c
}

impl FirewallDriver for Nftables {
    fn add_network(&self, net: &Network) -> Result<(), FirewallError> {
        self.run(&add_network_commands(net))
    }

    fn remove_network(&self, net: &Network, last: bool) -> Result<(), FirewallError> {
        self.run(&remove_network_commands(net, last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> Network {
        Network {
            name: "bridge".into(),
            bridge: "minirun0".into(),
            subnet: "172.20.0.0/16".parse().unwrap(),
            gateway: "172.20.0.1".parse().unwrap(),
            mtu: 1500,
        }
    }

    #[test]
    fn commands_name_the_network() {
        let add = add_network_commands(&net());
        assert!(add.contains("ip saddr @subnets oifname != @bridges masquerade"));
        assert!(add.ends_with(
            "add element ip minirun subnets { 172.20.0.0/16 }\nadd element ip minirun bridges { \"minirun0\" }\n"
        ));
        let rm = remove_network_commands(&net(), false);
        assert!(rm.contains("delete element ip minirun subnets { 172.20.0.0/16 }"));
        assert!(!rm.contains("delete table"));
        assert!(remove_network_commands(&net(), true).ends_with("delete table ip minirun\n"));
    }
}
