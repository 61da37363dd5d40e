//! The host interfaces drivers import (WASI, then drover's log, exec,
//! container and secrets): linked here once, and each built from the
//! operator's configuration, owning what it needs (the sandbox, the Docker
//! engine, the Vault client).

use wasmtime::component::Linker;

use super::container::Containers;
use super::exec::Exec;
use super::secrets::Secrets;
use super::state::InstanceState;
use super::{RuntimeError, container, exec, log, secrets};
use crate::config::Config;

/// The interfaces that hold something of their own.
pub struct Interfaces {
    pub exec: Exec,
    pub containers: Containers,
    pub secrets: Secrets,
}

impl Interfaces {
    /// Each interface as `config` sets it up.
    pub fn new(config: &Config) -> Result<Interfaces, RuntimeError> {
        Ok(Interfaces {
            exec: Exec::new(config),
            containers: Containers::new(config),
            secrets: Secrets::new(config)?,
        })
    }
}

/// Adds every interface to `linker`: WASI first, which the others build on.
pub fn link(linker: &mut Linker<InstanceState>) -> Result<(), RuntimeError> {
    wasmtime_wasi::p2::add_to_linker_async(linker)
        .and_then(|()| log::link(linker))
        .and_then(|()| exec::link(linker))
        .and_then(|()| container::link(linker))
        .and_then(|()| secrets::link(linker))
        .map_err(|e| RuntimeError::Engine(format!("{e:#}")))
}
