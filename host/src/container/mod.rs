//! Docker through bollard: the containers drover starts for drivers, each
//! labeled with its owner so that the leftovers of a drover that died can
//! be found and removed.

mod owner;

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use tokio::sync::OnceCell;
use tokio_util::task::TaskTracker;

pub use owner::Owner;

use crate::config::ContainerSettings;

/// Where the node's workspace is mounted in every container.
pub const WORKSPACE_MOUNT: &str = "/workspace";

/// Labels on every container drover creates.
pub const LABEL_OWNER: &str = "drover.owner";
/// The run and node a container belongs to.
pub const LABEL_RUN: &str = "drover.run";
pub const LABEL_NODE: &str = "drover.node";

/// The longest output line kept whole; longer ones are split.
const MAX_LINE: usize = 64 * 1024;

/// The only capabilities a container keeps; Docker's others are dropped.
/// What a build run as root in a container needs: package managers and
/// `make install` change owners (`CHOWN`), write and chmod files they do not
/// own (`DAC_OVERRIDE`, `FOWNER`, `FSETID`), drop to an unprivileged user
/// (`SETUID`, `SETGID`: apt's `_apt`, `su`, `gosu`), stop their own children
/// run as another user (`KILL`), and test servers bind low ports in the
/// container's own network (`NET_BIND_SERVICE`). Dropped from Docker's
/// default set: `MKNOD` (device nodes), `NET_RAW` (raw sockets, spoofing),
/// `SETPCAP`, `SETFCAP`, `SYS_CHROOT` and `AUDIT_WRITE`, which a build does
/// not need and an escape would.
pub const CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "NET_BIND_SERVICE",
    "SETGID",
    "SETUID",
];

/// How long one request to the engine may take (exec output is streamed
/// outside this limit).
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// The default socket when neither the config nor `DOCKER_HOST` names one.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Why a container could not be had or a command run in it.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("{0}")]
    NotAllowed(String),
    #[error("{0}")]
    ImageNotFound(String),
    #[error("{0}")]
    Engine(String),
    #[error("{0}")]
    Invalid(String),
}

/// A container to create.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    pub image: String,
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    /// The host folder mounted at [`WORKSPACE_MOUNT`].
    pub workspace: Option<PathBuf>,
    pub network: bool,
    pub memory_mib: Option<u64>,
    pub cpu_millis: Option<u32>,
    pub pids: Option<u32>,
    /// Read-only files: (path in the container, contents).
    pub files: Vec<(String, Vec<u8>)>,
    pub run_id: String,
    pub node: String,
}

/// A created and started container.
#[derive(Debug)]
pub struct Started {
    pub id: String,
    /// The private host folder holding its files, removed with it.
    pub files: Option<PathBuf>,
}

/// Which stream an output line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The Docker engine, connected on first use. Cheap to share.
pub struct Engine {
    host: String,
    network_mode: String,
    max_pids: u32,
    max_memory_mib: u64,
    owner: Owner,
    docker: OnceCell<Docker>,
    /// Removals started from a `Drop`, which must finish before drover exits.
    removals: TaskTracker,
}

impl Engine {
    pub fn new(settings: &ContainerSettings) -> Engine {
        Engine {
            host: docker_host(settings),
            network_mode: settings
                .network_mode
                .clone()
                .unwrap_or_else(|| "bridge".into()),
            max_pids: settings.max_pids,
            max_memory_mib: settings.max_memory_mib,
            owner: Owner::current(),
            docker: OnceCell::new(),
            removals: TaskTracker::new(),
        }
    }

    /// The engine's address, as configured.
    pub fn host(&self) -> &str {
        &self.host
    }

    async fn docker(&self) -> Result<&Docker, ContainerError> {
        self.docker
            .get_or_try_init(|| async {
                let Some(path) = self.host.strip_prefix("unix://") else {
                    return Err(ContainerError::Engine(format!(
                        "docker host `{}` is not a unix:// socket, the only kind drover speaks \
                         (set [container] docker_host or DOCKER_HOST)",
                        self.host
                    )));
                };
                let unreachable = |e: &dyn std::fmt::Display| {
                    ContainerError::Engine(format!(
                        "cannot reach the Docker engine at {}: {e} (is dockerd running? \
                         set [container] docker_host or DOCKER_HOST to its socket)",
                        self.host
                    ))
                };
                let docker = Docker::connect_with_unix(
                    path,
                    REQUEST_TIMEOUT_SECS,
                    bollard::API_DEFAULT_VERSION,
                )
                .map_err(|e| unreachable(&e))?;
                // Speak the engine's API version, which may be older than
                // bollard's default.
                docker
                    .negotiate_version()
                    .await
                    .map_err(|e| unreachable(&e))
            })
            .await
    }

