//! The drivers a DAG names, loaded once before it runs, and the check that each node asks for
//! no more than its driver may have.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::config::Policy;
use crate::dag::{Dag, DagError, Node, NodeGrants, Problem};
use crate::registry::Registry;
use crate::runtime::Driver;
use crate::task::Task;

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
    let policy = Policy::of(registry.runtime().config(), driver.name());
    let declared = &driver.description().capabilities;
    let granted = policy.programs(&declared.exec);
    let container = match (grants.container, policy.containers(declared.container)) {
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
            &policy, &node.name, grants,
        ))
        .collect()
}

/// The task a node would get, as written (before any output is known), for
/// the driver's `validate`.
pub(super) fn task_as_written(node: &Node, base_dir: Option<&Path>) -> Task {
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
