//! drover: run DAGs of work through sandboxed WebAssembly drivers.
//!
//! The library behind the `drover` binary. [`runtime`] loads and runs
//! drivers, [`sandbox`] confines the processes they start, [`registry`]
//! finds drivers by name, [`task`] holds the types they exchange.

pub mod admission;
pub mod api;
pub mod backend;
pub mod config;
pub mod container;
pub mod dag;
pub mod drone;
pub mod engine;
pub mod glob;
pub mod registry;
pub mod rfc3339;
pub mod runs;
pub mod runtime;
pub mod sandbox;
pub mod secrets;
pub mod store;
pub mod task;
pub mod tosca;
pub mod transport;
