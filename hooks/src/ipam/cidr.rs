//! Subnets of either address family, with the arithmetic IPAM needs.
//!
//! One generic type rather than an IPv4 and an IPv6 twin: the rules (a
//! network address, a gateway, an optional range, lowest free after a
//! cursor) are the same, and only the width and IPv4's broadcast differ.
//! Addresses are handled as `u128` numbers; an IPv4 address uses the low
//! 32 bits.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::IpamError;

/// What differs between IPv4 and IPv6 for a subnet.
pub trait Family:
    Copy + Eq + Ord + std::hash::Hash + fmt::Display + fmt::Debug + FromStr + Into<IpAddr> + 'static
{
    const BITS: u8;
    /// "IPv4" or "IPv6", for messages.
    const NAME: &'static str;
    const EXAMPLE: &'static str;
    /// The last address of an IPv4 subnet is its broadcast, not a host's.
    const HAS_BROADCAST: bool;
    /// The flag a user chooses an address of this family with.
    const FLAG: &'static str;
    /// The file of a lease directory that remembers the last address handed
    /// out, per family.
    const CURSOR: &'static str;
    fn to_bits(self) -> u128;
    fn from_bits(bits: u128) -> Self;
    /// This family's address from any address, if it is one.
    fn from_ip(ip: IpAddr) -> Option<Self>;
}

impl Family for Ipv4Addr {
    const BITS: u8 = 32;
    const NAME: &'static str = "IPv4";
    const EXAMPLE: &'static str = "172.20.0.0/16";
    const HAS_BROADCAST: bool = true;
    const FLAG: &'static str = "--ip";
    const CURSOR: &'static str = "last";
    fn to_bits(self) -> u128 {
        u32::from(self).into()
    }
    fn from_bits(bits: u128) -> Self {
        Ipv4Addr::from(bits as u32)
    }
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }
    }
}

impl Family for Ipv6Addr {
    const BITS: u8 = 128;
    const NAME: &'static str = "IPv6";
    const EXAMPLE: &'static str = "fd42:1::/64";
    const HAS_BROADCAST: bool = false;
    const FLAG: &'static str = "--ip6";
    const CURSOR: &'static str = "last6";
    fn to_bits(self) -> u128 {
        self.into()
    }
    fn from_bits(bits: u128) -> Self {
        Ipv6Addr::from(bits)
    }
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }
    }
}

/// A network: its address with the host bits cleared, and its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr<A: Family> {
    addr: A,
    prefix: u8,
}

/// An IPv4 subnet.
pub type Subnet = Cidr<Ipv4Addr>;
/// An IPv6 subnet.
pub type Subnet6 = Cidr<Ipv6Addr>;

fn all_ones(bits: u8) -> u128 {
    if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

/// The network part of a `bits`-wide address for `prefix`.
fn mask(bits: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        all_ones(bits) & (u128::MAX << (bits - prefix))
    }
}

impl<A: Family> Cidr<A> {
    /// The subnet of `addr` (host bits cleared). Two addresses are the
    /// least left for containers: the network address and the gateway are
    /// never handed out, nor IPv4's broadcast.
    pub fn new(addr: A, prefix: u8) -> Result<Self, IpamError> {
        if prefix > A::BITS {
            return Err(IpamError::BadCidr {
                text: format!("{addr}/{prefix}"),
                family: A::NAME,
                example: A::EXAMPLE,
            });
        }
        let net = Self::covering(addr, prefix);
        let longest = A::BITS - 2;
        if prefix > longest {
            return Err(IpamError::TooSmall {
                subnet: net.to_string(),
                longest,
            });
        }
        Ok(net)
    }

    /// The block of `prefix` holding `addr`, of any size (a host route).
    pub fn covering(addr: A, prefix: u8) -> Self {
        let prefix = prefix.min(A::BITS);
        Cidr {
            addr: A::from_bits(addr.to_bits() & mask(A::BITS, prefix)),
            prefix,
        }
    }

    /// A block of any size from its text (a route, a reserved range).
    pub fn block(text: &str) -> Option<Self> {
        let (addr, prefix) = text.split_once('/')?;
        Some(Self::covering(addr.parse().ok()?, prefix.parse().ok()?))
    }

