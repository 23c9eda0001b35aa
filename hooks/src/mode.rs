//! Docker's four network modes and how a container's mode is read from its
//! annotations (`org.minirun.net.mode`).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

pub const MODE_ANNOTATION: &str = "org.minirun.net.mode";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Bridge,
    Host,
    /// Share the network namespace of another container.
    Container(String),
    None,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("network mode {0:?}: expected bridge, host, none or container:<id>")]
pub struct ModeError(String);

impl FromStr for Mode {
    type Err = ModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bridge" => Ok(Mode::Bridge),
            "host" => Ok(Mode::Host),
            "none" => Ok(Mode::None),
            _ => match s.strip_prefix("container:") {
                Some(id) if !id.is_empty() => Ok(Mode::Container(id.to_string())),
                _ => Err(ModeError(s.to_string())),
            },
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Bridge => f.write_str("bridge"),
            Mode::Host => f.write_str("host"),
            Mode::None => f.write_str("none"),
            Mode::Container(id) => write!(f, "container:{id}"),
        }
    }
}

/// Which network a bridge-mode container joins (default `bridge`).
pub const NETWORK_ANNOTATION: &str = "org.minirun.net.network";
/// The container's address on it (`--ip`).
pub const IP_ANNOTATION: &str = "org.minirun.net.ip";
/// The container's IPv6 address on its network (`--ip6`).
pub const IP6_ANNOTATION: &str = "org.minirun.net.ip6";
/// More names for it on a user network, comma-separated (`--alias`).
pub const ALIASES_ANNOTATION: &str = "org.minirun.net.aliases";

/// The mode asked for in annotations, if any.
pub fn from_annotations(annotations: &HashMap<String, String>) -> Result<Option<Mode>, ModeError> {
    annotations
        .get(MODE_ANNOTATION)
        .map(|m| m.parse())
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_four_modes() {
        assert_eq!("bridge".parse(), Ok(Mode::Bridge));
        assert_eq!("host".parse(), Ok(Mode::Host));
        assert_eq!("none".parse(), Ok(Mode::None));
        assert_eq!("container:abc".parse(), Ok(Mode::Container("abc".into())));
        assert!("container:".parse::<Mode>().is_err());
        assert!("overlay".parse::<Mode>().is_err());
        assert_eq!(Mode::Container("x".into()).to_string(), "container:x");
    }

    #[test]
    fn annotation_decides() {
        let mut a = HashMap::new();
        assert_eq!(from_annotations(&a), Ok(None));
        a.insert(MODE_ANNOTATION.to_string(), "host".to_string());
        assert_eq!(from_annotations(&a), Ok(Some(Mode::Host)));
        a.insert(MODE_ANNOTATION.to_string(), "bridged".to_string());
        assert!(from_annotations(&a).is_err());
    }
}
