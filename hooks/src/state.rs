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
    #[error("the OCI state on stdin: id {0:?} is not a container id (letters, digits and _+-., as runc takes them)")]
    BadId(String),
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
    /// The state on stdin. The id becomes file names under the hook's state
    /// directory, so it is checked as a runtime checks it.
    pub fn read(mut input: impl Read) -> Result<Self, StateError> {
        let mut buf = Vec::new();
        input.read_to_end(&mut buf)?;
        let state: HookState = serde_json::from_slice(&buf)?;
        if !valid_id(&state.id) {
            return Err(StateError::BadId(state.id));
        }
        Ok(state)
    }
}

/// runc's rule for container ids (minirun's runtime uses the same).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
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

    #[test]
    fn ids_that_are_no_file_name_are_refused() {
        for id in ["", "a/b", "..", "../x", "a b"] {
            let json = format!(r#"{{"id":{id:?},"pid":1}}"#);
            let e = HookState::read(json.as_bytes()).unwrap_err();
            assert!(matches!(e, StateError::BadId(_)), "{id:?}: {e}");
        }
    }
}
