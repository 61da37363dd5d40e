//! How the engine's nodes reach a runtime: in this process for now
//! (distributed dispatch over Redis comes later).

mod accept;
mod local;
mod threads;

pub use accept::{Accepted, Refused, accept};
pub use local::{
    DriverSet, LocalDispatch, load_drivers, load_node_drivers, validate_each, validate_nodes,
};
pub use threads::NodeThreads;
