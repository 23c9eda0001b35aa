//! minirun-net: attaches containers to the network from OCI hooks, so the
//! same binary serves minirun, runc, crun and podman.
//!
//! `mode` says which of Docker's four modes a container asked for; `state`
//! reads the OCI state a runtime hands a hook; the `bridge` driver does the
//! attaching with `ipam`, `veth`, `netlink`, `firewall` and `etc_files`, and
//! `store` keeps what it did on disk for `detach`; `gc` detaches by record
//! and sweeps what killed attaches left.

pub mod bridge;
pub mod cluster;
pub mod cni;
pub mod conntrack;
pub mod driver;
pub mod etc_files;
pub mod firewall;
pub mod gc;
pub mod host_ports;
pub mod ipam;
pub mod macvlan;
pub mod mode;
pub mod netlink;
pub mod networks;
pub mod ports;
pub mod process_start;
pub mod segment;
pub mod state;
pub mod store;
pub mod veth;
pub mod vxlan;