    fn engine_error(&self, what: &str, e: bollard::errors::Error) -> ContainerError {
        ContainerError::Engine(format!(
            "the Docker engine at {} failed to {what}: {e}",
            self.host
        ))
    }

    /// Creates and starts a container that idles until it is removed.
    pub async fn start(&self, req: StartRequest) -> Result<Started, ContainerError> {
        let docker = self.docker().await?;
        match docker.inspect_image(&req.image).await {
            Ok(_) => {}
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                return Err(ContainerError::ImageNotFound(format!(
                    "image `{}` is not on the Docker engine at {}; no registry is reachable, \
                     so it must be built or loaded there first (docker build, docker load \
                     or docker import)",
                    req.image, self.host
                )));
            }
            Err(e) => return Err(self.engine_error("inspect the image", e)),
        }
        let mut binds = Vec::new();
        if let Some(workspace) = &req.workspace {
            binds.push(format!("{}:{WORKSPACE_MOUNT}:rw", workspace.display()));
        }
        let files = if req.files.is_empty() {
            None
        } else {
            let dir = write_files(&self.owner, &req.files)
                .map_err(|e| ContainerError::Engine(format!("cannot write the files: {e}")))?;
            for (i, (path, _)) in req.files.iter().enumerate() {
                binds.push(format!("{}:{path}:ro", dir.join(i.to_string()).display()));
            }
            Some(dir)
        };
        let labels = HashMap::from([
            (LABEL_OWNER.to_string(), self.owner.label()),
            (LABEL_RUN.to_string(), req.run_id.clone()),
            (LABEL_NODE.to_string(), req.node.clone()),
        ]);
        // A driver may ask for less than the operator's limits, never more.
        let pids = req.pids.map_or(self.max_pids, |p| p.min(self.max_pids));
        let memory_mib = req
            .memory_mib
            .map_or(self.max_memory_mib, |m| m.min(self.max_memory_mib));
        let memory = i64::try_from(memory_mib.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX);
        let host_config = HostConfig {
            binds: Some(binds),
            network_mode: Some(if req.network {
                self.network_mode.clone()
            } else {
                "none".into()
            }),
            // Swap as large as memory: none beyond it.
            memory: Some(memory),
            memory_swap: Some(memory),
            nano_cpus: req.cpu_millis.map(|c| i64::from(c) * 1_000_000),
            pids_limit: Some(i64::from(pids)),
            // No setuid binary or file capability gives a process more than
            // its parent had, and only the capabilities a build needs.
            security_opt: Some(vec!["no-new-privileges".into()]),
            cap_drop: Some(vec!["ALL".into()]),
            cap_add: Some(CAPABILITIES.iter().map(|c| c.to_string()).collect()),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(req.image.clone()),
            // The container idles; commands run in it through exec.
            entrypoint: Some(vec!["sleep".into()]),
            cmd: Some(vec!["2147483647".into()]),
            env: Some(req.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: Some(
                req.workdir
                    .clone()
                    .unwrap_or_else(|| WORKSPACE_MOUNT.into()),
            ),
            labels: Some(labels),
            network_disabled: Some(!req.network),
            host_config: Some(host_config),
            ..Default::default()
        };
        let created = docker
            .create_container(Some(CreateContainerOptionsBuilder::default().build()), body)
            .await;
        let id = match created {
            Ok(created) => created.id,
            Err(e) => {
                remove_files(files.as_deref());
                return Err(self.engine_error("create a container", e));
            }
        };
        if let Err(e) = docker.start_container(&id, None).await {
            self.remove(&id, files.as_deref()).await;
            return Err(self.engine_error(&format!("start container {id}"), e));
        }
        Ok(Started { id, files })
    }

