//! The `container` capability: fresh containers from allowlisted images on
//! the Docker engine, with the workspace mounted, removed when the node ends.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

use super::Description;
use super::bindings::drover::driver::container::{
    Error, ExitStatus, Host, HostContainer, Pair, Spec,
};
use super::log::LogHost;
use super::state::InstanceState;
use crate::config::{Config, Policy};
use crate::container::{self, ContainerError, Engine, StartRequest, Stream, WORKSPACE_MOUNT};
use crate::task::{LogLevel, LogSource, Task};

/// What one node's driver may do with containers.
#[derive(Clone)]
pub struct ContainerGrant {
    /// `Err` says why the driver may not run containers at all.
    pub allowed: Result<(), String>,
    /// Image patterns of the driver's allowlist.
    pub images: Vec<String>,
    pub driver: String,
    pub workspace: Option<PathBuf>,
    pub network: bool,
    pub run_id: String,
    pub node: String,
    pub engine: Arc<Engine>,
}

/// The `container` interface as a whole: the Docker engine every node's
/// containers run on, and what the policy lets each node run there.
pub struct Containers {
    engine: Arc<Engine>,
}

impl Containers {
    /// The interface on the Docker engine `config` names (connected when a
    /// container is first asked for).
    pub(super) fn new(config: &Config) -> Containers {
        Containers {
            engine: Arc::new(Engine::new(&config.container)),
        }
    }

    /// The Docker engine.
    pub(super) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// What `policy` lets `description`'s driver do with containers for
    /// `task`: it must declare `capabilities.container` and not be denied
    /// it, and may use only the images its policy lists; the node may take
    /// containers away (`grants: {container: false}`), never give them.
    pub(super) fn grant(
        &self,
        policy: &Policy<'_>,
        description: &Description,
        task: &Task,
        workspace: Option<PathBuf>,
        network: bool,
    ) -> ContainerGrant {
        let name = &description.name;
        let mut allowed = policy.containers(description.capabilities.container);
        if allowed.is_ok() && task.grants.as_ref().and_then(|g| g.container) == Some(false) {
            allowed = Err(format!(
                "node `{}` takes containers away from driver `{name}` (`grants: {{container: false}}`)",
                task.node
            ));
        }
        ContainerGrant {
            allowed,
            images: policy.images(),
            driver: name.clone(),
            workspace,
            network,
            run_id: task.run_id.clone(),
            node: task.node.clone(),
            engine: self.engine.clone(),
        }
    }
}

/// Adds the `container` interface to `linker`, each instance's state being its
/// [`ContainerHost`].
pub(super) fn link(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    super::bindings::drover::driver::container::add_to_linker::<InstanceState, HasSelf<ContainerHost>>(
        linker,
        |s| &mut s.container,
    )
}

/// A container a driver started (the `container` resource).
pub struct Container {
    id: String,
    files: Option<PathBuf>,
    /// Killed after a timeout: it takes no more commands.
    killed: bool,
}

/// Per-instance state of the `container` interface.
pub struct ContainerHost {
    grant: Option<ContainerGrant>,
    log: Arc<LogHost>,
    table: ResourceTable,
    /// Containers alive, by id, with their files' folder: removed when the
    /// handle is dropped, or by [`ContainerHost::remove_all`] at the end of
    /// the node, or from `Drop` as a last resort.
    live: Vec<(String, Option<PathBuf>)>,
}

impl ContainerHost {
    /// `grant` is `None` while a driver is described or validated.
    pub fn new(grant: Option<ContainerGrant>, log: Arc<LogHost>) -> Self {
        ContainerHost {
            grant,
            log,
            table: ResourceTable::new(),
            live: Vec::new(),
        }
    }

    /// Removes every container the node still has, waiting until they are gone.
    pub async fn remove_all(&mut self) {
        let Some(grant) = &self.grant else { return };
        for (id, files) in std::mem::take(&mut self.live) {
            grant.engine.remove(&id, files.as_deref()).await;
        }
    }

    fn forget(&mut self, id: &str) {
        self.live.retain(|(live, _)| live != id);
    }

    async fn start_inner(&mut self, spec: Spec) -> Result<Container, Error> {
        let Some(grant) = self.grant.clone() else {
            return Err(Error::NotAllowed(
                "containers cannot be started while a driver is described or validated".into(),
            ));
        };
        grant.allowed.clone().map_err(Error::NotAllowed)?;
        if spec.image.trim().is_empty() {
            return Err(Error::Invalid("the spec names no image".into()));
        }
        if !container::image_allowed(&grant.images, &spec.image) {
            let add = if grant.images.is_empty() {
                format!("images = [{:?}]", spec.image)
            } else {
                format!("{:?} to its `images`", spec.image)
            };
            return Err(Error::NotAllowed(format!(
                "image `{}` is not on the allowlist of driver `{}` (allowed: {}); \
                 the operator can add {add} under [drivers.{}] in the config",
                spec.image,
                grant.driver,
                if grant.images.is_empty() {
                    "none".to_string()
                } else {
                    grant.images.join(", ")
                },
                grant.driver,
            )));
        }
        check_env(&spec.env)?;
        if let Some(dir) = &spec.workdir {
            check_absolute("workdir", dir)?;
        }
        for file in &spec.files {
            check_absolute("file path", &file.path)?;
            if file.path == WORKSPACE_MOUNT || file.path.starts_with("/workspace/") {
                return Err(Error::Invalid(format!(
                    "file path `{}` lies in the workspace; files go outside it",
                    file.path
                )));
            }
            if file.path.contains(':') || file.path.contains(',') {
                return Err(Error::Invalid(format!(
                    "file path `{}` may not contain `:` or `,`",
                    file.path
                )));
            }
        }
        let request = StartRequest {
            image: spec.image,
            env: spec.env,
            workdir: spec.workdir,
            workspace: grant.workspace.clone(),
            network: grant.network,
            memory_mib: spec.limits.memory_mib,
            cpu_millis: spec.limits.cpu_millis,
            pids: spec.limits.pids,
            files: spec
                .files
                .into_iter()
                .map(|f| (f.path, f.contents))
                .collect(),
            run_id: grant.run_id.clone(),
            node: grant.node.clone(),
        };
        let started = grant.engine.start(request).await.map_err(to_wit)?;
        self.live.push((started.id.clone(), started.files.clone()));
        Ok(Container {
            id: started.id,
            files: started.files,
            killed: false,
        })
    }
}

