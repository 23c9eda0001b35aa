//! The five capability sets of process.capabilities, applied just before exec.

use std::collections::HashSet;

use caps::{CapSet, Capability as Cap, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

#[derive(Debug, thiserror::Error)]
#[error("setting {set} capabilities: {source}")]
pub struct CapError {
    set: &'static str,
    source: caps::errors::CapsError,
}

/// Converts the spec's names to the caps crate's; a capability this kernel does not
/// know is left out, as runc does (configs carry new names before kernels do).
fn convert(set: Option<&Capabilities>, supported: &CapsHashSet) -> CapsHashSet {
    set.into_iter()
        .flatten()
        .filter_map(|c| format!("CAP_{c}").parse::<Cap>().ok())
        .filter(|c| supported.contains(c))
        .collect()
}

/// The capabilities this kernel knows. Asked once per process: the caps crate
/// asks the kernel about each of ~41 one call at a time.
fn supported() -> &'static CapsHashSet {
    static SUPPORTED: std::sync::OnceLock<CapsHashSet> = std::sync::OnceLock::new();
    SUPPORTED.get_or_init(caps::runtime::thread_all_supported)
}

/// Drops from the bounding set what the config does not list. Runs while the
/// process still holds CAP_SETPCAP (before the uid changes).
pub fn drop_bounding(caps: Option<&LinuxCapabilities>) -> Result<(), CapError> {
    let supported = supported();
    let keep = convert(caps.and_then(|c| c.bounding().as_ref()), supported);
    for cap in supported.difference(&keep) {
        caps::drop(None, CapSet::Bounding, *cap).map_err(|source| CapError {
            set: "bounding",
            source,
        })?;
    }
    Ok(())
}

/// Sets effective, permitted, inheritable and ambient (after the uid change; the
/// process kept its permitted set through PR_SET_KEEPCAPS).
pub fn apply(caps: Option<&LinuxCapabilities>) -> Result<(), CapError> {
    let supported = supported();
    let get = |f: fn(&LinuxCapabilities) -> &Option<Capabilities>| {
        convert(caps.and_then(|c| f(c).as_ref()), supported)
    };
    let permitted = get(LinuxCapabilities::permitted);
    let effective = get(LinuxCapabilities::effective);
    let inheritable = get(LinuxCapabilities::inheritable);
    let ambient = get(LinuxCapabilities::ambient);

    // Effective first widened to what permitted allows, so the later sets can be
    // written; then narrowed to what the config asks.
    caps::set(
        None,
        CapSet::Effective,
        &permitted.union(&effective).copied().collect::<HashSet<_>>(),
    )
    .map_err(|source| CapError {
        set: "effective",
        source,
    })?;
    caps::set(None, CapSet::Inheritable, &inheritable).map_err(|source| CapError {
        set: "inheritable",
        source,
    })?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(|source| CapError {
        set: "permitted",
        source,
    })?;
    caps::set(None, CapSet::Effective, &effective).map_err(|source| CapError {
        set: "effective",
        source,
    })?;
    caps::clear(None, CapSet::Ambient).map_err(|source| CapError {
        set: "ambient",
        source,
    })?;
    for cap in &ambient {
        // The kernel only raises an ambient cap that is permitted and inheritable.
        if permitted.contains(cap) && inheritable.contains(cap) {
            caps::raise(None, CapSet::Ambient, *cap).map_err(|source| CapError {
                set: "ambient",
                source,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::Capability;

    #[test]
    fn names_map_to_the_caps_crate() {
        let mut set = Capabilities::new();
        set.insert(Capability::NetBindService);
        set.insert(Capability::SysAdmin);
        let supported: CapsHashSet = [Cap::CAP_NET_BIND_SERVICE].into_iter().collect();
        let got = convert(Some(&set), &supported);
        assert_eq!(got, supported);
    }
}