    /// Runs `argv` in the container, handing each output line to `line` as
    /// it comes, and returns its exit code.
    pub async fn exec<F, Fut>(
        &self,
        id: &str,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        workdir: Option<String>,
        mut line: F,
    ) -> Result<i32, ContainerError>
    where
        F: FnMut(Stream, String) -> Fut,
        Fut: Future<Output = ()>,
    {
        let docker = self.docker().await?;
        let options = CreateExecOptions {
            cmd: Some(argv),
            env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: workdir,
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = docker
            .create_exec(id, options)
            .await
            .map_err(|e| self.engine_error(&format!("run a command in container {id}"), e))?;
        let started = docker
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| self.engine_error(&format!("run a command in container {id}"), e))?;
        if let StartExecResults::Attached { mut output, .. } = started {
            let mut out = LineBuffer::default();
            let mut err = LineBuffer::default();
            while let Some(chunk) = output.next().await {
                let chunk = chunk.map_err(|e| {
                    self.engine_error(&format!("stream the output of container {id}"), e)
                })?;
                let (stream, buffer, bytes) = match chunk {
                    LogOutput::StdErr { message } => (Stream::Stderr, &mut err, message),
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        (Stream::Stdout, &mut out, message)
                    }
                    LogOutput::StdIn { .. } => continue,
                };
                for text in buffer.push(&bytes) {
                    line(stream, text).await;
                }
            }
            for (stream, buffer) in [(Stream::Stdout, out), (Stream::Stderr, err)] {
                if let Some(text) = buffer.finish() {
                    line(stream, text).await;
                }
            }
        }
        let inspected = docker
            .inspect_exec(&exec.id)
            .await
            .map_err(|e| self.engine_error(&format!("inspect a command in container {id}"), e))?;
        match inspected.exit_code {
            Some(code) => Ok(i32::try_from(code).unwrap_or(-1)),
            None => Err(ContainerError::Engine(format!(
                "the Docker engine at {} did not say how the command in container {id} ended \
                 (was the container removed?)",
                self.host
            ))),
        }
    }

    /// Kills the container's processes; it stays until removed.
    pub async fn kill(&self, id: &str) {
        if let Ok(docker) = self.docker().await {
            let options = KillContainerOptionsBuilder::default()
                .signal("KILL")
                .build();
            if let Err(e) = docker.kill_container(id, Some(options)).await {
                tracing::debug!(container = id, "kill: {e}");
            }
        }
    }

    /// Removes the container (killing it first) and its files' folder.
    pub async fn remove(&self, id: &str, files: Option<&Path>) {
        if let Ok(docker) = self.docker().await {
            let options = RemoveContainerOptionsBuilder::default()
                .force(true)
                .v(true)
                .build();
            match docker.remove_container(id, Some(options)).await {
                Ok(()) => {}
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => {}
                Err(e) => tracing::warn!(container = id, "cannot remove the container: {e}"),
            }
        }
        remove_files(files);
    }

    /// Removes a container from a context that cannot wait (a `Drop`);
    /// [`Engine::settle`] waits for such removals.
    pub fn remove_later(self: &std::sync::Arc<Self>, id: String, files: Option<PathBuf>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(container = id, "no runtime to remove the container on");
            return;
        };
        let engine = self.clone();
        self.removals.spawn_on(
            async move { engine.remove(&id, files.as_deref()).await },
            &handle,
        );
    }

    /// Waits (up to `limit`) for removals started by [`Engine::remove_later`].
    pub async fn settle(&self, limit: Duration) {
        self.removals.close();
        let _ = tokio::time::timeout(limit, self.removals.wait()).await;
        self.removals.reopen();
    }

    /// Removes the containers (and files) left by drovers on this machine
    /// that are gone, leaving those of live ones alone. Returns how many
    /// containers were removed. Quietly does nothing when no engine is there.
    pub async fn remove_leftovers(&self) -> usize {
        owner::remove_dead_file_dirs();
        self.remove_owned(Owner::is_dead, "a leftover").await
    }

    /// Removes every container (and file) this drover still has, for a
    /// server that stops with nodes running: their runs carry on as
    /// interrupted when it starts again, and their commands must not run on
    /// meanwhile. Returns how many containers were removed.
    pub async fn remove_own(&self) -> usize {
        let own = self.owner.label();
        let removed = self
            .remove_owned(|label| label == own, "a stopped node's")
            .await;
        owner::remove_file_dirs_of(self.owner.pid());
        removed
    }

    /// Removes the drover-labeled containers whose owner label `which`
    /// picks. Quietly does nothing when no engine is there.
    async fn remove_owned(&self, which: impl Fn(&str) -> bool, what: &str) -> usize {
        let socket = self.host.strip_prefix("unix://").map(Path::new);
        if !socket.is_some_and(Path::exists) {
            return 0;
        }
        let work = async {
            let docker = self.docker().await.ok()?;
            let filters = HashMap::from([("label", vec![LABEL_OWNER])]);
            let options = ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build();
            let containers = docker.list_containers(Some(options)).await.ok()?;
            let mut removed = 0;
            for c in containers {
                let (Some(id), Some(labels)) = (c.id, c.labels) else {
                    continue;
                };
                let Some(owner) = labels.get(LABEL_OWNER) else {
                    continue;
                };
                if which(owner) {
                    tracing::info!(container = id, owner, "removing {what} container");
                    self.remove(&id, None).await;
                    removed += 1;
                }
            }
            Some(removed)
        };
        match tokio::time::timeout(Duration::from_secs(10), work).await {
            Ok(Some(n)) => n,
            _ => {
                tracing::debug!(host = self.host, "no leftover containers checked");
                0
            }
        }
    }
}