impl Drop for ContainerHost {
    fn drop(&mut self) {
        if let Some(grant) = &self.grant {
            for (id, files) in std::mem::take(&mut self.live) {
                grant.engine.remove_later(id, files);
            }
        }
    }
}

fn to_wit(e: ContainerError) -> Error {
    match e {
        ContainerError::NotAllowed(m) => Error::NotAllowed(m),
        ContainerError::ImageNotFound(m) => Error::ImageNotFound(m),
        ContainerError::Engine(m) => Error::Engine(m),
        ContainerError::Invalid(m) => Error::Invalid(m),
    }
}

fn check_absolute(what: &str, path: &str) -> Result<(), Error> {
    if !path.starts_with('/') || path.contains('\0') || path.split('/').any(|p| p == "..") {
        return Err(Error::Invalid(format!(
            "{what} `{path}` must be an absolute path in the container, without `..`"
        )));
    }
    Ok(())
}

fn check_env(env: &[Pair]) -> Result<(), Error> {
    for (key, value) in env {
        if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
            return Err(Error::Invalid(format!(
                "environment variable `{key}` is malformed (empty, `=` or NUL in its name, or NUL in its value)"
            )));
        }
    }
    Ok(())
}

impl Host for ContainerHost {
    async fn start(&mut self, spec: Spec) -> wasmtime::Result<Result<Resource<Container>, Error>> {
        match self.start_inner(spec).await {
            Ok(container) => Ok(Ok(self.table.push(container)?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn workspace_path(&mut self) -> wasmtime::Result<String> {
        Ok(WORKSPACE_MOUNT.to_string())
    }
}

impl HostContainer for ContainerHost {
    async fn id(&mut self, this: Resource<Container>) -> wasmtime::Result<String> {
        Ok(self.table.get(&this)?.id.clone())
    }

    async fn exec(
        &mut self,
        this: Resource<Container>,
        argv: Vec<String>,
        env: Vec<Pair>,
        workdir: Option<String>,
        timeout_ms: Option<u64>,
    ) -> wasmtime::Result<Result<ExitStatus, Error>> {
        let Some(grant) = self.grant.clone() else {
            return Ok(Err(Error::Invalid("no container".into())));
        };
        let container = self.table.get(&this)?;
        let id = container.id.clone();
        if container.killed {
            return Ok(Err(Error::Invalid(format!(
                "container {id} was killed when a command timed out; start a new one"
            ))));
        }
        if argv.is_empty() {
            return Ok(Err(Error::Invalid("the command is empty".into())));
        }
        if argv.iter().any(|a| a.contains('\0')) {
            return Ok(Err(Error::Invalid("a NUL byte in an argument".into())));
        }
        if let Err(e) = check_env(&env) {
            return Ok(Err(e));
        }
        if let Some(dir) = &workdir
            && let Err(e) = check_absolute("workdir", dir)
        {
            return Ok(Err(e));
        }
        let log = self.log.clone();
        let run = grant.engine.exec(&id, argv, env, workdir, |stream, line| {
            let log = log.clone();
            async move {
                let (source, level) = match stream {
                    Stream::Stdout => (LogSource::Stdout, LogLevel::Info),
                    Stream::Stderr => (LogSource::Stderr, LogLevel::Warn),
                };
                log.send(source, level, line).await;
            }
        });
        let result = match timeout_ms {
            Some(ms) => tokio::time::timeout(Duration::from_millis(ms), run)
                .await
                .ok(),
            None => Some(run.await),
        };
        Ok(match result {
            Some(Ok(code)) => Ok(ExitStatus {
                code: Some(code),
                timed_out: false,
            }),
            Some(Err(e)) => Err(to_wit(e)),
            None => {
                grant.engine.kill(&id).await;
                self.table.get_mut(&this)?.killed = true;
                Ok(ExitStatus {
                    code: None,
                    timed_out: true,
                })
            }
        })
    }

    async fn drop(&mut self, this: Resource<Container>) -> wasmtime::Result<()> {
        let container = self.table.delete(this)?;
        self.forget(&container.id);
        if let Some(grant) = &self.grant {
            grant
                .engine
                .remove(&container.id, container.files.as_deref())
                .await;
        }
        Ok(())
    }
}
