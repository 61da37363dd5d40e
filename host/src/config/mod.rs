//! The operator's configuration: limits for drivers, the exec policy per
//! driver, and where drover keeps its data. Read from a TOML file, whose
//! durations and sizes follow one rule (see [`units`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod policy;
mod units;
mod vault;

pub use policy::{DriverLimit, Policy};
use units::{RawDuration, duration_setting, serialize_duration, size_setting};
pub use units::{SettingError, format_duration};
pub use vault::{
    AppRoleSettings, VaultEnv, VaultSettings, VaultSettingsError, VaultSource,
    resolve as resolve_vault,
};

/// Everything an operator can set. Every field has a sane default, so an
/// empty file (or none) is a valid configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where drover keeps compiled drivers and node workspaces.
    pub data_dir: Option<PathBuf>,
    /// Where compiled drivers are cached; defaults to `<data_dir>/compiled`.
    pub cache_dir: Option<PathBuf>,
    /// Where nodes' workspaces are made; defaults to `<data_dir>/runs`. On
    /// tmpfs, short nodes run markedly faster (no disk inodes to allocate).
    pub workspace_dir: Option<PathBuf>,
    /// Limits applied to every driver instance.
    pub limits: Limits,
    /// The OS sandbox around processes that drivers start.
    pub sandbox: SandboxSettings,
    /// Per-driver policy, by driver name.
    pub drivers: BTreeMap<String, DriverPolicy>,
    /// `drover serve`: tokens, TLS, request limits.
    pub server: ServerSettings,
    /// The plugin registry: uploads, signatures, a watched folder.
    pub plugins: PluginSettings,
    /// Where nodes' secrets are read from; none configured means DAGs may
    /// not ask for secrets.
    pub vault: Option<VaultSettings>,
    /// The Docker engine that runs drivers' containers.
    pub container: ContainerSettings,
    /// `drover drone`: pools, concurrency, claim and heartbeat times.
    pub drone: DroneSettings,
    /// Distributed mode: the Redis that leaders and drones share.
    pub redis: RedisSettings,
}

/// Settings of `drover drone` (its flags win).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "DroneFile")]
pub struct DroneSettings {
    /// The pools whose jobs it takes.
    pub pools: Vec<String>,
    /// How many attempts it runs at once; defaults to the number of cores.
    pub concurrency: Option<usize>,
    /// How long a job entry must have been idle (its drone silent) before
    /// another drone takes it over.
    #[serde(serialize_with = "serialize_duration")]
    pub claim_idle: Duration,
    /// How often the drone writes its heartbeat; it expires after three
    /// missed beats.
    #[serde(serialize_with = "serialize_duration")]
    pub heartbeat: Duration,
    /// How long running attempts may finish after SIGTERM or Ctrl-C; what
    /// still runs then is stopped and left to other drones.
    #[serde(serialize_with = "serialize_duration")]
    pub grace: Duration,
    /// The drone's id; defaults to `<host>-<pid>-<random>`.
    pub id: Option<String>,
}

impl Default for DroneSettings {
    fn default() -> Self {
        DroneSettings {
            pools: vec!["default".to_owned()],
            concurrency: None,
            claim_idle: Duration::from_secs(30),
            heartbeat: Duration::from_secs(2),
            grace: Duration::from_secs(30),
            id: None,
        }
    }
}

/// `[drone]` as written, deprecated keys included.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DroneFile {
    pools: Option<Vec<String>>,
    concurrency: Option<usize>,
    claim_idle: Option<RawDuration>,
    heartbeat: Option<RawDuration>,
    grace: Option<RawDuration>,
    id: Option<String>,
    claim_idle_ms: Option<u64>,
    heartbeat_ms: Option<u64>,
    grace_ms: Option<u64>,
}

impl TryFrom<DroneFile> for DroneSettings {
    type Error = SettingError;

