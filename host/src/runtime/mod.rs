//! The Wasm runtime: compiles drivers once, instantiates a fresh sandboxed
//! instance per node, and turns whatever the driver does (return, trap, loop,
//! allocate) into an [`Outcome`].

pub mod bindings;
mod cache;
pub mod container;
pub mod exec;
mod interfaces;
mod limits;
mod log;
pub mod node_limits;
mod quota;
mod secrets;
mod state;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use wasmtime::component::Linker;
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};

pub use bindings::{Capabilities, Description};
pub use cache::{CacheOutcome, digest};
use exec::ExecGrant;
use interfaces::Interfaces;
pub use limits::MemoryLimitExceeded;
pub use log::escape_controls;
use state::InstanceState;

use crate::config::{Config, Policy};
use crate::task::{
    DriverProblem, LogLevel, LogLine, LogSink, LogSource, NodeStatus, Outcome, Task,
};

/// How often the epoch advances. A guest that computes without calling the
/// host yields to the executor this often, so timeouts and cancel reach it.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// How much of each pooled linear memory stays resident between instances.
const KEEP_RESIDENT: usize = 2 * 1024 * 1024;

/// The most entries one table of a driver may have.
const TABLE_ELEMENTS: usize = 200_000;

/// How long `describe` and `validate` may take.
const QUERY_DEADLINE: Duration = Duration::from_secs(10);

/// Why a driver could not be loaded or queried.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot set up the Wasm engine: {0}")]
    Engine(String),
    #[error("not a usable drover driver component: {0}")]
    Compile(String),
    #[error("the component does not implement the world drover:driver/driver: {0}")]
    WrongWorld(String),
    #[error("{0}")]
    Vault(#[from] crate::secrets::VaultConfigError),
    #[error("driver `{driver}` failed in `{call}`: {message}")]
    Call {
        driver: String,
        call: &'static str,
        message: String,
    },
}

/// A loaded driver: compiled, linked, described. Cheap to clone.
#[derive(Clone)]
pub struct Driver {
    inner: Arc<DriverInner>,
}

struct DriverInner {
    digest: String,
    description: Description,
    world: World,
    cache: CacheOutcome,
    pre: bindings::DriverPre<InstanceState>,
}

/// What a driver component imports and exports, by WIT name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct World {
    /// The world it implements (checked when it is loaded).
    pub implements: String,
    /// Interfaces it imports: `drover:driver/log@0.1.0`, `wasi:cli/environment@0.2.0`, ...
    pub imports: Vec<String>,
    /// What it exports: `describe`, `validate`, `run`.
    pub exports: Vec<String>,
}

/// The world every driver implements.
pub const DRIVER_WORLD: &str = "drover:driver/driver@0.1.0";

impl Driver {
    /// The sha256 of the component.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// What the driver says about itself.
    pub fn description(&self) -> &Description {
        &self.inner.description
    }

    /// The driver's name, from its description.
    pub fn name(&self) -> &str {
        &self.inner.description.name
    }

    /// The component's imports and exports.
    pub fn world(&self) -> &World {
        &self.inner.world
    }

    /// Whether it was compiled now or loaded from the cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.inner.cache
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("name", &self.name())
            .field("digest", &self.digest())
            .finish()
    }
}

/// Where and how one node runs.
pub struct NodeContext {
    /// The node's workspace folder; created when the driver needs it.
    pub workspace: std::path::PathBuf,
    /// Where the node's log lines go.
    pub logs: LogSink,
    /// Cancels the node: the instance is dropped and its processes killed.
    pub cancel: CancellationToken,
}

