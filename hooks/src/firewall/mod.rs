//! The firewall a bridge network needs: masquerade for traffic leaving its
//! subnet. One driver per mechanism; nftables is the one there is.

pub mod nftables;

use crate::store::Network;

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("nftables: {0}")]
    Nftables(String),
    #[error("libnftables could not make a context")]
    NoContext,
}

pub trait FirewallDriver {
    /// Adds the network's rules; doing it again changes nothing.
    fn add_network(&self, net: &Network) -> Result<(), FirewallError>;
    /// Removes the network's rules; `last` says no other network is in use, so
    /// minirun's table goes too. Removing what is not there is fine.
    fn remove_network(&self, net: &Network, last: bool) -> Result<(), FirewallError>;
}
