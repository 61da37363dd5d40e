//! Publishing a plugin: check that the bytes are a drover driver component,
//! that its signature and capabilities pass, then store it and make it
//! usable at once.

use std::sync::Arc;
use std::time::SystemTime;

use semver::Version;

use super::{Origin, PluginVersion, Registry, policy, signature, spec};
use crate::runtime::{RuntimeError, digest};

/// A component to publish.
pub struct Upload {
    /// The name it is published under; defaults to the one it describes.
    pub name: Option<String>,
    /// Its version; defaults to the one it describes.
    pub version: Option<String>,
    pub bytes: Arc<[u8]>,
    /// An ed25519 signature over its digest, base64.
    pub signature: Option<String>,
    pub origin: Origin,
}

/// A published version, and whether this call published it (`false` when
/// the very same component was already published under that version).
#[derive(Debug, Clone)]
pub struct Published {
    pub plugin: PluginVersion,
    pub created: bool,
}

/// Why a component was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Not a drover driver component, or one that misbehaves.
    #[error("{0}")]
    Invalid(String),
    /// The signature is missing or does not verify.
    #[error("{0}")]
    Unsigned(String),
    /// It asks for more than the policy allows.
    #[error("{0}")]
    Forbidden(String),
    /// That version is published with other bytes.
    #[error("{0}")]
    Conflict(String),
    #[error("cannot store the plugin: {0}")]
    Io(String),
}

/// What the first bytes say a file is, when it is not a component.
fn not_a_component(bytes: &[u8]) -> Option<String> {
    const MAGIC: &[u8] = b"\0asm";
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Some(
            "not a WebAssembly file: it does not start with the `\\0asm` magic bytes".into(),
        );
    }
    match [bytes[4], bytes[5], bytes[6], bytes[7]] {
        [0x0d, 0x00, 0x01, 0x00] => None,
        [0x01, 0x00, 0x00, 0x00] => Some(
            "a core WebAssembly module, not a component: build for wasm32-wasip2, or wrap the \
             module with `wasm-tools component new`"
                .into(),
        ),
        [a, b, c, d] => Some(format!(
            "an unknown WebAssembly encoding (version/layer bytes {a:02x} {b:02x} {c:02x} {d:02x})"
        )),
    }
}

