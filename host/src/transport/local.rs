//! In-process dispatch: each node runs in this process's Wasm runtime, with
//! the DAG's drivers loaded once before the run starts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::dag::{Dag, DagError, Node, Problem};
use crate::engine::{Dispatch, DispatchFuture, NodeRun};
use crate::registry;
use crate::runtime::{Driver, NodeContext, Runtime};
use crate::task::{Outcome, Task};

/// The drivers a DAG names, loaded, by the name as written in the DAG.
#[derive(Debug, Clone, Default)]
pub struct DriverSet {
    drivers: HashMap<String, Driver>,
}

impl DriverSet {
    /// The driver a node names.
    pub fn get(&self, written: &str) -> Option<&Driver> {
        self.drivers.get(written)
    }
}

/// Splits `shell@0.1` into `shell` and the pin `0.1`.
fn split_pin(written: &str) -> (&str, Option<&str>) {
    match written.rsplit_once('@') {
        Some((name, pin)) if !name.is_empty() && !written.contains('/') => (name, Some(pin)),
        _ => (written, None),
    }
}

/// Whether a driver as written in a DAG can be found: a built-in name
/// (optionally pinned, `shell@0`), or a component file relative to the DAG.
pub fn driver_exists(written: &str, base_dir: Option<&Path>) -> bool {
    let (name, _) = split_pin(written);
    match registry::resolve(name) {
        Ok(registry::DriverSource::Builtin(_)) => true,
        Ok(registry::DriverSource::File(path)) => resolve_path(&path, base_dir).is_file(),
        Err(_) => false,
    }
}

fn resolve_path(path: &Path, base_dir: Option<&Path>) -> PathBuf {
    match base_dir {
        Some(base) if path.is_relative() => base.join(path),
        _ => path.to_path_buf(),
    }
}

/// Loads every driver the DAG names, once each. A pin (`shell@0.1`) must be
/// a prefix of the driver's own version, component by component.
pub async fn load_drivers(runtime: &Runtime, dag: &Dag) -> Result<DriverSet, DagError> {
    let (drivers, problems) = load_node_drivers(runtime, &dag.nodes, dag.base_dir.as_deref()).await;
    if problems.is_empty() {
        Ok(drivers)
    } else {
        Err(DagError { problems })
    }
}

/// Loads the drivers of `nodes` that can be found, and says why others
/// could not be loaded.
pub async fn load_node_drivers(
    runtime: &Runtime,
    nodes: &[Node],
    base_dir: Option<&Path>,
) -> (DriverSet, Vec<Problem>) {
    let mut drivers = HashMap::new();
    let mut problems = Vec::new();
    for node in nodes {
        if drivers.contains_key(&node.driver) {
            continue;
        }
        let (name, pin) = split_pin(&node.driver);
        let location = format!("node `{}`, field `driver`", node.name);
        let loaded = async {
            let source = match registry::resolve(name).map_err(|e| e.to_string())? {
                registry::DriverSource::File(path) => {
                    registry::DriverSource::File(resolve_path(&path, base_dir))
                }
                builtin => builtin,
            };
            match source {
                registry::DriverSource::Builtin(name) => {
                    let bytes = registry::builtin(name).unwrap_or_default();
                    runtime.load_static(bytes).await
                }
                file => {
                    let bytes = registry::read(&file).map_err(|e| e.to_string())?;
                    runtime.load(bytes).await
                }
            }
            .map_err(|e| e.to_string())
        }
        .await;
        match loaded {
            Ok(driver) => {
                if let Some(pin) = pin
                    && !version_matches(&driver.description().version, pin)
                {
                    problems.push(Problem::new(
                        location,
                        format!(
                            "driver `{name}` is version {}, which does not match `@{pin}`",
                            driver.description().version
                        ),
                    ));
                }
                drivers.insert(node.driver.clone(), driver);
            }
            Err(message) => problems.push(Problem::new(location, message)),
        }
    }
    (DriverSet { drivers }, problems)
}