/// The Wasm engine with everything needed to run drivers. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    linker: Linker<InstanceState>,
    cache: cache::CompileCache,
    config: Config,
    /// exec, container and secrets, with what each owns.
    interfaces: Interfaces,
    ticker_stop: Arc<AtomicBool>,
    /// One permit per slot of the instance pool: callers beyond the pool's
    /// size wait for a slot instead of failing to instantiate.
    slots: Arc<tokio::sync::Semaphore>,
    /// Drivers loaded so far, by digest: loading one again costs nothing.
    loaded: std::sync::Mutex<HashMap<String, Arc<OnceCell<Driver>>>>,
    /// Built-in drivers by the address of their bytes (see `load_static`).
    statics: std::sync::Mutex<HashMap<usize, Arc<OnceCell<Driver>>>>,
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// An engine configured from the operator's limits, with compiled
    /// drivers cached under the data directory.
    pub fn new(config: Config) -> Result<Runtime, RuntimeError> {
        let limits = &config.limits;
        let memory_bytes = usize::try_from(limits.memory_mib.saturating_mul(1024 * 1024))
            .map_err(|_| RuntimeError::Engine("limits.memory_mib is too large".into()))?;
        let instances = limits.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(8))
            .total_memories(instances.saturating_mul(2))
            .total_tables(instances.saturating_mul(4))
            .total_stacks(instances)
            .max_memory_size(memory_bytes)
            // Reset a reused slot by rewriting only its dirty pages (found
            // with the PAGEMAP_SCAN ioctl where the kernel has it) instead of
            // madvise: no syscall per instance and no page faults after.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            // Drivers built from interpreters (CPython, SpiderMonkey) have
            // function tables far beyond the default 20,000 entries; slots
            // are reserved, not committed, so headroom costs little.
            .table_elements(TABLE_ELEMENTS)
            .table_keep_resident(64 * 1024)
            .decommit_batch_size(16);
        let mut wasm = wasmtime::Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(limits.fuel.is_some())
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::new(&engine);
        interfaces::link(&mut linker)?;
        let interfaces = Interfaces::new(&config)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = ticker_stop.clone();
            std::thread::Builder::new()
                .name("drover-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| RuntimeError::Engine(format!("cannot start the epoch thread: {e}")))?;
        }

        let cache = cache::CompileCache::new(&engine, Some(config.cache_dir()));
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                cache,
                config,
                interfaces,
                ticker_stop,
                slots: Arc::new(tokio::sync::Semaphore::new(instances as usize)),
                loaded: Default::default(),
                statics: Default::default(),
            }),
        })
    }

    /// The configuration the runtime was made with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The Docker engine drivers' containers run on.
    pub fn containers(&self) -> &Arc<crate::container::Engine> {
        self.inner.interfaces.containers.engine()
    }

    /// Waits for a free slot of the instance pool; the slot is held until
    /// the permit is dropped.
    async fn slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        // The semaphore is never closed, so this only fails if it were.
        Arc::clone(&self.inner.slots).acquire_owned().await.ok()
    }

    /// Compiles (or loads from the cache) a component, links it and asks it
    /// to describe itself.
    /// A driver already loaded (same digest) comes back from memory, and
    /// callers asking for the same driver at once share one compilation.
    pub async fn load(&self, bytes: Arc<[u8]>) -> Result<Driver, RuntimeError> {
        let digest = {
            let bytes = Arc::clone(&bytes);
            tokio::task::spawn_blocking(move || cache::digest(&bytes))
                .await
                .map_err(|e| RuntimeError::Compile(format!("digest task failed: {e}")))?
        };
        self.load_digested(digest, bytes).await
    }

    /// Like [`Runtime::load`], for bytes whose sha256 (hex) the caller
    /// already knows: hashing a large component costs milliseconds.
    pub async fn load_digested(
        &self,
        digest: String,
        bytes: Arc<[u8]>,
    ) -> Result<Driver, RuntimeError> {
        let cell = Arc::clone(self.loaded().entry(digest.clone()).or_default());
        cell.get_or_try_init(|| self.load_new(digest, bytes))
            .await
            .cloned()
    }

    /// The driver of this digest, if it is loaded already.
    pub fn loaded_driver(&self, digest: &str) -> Option<Driver> {
        self.loaded()
            .get(digest)
            .and_then(|cell| cell.get().cloned())
    }

    /// Compiles (or reads from the disk cache) a driver not in memory yet.
    async fn load_new(&self, digest: String, bytes: Arc<[u8]>) -> Result<Driver, RuntimeError> {
        let this = self.clone();
        let key = digest.clone();
        let (component, cache) = tokio::task::spawn_blocking(move || {
            this.inner.cache.load(&this.inner.engine, &key, &bytes)
        })
        .await
        .map_err(|e| RuntimeError::Compile(format!("compile task failed: {e}")))??;
        let world = {
            let ty = component.component_type();
            let engine = &self.inner.engine;
            World {
                implements: DRIVER_WORLD.to_owned(),
                imports: ty
                    .imports(engine)
                    .map(|(name, _)| name.to_owned())
                    .collect(),
                exports: ty
                    .exports(engine)
                    .map(|(name, _)| name.to_owned())
                    .collect(),
            }
        };
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| RuntimeError::WrongWorld(format!("{e:#}")))?;
        let pre = bindings::DriverPre::new(pre)
            .map_err(|e| RuntimeError::WrongWorld(format!("{e:#}")))?;

        let _slot = self.slot().await;
        let state = self.query_state("describe");
        let mut store = self.store(state);
        let description = tokio::time::timeout(QUERY_DEADLINE, async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_describe(&mut store).await
        })
        .await
        .map_err(|_| RuntimeError::Call {
            driver: digest.clone(),
            call: "describe",
            message: format!("did not answer within {QUERY_DEADLINE:?}"),
        })?
        .map_err(|e| RuntimeError::Call {
            driver: digest.clone(),
            call: "describe",
            message: explain(&e, store.data(), &self.inner.config),
        })?;
        Ok(Driver {
            inner: Arc::new(DriverInner {
                digest,
                description,
                world,
                cache,
                pre,
            }),
        })
    }

    /// Loads a driver whose bytes live for the whole program (a built-in
    /// one), remembered by address so that its digest is computed once.
    pub async fn load_static(&self, bytes: &'static [u8]) -> Result<Driver, RuntimeError> {
        let cell = Arc::clone(self.statics().entry(bytes.as_ptr() as usize).or_default());
        cell.get_or_try_init(|| self.load(Arc::from(bytes)))
            .await
            .cloned()
    }

    fn loaded(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<OnceCell<Driver>>>> {
        self.inner.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn statics(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Arc<OnceCell<Driver>>>> {
        self.inner.statics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the driver whether it accepts a node. Runs in a fresh instance
    /// that may not start processes.
    pub async fn validate(
        &self,
        driver: &Driver,
        task: &Task,
    ) -> Result<Vec<DriverProblem>, RuntimeError> {
        let _slot = self.slot().await;
        let state = self.query_state(&task.node);
        let mut store = self.store(state);
        let wit_task = to_wit_task(task);
        let problems = tokio::time::timeout(QUERY_DEADLINE, async {
            let instance = driver.inner.pre.instantiate_async(&mut store).await?;
            instance.call_validate(&mut store, &wit_task).await
        })
        .await
        .map_err(|_| RuntimeError::Call {
            driver: driver.name().into(),
            call: "validate",
            message: format!("did not answer within {QUERY_DEADLINE:?}"),
        })?
        .map_err(|e| RuntimeError::Call {
            driver: driver.name().into(),
            call: "validate",
            message: explain(&e, store.data(), &self.inner.config),
        })?;
        Ok(problems
            .into_iter()
            .map(|p| DriverProblem {
                field: p.field,
                message: p.message,
            })
            .collect())
    }

    /// Whether [`run`](Self::run) makes a workspace folder for this node:
    /// only if its driver may use files, containers or programs.
    pub fn makes_workspace(&self, driver: &Driver, task: &Task) -> bool {
        let description = driver.description();
        let policy = Policy::of(&self.inner.config, &description.name);
        let grant = self.inner.interfaces.exec.grant(&policy, description, task);
        needs_workspace(description, &grant)
    }

    /// Runs one node in a fresh instance and says how it ended. Never fails:
    /// whatever goes wrong becomes a failed (or timed-out, or canceled)
    /// outcome with a reason.
    pub async fn run(&self, driver: &Driver, task: Task, ctx: NodeContext) -> Outcome {
        let began = Instant::now();
        let description = driver.description();
        let policy = Policy::of(&self.inner.config, &description.name);
        let interfaces = &self.inner.interfaces;
        let grant = interfaces.exec.grant(&policy, description, &task);
        let needs_workspace = needs_workspace(description, &grant);
        if needs_workspace && let Err(e) = std::fs::create_dir_all(&ctx.workspace) {
            return Outcome::failure(format!(
                "cannot create the workspace {}: {e}",
                ctx.workspace.display()
            ));
        }
        let workspace = if !needs_workspace {
            None
        } else if ctx.workspace.is_absolute() {
            // Callers hand absolute paths under a folder they resolved once;
            // resolving every node's path again costs a syscall per component.
            Some(ctx.workspace.clone())
        } else {
            match ctx.workspace.canonicalize() {
                Ok(w) => Some(w),
                Err(e) => {
                    return Outcome::failure(format!("workspace {}: {e}", ctx.workspace.display()));
                }
            }
        };
        let deadline = task.deadline.map(|d| {
            let left = d
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            Instant::now() + left
        });
        let container_grant = interfaces.containers.grant(
            &policy,
            description,
            &task,
            workspace.clone(),
            grant.network,
        );
        let (secrets, redactor) = match interfaces
            .secrets
            .read(&policy, description, &task, &ctx.cancel, deadline)
            .await
        {
            Ok(read) => read,
            Err(outcome) => return outcome,
        };
        for warning in secrets::short_value_warnings(&secrets) {
            tracing::warn!(node = %task.node, "{warning}");
            // A closed sink means nobody reads the log any more.
            let _ = ctx
                .logs
                .send(LogLine {
                    node: task.node.as_str().into(),
                    source: LogSource::Drover,
                    level: LogLevel::Warn,
                    message: warning,
                })
                .await;
        }
        let state = match InstanceState::for_run(state::RunSetup {
            task: &task,
            driver: driver.name(),
            grant: ExecGrant {
                workspace: workspace.clone(),
                ..grant
            },
            memory_bytes: self.memory_bytes(),
            max_handles: self.inner.config.limits.max_wasi_handles,
            logs: ctx.logs.clone(),
            sandbox: interfaces.exec.sandbox().clone(),
            container: Some(container_grant),
            secrets,
            redactor: redactor.clone(),
        }) {
            Ok(state) => state,
            Err(e) => return Outcome::failure(format!("cannot set up the driver's sandbox: {e}")),
        };
        tracing::trace!(node = %task.node, us = began.elapsed().as_micros(), "instance state ready");
        let _slot = tokio::select! {
            slot = self.slot() => slot,
            _ = ctx.cancel.cancelled() => {
                return Outcome::with_message(NodeStatus::Canceled, "canceled while waiting for a driver instance");
            }
        };
        let mut store = self.store(state);
        let wit_task = to_wit_task(&task);
        let call = async {
            let instance = driver.inner.pre.instantiate_async(&mut store).await?;
            instance.call_run(&mut store, &wit_task).await
        };
        let sleep_until = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let quota = quota::WorkspaceQuota::from_limits(&self.inner.config.limits);
        let result = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => {
                Err(Outcome::with_message(NodeStatus::Canceled, "canceled"))
            }
            _ = sleep_until => {
                Err(Outcome::with_message(NodeStatus::Timeout, "the node did not finish before its deadline"))
            }
            reason = quota.watch(workspace.clone()) => Err(Outcome::failure(reason)),
            result = call => Ok(result),
        };
        // The node's containers go however it ended.
        store.data_mut().container.remove_all().await;
        let result = match result {
            Ok(result) => result,
            Err(outcome) => return outcome,
        };
        let mut outcome = match result {
            Ok(outcome) => match self.outcome_too_large(&outcome) {
                Some(reason) => Outcome::failure(reason),
                None => from_wit_outcome(outcome),
            },
            Err(e) => Outcome::failure(explain(&e, store.data(), &self.inner.config)),
        };
        // What the node wrote since the last walk counts too.
        if outcome.status == NodeStatus::Success
            && let Some(reason) = workspace.as_deref().and_then(|w| quota.over(w))
        {
            outcome = Outcome::failure(reason);
        }
        if outcome.status != NodeStatus::Success
            && let Some(limit) = store.data().exec.memory_limit_reached()
        {
            outcome.message = format!(
                "memory limit: the node's processes passed {} MiB together and the kernel \
                 killed one ({})",
                limit >> 20,
                outcome.message
            );
        }
        store.data_mut().flush_guest_output().await;
        tracing::trace!(node = %task.node, us = began.elapsed().as_micros(), "node done");
        secrets::redact_outcome(&redactor, outcome)
    }

    /// Why an outcome is refused for its size, if it is: the outcome is
    /// stored, sent to drones' leaders and shown by the API, so it must stay
    /// small however much the driver returns.
    fn outcome_too_large(
        &self,
        outcome: &bindings::drover::driver::types::Outcome,
    ) -> Option<String> {
        let limit_kib = self.inner.config.limits.max_outcome_kib;
        let limit = usize::try_from(limit_kib.saturating_mul(1024)).unwrap_or(usize::MAX);
        let size = outcome_size(outcome);
        (size > limit).then(|| {
            format!(
                "outcome too large: the driver returned {size} bytes of message and outputs, \
                 over the limit of {limit_kib} KiB ([limits] max_outcome_kib)"
            )
        })
    }

    fn memory_bytes(&self) -> usize {
        usize::try_from(
            self.inner
                .config
                .limits
                .memory_mib
                .saturating_mul(1024 * 1024),
        )
        .unwrap_or(usize::MAX)
    }

    fn query_state(&self, label: &str) -> InstanceState {
        InstanceState::for_query(
            label,
            self.memory_bytes(),
            self.inner.config.limits.max_wasi_handles,
            self.inner.interfaces.exec.sandbox().clone(),
        )
    }

    fn store(&self, state: InstanceState) -> Store<InstanceState> {
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        // Yield at every tick: the select in `run` then sees its deadline
        // and cancel even while a guest computes without calling the host.
        store.epoch_deadline_callback(|_| Ok(wasmtime::UpdateDeadline::Yield(1)));
        if let Some(fuel) = self.inner.config.limits.fuel {
            // Cannot fail: fuel is enabled in the engine whenever it is set.
            let _ = store.set_fuel(fuel);
        }
        store
    }
}

/// The bytes an outcome carries: its message and its outputs' names and
/// values.
fn outcome_size(outcome: &bindings::drover::driver::types::Outcome) -> usize {
    outcome
        .outputs
        .iter()
        .fold(outcome.message.len(), |size, (key, value)| {
            size.saturating_add(key.len()).saturating_add(value.len())
        })
}

/// A readable reason for a failed call into a driver.
fn explain(error: &wasmtime::Error, state: &InstanceState, config: &Config) -> String {
    if let Some(limit) = error.downcast_ref::<MemoryLimitExceeded>() {
        return limit.to_string();
    }
    if let Some(wasmtime::component::ResourceTableError::Full) =
        error.downcast_ref::<wasmtime::component::ResourceTableError>()
    {
        return format!(
            "too many open files in this node (limit {}): the driver held that many WASI \
             handles (files, directories, streams, sockets) at once ([limits] max_wasi_handles)",
            config.limits.max_wasi_handles
        );
    }
    if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return format!(
            "driver exited with code {} instead of returning an outcome",
            exit.0
        );
    }
    let panic = state.guest_panic_message();
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => "driver ran out of fuel".into(),
        Some(trap) => match panic {
            // The panic text is the driver's: it may end up in drover's own
            // log (a failed `describe`), where it must stay one line.
            Some(panic) => format!("driver panicked: {}", log::escape_controls(&panic)),
            None => format!("driver trapped: {trap}"),
        },
        None => format!("driver failed: {error:#}"),
    }
}

