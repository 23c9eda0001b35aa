//! A container as it lives on disk (its state directory) and its lifecycle.

pub mod exec;
pub mod lifecycle;
mod state;

pub use state::{container_dir, list_ids, Container, ContainerError, State, Status, START_SOCKET};
