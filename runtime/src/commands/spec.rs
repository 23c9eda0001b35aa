use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use minirun::cli::Spec;

/// runc's default spec: a `sh` on a terminal, the usual mounts and masks.
const DEFAULT_SPEC: &str = include_str!("../default-spec.json");

pub fn run(s: &Spec) -> anyhow::Result<u8> {
    let path = s
        .bundle
        .clone()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("config.json");
    let mut f = match OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            anyhow::bail!("File {} exists. Remove it first", path.display())
        }
        Err(e) => anyhow::bail!("creating {}: {e}", path.display()),
    };
    f.write_all(DEFAULT_SPEC.as_bytes())?;
    Ok(0)
}