impl Registry {
    /// Checks and publishes a component. The same bytes under the same
    /// version again is not an error: it is already there.
    pub async fn publish(&self, upload: Upload) -> Result<Published, PublishError> {
        if let Some(reason) = not_a_component(&upload.bytes) {
            return Err(PublishError::Invalid(reason));
        }
        let bytes = Arc::clone(&upload.bytes);
        let digest = tokio::task::spawn_blocking(move || digest(&bytes))
            .await
            .map_err(|e| PublishError::Io(format!("digest task failed: {e}")))?;
        let config = self.runtime().config();
        let signed_by = self.check_signature(&digest, upload.signature.as_deref())?;

        let driver = self
            .runtime()
            .load_digested(digest.clone(), Arc::clone(&upload.bytes))
            .await
            .map_err(|e| {
                PublishError::Invalid(match e {
                    RuntimeError::WrongWorld(why) => format!(
                        "a component, but not a drover driver: it must implement the world {} \
                         ({why})",
                        crate::runtime::DRIVER_WORLD
                    ),
                    other => other.to_string(),
                })
            })?;
        let description = driver.description().clone();
        let name = upload.name.unwrap_or_else(|| description.name.clone());
        if !spec::is_valid_name(&name) {
            return Err(PublishError::Invalid(format!(
                "`{name}` cannot be a plugin name: lower-case letters, digits and `-`, starting \
                 with a letter"
            )));
        }
        if name != description.name {
            return Err(PublishError::Invalid(format!(
                "the component describes itself as `{}`, not `{name}`: publish it under its own name",
                description.name
            )));
        }
        let described: Version = description.version.parse().map_err(|e| {
            PublishError::Invalid(format!(
                "the component's own version `{}` is not semver: {e}",
                description.version
            ))
        })?;
        let version = match upload.version {
            None => described,
            Some(given) => {
                let given: Version = given.parse().map_err(|e| {
                    PublishError::Invalid(format!("version `{given}` is not semver: {e}"))
                })?;
                if given != described {
                    return Err(PublishError::Invalid(format!(
                        "the component describes itself as version {described}, not {given}"
                    )));
                }
                given
            }
        };
        let excess = policy::excess(policy::for_plugin(config, &name), &description.capabilities);
        if !excess.is_empty() {
            return Err(PublishError::Forbidden(format!(
                "plugin `{name}` asks for {}, which the operator's policy does not allow \
                 (an operator may allow it under [drivers.{name}] in the config file)",
                excess.join(", ")
            )));
        }

        let entry = PluginVersion {
            name: name.clone(),
            version: version.clone(),
            digest: digest.clone(),
            size: upload.bytes.len() as u64,
            origin: upload.origin,
            published_at: Some(SystemTime::now()),
            signed_by,
            description: Some(description),
            world: Some(driver.world().clone()),
            blocked: None,
        };
        let _one_at_a_time = self.inner.publishing.lock().await;
        if let Some(existing) = self
            .plugins()
            .get(&name)
            .and_then(|versions| versions.get(&version))
        {
            let replaces_own_file =
                matches!(&existing.origin, Origin::Folder(_)) && existing.origin == entry.origin;
            if existing.digest == digest {
                return Ok(Published {
                    plugin: existing.clone(),
                    created: false,
                });
            }
            if !replaces_own_file {
                return Err(PublishError::Conflict(format!(
                    "`{name}` {version} is already published with another component \
                     (sha256:{}); publish this one as a new version",
                    existing.digest
                )));
            }
        }
        let disk = self.inner.disk.clone();
        let stored_bytes = Arc::clone(&upload.bytes);
        let stored = entry.clone();
        tokio::task::spawn_blocking(move || {
            disk.write_blob(&stored.digest, &stored_bytes)?;
            disk.write_index(&stored)
        })
        .await
        .map_err(|e| PublishError::Io(format!("store task failed: {e}")))?
        .map_err(|e| PublishError::Io(e.to_string()))?;
        let replaced = self
            .plugins_mut()
            .entry(name)
            .or_default()
            .insert(version, entry.clone());
        if let Some(old) = replaced {
            self.collect(&old.digest);
        }
        tracing::info!(plugin = %entry.name, version = %entry.version, digest = %entry.digest, "published");
        Ok(Published {
            plugin: entry,
            created: true,
        })
    }

    /// The trusted key that signed `digest`, when a signature is given or
    /// required.
    fn check_signature(
        &self,
        digest: &str,
        signature: Option<&str>,
    ) -> Result<Option<String>, PublishError> {
        let settings = &self.runtime().config().plugins;
        let Some(signature) = signature else {
            if settings.require_signatures {
                return Err(PublishError::Unsigned(
                    "this server requires signed plugins (plugins.require_signatures): sign the \
                     component with `drover plugin sign` and send the signature"
                        .into(),
                ));
            }
            return Ok(None);
        };
        match signature::verify(&settings.trusted_keys, digest, signature) {
            Ok(Some(key)) => Ok(Some(key.to_owned())),
            Ok(None) => Err(PublishError::Unsigned(format!(
                "the signature does not verify against any trusted key for sha256:{digest}"
            ))),
            Err(e) => Err(PublishError::Unsigned(format!("bad signature: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_first_bytes_say() {
        assert!(not_a_component(b"hello world").unwrap().contains("magic"));
        assert!(
            not_a_component(b"\0asm\x01\0\0\0")
                .unwrap()
                .contains("core")
        );
        assert!(not_a_component(b"\0asm\x0d\0\x01\0").is_none());
        assert!(
            not_a_component(b"\0asm\x02\0\0\0")
                .unwrap()
                .contains("unknown")
        );
    }
}