    fn try_from(file: DroneFile) -> Result<Self, SettingError> {
        let default = DroneSettings::default();
        let duration =
            |new, value, old, millis| duration_setting("drone", (new, value), (old, millis));
        Ok(DroneSettings {
            pools: file.pools.unwrap_or(default.pools),
            concurrency: file.concurrency,
            claim_idle: duration(
                "claim_idle",
                file.claim_idle,
                "claim_idle_ms",
                file.claim_idle_ms,
            )?
            .unwrap_or(default.claim_idle),
            heartbeat: duration(
                "heartbeat",
                file.heartbeat,
                "heartbeat_ms",
                file.heartbeat_ms,
            )?
            .unwrap_or(default.heartbeat),
            grace: duration("grace", file.grace, "grace_ms", file.grace_ms)?
                .unwrap_or(default.grace),
            id: file.id,
        })
    }
}

/// `[redis]`: where leaders keep their runs in distributed mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RedisFile")]
pub struct RedisSettings {
    /// `redis://host:port`; when set, `drover serve` keeps its runs there
    /// (the `--redis` option wins).
    pub url: Option<String>,
    /// How long a leader's hold on a run lasts without renewal; another
    /// leader takes a run over once it lapses.
    #[serde(serialize_with = "serialize_duration")]
    pub lease: Duration,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: None,
            // Long enough to ride out a busy Redis, short enough that a dead
            // leader's runs move on within seconds.
            lease: Duration::from_secs(5),
        }
    }
}

impl RedisSettings {
    /// The lease in whole milliseconds, as Redis counts it.
    pub fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX)
    }
}

/// `[redis]` as written, deprecated keys included.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedisFile {
    url: Option<String>,
    lease: Option<RawDuration>,
    lease_ms: Option<u64>,
}

impl TryFrom<RedisFile> for RedisSettings {
    type Error = SettingError;

    fn try_from(file: RedisFile) -> Result<Self, SettingError> {
        let lease = duration_setting("redis", ("lease", file.lease), ("lease_ms", file.lease_ms))?;
        Ok(RedisSettings {
            url: file.url,
            lease: lease.unwrap_or(RedisSettings::default().lease),
        })
    }
}

/// The Docker engine drivers' containers run on (see [`crate::container`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerSettings {
    /// The engine's socket, `unix:///path`; defaults to `$DOCKER_HOST`,
    /// else `unix:///var/run/docker.sock`.
    pub docker_host: Option<String>,
    /// The Docker network of containers whose node is granted network
    /// (default `bridge`); the others always get `none`.
    pub network_mode: Option<String>,
    /// The most processes (and threads) one container may have; a driver
    /// may ask for fewer, never more. Stops a fork bomb in a container.
    /// 0 leaves it unlimited (Docker's meaning).
    pub max_pids: u32,
    /// The most memory (without swap) one container may use, in MiB; a
    /// driver may ask for less, never more. 0 leaves it unlimited.
    pub max_memory_mib: u64,
}

impl Default for ContainerSettings {
    fn default() -> Self {
        ContainerSettings {
            docker_host: None,
            network_mode: None,
            max_pids: 1024,
            max_memory_mib: 2048,
        }
    }
}

/// Settings of the plugin registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginSettings {
    /// A folder of `.wasm` components, registered at start and watched:
    /// adding, changing or removing a file there publishes or withdraws it.
    pub dir: Option<PathBuf>,
    /// Refuse plugins without an ed25519 signature by a trusted key.
    pub require_signatures: bool,
    /// Public keys (base64, as `drover plugin keygen` prints them) whose
    /// signatures are trusted.
    pub trusted_keys: Vec<String>,
    /// The largest component accepted by upload, in MiB.
    pub max_upload_mib: u64,
    /// What a plugin with no `[drivers.<name>]` policy may be granted.
    /// By default nothing but its workspace.
    pub allow: DriverPolicy,
}

impl Default for PluginSettings {
    fn default() -> Self {
        PluginSettings {
            dir: None,
            require_signatures: false,
            trusted_keys: Vec::new(),
            max_upload_mib: 256,
            allow: DriverPolicy::default(),
        }
    }
}

