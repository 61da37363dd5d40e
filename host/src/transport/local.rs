//! In-process dispatch: each node runs in this process's Wasm runtime, with
//! the DAG's drivers loaded once before the run starts.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::dag::{Dag, DagError, Node, NodeGrants, Problem};
use crate::engine::{Dispatch, DispatchFuture, NodeRun};
use crate::registry::Registry;
use crate::runtime::{Driver, NodeContext, Runtime};
use crate::task::{NodeStatus, Outcome, Task};

use super::Workspaces;

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

    /// The digest each driver name resolved to: what a run is pinned to.
    pub fn pins(&self) -> BTreeMap<String, String> {
        self.drivers
            .iter()
            .map(|(written, driver)| (written.clone(), driver.digest().to_owned()))
            .collect()
    }

    /// Every digest, once.
    pub fn digests(&self) -> Vec<String> {
        let mut digests: Vec<String> = self
            .drivers
            .values()
            .map(|d| d.digest().to_owned())
            .collect();
        digests.sort();
        digests.dedup();
        digests
    }
}

/// Loads every driver the DAG names, once each, and pins each node to the
/// digest of its driver. `pins` (from an earlier acceptance of the same
/// DAG) wins over resolving names again.
pub async fn load_drivers(
    registry: &Registry,
    dag: &mut Dag,
    pins: &BTreeMap<String, String>,
) -> Result<DriverSet, DagError> {
    let (drivers, problems) =
        load_node_drivers(registry, &dag.nodes, dag.base_dir.as_deref(), pins).await;
    if !problems.is_empty() {
        return Err(DagError { problems });
    }
    for node in &mut dag.nodes {
        node.driver_digest = drivers.get(&node.driver).map(|d| d.digest().to_owned());
    }
    Ok(drivers)
}

/// Loads the drivers of `nodes` that can be found, and says why others
/// could not be loaded, or why a node's grants are not the driver's to give.
/// `base_dir` is the DAG file's folder; without one (a DAG posted to the
/// server) nodes may name published drivers only, never component files.
pub async fn load_node_drivers(
    registry: &Registry,
    nodes: &[Node],
    base_dir: Option<&Path>,
    pins: &BTreeMap<String, String>,
) -> (DriverSet, Vec<Problem>) {
    let mut drivers: HashMap<String, Driver> = HashMap::new();
    let mut problems = Vec::new();
    for node in nodes {
        let location = || format!("node `{}`, field `driver`", node.name);
        let driver = match drivers.get(&node.driver) {
            Some(driver) => driver.clone(),
            None => {
                let pin = pins.get(&node.driver).map(String::as_str);
                match registry.resolve(&node.driver, base_dir, pin).await {
                    Ok(driver) => {
                        drivers.insert(node.driver.clone(), driver.clone());
                        driver
                    }
                    Err(message) => {
                        problems.push(Problem::new(location(), message));
                        continue;
                    }
                }
            }
        };
        if let Some(grants) = &node.grants {
            problems.extend(narrowing_problems(registry, node, grants, &driver));
        }
        problems.extend(crate::secrets::grant_problems(
            registry.runtime().config(),
            &node.name,
            &node.secrets,
            driver.name(),
            driver.description().capabilities.secrets,
        ));
    }
    (DriverSet { drivers }, problems)
}

/// A node's `grants` may only name what its driver is granted.
fn narrowing_problems(
    registry: &Registry,
    node: &Node,
    grants: &NodeGrants,
    driver: &Driver,
) -> Vec<Problem> {
    let granted = registry.runtime().granted_programs(driver.description());
    let container = match (
        grants.container,
        registry.runtime().containers_allowed(driver.description()),
    ) {
        (Some(true), Err(why)) => Some(Problem::new(
            format!("node `{}`, field `grants.container`", node.name),
            format!("{why}; a node can only take grants away"),
        )),
        _ => None,
    };
    grants
        .exec
        .iter()
        .flatten()
        .filter(|program| !granted.contains(program))
        .map(|program| {
            Problem::new(
                format!("node `{}`, field `grants.exec`", node.name),
                format!(
                    "driver `{}` is not granted `{program}` (it may start: {}); a node can only \
                     take grants away",
                    driver.name(),
                    if granted.is_empty() {
                        "nothing".to_owned()
                    } else {
                        granted.join(", ")
                    }
                ),
            )
        })
        .chain(container)
        .chain(crate::runtime::node_limits::problems(
            registry.runtime().config(),
            &node.name,
            driver.name(),
            grants,
        ))
        .collect()
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
        grants: node.grants.clone(),
        secrets: Vec::new(),
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
    workspaces: Arc<Workspaces>,
    threads: Option<super::NodeThreads>,
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
            workspaces: Arc::new(Workspaces::per_node(workspaces)),
            threads: None,
        }
    }

    /// Recycles the nodes' workspaces under the same folder (see
    /// [`Workspaces::recycled`]) instead of `<workspaces>/<node name>`.
    pub fn recycling_workspaces(mut self) -> Self {
        let root = self.workspaces.root().to_path_buf();
        self.workspaces = Arc::new(Workspaces::recycled(root));
        self
    }

    /// Where the nodes work.
    pub fn workspaces(&self) -> &Arc<Workspaces> {
        &self.workspaces
    }

    /// Runs each node on one of `threads` (see [`super::NodeThreads`])
    /// instead of in the attempt's own task: for a caller on a
    /// current-thread runtime.
    pub fn on_threads(mut self, threads: super::NodeThreads) -> Self {
        self.threads = Some(threads);
        self
    }
}

impl Dispatch for LocalDispatch {
    fn dispatch(&self, run: NodeRun) -> DispatchFuture {
        let node = &run.dag.nodes[run.index];
        let driver = self.drivers.get(&node.driver).cloned();
        let runtime = self.runtime.clone();
        // Nodes whose drivers never make a folder take none from the pool.
        let uses_workspace = driver
            .as_ref()
            .is_some_and(|d| runtime.makes_workspace(d, &run.task));
        let workspace = if uses_workspace {
            self.workspaces.take(run.index, &node.name)
        } else {
            self.workspaces.root().join(&node.name)
        };
        let workspaces = Arc::clone(&self.workspaces);
        // No attempt follows a success or the last retry.
        let last_attempt = run.task.attempt > node.retries.max;
        let threads = self.threads.clone();
        let node = async move {
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
            let outcome = runtime.run(&driver, run.task, ctx).await;
            if uses_workspace && (last_attempt || outcome.status == NodeStatus::Success) {
                // A container's removal may still be under way; its folder
                // must not reach another node.
                let reusable = !driver.description().capabilities.container;
                workspaces.release(run.index, reusable);
            }
            outcome
        };
        match threads {
            Some(threads) => Box::pin(async move { threads.run(node).await }),
            None => Box::pin(node),
        }
    }
}
