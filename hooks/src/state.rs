//! The OCI state a runtime (minirun, runc or crun) writes on a hook's stdin.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("reading the OCI state from stdin: {0}")]
    Read(#[from] std::io::Error),
    #[error("the OCI state on stdin is not valid: {0}")]
    Decode(#[from] serde_json::Error),
}

#[derive(Debug, Clone, Deserialize)]
pub struct HookState {
    pub id: String,
    #[serde(default)]
    pub pid: i32,
    /// runc leaves it out of some poststop states.
    #[serde(default)]
    pub bundle: PathBuf,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
}

impl HookState {
    pub fn read(mut input: impl Read) -> Result<Self, StateError> {
        let mut buf = Vec::new();
        input.read_to_end(&mut buf)?;
        Ok(serde_json::from_slice(&buf)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_runc_state() {
        let json = br#"{"ociVersion":"1.0.2","id":"c1","status":"creating","pid":42,"bundle":"/b","annotations":{"org.minirun.net.mode":"none"}}"#;
        let s = HookState::read(&json[..]).unwrap();
        assert_eq!((s.id.as_str(), s.pid), ("c1", 42));
        assert_eq!(s.annotations["org.minirun.net.mode"], "none");
    }
}