/// Settings of `drover serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ServerFile")]
pub struct ServerSettings {
    /// Bearer tokens and their roles. Without any, the server only starts
    /// on a loopback address (or with `--insecure`), and every caller is admin.
    pub tokens: Vec<TokenSetting>,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<TlsSetting>,
    /// The largest request body accepted, in MiB; larger ones get 413.
    pub max_body_mib: u64,
    /// How many nodes of one run may run at once, unless the submission
    /// says; defaults to the number of cores.
    pub parallelism: Option<usize>,
    /// How many of a running run's latest events the server keeps in
    /// memory for its watchers; older ones are read from the store.
    pub live_window_events: usize,
    /// How much memory those events may take, in MiB (the latest event is
    /// kept whatever its size).
    pub live_window_mib: u64,
    /// The most client connections open at once; one more is answered 503
    /// and closed (HTTPS: closed), so idle sockets cannot use up the
    /// process's file descriptors.
    pub max_connections: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            tokens: Vec::new(),
            tls: None,
            max_body_mib: 8,
            parallelism: None,
            live_window_events: 10_000,
            live_window_mib: 8,
            max_connections: 1024,
        }
    }
}

impl ServerSettings {
    /// The largest request body accepted, in bytes ([`Config::check`]
    /// keeps it far below overflowing).
    pub fn max_body_bytes(&self) -> usize {
        usize::try_from(self.max_body_mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
    }
}

/// `[server]` as written, deprecated keys included.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerFile {
    tokens: Option<Vec<TokenSetting>>,
    tls: Option<TlsSetting>,
    max_body_mib: Option<u64>,
    parallelism: Option<usize>,
    live_window_events: Option<usize>,
    live_window_mib: Option<u64>,
    max_connections: Option<usize>,
    max_body_bytes: Option<u64>,
}

impl TryFrom<ServerFile> for ServerSettings {
    type Error = SettingError;

    fn try_from(file: ServerFile) -> Result<Self, SettingError> {
        let default = ServerSettings::default();
        let max_body_mib = size_setting(
            "server",
            ("max_body_mib", file.max_body_mib),
            ("max_body_bytes", file.max_body_bytes),
        )?;
        Ok(ServerSettings {
            tokens: file.tokens.unwrap_or(default.tokens),
            tls: file.tls,
            max_body_mib: max_body_mib.unwrap_or(default.max_body_mib),
            parallelism: file.parallelism,
            live_window_events: file
                .live_window_events
                .unwrap_or(default.live_window_events),
            live_window_mib: file.live_window_mib.unwrap_or(default.live_window_mib),
            max_connections: file.max_connections.unwrap_or(default.max_connections),
        })
    }
}

/// One bearer token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSetting {
    /// The secret the client sends as `Authorization: Bearer <token>`.
    pub token: String,
    /// What it may do: `admin`, `operator` (submit and cancel) or `viewer` (read).
    pub role: Role,
}

/// What a caller may do; each role may do everything the ones below it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read runs, events, logs, drivers and metrics.
    Viewer,
    /// Also submit and cancel runs.
    Operator,
    /// Everything.
    Admin,
}

impl Role {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// A certificate and key for HTTPS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSetting {
    /// PEM file with the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the private key.
    pub key: PathBuf,
}