fn version_matches(version: &str, pin: &str) -> bool {
    let have: Vec<&str> = version.split('.').collect();
    let want: Vec<&str> = pin.split('.').collect();
    want.len() <= have.len() && want.iter().zip(&have).all(|(w, h)| w == h)
}

/// The task a node would get, as written (before any output is known), for
/// the driver's `validate`.
fn task_as_written(node: &Node, base_dir: Option<&Path>) -> Task {
    let mut task = Task {
        run_id: String::new(),
        node: node.name.clone(),
        attempt: 1,
        artifact: node.artifact.clone(),
        artifact_file: None,
        args: node.args.clone(),
        env: node.env.clone(),
        inputs: Vec::new(),
        outputs: node.outputs.clone(),
        deadline: None,
    };
    if let Some(base) = base_dir {
        task.resolve_artifact_file(base);
    }
    task
}

/// What `validate` sees of a node, but its name.
#[derive(PartialEq, Eq, Hash)]
struct ValidationKey {
    driver: String,
    artifact: String,
    artifact_file: Option<PathBuf>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    outputs: Vec<String>,
}

impl ValidationKey {
    fn of(driver: &str, task: &Task) -> Self {
        ValidationKey {
            driver: driver.to_string(),
            artifact: task.artifact.clone(),
            artifact_file: task.artifact_file.clone(),
            args: task.args.clone(),
            env: task.env.clone(),
            outputs: task.outputs.clone(),
        }
    }
}

/// Asks each node's driver to validate it; every refusal is reported, by
/// node and field. Runs on as many tasks as `parallelism`.
pub async fn validate_nodes(
    runtime: &Runtime,
    dag: &Arc<Dag>,
    drivers: &DriverSet,
    parallelism: usize,
) -> Result<(), DagError> {
    let problems = validate_each(
        runtime,
        dag.clone(),
        dag.base_dir.clone(),
        drivers,
        parallelism,
    )
    .await;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(DagError { problems })
    }
}

/// Asks each node's driver (when loaded) to validate it, on `parallelism`
/// tasks; the refusals come back in node order.
pub async fn validate_each<N: AsRef<[Node]> + Send + Sync + 'static>(
    runtime: &Runtime,
    nodes: Arc<N>,
    base_dir: Option<PathBuf>,
    drivers: &DriverSet,
    parallelism: usize,
) -> Vec<Problem> {
    // A task per worker only pays off for bigger DAGs.
    let workers = parallelism
        .max(1)
        .min((*nodes).as_ref().len().div_ceil(NODES_PER_WORKER))
        .max(1);
    let mut problems: Vec<(usize, Problem)> = Vec::new();
    if workers == 1 {
        problems = validate_part(
            runtime,
            (*nodes).as_ref(),
            0,
            1,
            base_dir.as_deref(),
            drivers,
        )
        .await;
    } else {
        let mut set = JoinSet::new();
        for worker in 0..workers {
            let runtime = runtime.clone();
            let nodes = nodes.clone();
            let base_dir = base_dir.clone();
            let drivers = drivers.clone();
            set.spawn(async move {
                validate_part(
                    &runtime,
                    (*nodes).as_ref(),
                    worker,
                    workers,
                    base_dir.as_deref(),
                    &drivers,
                )
                .await
            });
        }
        while let Some(found) = set.join_next().await {
            match found {
                Ok(found) => problems.extend(found),
                Err(e) => problems.push((usize::MAX, Problem::new("validation", e.to_string()))),
            }
        }
    }
    problems.sort_by_key(|(index, _)| *index);
    problems.into_iter().map(|(_, p)| p).collect()
}

/// Below this many nodes per worker, validation runs on the calling task.
const NODES_PER_WORKER: usize = 16;
/// How many answers of `validate` are remembered before starting afresh.
const VALIDATED_MAX: usize = 16 * 1024;

/// Answers of drivers' `validate`, by driver digest and what it sees of the
/// node: `validate` depends on nothing else, so the same node in the next
/// submission is not asked about again.
static VALIDATED: std::sync::LazyLock<std::sync::Mutex<Validated>> =
    std::sync::LazyLock::new(Default::default);

