//! The per-instance state of a driver: WASI, the memory limiter and the
//! drover capabilities, made fresh for every call so nothing leaks between
//! nodes.

use std::sync::Arc;

use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::container::{ContainerGrant, ContainerHost};
use super::exec::{ExecGrant, ExecHost, SandboxCell};
use super::limits::MemoryLimiter;
use super::log::LogHost;
use super::secrets::SecretsHost;
use crate::task::{LogLevel, LogSink, LogSource, Task};

/// How much a driver may print to its own stdout/stderr (as opposed to the
/// `log` interface) before writes fail.
const GUEST_OUTPUT_CAP: usize = 256 * 1024;

/// Everything one driver instance sees of the host.
pub struct InstanceState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub log: Arc<LogHost>,
    pub exec: ExecHost,
    pub container: ContainerHost,
    pub secrets: SecretsHost,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

/// What a node run needs to build its state.
pub struct RunSetup<'a> {
    pub task: &'a Task,
    pub driver: &'a str,
    pub grant: ExecGrant,
    pub memory_bytes: usize,
    /// The most WASI handles the driver may hold at once.
    pub max_handles: usize,
    pub logs: LogSink,
    pub sandbox: Arc<SandboxCell>,
    pub container: Option<ContainerGrant>,
    /// The node's secrets, read from Vault: (name, value).
    pub secrets: crate::secrets::Values,
    /// Hides the secrets' values from the node's log.
    pub redactor: Arc<crate::secrets::Redactor>,
}

impl InstanceState {
    /// State for `describe` and `validate`: no workspace, no environment,
    /// no network, no processes.
    pub fn for_query(
        label: &str,
        memory_bytes: usize,
        max_handles: usize,
        sandbox: Arc<SandboxCell>,
    ) -> Self {
        let label: Arc<str> = Arc::from(label);
        let log = Arc::new(LogHost::new(label.clone(), None));
        let exec = ExecHost::new(None, label, sandbox, log.clone());
        let container = ContainerHost::new(None, log.clone());
        let secrets = SecretsHost::unavailable();
        Self::build(
            WasiCtxBuilder::new(),
            memory_bytes,
            max_handles,
            log,
            exec,
            container,
            secrets,
        )
    }

    /// State for `run`: the node's environment, its workspace as `.`, the
    /// network only when granted.
    pub fn for_run(setup: RunSetup<'_>) -> Result<Self, String> {
        let mut wasi = WasiCtxBuilder::new();
        // Workspace file operations are local and short: doing them on the
        // calling thread saves a hop to tokio's blocking pool per call (set
        // before the preopen, which captures it).
        wasi.allow_blocking_current_thread(true);
        wasi.envs(&setup.task.env);
        if let Some(workspace) = &setup.grant.workspace {
            wasi.preopened_dir(workspace, ".", FsPerms::ReadWrite)
                .map_err(|e| format!("cannot open the workspace {}: {e:#}", workspace.display()))?;
        }
        // WASI sockets follow the same network grant as processes.
        if setup.grant.network {
            wasi.inherit_network().allow_ip_name_lookup(true);
        }
        let node: Arc<str> = Arc::from(setup.task.node.as_str());
        let log = Arc::new(LogHost::new(node, Some(setup.logs)).with_redactor(setup.redactor));
        let exec = ExecHost::new(
            Some(setup.grant),
            Arc::from(setup.driver),
            setup.sandbox,
            log.clone(),
        );
        let container = ContainerHost::new(setup.container, log.clone());
        let secrets = SecretsHost::granted(setup.secrets);
        Ok(Self::build(
            wasi,
            setup.memory_bytes,
            setup.max_handles,
            log,
            exec,
            container,
            secrets,
        ))
    }

    fn build(
        mut wasi: WasiCtxBuilder,
        memory_bytes: usize,
        max_handles: usize,
        log: Arc<LogHost>,
        exec: ExecHost,
        container: ContainerHost,
        secrets: SecretsHost,
    ) -> Self {
        let stdout = MemoryOutputPipe::new(GUEST_OUTPUT_CAP);
        let stderr = MemoryOutputPipe::new(GUEST_OUTPUT_CAP);
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        // Every WASI handle a driver holds (an open file is one of drover's
        // own descriptors) is an entry of this table: capping it caps what
        // one node can take from drover and the nodes beside it. A full
        // table traps the driver (see `explain`).
        let mut table = ResourceTable::new();
        table.set_max_capacity(max_handles);
        InstanceState {
            wasi: wasi.build(),
            table,
            limiter: MemoryLimiter::new(memory_bytes),
            log,
            exec,
            container,
            secrets,
            stdout,
            stderr,
        }
    }

    /// The message of a Rust panic the guest printed, if any: the line after
    /// `panicked at …:` on its stderr.
    pub fn guest_panic_message(&self) -> Option<String> {
        let stderr = self.stderr.contents();
        let text = String::from_utf8_lossy(&stderr);
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if line.contains("panicked at") {
                return Some(lines.next().unwrap_or(line).trim().to_string());
            }
        }
        None
    }

    /// Sends what the guest printed on its own stdout/stderr to the log.
    pub async fn flush_guest_output(&mut self) {
        for (pipe, level) in [
            (&self.stdout, LogLevel::Info),
            (&self.stderr, LogLevel::Warn),
        ] {
            let bytes = pipe.contents();
            for line in String::from_utf8_lossy(&bytes).lines() {
                self.log
                    .send(LogSource::Driver, level, line.to_string())
                    .await;
            }
        }
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
