//! The `exec` capability: starting allowlisted programs inside the node's
//! sandbox, streaming their output to the node's log.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

use super::Description;
use super::bindings::drover::driver::exec::{
    Command, Error, ExitStatus, Host, HostProcess, SpawnOptions,
};
use super::log::LogHost;
use super::state::InstanceState;
use crate::config::{Config, SandboxSettings};
use crate::sandbox::{self, Confinement, Policy, Sandbox, SpawnRequest};
use crate::task::{LogLevel, LogSource, Task};

/// The longest log line kept whole; longer lines are split.
const MAX_LINE: usize = 64 * 1024;

/// How many lines of a `read-stdout` process wait for the driver before the
/// process is made to wait (its pipe fills): bounded memory, whatever it prints.
pub const READ_LINE_BUFFER: usize = 256;

/// The process-wide sandbox, made on first use so that drivers that never
/// start a process work on hosts where the sandbox cannot be set up.
pub struct SandboxCell {
    settings: SandboxSettings,
    sandbox: OnceLock<Result<Arc<Sandbox>, String>>,
}

impl SandboxCell {
    pub fn new(settings: SandboxSettings) -> Self {
        SandboxCell {
            settings,
            sandbox: OnceLock::new(),
        }
    }

    /// The sandbox, or why it cannot be had.
    pub fn get(&self) -> Result<Arc<Sandbox>, String> {
        self.sandbox
            .get_or_init(|| {
                Sandbox::new(sandbox_config(&self.settings))
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
    }
}

/// The sandbox configuration `settings` make.
pub fn sandbox_config(settings: &SandboxSettings) -> sandbox::SandboxConfig {
    let mut config = sandbox::SandboxConfig::default();
    const MIB: u64 = 1024 * 1024;
    config.allow_unconfined = settings.allow_unconfined;
    if let Some(paths) = &settings.read_only_paths {
        config.read_only_paths = paths.clone();
    }
    config.rlimits.open_files = settings.max_open_files;
    config.rlimits.address_space = settings.max_address_space_mib.map(|m| m * MIB);
    config.rlimits.file_size = settings.max_file_size_mib.map(|m| m * MIB);
    config.rlimits.cpu_seconds = settings.max_cpu_seconds;
    config.private_shm_bytes = settings.private_shm_mib * MIB;
    // 0: unlimited.
    config.rlimits.processes = settings.max_node_processes.filter(|p| *p > 0);
    // 0: no memory cgroup at all.
    config.node_memory_bytes = settings
        .max_node_memory_mib
        .filter(|m| *m > 0)
        .map(|m| m * MIB);
    config.node_uids = settings.node_uids;
    config
}

/// What one node's driver may start, and where.
#[derive(Debug, Clone, Default)]
pub struct ExecGrant {
    /// Programs on the allowlist: bare names or absolute paths.
    pub programs: Vec<String>,
    /// The node's workspace; processes run inside it.
    pub workspace: Option<PathBuf>,
    /// Files outside the workspace that processes may read.
    pub read_only_files: Vec<PathBuf>,
    /// Whether processes get the network.
    pub network: bool,
    /// Whether processes may open Unix sockets (the operator's `unix_sockets` grant).
    pub unix_sockets: bool,
    /// The most standard output kept for `exit-status.stdout`.
    pub capture_limit: usize,
    /// What the node's processes may take together; `None`: the sandbox's defaults.
    pub limits: Option<sandbox::NodeLimits>,
}

/// The `exec` interface as a whole: the sandbox every node's processes
/// start in, and what the policy lets each node start.
pub struct Exec {
    sandbox: Arc<SandboxCell>,
    /// The most standard output kept for `exit-status.stdout`.
    capture_limit: usize,
}

impl Exec {
    /// The interface under `config`'s sandbox settings and limits. The
    /// sandbox itself is set up when a process first needs it.
    pub(super) fn new(config: &Config) -> Exec {
        Exec {
            sandbox: Arc::new(SandboxCell::new(config.sandbox.clone())),
            capture_limit: usize::try_from(config.limits.captured_stdout_kib * 1024)
                .unwrap_or(usize::MAX),
        }
    }

    /// The sandbox processes start in.
    pub(super) fn sandbox(&self) -> &Arc<SandboxCell> {
        &self.sandbox
    }

    /// What `policy` lets `description`'s driver start for `task`, narrowed
    /// by the node's `grants` (a node may only take away).
    pub(super) fn grant(
        &self,
        policy: &crate::config::Policy<'_>,
        description: &Description,
        task: &Task,
    ) -> ExecGrant {
        let declared = &description.capabilities;
        let mut programs = policy.programs(&declared.exec);
        let mut network = policy.network(declared.network);
        if let Some(grants) = &task.grants {
            if let Some(only) = &grants.exec {
                programs.retain(|p| only.contains(p));
            }
            network &= grants.network.unwrap_or(true);
        }
        ExecGrant {
            programs,
            workspace: None,
            read_only_files: task.artifact_file.iter().cloned().collect(),
            network,
            unix_sockets: policy.unix_sockets(),
            capture_limit: self.capture_limit,
            limits: Some(super::node_limits::for_node(policy, task.grants.as_ref())),
        }
    }
}

/// Adds the `exec` interface to `linker`, each instance's state being its [`ExecHost`].
pub(super) fn link(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    super::bindings::drover::driver::exec::add_to_linker::<InstanceState, HasSelf<ExecHost>>(
        linker,
        |s| &mut s.exec,
    )
}

/// Per-instance state of the `exec` interface.
pub struct ExecHost {
    grant: Option<ExecGrant>,
    driver: Arc<str>,
    sandbox: Arc<SandboxCell>,
    confinement: Option<Arc<Confinement>>,
    log: Arc<LogHost>,
    table: ResourceTable,
}

/// A process a driver started (the `process` resource).
pub struct Process {
    child: sandbox::Child,
    started: Instant,
    timeout: Option<Duration>,
    /// Reads both stdout and stderr (one task, not two: one wake-up less
    /// per process); ends with the captured stdout.
    output: Option<JoinHandle<(Vec<u8>, bool)>>,
    stdin: Option<JoinHandle<()>>,
    /// Standard output line by line, for `read-line`: `Some` from a
    /// `read-stdout` spawn until the output ends or `wait` is called.
    lines: Option<tokio::sync::mpsc::Receiver<String>>,
    /// Whether the process was started with `read-stdout`.
    reads_stdout: bool,
    /// Whether `read-line` killed it because its timeout passed.
    timed_out: bool,
    finished: Option<ExitStatus>,
}

impl Drop for Process {
    fn drop(&mut self) {
        // The child's own Drop kills its process group; the readers end when
        // the pipes close, but a process that escaped the group could hold
        // them open, so stop reading now.
        if let Some(task) = self.stdin.take() {
            task.abort();
        }
        if let Some(task) = self.output.take() {
            task.abort();
        }
    }
}

impl ExecHost {
    /// `grant` is `None` while a driver is described or validated: no
    /// process may be started then.
    pub fn new(
        grant: Option<ExecGrant>,
        driver: Arc<str>,
        sandbox: Arc<SandboxCell>,
        log: Arc<LogHost>,
    ) -> Self {
        ExecHost {
            grant,
            driver,
            sandbox,
            confinement: None,
            log,
            table: ResourceTable::new(),
        }
    }

    /// The node's memory limit in bytes, if the kernel killed one of its processes for
    /// passing it.
    pub fn memory_limit_reached(&self) -> Option<u64> {
        self.confinement
            .as_ref()
            .and_then(|c| c.identity().memory_limit_reached())
    }

    fn confinement(
        &mut self,
        grant: &ExecGrant,
        workspace: &Path,
    ) -> Result<Arc<Confinement>, Error> {
        if let Some(c) = &self.confinement {
            return Ok(c.clone());
        }
        let sandbox = self.sandbox.get().map_err(Error::Sandbox)?;
        let policy = Policy {
            workspace: workspace.to_path_buf(),
            read_only_files: grant.read_only_files.clone(),
            network: grant.network,
            unix_sockets: grant.unix_sockets,
            limits: grant.limits,
        };
        let confinement = sandbox
            .confine(&policy)
            .map_err(|e| Error::Sandbox(e.to_string()))?;
        self.confinement = Some(confinement.clone());
        Ok(confinement)
    }

    async fn start(&mut self, command: Command, options: &SpawnOptions) -> Result<Process, Error> {
        let Some(grant) = self.grant.clone() else {
            return Err(Error::NotAllowed(
                "processes cannot be started while a driver is described or validated".into(),
            ));
        };
        if !grant.programs.iter().any(|p| p == &command.program) {
            return Err(Error::NotAllowed(format!(
                "`{}` is not on the allowlist of driver `{}` (allowed: {})",
                command.program,
                self.driver,
                if grant.programs.is_empty() {
                    "nothing".to_string()
                } else {
                    grant.programs.join(", ")
                }
            )));
        }
        let Some(workspace) = grant.workspace.clone() else {
            return Err(Error::Invalid("this node has no workspace".into()));
        };
        let program = resolve_program(&command.program)?;
        let cwd = resolve_cwd(&workspace, command.cwd.as_deref())?;
        let env = build_env(&command.env, &workspace)?;
        let args = command
            .args
            .iter()
            .map(|a| check_nul("argument", a).map(|_| OsString::from(a)))
            .collect::<Result<Vec<_>, _>>()?;
        let began = Instant::now();
        let confinement = self.confinement(&grant, &workspace)?;
        tracing::trace!(us = began.elapsed().as_micros(), "confinement ready");
        let request = SpawnRequest {
            program,
            args,
            env,
            cwd,
            stdin: command.stdin.is_some(),
            private_shm: options.private_shm,
        };
        let spawned = Instant::now();
        let mut child = confinement.spawn(&request).map_err(|e| {
            if e.is_not_found() {
                Error::NotFound(e.to_string())
            } else {
                Error::Sandbox(e.to_string())
            }
        })?;
        let stdin = match (child.take_stdin(), command.stdin) {
            (Some(mut pipe), Some(bytes)) => Some(tokio::spawn(async move {
                // A process that exits without reading its input is fine.
                let _ = pipe.write_all(&bytes).await;
                let _ = pipe.shutdown().await;
            })),
            _ => None,
        };
        let capture = if command.capture_stdout {
            grant.capture_limit
        } else {
            0
        };
        let (to_driver, lines) = if options.read_stdout {
            let (tx, rx) = tokio::sync::mpsc::channel(READ_LINE_BUFFER);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let stdout = child.take_stdout();
        let stderr = child.take_stderr();
        let log = self.log.clone();
        let output = tokio::spawn(async move {
            let stdout = async {
                match stdout {
                    Some(out) => {
                        pump(out, log.clone(), LogSource::Stdout, capture, to_driver).await
                    }
                    None => (Vec::new(), false),
                }
            };
            let stderr = async {
                if let Some(err) = stderr {
                    pump(err, log.clone(), LogSource::Stderr, 0, None).await;
                }
            };
            tokio::join!(stdout, stderr).0
        });
        tracing::trace!(us = spawned.elapsed().as_micros(), "process spawned");
        Ok(Process {
            child,
            started: Instant::now(),
            timeout: command.timeout_ms.map(Duration::from_millis),
            output: Some(output),
            stdin,
            lines,
            reads_stdout: options.read_stdout,
            timed_out: false,
            finished: None,
        })
    }

    async fn spawn_process(
        &mut self,
        command: Command,
        options: &SpawnOptions,
    ) -> wasmtime::Result<Result<Resource<Process>, Error>> {
        let program = command.program.clone();
        match self.start(command, options).await {
            Ok(process) => Ok(Ok(self.table.push(process)?)),
            Err(e) => {
                self.log
                    .send(
                        LogSource::Driver,
                        LogLevel::Warn,
                        format!("exec of `{program}` refused: {}", describe_error(&e)),
                    )
                    .await;
                Ok(Err(e))
            }
        }
    }
}

/// Reads `reader` line by line into the log, keeping up to `capture` bytes,
/// and hands each line to `to_driver` too while the driver holds its end
/// (waiting for room: that is the backpressure of `read-line`). A line
/// longer than [`MAX_LINE`] is sent in pieces, cut where no secret value
/// straddles the cut, so that each piece's redaction sees every value whole.
async fn pump(
    reader: impl AsyncRead + Unpin,
    log: Arc<LogHost>,
    source: LogSource,
    capture: usize,
    mut to_driver: Option<tokio::sync::mpsc::Sender<String>>,
) -> (Vec<u8>, bool) {
    let mut reader = BufReader::with_capacity(MAX_LINE, reader);
    let mut captured = Vec::new();
    let mut truncated = false;
    let mut chunk = Vec::new();
    // The part of the current line not sent yet.
    let mut pending: Vec<u8> = Vec::new();
    let level = match source {
        LogSource::Stderr => LogLevel::Warn,
        _ => LogLevel::Info,
    };
    let redactor = log.redactor().clone();
    let mut send = async |piece: &[u8]| {
        let text = String::from_utf8_lossy(piece).into_owned();
        if let Some(tx) = &to_driver {
            log.send(source, level, text.clone()).await;
            // The driver dropped its end (it called `wait`): log only.
            if tx.send(text).await.is_err() {
                to_driver = None;
            }
        } else {
            log.send(source, level, text).await;
        }
    };
    loop {
        chunk.clear();
        let read = {
            let mut limited = (&mut reader).take(MAX_LINE as u64);
            limited.read_until(b'\n', &mut chunk).await
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if captured.len() < capture {
            let room = capture - captured.len();
            captured.extend_from_slice(&chunk[..chunk.len().min(room)]);
            truncated |= chunk.len() > room;
        } else if capture > 0 {
            truncated = true;
        }
        pending.extend_from_slice(&chunk);
        if let Some(line) = pending.strip_suffix(b"\n") {
            send(line.strip_suffix(b"\r").unwrap_or(line)).await;
            pending.clear();
        } else if pending.len() >= MAX_LINE {
            let cut = redactor.split_point(&pending);
            if cut > 0 {
                send(&pending[..cut]).await;
                pending.drain(..cut);
            }
        }
    }
    // A last line without a newline.
    if !pending.is_empty() {
        send(pending.strip_suffix(b"\r").unwrap_or(&pending)).await;
    }
    (captured, truncated)
}

use tokio::io::AsyncReadExt as _;

fn check_nul(what: &str, value: &str) -> Result<(), Error> {
    if value.contains('\0') {
        return Err(Error::Invalid(format!(
            "{what} contains a NUL byte: {value:?}"
        )));
    }
    Ok(())
}

/// Finds the program: an absolute path as is, a bare name on the host's PATH.
fn resolve_program(program: &str) -> Result<PathBuf, Error> {
    check_nul("program", program)?;
    let path = Path::new(program);
    if path.is_absolute() {
        return if is_executable(path) {
            Ok(path.to_path_buf())
        } else {
            Err(Error::NotFound(format!(
                "{program} does not exist or is not executable"
            )))
        };
    }
    if program.contains('/') || program.is_empty() {
        return Err(Error::Invalid(format!(
            "program `{program}` must be a bare name or an absolute path"
        )));
    }
    // The host's PATH does not change while drover runs, so a name found
    // once is looked up once: a stat per PATH entry per spawn shows on short
    // nodes. The cached path is checked again (one stat), so a program
    // removed since is looked for anew.
    static FOUND: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let found = FOUND.get_or_init(Default::default);
    let cached = found
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(program)
        .cloned();
    if let Some(path) = cached.filter(|p| is_executable(p)) {
        return Ok(path);
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let path = std::env::split_paths(&search)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| Error::NotFound(format!("`{program}` was not found on PATH")))?;
    found
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(program.to_owned(), path.clone());
    Ok(path)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The working directory: inside the workspace, never outside it.
fn resolve_cwd(workspace: &Path, cwd: Option<&str>) -> Result<PathBuf, Error> {
    let Some(cwd) = cwd.filter(|c| !c.is_empty() && *c != ".") else {
        return Ok(workspace.to_path_buf());
    };
    check_nul("cwd", cwd)?;
    let relative = Path::new(cwd);
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(Error::Invalid(format!(
            "cwd `{cwd}` must be a relative path inside the workspace, without `..`"
        )));
    }
    let dir = workspace.join(relative);
    // A symlink inside the workspace could still point out of it.
    let root = workspace
        .canonicalize()
        .unwrap_or_else(|_| workspace.to_path_buf());
    match dir.canonicalize() {
        Ok(real) if real.starts_with(&root) && real.is_dir() => Ok(real),
        Ok(_) => Err(Error::Invalid(format!(
            "cwd `{cwd}` is not a folder inside the workspace"
        ))),
        Err(e) => Err(Error::Invalid(format!("cwd `{cwd}`: {e}"))),
    }
}

fn build_env(
    env: &[(String, String)],
    workspace: &Path,
) -> Result<Vec<(OsString, OsString)>, Error> {
    let mut out = Vec::with_capacity(env.len() + 2);
    for (key, value) in env {
        if key.is_empty() || key.contains('=') {
            return Err(Error::Invalid(format!(
                "invalid environment variable name {key:?}"
            )));
        }
        check_nul("environment variable", key)?;
        check_nul("environment variable", value)?;
        out.push((OsString::from(key), OsString::from(value)));
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        let path =
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        out.push(("PATH".into(), path));
    }
    out.retain(|(k, _)| k != "DROVER_WORKSPACE");
    out.push(("DROVER_WORKSPACE".into(), workspace.as_os_str().to_owned()));
    Ok(out)
}

impl Host for ExecHost {
    async fn spawn(
        &mut self,
        command: Command,
    ) -> wasmtime::Result<Result<Resource<Process>, Error>> {
        let options = SpawnOptions {
            read_stdout: false,
            private_shm: false,
        };
        self.spawn_process(command, &options).await
    }

    async fn spawn_with(
        &mut self,
        command: Command,
        options: SpawnOptions,
    ) -> wasmtime::Result<Result<Resource<Process>, Error>> {
        self.spawn_process(command, &options).await
    }

    async fn workspace_path(&mut self) -> wasmtime::Result<String> {
        Ok(self
            .grant
            .as_ref()
            .and_then(|g| g.workspace.as_ref())
            .map(|w| w.to_string_lossy().into_owned())
            .unwrap_or_default())
    }
}

/// The text of an exec error, for logs.
pub fn describe_error(e: &Error) -> &str {
    match e {
        Error::NotAllowed(m)
        | Error::NotFound(m)
        | Error::Invalid(m)
        | Error::Sandbox(m)
        | Error::Io(m) => m,
    }
}

impl HostProcess for ExecHost {
    async fn id(&mut self, process: Resource<Process>) -> wasmtime::Result<u32> {
        Ok(self.table.get(&process)?.child.id())
    }

    async fn wait(
        &mut self,
        process: Resource<Process>,
    ) -> wasmtime::Result<Result<ExitStatus, Error>> {
        let process = self.table.get_mut(&process)?;
        if let Some(done) = &process.finished {
            return Ok(Ok(done.clone()));
        }
        // Lines the driver has not read would hold the process up once the
        // buffer is full; from here on they go to the log only.
        process.lines = None;
        let mut timed_out = process.timed_out;
        let status = match process.timeout {
            Some(limit) => {
                match tokio::time::timeout_at(process.started + limit, process.child.wait()).await {
                    Ok(status) => status,
                    Err(_) => {
                        timed_out = true;
                        process.child.kill_group();
                        process.child.wait().await
                    }
                }
            }
            None => process.child.wait().await,
        };
        let status = match status {
            Ok(status) => status,
            Err(e) => {
                return Ok(Err(Error::Io(format!(
                    "waiting for the process failed: {e}"
                ))));
            }
        };
        tracing::trace!(us = process.started.elapsed().as_micros(), "process exited");
        // Whatever the main process left running in its group would keep the
        // pipes open (and the node alive); the node's work is done.
        process.child.kill_group();
        let (stdout, stdout_truncated) = match process.output.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => (Vec::new(), false),
        };
        tracing::trace!(
            us = process.started.elapsed().as_micros(),
            "process output drained"
        );
        let done = ExitStatus {
            code: status.code,
            signal: status.signal,
            timed_out,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stdout_truncated,
        };
        process.finished = Some(done.clone());
        Ok(Ok(done))
    }

    async fn read_line(
        &mut self,
        process: Resource<Process>,
    ) -> wasmtime::Result<Result<Option<String>, Error>> {
        let process = self.table.get_mut(&process)?;
        if !process.reads_stdout {
            return Ok(Err(Error::Invalid(
                "read-line needs a process started by spawn-with with read-stdout".into(),
            )));
        }
        let Some(lines) = process.lines.as_mut() else {
            return Ok(Ok(None));
        };
        let line = match process.timeout {
            Some(limit) => {
                match tokio::time::timeout_at(process.started + limit, lines.recv()).await {
                    Ok(line) => line,
                    Err(_) => {
                        process.timed_out = true;
                        process.child.kill_group();
                        None
                    }
                }
            }
            None => lines.recv().await,
        };
        if line.is_none() {
            process.lines = None;
        }
        Ok(Ok(line))
    }

    async fn kill(&mut self, process: Resource<Process>) -> wasmtime::Result<()> {
        self.table.get(&process)?.child.kill_group();
        Ok(())
    }

    async fn drop(&mut self, process: Resource<Process>) -> wasmtime::Result<()> {
        self.table.delete(process)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cwd_stays_inside_the_workspace() {
        let dir = std::env::temp_dir().join(format!("drover-cwd-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let ws = dir.canonicalize().unwrap();
        assert_eq!(resolve_cwd(&ws, None).unwrap(), ws);
        assert_eq!(resolve_cwd(&ws, Some("sub")).unwrap(), ws.join("sub"));
        for bad in ["..", "/etc", "sub/../..", "missing"] {
            assert!(
                matches!(resolve_cwd(&ws, Some(bad)), Err(Error::Invalid(_))),
                "{bad}"
            );
        }
        std::os::unix::fs::symlink("/etc", ws.join("link")).unwrap();
        assert!(matches!(
            resolve_cwd(&ws, Some("link")),
            Err(Error::Invalid(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn programs_resolve_on_path_or_absolutely() {
        assert!(resolve_program("sh").unwrap().is_absolute());
        assert!(matches!(resolve_program("./sh"), Err(Error::Invalid(_))));
        assert!(matches!(
            resolve_program("no-such-program-here"),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            resolve_program("/no/such"),
            Err(Error::NotFound(_))
        ));
    }

    #[test]
    fn env_gets_path_and_workspace() {
        let env = build_env(&[("A".into(), "1".into())], Path::new("/ws")).unwrap();
        assert!(env.iter().any(|(k, _)| k == "PATH"));
        assert!(env.contains(&("DROVER_WORKSPACE".into(), "/ws".into())));
        assert!(build_env(&[("A=B".into(), "1".into())], Path::new("/ws")).is_err());
    }
}