/// Refusals (field, message) by driver digest and node as `validate` sees it.
type Validated = HashMap<(String, ValidationKey), Vec<(String, String)>>;

fn validated() -> std::sync::MutexGuard<'static, Validated> {
    VALIDATED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Validates every `workers`-th node from `worker` on.
async fn validate_part(
    runtime: &Runtime,
    nodes: &[Node],
    worker: usize,
    workers: usize,
    base_dir: Option<&Path>,
    drivers: &DriverSet,
) -> Vec<(usize, Problem)> {
    let mut found = Vec::new();
    for index in (worker..nodes.len()).step_by(workers) {
        let node = &nodes[index];
        let Some(driver) = drivers.get(&node.driver) else {
            continue;
        };
        let task = task_as_written(node, base_dir);
        let key = (
            driver.digest().to_owned(),
            ValidationKey::of(&node.driver, &task),
        );
        let known = validated().get(&key).cloned();
        let refused = match known {
            Some(refused) => refused,
            None => match runtime.validate(driver, &task).await {
                Ok(refused) => {
                    let refused: Vec<(String, String)> =
                        refused.into_iter().map(|p| (p.field, p.message)).collect();
                    let mut cache = validated();
                    if cache.len() >= VALIDATED_MAX {
                        cache.clear();
                    }
                    cache.insert(key, refused.clone());
                    refused
                }
                Err(e) => {
                    found.push((
                        index,
                        Problem::new(format!("node `{}`", node.name), e.to_string()),
                    ));
                    continue;
                }
            },
        };
        found.extend(refused.into_iter().map(|(field, message)| {
            (
                index,
                Problem::new(format!("node `{}`, field `{field}`", node.name), message),
            )
        }));
    }
    found
}

/// Runs nodes in this process.
pub struct LocalDispatch {
    runtime: Runtime,
    drivers: DriverSet,
    workspaces: PathBuf,
}

impl LocalDispatch {
    /// Each node gets the workspace `<workspaces>/<node name>`.
    pub fn new(runtime: Runtime, drivers: DriverSet, workspaces: PathBuf) -> Self {
        // Resolved once here so that the runtime need not resolve each node's
        // path; if it cannot be made, each node says so when it runs.
        let workspaces = std::fs::create_dir_all(&workspaces)
            .and_then(|_| workspaces.canonicalize())
            .unwrap_or(workspaces);
        LocalDispatch::resolved(runtime, drivers, workspaces)
    }

    /// Like [`new`](Self::new) for a `workspaces` path already made
    /// canonical (by canonicalizing its parent once for many runs): touches
    /// no file. The folder is made when a node first needs a workspace.
    pub fn resolved(runtime: Runtime, drivers: DriverSet, workspaces: PathBuf) -> Self {
        LocalDispatch {
            runtime,
            drivers,
            workspaces,
        }
    }
}

impl Dispatch for LocalDispatch {
    fn dispatch(&self, run: NodeRun) -> DispatchFuture {
        let node = &run.dag.nodes[run.index];
        let driver = self.drivers.get(&node.driver).cloned();
        let runtime = self.runtime.clone();
        let workspace = self.workspaces.join(&node.name);
        Box::pin(async move {
            let Some(driver) = driver else {
                return Outcome::failure(format!(
                    "driver `{}` is not loaded",
                    run.dag.nodes[run.index].driver
                ));
            };
            let ctx = NodeContext {
                workspace,
                logs: run.logs,
                cancel: run.cancel,
            };
            runtime.run(&driver, run.task, ctx).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins() {
        assert_eq!(split_pin("shell@1"), ("shell", Some("1")));
        assert_eq!(split_pin("shell"), ("shell", None));
        assert_eq!(split_pin("./d@v/x.wasm"), ("./d@v/x.wasm", None));
        assert!(version_matches("0.1.0", "0"));
        assert!(version_matches("0.1.0", "0.1"));
        assert!(!version_matches("0.1.0", "1"));
        assert!(!version_matches("0.1.0", "0.1.0.1"));
    }
}
