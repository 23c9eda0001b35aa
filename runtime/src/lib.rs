//! minirun: a small, fast OCI container runtime with runc's command line.
//!
//! The library holds the logic; the `minirun` binary's `commands/` only turn
//! parsed arguments into calls here.

pub mod capabilities;
pub mod cgroups;
pub mod cli;
pub mod console;
pub mod container;
pub mod devices;
pub mod hooks;
pub mod idmap;
pub mod log;
pub mod lsm;
pub mod mounts;
pub mod namespaces;
pub mod network;
pub mod notify;
pub mod process;
pub mod rlimits;
pub mod rootfs;
pub mod sealed_exe;
pub mod seccomp;
pub mod spec;
pub mod trace;

pub use oci_spec;

/// The highest runtime-spec version minirun implements.
pub const OCI_VERSION: &str = "1.1.0";

/// `--version`. The `+` line lists optional features as crun's does, for
/// tools that read it: SYSTEMD is the NOTIFY_SOCKET proxy (`notify`) and
/// systemd-style cgroup paths (`--systemd-cgroup`, through cgroupfs).
pub const VERSION_TEXT: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nspec: 1.1.0\n+SYSTEMD +SECCOMP +CAP"
);
