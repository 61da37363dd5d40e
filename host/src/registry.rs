//! Finds drivers: the standard ones built into this binary, by name, or a
//! component file by path.

use std::path::{Path, PathBuf};
use std::sync::Arc;

include!(concat!(env!("OUT_DIR"), "/builtin_drivers.rs"));

/// Where a driver's component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverSource {
    /// One of the standard drivers built into the binary.
    Builtin(&'static str),
    /// A component file.
    File(PathBuf),
}

/// A driver name or path that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "unknown driver `{name}` (built-in drivers: {known}; or give a path to a .wasm component)"
    )]
    Unknown { name: String, known: String },
    #[error("cannot read driver component {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The names of the built-in drivers.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTIN_DRIVERS.iter().map(|(name, _)| *name)
}

/// The built-in driver of that name, as (its name, its component bytes).
fn find_builtin(name: &str) -> Option<&'static (&'static str, &'static [u8])> {
    // gorchestrator called the do-nothing engine `nil`.
    let name = if name == "nil" { "noop" } else { name };
    BUILTIN_DRIVERS.iter().find(|(n, _)| *n == name)
}

/// The component bytes of a built-in driver.
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    find_builtin(name).map(|(_, bytes)| *bytes)
}

/// Resolves what a user typed: a built-in name, or a path (anything with a
/// `/` or ending in `.wasm`).
pub fn resolve(spec: &str) -> Result<DriverSource, RegistryError> {
    if spec.contains('/') || spec.ends_with(".wasm") {
        return Ok(DriverSource::File(PathBuf::from(spec)));
    }
    match find_builtin(spec) {
        Some((name, _)) => Ok(DriverSource::Builtin(name)),
        None => Err(RegistryError::Unknown {
            name: spec.to_string(),
            known: builtin_names().collect::<Vec<_>>().join(", "),
        }),
    }
}

/// The component bytes behind a source.
pub fn read(source: &DriverSource) -> Result<Arc<[u8]>, RegistryError> {
    match source {
        DriverSource::Builtin(name) => Ok(Arc::from(builtin(name).unwrap_or_default())),
        DriverSource::File(path) => read_file(path),
    }
}

fn read_file(path: &Path) -> Result<Arc<[u8]>, RegistryError> {
    std::fs::read(path)
        .map(Arc::from)
        .map_err(|source| RegistryError::Read {
            path: path.to_path_buf(),
            source,
        })
}
