//! The plugin registry: every driver a DAG can name, built into the binary or
//! published (uploaded, or dropped into a watched folder), by name and semver
//! version, stored content-addressed by sha256 under the data directory.

mod builtin;
mod disk;
pub mod policy;
mod publish;
pub mod signature;
pub mod spec;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use semver::Version;
use serde::{Deserialize, Serialize};

pub use builtin::{builtin, builtin_names};
pub use publish::{PublishError, Published, Upload};
pub use spec::DriverSpec;
pub use watch::FolderWatch;

use crate::rfc3339;
use crate::runtime::{Description, Driver, Runtime, World};

/// Where a published version came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "path")]
pub enum Origin {
    /// Built into this binary.
    Builtin,
    /// Uploaded through the API (`drover plugin push`).
    Upload,
    /// A file in the configured plugins folder.
    Folder(PathBuf),
}

/// Written by hand: the derive cannot give a path the schema of a string
/// inside a tuple variant.
impl utoipa::PartialSchema for Origin {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        ObjectBuilder::new()
            .property(
                "kind",
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .enum_values(Some(["builtin", "upload", "folder"])),
            )
            .required("kind")
            .property(
                "path",
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .description(Some("The file, for `folder`")),
            )
            .into()
    }
}

impl utoipa::ToSchema for Origin {}

/// One version of a plugin, as the registry lists it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Plugin)]
pub struct PluginVersion {
    pub name: String,
    /// A semver version.
    #[schema(value_type = String)]
    pub version: Version,
    /// The sha256 of the component, hex (`sha256:<hex>` in JSON).
    #[serde(with = "sha256_text")]
    #[schema(pattern = "^sha256:[0-9a-f]{64}$")]
    pub digest: String,
    /// The component's size in bytes.
    pub size: u64,
    pub origin: Origin,
    #[serde(default, with = "rfc3339::optional")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub published_at: Option<SystemTime>,
    /// The trusted key (base64) whose signature it carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    /// What the driver says about itself, capabilities included. Built-in
    /// drivers are described when first asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub description: Option<Description>,
    /// What it imports and exports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world: Option<World>,
    /// Why it cannot be used now (the policy no longer allows what it asks
    /// for), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
}

/// A digest as JSON shows it: `sha256:<hex>`.
mod sha256_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(hex: &str, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("sha256:{hex}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let text = String::deserialize(d)?;
        match text.strip_prefix("sha256:") {
            Some(hex) => Ok(hex.to_owned()),
            None => Err(serde::de::Error::custom("a digest is `sha256:<hex>`")),
        }
    }
}

/// A registry lookup or change that cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no plugin named `{0}`")]
    UnknownPlugin(String),
    #[error("plugin `{name}` has no version {version}")]
    UnknownVersion { name: String, version: String },
    #[error("`{0}` is built into drover and cannot be removed")]
    Builtin(String),
    #[error(
        "`{name}` {version} comes from the plugins folder ({}): remove the file instead",
        path.display()
    )]
    InFolder {
        name: String,
        version: Version,
        path: PathBuf,
    },
    #[error("plugin storage: {0}")]
    Io(String),
    #[error("plugins.trusted_keys[{index}]: {error}")]
    TrustedKey {
        index: usize,
        error: signature::SignatureError,
    },
}

/// The registry. Cheap to clone; every clone sees every change at once.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Runtime,
    disk: disk::Disk,
    plugins: RwLock<BTreeMap<String, BTreeMap<Version, PluginVersion>>>,
    /// How many accepted runs use each digest: their components stay on disk
    /// until the runs end, even when their versions are removed.
    held: Mutex<HashMap<String, usize>>,
    /// Publishes store one at a time, so that two uploads of one version
    /// cannot both win.
    publishing: tokio::sync::Mutex<()>,
    /// The plugins folder's files as last published.
    folder_seen: tokio::sync::Mutex<watch::Seen>,
}