    pub fn addr(&self) -> A {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The last address (IPv4: the broadcast).
    pub fn last(&self) -> A {
        A::from_bits(self.addr.to_bits() | (all_ones(A::BITS) & !mask(A::BITS, self.prefix)))
    }

    /// The first host address, which Docker gives the bridge as gateway.
    pub fn first_host(&self) -> A {
        A::from_bits(self.addr.to_bits() + 1)
    }

    pub fn contains(&self, ip: A) -> bool {
        ip.to_bits() & mask(A::BITS, self.prefix) == self.addr.to_bits()
    }

    pub fn contains_subnet(&self, other: &Self) -> bool {
        self.contains(other.addr) && self.contains(other.last())
    }

    pub fn overlaps(&self, other: &Self) -> bool {
        let m = mask(A::BITS, self.prefix.min(other.prefix));
        self.addr.to_bits() & m == other.addr.to_bits() & m
    }

    /// An address that may be the gateway or a container's: not the
    /// network address, nor IPv4's broadcast.
    pub fn is_host(&self, ip: A) -> bool {
        self.contains(ip) && ip != self.addr && !(A::HAS_BROADCAST && ip == self.last())
    }

    /// Addresses a container may get: hosts but the gateway.
    pub fn is_assignable(&self, ip: A, gateway: A) -> bool {
        self.is_host(ip) && ip != gateway
    }

    /// The `index`th subnet of `prefix` inside this one, if there is one.
    pub fn nth_subnet(&self, prefix: u8, index: u128) -> Option<Self> {
        if prefix < self.prefix || prefix > A::BITS {
            return None;
        }
        let count_bits = prefix - self.prefix;
        if count_bits < 128 && index >> count_bits != 0 {
            return None;
        }
        let shift = A::BITS - prefix;
        let offset = if shift >= 128 { 0 } else { index << shift };
        Some(Cidr {
            addr: A::from_bits(self.addr.to_bits() | offset),
            prefix,
        })
    }
}

impl<A: Family> FromStr for Cidr<A> {
    type Err = IpamError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IpamError::BadCidr {
            text: s.to_string(),
            family: A::NAME,
            example: A::EXAMPLE,
        };
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: A = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > A::BITS {
            return Err(bad());
        }
        Cidr::new(addr, prefix)
    }
}

impl<A: Family> TryFrom<String> for Cidr<A> {
    type Error = IpamError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl<A: Family> From<Cidr<A>> for String {
    fn from(s: Cidr<A>) -> String {
        s.to_string()
    }
}

impl<A: Family> fmt::Display for Cidr<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The family a CIDR's text is of, without parsing it whole: what decides
/// whether a `--subnet` is the IPv4 or the IPv6 one.
pub fn is_ipv6_text(cidr: &str) -> bool {
    cidr.contains(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_arithmetic() {
        let n: Subnet6 = "fd42:1::7/64".parse().unwrap();
        assert_eq!(n.to_string(), "fd42:1::/64");
        assert_eq!(n.first_host(), "fd42:1::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            n.last(),
            "fd42:1::ffff:ffff:ffff:ffff".parse::<Ipv6Addr>().unwrap()
        );
        // No broadcast in IPv6: the last address is a host's.
        assert!(n.is_host(n.last()) && !n.is_host(n.addr()));
        assert!(n.overlaps(&"fd42::/16".parse().unwrap()));
        assert!(!n.overlaps(&"fd42:2::/64".parse().unwrap()));
        let e = "fd42::/129".parse::<Subnet6>().unwrap_err().to_string();
        assert!(e.contains("not an IPv6 CIDR"), "{e}");
        assert!(matches!(
            "fd42::/127".parse::<Subnet6>(),
            Err(IpamError::TooSmall { .. })
        ));
        assert!("10.0.0.0/8".parse::<Subnet6>().is_err());
        assert!("fd42::/64".parse::<Subnet>().is_err());
        let ula: Subnet6 = "fd12:3456:789a::/48".parse().unwrap();
        assert_eq!(
            ula.nth_subnet(64, 5).unwrap().to_string(),
            "fd12:3456:789a:5::/64"
        );
        assert!(ula.nth_subnet(64, 1 << 16).is_none());
        assert!(ula.contains_subnet(&ula.nth_subnet(64, 65535).unwrap()));
    }
}
