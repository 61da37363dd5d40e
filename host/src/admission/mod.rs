//! Admission: accepting a DAG to run. Parse it (off the async threads), check the graph, load
//! its drivers, check each node's grants against the operator's bounds, and let each driver
//! validate its nodes; a DAG is refused whole, with every problem found.

mod drivers;
mod validate;

pub use drivers::{DriverSet, load_drivers, load_node_drivers};
pub use validate::{validate_each, validate_nodes};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::dag::{self, Dag, DagError, Problem};
use crate::registry::Registry;

/// A DAG ready to run, with its drivers loaded.
pub struct Accepted {
    pub dag: Arc<Dag>,
    pub drivers: DriverSet,
}

/// Why a DAG was not accepted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refused {
    /// The text is not YAML or JSON; the problem says where (line and column).
    #[error("{0}")]
    Unreadable(DagError),
    /// The DAG breaks the rules: every problem, graph and drivers together.
    #[error("{0}")]
    Invalid(DagError),
}

impl Refused {
    /// Every problem found.
    pub fn problems(&self) -> &DagError {
        match self {
            Refused::Unreadable(e) | Refused::Invalid(e) => e,
        }
    }
}

/// Reads `text` (either DAG format) and checks everything that can be
/// checked before a run: the graph's rules, that each driver exists and
/// loads, and each node against its driver's `validate`, on up to
/// `parallelism` tasks. When the graph itself is refused, the nodes whose
/// drivers exist are still checked, so one answer lists every problem.
/// `base_dir` resolves drivers and artifact files named by relative path.
/// `pins` (the digests of an earlier acceptance of the same DAG, when a run
/// is carried on) win over resolving driver names again; each node of the
/// accepted DAG names the digest of its driver.
pub async fn accept(
    registry: &Registry,
    text: &str,
    base_dir: Option<&Path>,
    parallelism: usize,
    pins: &BTreeMap<String, String>,
) -> Result<Accepted, Refused> {
    let runtime = registry.runtime();
    let exists = |driver: &str| registry.exists(driver, base_dir);
    let mut dag = match parse_off_the_runtime(registry, text, base_dir).await? {
        Ok(dag) => dag,
        Err(rejected) if rejected.unreadable => return Err(Refused::Unreadable(rejected.error)),
        Err(mut rejected) => {
            let nodes: Vec<_> = rejected
                .nodes
                .into_iter()
                .filter(|n| exists(&n.driver))
                .collect();
            if !nodes.is_empty() {
                let (drivers, load_problems) =
                    load_node_drivers(registry, &nodes, base_dir, pins).await;
                let refused = validate_each(
                    runtime,
                    Arc::new(nodes),
                    base_dir.map(Path::to_path_buf),
                    &drivers,
                    parallelism,
                )
                .await;
                rejected.error.problems.extend(load_problems);
                rejected.error.problems.extend(refused);
            }
            return Err(Refused::Invalid(rejected.error));
        }
    };
    let drivers = load_drivers(registry, &mut dag, pins)
        .await
        .map_err(Refused::Invalid)?;
    let dag = Arc::new(dag);
    validate_nodes(runtime, &dag, &drivers, parallelism)
        .await
        .map_err(Refused::Invalid)?;
    Ok(Accepted { dag, drivers })
}

/// Parses on a blocking thread: a large or hostile body may take a while to
/// read, and an async worker that reads it answers nobody else meanwhile.
async fn parse_off_the_runtime(
    registry: &Registry,
    text: &str,
    base_dir: Option<&Path>,
) -> Result<Result<Dag, dag::Rejected>, Refused> {
    let registry = registry.clone();
    let text = text.to_owned();
    let base_dir = base_dir.map(Path::to_path_buf);
    let parsed = tokio::task::spawn_blocking(move || {
        let base_dir = base_dir.as_deref();
        let exists = |driver: &str| registry.exists(driver, base_dir);
        dag::parse_keeping_nodes(&text, base_dir, &exists)
    })
    .await;
    match parsed {
        Ok(parsed) => Ok(parsed),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Refused::Unreadable(
            Problem::new("file", "the server stopped while reading the DAG").into(),
        )),
    }
}