fn to_wit_task(task: &Task) -> bindings::drover::driver::types::Task {
    use bindings::drover::driver::types as wit;
    wit::Task {
        run_id: task.run_id.clone(),
        node: task.node.clone(),
        attempt: task.attempt,
        artifact: task.artifact.clone(),
        artifact_file: task
            .artifact_file
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
        args: task.args.clone(),
        env: task.env.clone(),
        inputs: task
            .inputs
            .iter()
            .map(|(node, key, value)| wit::Input {
                node: node.clone(),
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        outputs: task.outputs.clone(),
        deadline_ms: task
            .deadline
            .and_then(|d| d.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64),
    }
}

fn from_wit_outcome(outcome: bindings::drover::driver::types::Outcome) -> Outcome {
    use bindings::drover::driver::types::Status;
    let status = match outcome.status {
        Status::Success => NodeStatus::Success,
        Status::Failure => NodeStatus::Failure,
    };
    let message = if outcome.message.is_empty() && status == NodeStatus::Failure {
        "the driver reported failure without a reason".into()
    } else {
        outcome.message
    };
    Outcome {
        status,
        exit_code: outcome.exit_code,
        outputs: outcome.outputs.into_iter().collect(),
        message,
    }
}

/// Whether a node needs a workspace folder, given its driver and grant.
fn needs_workspace(description: &Description, grant: &ExecGrant) -> bool {
    description.capabilities.workspace
        || description.capabilities.container
        || !grant.programs.is_empty()
}