/// Limits applied to every driver instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// The most linear memory one driver instance may use, in MiB.
    pub memory_mib: u64,
    /// Wasm fuel per node (roughly, instructions); none means unmetered.
    /// The node's wall-clock deadline applies either way.
    pub fuel: Option<u64>,
    /// How many driver instances may exist at once (the pooling allocator's
    /// size).
    pub max_instances: u32,
    /// The most standard output `exec` keeps for a driver, in KiB.
    pub captured_stdout_kib: u64,
    /// The most WASI handles (open files and directories, streams, sockets,
    /// pollables) one node's driver may hold at once. Each open file is one
    /// of drover's own descriptors, so this keeps a driver from taking them
    /// all from drover and the other nodes.
    pub max_wasi_handles: usize,
    /// The most a node's outcome (its message, output names and values
    /// together) may take, in KiB; a larger one fails the node.
    pub max_outcome_kib: u64,
    /// The most lines one attempt of a node keeps in its log; later lines
    /// are dropped (counted, neither stored nor held in memory) and a line
    /// from drover says how many.
    pub max_log_lines: u64,
    /// The most text one attempt of a node keeps in its log, in MiB; past
    /// it, lines are dropped as past `max_log_lines`.
    pub max_log_mib: u64,
    /// The most disk one node's workspace may take, in MiB; a node past it
    /// is stopped and fails ("workspace quota"). 0: unlimited.
    pub max_workspace_mib: u64,
    /// The most files, folders and links one node's workspace may hold;
    /// past it as past `max_workspace_mib`. 0: unlimited.
    pub max_workspace_files: u64,
}

impl Limits {
    /// How much of each attempt's log is kept.
    pub fn log_limits(&self) -> crate::engine::LogLimits {
        crate::engine::LogLimits {
            lines: self.max_log_lines,
            bytes: self.max_log_mib.saturating_mul(1024 * 1024),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 256,
            fuel: None,
            max_instances: 256,
            captured_stdout_kib: 1024,
            max_wasi_handles: 1024,
            max_outcome_kib: 1024,
            max_log_lines: crate::engine::DEFAULT_LOG_LINES,
            max_log_mib: crate::engine::DEFAULT_LOG_BYTES / (1024 * 1024),
            max_workspace_mib: 8 * 1024,
            max_workspace_files: 500_000,
        }
    }
}

/// The OS sandbox around processes that drivers start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxSettings {
    /// Run processes even where Landlock or network namespaces are missing,
    /// without that layer. Off by default: drover refuses instead.
    pub allow_unconfined: bool,
    /// Paths processes may read and execute besides their workspace.
    pub read_only_paths: Option<Vec<PathBuf>>,
    /// Open files per process.
    pub max_open_files: Option<u64>,
    /// Address space per process, in MiB.
    pub max_address_space_mib: Option<u64>,
    /// Largest file a process may write, in MiB.
    pub max_file_size_mib: Option<u64>,
    /// CPU seconds per process.
    pub max_cpu_seconds: Option<u64>,
    /// Size of the private `/dev/shm` given to processes that ask for one
    /// (the ansible driver's), in MiB.
    pub private_shm_mib: u64,
    /// Processes (and threads) of one node at once; a fork bomb fails
    /// inside its node. A driver's `[drivers.<name>]` may set its own; a
    /// node may ask for fewer (`grants.processes`). 0: unlimited.
    pub max_node_processes: Option<u64>,
    /// Memory of all of one node's processes together, in MiB (needs a
    /// memory cgroup drover may make, as root). A driver's
    /// `[drivers.<name>]` may set its own; a node may ask for less
    /// (`grants.memory_mib`). 0: unlimited.
    pub max_node_memory_mib: Option<u64>,
    /// The uids node processes run under when drover is root, one per
    /// running node.
    pub node_uids: crate::sandbox::UidRange,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            allow_unconfined: false,
            read_only_paths: None,
            max_open_files: Some(4096),
            max_address_space_mib: None,
            max_file_size_mib: Some(16 * 1024),
            max_cpu_seconds: None,
            private_shm_mib: 64,
            max_node_processes: Some(256),
            max_node_memory_mib: Some(2048),
            node_uids: crate::sandbox::UidRange::default(),
        }
    }
}