/// The configured engine address, else `$DOCKER_HOST`, else the default socket.
fn docker_host(settings: &ContainerSettings) -> String {
    settings
        .docker_host
        .clone()
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| DEFAULT_HOST.into())
}

/// Writes `files` as `0`, `1`, ... into a fresh private folder.
fn write_files(owner: &Owner, files: &[(String, Vec<u8>)]) -> std::io::Result<PathBuf> {
    let root = owner::files_root();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&root)?;
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| std::io::Error::other(e.to_string()))?;
    let dir = root.join(format!("{}-{}", owner.pid(), hex::encode(random)));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    for (i, (_, contents)) in files.iter().enumerate() {
        use std::io::Write;
        // Readable by any user in the container: only the container sees
        // it, since its folder is private to drover's user on the host.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(dir.join(i.to_string()))?;
        file.write_all(contents)?;
    }
    Ok(dir)
}

fn remove_files(dir: Option<&Path>) {
    if let Some(dir) = dir
        && let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), "cannot remove a container's files: {e}");
    }
}

/// Whether `image` matches one of `patterns` (`*` matches any run of
/// characters, everything else itself).
pub fn image_allowed(patterns: &[String], image: &str) -> bool {
    patterns.iter().any(|p| crate::glob::matches(p, image))
}

/// Splits a byte stream into lines.
#[derive(Default)]
struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.pending.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            lines.push(String::from_utf8_lossy(&line).into_owned());
        }
        while self.pending.len() > MAX_LINE {
            let rest = self.pending.split_off(MAX_LINE);
            let line = std::mem::replace(&mut self.pending, rest);
            lines.push(String::from_utf8_lossy(&line).into_owned());
        }
        lines
    }

    fn finish(self) -> Option<String> {
        (!self.pending.is_empty()).then(|| String::from_utf8_lossy(&self.pending).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_patterns() {
        let allow = vec!["drover-test/*".to_string(), "debian:12".to_string()];
        assert!(image_allowed(&allow, "drover-test/busybox:1"));
        assert!(image_allowed(&allow, "debian:12"));
        assert!(!image_allowed(&allow, "debian:13"));
        assert!(!image_allowed(&allow, "evil/drover-test/x"));
        assert!(!image_allowed(&[], "debian:12"));
        assert!(image_allowed(&["*".to_string()], "anything"));
    }

    #[test]
    fn lines_split_across_chunks() {
        let mut b = LineBuffer::default();
        assert!(b.push(b"hel").is_empty());
        assert_eq!(b.push(b"lo\r\nwor"), ["hello"]);
        assert_eq!(b.push(b"ld\n\n"), ["world", ""]);
        b.push(b"tail");
        assert_eq!(b.finish().as_deref(), Some("tail"));
    }
}
