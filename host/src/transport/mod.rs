//! How the engine's nodes reach a runtime: in this process, or through
//! Redis to drones.

mod accept;
mod local;
pub mod redis;
mod threads;
mod workspaces;

pub use accept::{Accepted, Refused, accept};
pub use local::{
    DriverSet, LocalDispatch, load_drivers, load_node_drivers, validate_each, validate_nodes,
};
pub use threads::NodeThreads;
pub use workspaces::Workspaces;
