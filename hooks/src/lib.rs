//! minirun-net: attaches a container to the network from OCI hooks.
//!
//! This crate so far knows how the network mode of a container is chosen and
//! reads the OCI state a runtime passes to a hook; the bridge driver is the
//! subject of the networking issue.

pub mod mode;
pub mod state;
