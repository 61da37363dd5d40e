//! The on-disk cache of compiled components, keyed by the sha256 digest of
//! the component and by the engine's compilation settings.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::RuntimeError;

/// The sha256 digest of a component, as lowercase hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compiled components on disk. Without a directory, every load compiles.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
    /// Distinguishes artifacts of engines configured differently (or of
    /// other wasmtime versions), which cannot load each other's output.
    engine_key: String,
}

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Compiled now (and stored, when the cache has a directory).
    Compiled,
    /// Loaded from a previously compiled artifact.
    Hit,
}

impl CompileCache {
    /// A cache in `dir` (created on first store), or none.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        CompileCache {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    fn path_for(&self, digest: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{digest}-{}.cwasm", self.engine_key)))
    }

    /// Loads the compiled form of `bytes`, compiling (and storing) it first
    /// when it is not cached. Blocking: call from a blocking thread.
    pub fn load(
        &self,
        engine: &Engine,
        digest: &str,
        bytes: &[u8],
    ) -> Result<(Component, CacheOutcome), RuntimeError> {
        let path = self.path_for(digest);
        if let Some(path) = path.as_deref()
            && let Ok(serialized) = std::fs::read(path)
        {
            // Read into memory rather than `deserialize_file`, which maps the
            // file: a cache file truncated or rewritten while mapped would
            // kill the host with SIGBUS.
            // SAFETY: the bytes were written by `store` below from
            // `Engine::precompile_component` output of an engine with the same
            // compatibility key, into drover's own data directory.
            // Deserialization still checks the header and refuses artifacts
            // of other engines; on any error we fall back to compiling.
            match unsafe { Component::deserialize(engine, &serialized) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring unusable compiled driver")
                }
            }
        }
        let compiled = engine
            .precompile_component(bytes)
            .map_err(|e| RuntimeError::Compile(format!("{e:#}")))?;
        if let Some(path) = &path
            && let Err(e) = store(path, &compiled)
        {
            tracing::warn!(path = %path.display(), error = %e, "could not cache compiled driver");
        }
        // SAFETY: `compiled` was produced just now by this engine.
        let component = unsafe { Component::deserialize(engine, &compiled) }
            .map_err(|e| RuntimeError::Compile(format!("{e:#}")))?;
        Ok((component, CacheOutcome::Compiled))
    }
}

/// Writes atomically, so a concurrent reader never sees half a file.
fn store(path: &Path, compiled: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    // Unique per writer: two loads of one driver may race, in one process
    // or in several sharing the data directory.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("driver"),
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(compiled)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
