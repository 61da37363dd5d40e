//! How the engine's nodes reach a runtime: in this process, or through
//! Redis to drones. (What is admitted to run is [`crate::admission`]'s.)

mod local;
pub mod redis;
mod threads;
mod workspaces;

pub use local::LocalDispatch;
pub use threads::NodeThreads;
pub use workspaces::Workspaces;
