//! Drivers by digest, as a drone gets them: built in, loaded already, in
//! its disk cache, or fetched from Redis; bytes whose sha256 differs from
//! the digest are never run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use super::retry;
use crate::registry::{builtin, builtin_names, policy};
use crate::runtime::{Driver, Runtime, digest};
use crate::transport::redis::protocol::{self, Job};

/// What getting a job's driver came to.
pub enum Fetched {
    /// Ready to run.
    Driver(Driver),
    /// It must not run: why, naming the digest.
    Refused(String),
    /// The drone is stopping.
    Stopped,
}

/// Where a drone finds drivers.
pub struct Drivers {
    runtime: Runtime,
    /// `<data>/drone/drivers`: one `<hex>.wasm` per digest fetched.
    dir: PathBuf,
}

impl Drivers {
    pub fn new(runtime: Runtime, dir: PathBuf) -> Self {
        Drivers { runtime, dir }
    }

    /// The driver of `job`, checked against its digest and this drone's policy.
    pub async fn get(
        &self,
        conn: &ConnectionManager,
        job: &Job,
        stop: &CancellationToken,
    ) -> Fetched {
        let hex = job.digest.as_str();
        let named = || format!("driver `{}` (sha256:{hex})", job.driver);
        if !is_sha256_hex(hex) {
            return Fetched::Refused(format!(
                "`{hex}` is not a sha256 digest (64 lower-case hex digits) for driver `{}`",
                job.driver
            ));
        }
        let builtin = builtins().get(hex).copied();
        if let Some(driver) = self.runtime.loaded_driver(hex) {
            return self.allowed(driver, builtin.is_some());
        }
        if let Some(bytes) = builtin {
            return match self.runtime.load_static(bytes).await {
                Ok(driver) => Fetched::Driver(driver),
                Err(e) => Fetched::Refused(format!("cannot load {}: {e}", named())),
            };
        }
        let bytes = match self.cached(hex).await {
            Some(bytes) => bytes,
            None => match self.fetch(conn, job, stop).await {
                Ok(bytes) => bytes,
                Err(fetched) => return fetched,
            },
        };
        match self.runtime.load_digested(hex.to_owned(), bytes).await {
            Ok(driver) => self.allowed(driver, false),
            Err(e) => Fetched::Refused(format!("cannot load {}: {e}", named())),
        }
    }

    /// Built-in drivers may do what they declare (as on the leader); any
    /// other is bounded by this drone's `[drivers.<name>]` or `[plugins.allow]`.
    fn allowed(&self, driver: Driver, builtin: bool) -> Fetched {
        if builtin {
            return Fetched::Driver(driver);
        }
        let name = driver.name().to_owned();
        let excess = policy::excess(
            policy::for_plugin(self.runtime.config(), &name),
            &driver.description().capabilities,
        );
        if excess.is_empty() {
            Fetched::Driver(driver)
        } else {
            Fetched::Refused(format!(
                "driver `{name}` (sha256:{}) asks for {}, which this drone's policy does not \
                 allow: grant it under [drivers.{name}] in the drone's config",
                driver.digest(),
                excess.join(", ")
            ))
        }
    }

    /// The bytes in the disk cache, if they are there and still match.
    async fn cached(&self, hex: &str) -> Option<Arc<[u8]>> {
        let path = self.dir.join(format!("{hex}.wasm"));
        let bytes: Arc<[u8]> = Arc::from(tokio::fs::read(&path).await.ok()?);
        if sha256(&bytes).await.as_deref() == Some(hex) {
            return Some(bytes);
        }
        tracing::warn!(path = %path.display(), "a cached driver does not match its digest; fetching it again");
        let _ = tokio::fs::remove_file(&path).await;
        None
    }

    /// The bytes from Redis, checked, then kept in the disk cache.
    async fn fetch(
        &self,
        conn: &ConnectionManager,
        job: &Job,
        stop: &CancellationToken,
    ) -> Result<Arc<[u8]>, Fetched> {
        let hex = job.digest.as_str();
        let key = protocol::driver_key(hex);
        let got: Option<Option<Vec<u8>>> = retry(&format!("GET {key}"), stop, conn, |mut c| {
            let key = key.clone();
            async move { redis::cmd("GET").arg(key).query_async(&mut c).await }
        })
        .await;
        let Some(got) = got else {
            return Err(Fetched::Stopped);
        };
        let Some(bytes) = got else {
            return Err(Fetched::Refused(format!(
                "driver `{}` (sha256:{hex}) is not in Redis: `{key}` is missing, so nothing ran",
                job.driver
            )));
        };
        let bytes: Arc<[u8]> = Arc::from(bytes);
        let actual = sha256(&bytes).await.unwrap_or_default();
        if actual != hex {
            return Err(Fetched::Refused(format!(
                "the bytes at `{key}` have sha256:{actual}, not sha256:{hex}: refusing to run \
                 them as driver `{}`",
                job.driver
            )));
        }
        if let Err(e) = self.store(hex, &bytes).await {
            tracing::warn!(digest = %hex, error = %e, "cannot cache a fetched driver on disk");
        }
        Ok(bytes)
    }

    async fn store(&self, hex: &str, bytes: &[u8]) -> std::io::Result<()> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let unique = format!("{hex}.{}.part", std::process::id());
        let part = self.dir.join(unique);
        tokio::fs::write(&part, bytes).await?;
        tokio::fs::rename(&part, self.dir.join(format!("{hex}.wasm"))).await
    }
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

async fn sha256(bytes: &Arc<[u8]>) -> Option<String> {
    let bytes = Arc::clone(bytes);
    tokio::task::spawn_blocking(move || digest(&bytes))
        .await
        .ok()
}

/// The built-in drivers by digest, computed once.
fn builtins() -> &'static HashMap<String, &'static [u8]> {
    static BUILTINS: OnceLock<HashMap<String, &'static [u8]>> = OnceLock::new();
    BUILTINS.get_or_init(|| {
        builtin_names()
            .filter_map(builtin)
            .map(|bytes| (digest(bytes), bytes))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sha256_hex_is_a_digest() {
        assert!(is_sha256_hex(&"ab".repeat(32)));
        assert!(!is_sha256_hex(&"AB".repeat(32)));
        assert!(!is_sha256_hex("../../etc/passwd"));
        assert!(!is_sha256_hex(&"a".repeat(63)));
    }
}