impl Registry {
    /// The built-in drivers, and the plugins published under the data
    /// directory (checked again against the current policy).
    pub fn open(runtime: Runtime) -> Result<Registry, RegistryError> {
        for (index, key) in runtime.config().plugins.trusted_keys.iter().enumerate() {
            signature::check_public_key(key)
                .map_err(|error| RegistryError::TrustedKey { index, error })?;
        }
        let disk = disk::Disk::new(runtime.config().data_dir().join("plugins"));
        let mut plugins: BTreeMap<String, BTreeMap<Version, PluginVersion>> = BTreeMap::new();
        for entry in builtin::entries() {
            plugins
                .entry(entry.name.clone())
                .or_default()
                .insert(entry.version.clone(), entry);
        }
        let (stored, problems) = disk.read_index();
        for problem in problems {
            tracing::warn!("plugin index: {problem}");
        }
        for mut entry in stored {
            entry.blocked = blocked_by_policy(runtime.config(), &entry);
            plugins
                .entry(entry.name.clone())
                .or_default()
                .insert(entry.version.clone(), entry);
        }
        Ok(Registry {
            inner: Arc::new(Inner {
                runtime,
                disk,
                plugins: RwLock::new(plugins),
                held: Mutex::new(HashMap::new()),
                publishing: tokio::sync::Mutex::new(()),
                folder_seen: tokio::sync::Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The Wasm runtime drivers are loaded into.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    fn plugins(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, BTreeMap<Version, PluginVersion>>> {
        self.inner.plugins.read().unwrap_or_else(|e| e.into_inner())
    }

    fn plugins_mut(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, BTreeMap<Version, PluginVersion>>> {
        self.inner
            .plugins
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.inner.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a node's `driver` field names something that exists: a
    /// published plugin (any version) or a component file in `base_dir`. A
    /// field that cannot be read, or a file without a folder, passes here,
    /// so that [`Registry::resolve`] says why.
    pub fn exists(&self, written: &str, base_dir: Option<&Path>) -> bool {
        match DriverSpec::parse(written) {
            Ok(DriverSpec::File(path)) => base_dir.is_none_or(|base| base.join(path).is_file()),
            Ok(spec) => spec
                .name()
                .is_some_and(|name| self.plugins().contains_key(name)),
            Err(_) => true,
        }
    }

    /// Loads the driver a node names. `pin`, when given, is the digest the
    /// run was accepted with, and wins over the name's current resolution.
    /// Component files are found in `base_dir` (the DAG file's folder);
    /// without one (a DAG posted to the server) only published drivers can
    /// be named, since a file from the server's disk would bypass the
    /// checks, the policy and signatures that publishing applies.
    pub async fn resolve(
        &self,
        written: &str,
        base_dir: Option<&Path>,
        pin: Option<&str>,
    ) -> Result<Driver, String> {
        let spec = DriverSpec::parse(written).map_err(|e| e.to_string())?;
        if let Some(digest) = pin {
            return self.load_digest(digest).await.map_err(|e| {
                format!(
                    "the component `{written}` was accepted with (sha256:{digest}) is gone: {e}"
                )
            });
        }
        let entry = match spec {
            DriverSpec::File(path) => {
                let Some(base) = base_dir else {
                    return Err(format!(
                        "`{written}` is a file path; a DAG submitted to the server names \
                         published drivers: push the component with `drover plugin push` and \
                         name it"
                    ));
                };
                let path = base.join(path);
                let bytes = std::fs::read(&path)
                    .map_err(|e| format!("cannot read driver component {}: {e}", path.display()))?;
                return self
                    .inner
                    .runtime
                    .load(Arc::from(bytes))
                    .await
                    .map_err(|e| e.to_string());
            }
            DriverSpec::Named { name, requirement } => self.pick(&name, |entry| {
                requirement
                    .as_ref()
                    .is_none_or(|req| req.matches(&entry.version))
            })?,
            DriverSpec::Digest { name, digest } => {
                self.pick(&name, |entry| entry.digest == digest)?
            }
        };
        if let Some(reason) = &entry.blocked {
            return Err(format!(
                "`{}` {} cannot be used: {reason}",
                entry.name, entry.version
            ));
        }
        self.load_entry(&entry).await
    }

    /// The highest version of `name` that `accept` takes.
    fn pick(
        &self,
        name: &str,
        accept: impl Fn(&PluginVersion) -> bool,
    ) -> Result<PluginVersion, String> {
        let plugins = self.plugins();
        let versions = plugins.get(name).ok_or_else(|| {
            format!(
                "unknown driver `{name}` (published: {}; or give a path to a .wasm component)",
                plugins.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?;
        versions
            .values()
            .rev()
            .find(|entry| accept(entry))
            .cloned()
            .ok_or_else(|| {
                format!(
                    "no version of `{name}` matches (published: {})",
                    versions
                        .values()
                        .map(|v| format!("{} sha256:{}", v.version, &v.digest[..12]))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    async fn load_entry(&self, entry: &PluginVersion) -> Result<Driver, String> {
        match entry.origin {
            Origin::Builtin => {
                let bytes = builtin(&entry.name).unwrap_or_default();
                self.inner
                    .runtime
                    .load_static(bytes)
                    .await
                    .map_err(|e| e.to_string())
            }
            _ => self.load_digest(&entry.digest).await,
        }
    }

    /// Loads a component by digest: a built-in one, or one stored on disk
    /// (whether or not a version still names it).
    async fn load_digest(&self, digest: &str) -> Result<Driver, String> {
        if let Some(driver) = self.inner.runtime.loaded_driver(digest) {
            return Ok(driver);
        }
        if let Some(bytes) = builtin::by_digest(digest) {
            return self
                .inner
                .runtime
                .load_static(bytes)
                .await
                .map_err(|e| e.to_string());
        }
        let bytes = self
            .inner
            .disk
            .read_blob(digest)
            .map_err(|e| e.to_string())?;
        self.inner
            .runtime
            .load_digested(digest.to_owned(), bytes)
            .await
            .map_err(|e| e.to_string())
    }

    /// The bytes of the component with this digest (hex sha256): a built-in
    /// one, or one stored on disk. What a leader hands to drones.
    pub fn component(&self, digest: &str) -> Result<Arc<[u8]>, String> {
        if let Some(bytes) = builtin::by_digest(digest) {
            return Ok(Arc::from(bytes));
        }
        self.inner.disk.read_blob(digest).map_err(|e| {
            format!("the component sha256:{digest} is not in the plugin registry: {e}")
        })
    }

    /// Every plugin, by name, with its versions (newest last).
    pub fn list(&self) -> Vec<(String, Vec<PluginVersion>)> {
        self.plugins()
            .iter()
            .map(|(name, versions)| (name.clone(), versions.values().cloned().collect()))
            .collect()
    }

    /// The versions of one plugin, each described (built-in drivers are
    /// loaded to be described).
    pub async fn versions(&self, name: &str) -> Result<Vec<PluginVersion>, RegistryError> {
        let versions: Vec<PluginVersion> = self
            .plugins()
            .get(name)
            .ok_or_else(|| RegistryError::UnknownPlugin(name.to_owned()))?
            .values()
            .cloned()
            .collect();
        let mut described = Vec::with_capacity(versions.len());
        for mut entry in versions {
            if entry.description.is_none() || entry.world.is_none() {
                match self.load_entry(&entry).await {
                    Ok(driver) => {
                        entry.description = Some(driver.description().clone());
                        entry.world = Some(driver.world().clone());
                    }
                    Err(e) => tracing::warn!(plugin = %name, error = %e, "cannot describe"),
                }
            }
            described.push(entry);
        }
        Ok(described)
    }

    /// Withdraws a published version: new runs can no longer name it. Its
    /// component stays on disk while accepted runs use it.
    pub fn remove(&self, name: &str, version: &str) -> Result<PluginVersion, RegistryError> {
        let unknown = || RegistryError::UnknownVersion {
            name: name.to_owned(),
            version: version.to_owned(),
        };
        let parsed: Version = version.parse().map_err(|_| unknown())?;
        let removed = {
            let mut plugins = self.plugins_mut();
            let versions = plugins
                .get_mut(name)
                .ok_or_else(|| RegistryError::UnknownPlugin(name.to_owned()))?;
            let entry = versions.get(&parsed).ok_or_else(unknown)?;
            match &entry.origin {
                Origin::Builtin => return Err(RegistryError::Builtin(name.to_owned())),
                Origin::Folder(path) => {
                    return Err(RegistryError::InFolder {
                        name: name.to_owned(),
                        version: parsed,
                        path: path.clone(),
                    });
                }
                Origin::Upload => {}
            }
            self.inner
                .disk
                .remove_index(name, &parsed)
                .map_err(|e| RegistryError::Io(e.to_string()))?;
            let removed = versions.remove(&parsed).ok_or_else(unknown)?;
            if versions.is_empty() {
                plugins.remove(name);
            }
            removed
        };
        self.collect(&removed.digest);
        Ok(removed)
    }

    /// Whether an accepted run uses this digest now.
    pub fn in_use(&self, digest: &str) -> bool {
        self.held().get(digest).is_some_and(|n| *n > 0)
    }

    /// Keeps these components on disk until the guard is dropped.
    pub fn hold(&self, digests: impl IntoIterator<Item = String>) -> Hold {
        let digests: Vec<String> = digests.into_iter().collect();
        let mut held = self.held();
        for digest in &digests {
            *held.entry(digest.clone()).or_default() += 1;
        }
        Hold {
            registry: self.clone(),
            digests,
        }
    }

    /// Deletes a stored component that no version names and no run holds.
    fn collect(&self, digest: &str) {
        if self.in_use(digest) || self.names_digest(digest) || builtin::by_digest(digest).is_some()
        {
            return;
        }
        if let Err(e) = self.inner.disk.remove_blob(digest) {
            tracing::warn!(%digest, error = %e, "cannot delete an unused plugin component");
        }
    }

    fn names_digest(&self, digest: &str) -> bool {
        self.plugins()
            .values()
            .flat_map(BTreeMap::values)
            .any(|entry| entry.digest == digest)
    }

    /// Deletes every stored component that no version names and no run
    /// holds: after a restart, once interrupted runs hold theirs again.
    pub fn collect_garbage(&self) {
        match self.inner.disk.blobs() {
            Ok(digests) => {
                for digest in digests {
                    self.collect(&digest);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list stored plugin components"),
        }
    }
}

/// Keeps components on disk while a run uses them.
pub struct Hold {
    registry: Registry,
    digests: Vec<String>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        {
            let mut held = self.registry.held();
            for digest in &self.digests {
                if let Some(n) = held.get_mut(digest) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        held.remove(digest);
                    }
                }
            }
        }
        for digest in &self.digests {
            self.registry.collect(digest);
        }
    }
}

/// Why a stored plugin asks for more than the policy allows now, if it does.
fn blocked_by_policy(config: &crate::config::Config, entry: &PluginVersion) -> Option<String> {
    let description = entry.description.as_ref()?;
    let excess = policy::excess(
        policy::for_plugin(config, &entry.name),
        &description.capabilities,
    );
    (!excess.is_empty()).then(|| {
        format!(
            "it asks for {}, which the policy no longer allows",
            excess.join(", ")
        )
    })
}
