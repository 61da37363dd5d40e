//! Each driver's own `validate` of the nodes it will run, fanned out over the drivers, with
//! the answers kept for the life of the process (validation is pure of the node as written).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::task::JoinSet;

use super::drivers::{DriverSet, task_as_written};
use crate::dag::{Dag, DagError, Node, Problem};
use crate::runtime::Runtime;
use crate::task::Task;

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