/// What the operator lets one driver do. For built-in drivers and
/// component files, unset fields mean what the driver declares; a plugin
/// published to the registry may declare no more than its policy sets
/// (unset: nothing).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriverPolicy {
    /// The programs the driver may start.
    pub exec: Option<Vec<String>>,
    /// Whether the driver and its processes get the network.
    pub network: Option<bool>,
    /// Whether the driver may read secrets.
    pub secrets: Option<bool>,
    /// Whether the driver may run containers.
    pub container: Option<bool>,
    /// The images its containers may use: patterns where `*` matches any
    /// run of characters, e.g. `debian:*` or `registry.example/ci/*`.
    /// Unset or empty: none.
    pub images: Option<Vec<String>>,
    /// Whether the driver's processes may open Unix sockets, and with them
    /// reach any socket their node's uid may (off unless set: see the
    /// sandbox's docs).
    pub unix_sockets: Option<bool>,
    /// Processes (and threads) of one of its nodes at once, instead of
    /// `[sandbox] max_node_processes`; 0: unlimited.
    pub max_node_processes: Option<u64>,
    /// Memory of one of its nodes' processes together, in MiB, instead of
    /// `[sandbox] max_node_memory_mib`; 0: unlimited.
    pub max_node_memory_mib: Option<u64>,
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

/// Checks that `value` of `field` lies in `range`, naming the field if not.
fn in_range<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), String> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(format!(
        "{field} must be between {} and {} (it is {value})",
        range.start(),
        range.end()
    ))
}

impl Config {
    /// The files and folders of this configuration that no node may read:
    /// its data folder, TLS key and Vault credentials (with `file`, the
    /// config file itself), each with what it is.
    pub fn private_paths(&self, file: Option<&Path>) -> Vec<(&'static str, PathBuf)> {
        let mut paths = vec![("data folder", self.data_dir())];
        if let Some(file) = file {
            paths.push(("config file", file.to_path_buf()));
        }
        if let Some(tls) = &self.server.tls {
            paths.push(("TLS key", tls.key.clone()));
        }
        if let Some(vault) = &self.vault {
            if let Some(file) = &vault.token_file {
                paths.push(("Vault token file", file.clone()));
            }
            if let Some(file) = vault
                .approle
                .as_ref()
                .and_then(|a| a.secret_id_file.as_ref())
            {
                paths.push(("Vault AppRole secret_id file", file.clone()));
            }
        }
        paths
    }

    /// Reads a TOML configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config.check().map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(config)
    }

    /// Refuses values that parse but make no sense, naming the field. A
    /// zero log or window limit would keep nothing, a zero body limit would
    /// refuse every request, and a zero claim or heartbeat time would spin;
    /// the upper bounds are far past any use and well short of overflowing
    /// a size.
    pub fn check(&self) -> Result<(), String> {
        for (field, value) in [
            ("[drone] claim_idle", self.drone.claim_idle),
            ("[drone] heartbeat", self.drone.heartbeat),
        ] {
            if value < Duration::from_millis(1) {
                return Err(format!(
                    "{field} must be at least 1ms (it is {})",
                    format_duration(value)
                ));
            }
        }
        in_range(
            "[server] max_body_mib",
            self.server.max_body_mib,
            1..=65_536,
        )?;
        in_range(
            "[limits] max_log_lines",
            self.limits.max_log_lines,
            1..=1_000_000_000,
        )?;
        in_range("[limits] max_log_mib", self.limits.max_log_mib, 1..=65_536)?;
        in_range(
            "[server] live_window_events",
            self.server.live_window_events,
            1..=10_000_000,
        )?;
        in_range(
            "[server] live_window_mib",
            self.server.live_window_mib,
            1..=65_536,
        )?;
        in_range(
            "[server] max_connections",
            self.server.max_connections,
            1..=1_000_000,
        )
    }

    /// The folder of compiled drivers.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| self.data_dir().join("compiled"))
    }

    /// The folder under which each run gets a folder of node workspaces.
    pub fn workspace_dir(&self) -> PathBuf {
        self.workspace_dir
            .clone()
            .unwrap_or_else(|| self.data_dir().join("runs"))
    }

    /// The data directory: the configured one, or `$XDG_DATA_HOME/drover`,
    /// or `/var/lib/drover` as root, or `~/.local/share/drover`, or
    /// `.drover` as a last resort.
    ///
    /// Not `/root/...` as root: node processes run under uids of their own,
    /// which cannot enter root's home to reach their workspaces.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("drover");
        }
        if root {
            return PathBuf::from("/var/lib/drover");
        }
        if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(home).join(".local/share/drover");
        }
        PathBuf::from(".drover")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `examples/drover.toml` is what host/docs/configuration.md points operators to: it must
    /// parse, and name every setting (with a value or commented out), so a new setting cannot go
    /// unexplained.
    #[test]
    fn the_example_configuration_parses_and_names_every_setting() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/drover.toml");
        let example = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&path).unwrap();
        let mut missing = Vec::new();
        for config in [Config::default(), example] {
            let value = toml::Value::try_from(&config).unwrap();
            let mut tables = vec![(String::new(), value)];
            while let Some((prefix, value)) = tables.pop() {
                let Some(table) = value.as_table() else {
                    continue;
                };
                for (key, value) in table {
                    let named = text.contains(&format!("{key} ="))
                        || text.contains(&format!("[{prefix}{key}]"))
                        || text.contains(&format!("[{prefix}{key}."))
                        || text.contains(&format!("[[{prefix}{key}]]"));
                    if !named && prefix != "drivers." {
                        missing.push(format!("{prefix}{key}"));
                    }
                    tables.push((format!("{prefix}{key}."), value.clone()));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "examples/drover.toml does not name {missing:?}"
        );
    }

    #[test]
    fn empty_file_is_the_default() {
        let config: Config = toml::from_str("").unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let err = toml::from_str::<Config>("[limits]\nmemory_mb = 3\n").unwrap_err();
        assert!(err.to_string().contains("memory_mb"), "{err}");
    }

    #[test]
    fn node_uids_parse_and_refuse_unknown_fields() {
        let config: Config =
            toml::from_str("[sandbox]\nnode_uids = { first = 3000000, count = 8 }\n").unwrap();
        assert_eq!(
            config.sandbox.node_uids,
            crate::sandbox::UidRange {
                first: 3_000_000,
                count: 8
            }
        );
        let err = toml::from_str::<Config>("[sandbox]\nnode_uids = { start = 1, count = 8 }\n")
            .unwrap_err();
        assert!(err.to_string().contains("start"), "{err}");
    }

    #[test]
    fn log_and_window_limits_out_of_range_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drover.toml");
        for (text, field) in [
            ("[limits]\nmax_log_lines = 0\n", "[limits] max_log_lines"),
            ("[limits]\nmax_log_mib = 0\n", "[limits] max_log_mib"),
            ("[limits]\nmax_log_mib = 10000000\n", "[limits] max_log_mib"),
            (
                "[server]\nlive_window_events = 0\n",
                "[server] live_window_events",
            ),
            (
                "[server]\nlive_window_mib = 0\n",
                "[server] live_window_mib",
            ),
            (
                "[server]\nmax_connections = 0\n",
                "[server] max_connections",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = Config::load(&path).unwrap_err().to_string();
            assert!(err.contains(field), "{text}: {err}");
        }
        std::fs::write(&path, "[limits]\nmax_log_lines = 5\nmax_log_mib = 1\n").unwrap();
        let limits = Config::load(&path).unwrap().limits.log_limits();
        assert_eq!((limits.lines, limits.bytes), (5, 1024 * 1024));
        assert!(Config::default().check().is_ok());
    }

    /// Writes `text` as a config file and loads it.
    fn load(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drover.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path)
    }

    #[test]
    fn durations_and_sizes_follow_the_unit_rule() {
        let config = load(
            "[drone]\nclaim_idle = \"45s\"\nheartbeat = \"250ms\"\ngrace = \"1.5m\"\n\
             [redis]\nlease = \"3s\"\n[server]\nmax_body_mib = 2\n",
        )
        .unwrap();
        assert_eq!(config.drone.claim_idle, Duration::from_secs(45));
        assert_eq!(config.drone.heartbeat, Duration::from_millis(250));
        assert_eq!(config.drone.grace, Duration::from_secs(90));
        assert_eq!(config.redis.lease_ms(), 3000);
        assert_eq!(config.server.max_body_bytes(), 2 * 1024 * 1024);
        // What `drover config show` prints reads back as the same settings.
        let shown = toml::to_string(&config).unwrap();
        assert!(shown.contains("grace = \"90s\""), "{shown}");
        assert_eq!(toml::from_str::<Config>(&shown).unwrap(), config);
        assert_eq!(
            toml::from_str::<Config>(&toml::to_string(&Config::default()).unwrap()).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn the_old_keys_are_still_read() {
        let config = load(
            "[drone]\nclaim_idle_ms = 45000\nheartbeat_ms = 250\ngrace_ms = 90000\n\
             [redis]\nlease_ms = 3000\n[server]\nmax_body_bytes = 2097152\n",
        )
        .unwrap();
        assert_eq!(config.drone.claim_idle, Duration::from_secs(45));
        assert_eq!(config.drone.heartbeat, Duration::from_millis(250));
        assert_eq!(config.drone.grace, Duration::from_secs(90));
        assert_eq!(config.redis.lease, Duration::from_secs(3));
        assert_eq!(config.server.max_body_mib, 2);
        // A byte count that is no whole MiB is rounded up, not down to nothing.
        let config = load("[server]\nmax_body_bytes = 1024\n").unwrap();
        assert_eq!(config.server.max_body_mib, 1);
        // The other settings of the sections keep their defaults.
        assert_eq!(config.server.live_window_mib, 8);
        assert_eq!(config.drone.pools, ["default"]);
    }

    #[test]
    fn bare_numbers_and_bad_durations_are_refused_by_name() {
        for (text, wanted) in [
            ("[drone]\nheartbeat = 100\n", "heartbeat = \"100ms\""),
            (
                "[drone]\nclaim_idle = \"30000\"\n",
                "claim_idle = \"30000ms\"",
            ),
            ("[drone]\ngrace = 2.5\n", "grace = \"2.5ms\""),
            ("[redis]\nlease = 5000\n", "lease = \"5000ms\""),
            (
                "[redis]\nlease = \"5 s\"\n",
                "[redis] lease: invalid duration `5 s`",
            ),
            ("[redis]\nlease = true\n", "a duration with a unit"),
            (
                "[drone]\nheartbeat = \"0s\"\n",
                "[drone] heartbeat must be at least 1ms",
            ),
            ("[server]\nmax_body_mib = 0\n", "[server] max_body_mib"),
        ] {
            let err = load(text).unwrap_err().to_string();
            assert!(err.contains(wanted), "{text}: {err}");
        }
    }

    #[test]
    fn an_old_key_and_its_new_name_together_are_refused() {
        for (text, old, new) in [
            (
                "[drone]\ngrace = \"1s\"\ngrace_ms = 1000\n",
                "grace_ms",
                "keep only grace",
            ),
            (
                "[redis]\nlease_ms = 1000\nlease = \"1s\"\n",
                "lease_ms",
                "keep only lease",
            ),
            (
                "[server]\nmax_body_bytes = 1048576\nmax_body_mib = 1\n",
                "max_body_bytes",
                "keep only max_body_mib",
            ),
        ] {
            let err = load(text).unwrap_err().to_string();
            assert!(err.contains(old) && err.contains(new), "{text}: {err}");
        }
    }

    #[test]
    fn driver_policy_parses() {
        let config: Config =
            toml::from_str("[drivers.shell]\nexec = [\"sh\", \"bash\"]\nnetwork = true\n").unwrap();
        let shell = &config.drivers["shell"];
        assert_eq!(
            shell.exec.as_deref(),
            Some(&["sh".to_string(), "bash".to_string()][..])
        );
        assert_eq!(shell.network, Some(true));
    }
}
