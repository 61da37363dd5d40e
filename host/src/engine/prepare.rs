//! Builds the [`Task`] of one attempt: upstream outputs substituted, inputs gathered.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::record::NodeRecord;
use crate::dag::template::{self, MissingOutput};
use crate::dag::{Dag, NodeIndex, NodeState};
use crate::task::Task;

/// Looks node outputs up by node name, for output references.
pub(super) struct OutputLookup {
    dag: Arc<Dag>,
}

impl OutputLookup {
    pub(super) fn new(dag: Arc<Dag>) -> Self {
        OutputLookup { dag }
    }

    /// The value of output `key` of the node called `node`, if that node
    /// succeeded and produced it. The validator makes sure references only
    /// name ancestors, which have all succeeded by the time a node starts.
    fn get(&self, records: &[NodeRecord], node: &str, key: &str) -> Option<String> {
        let record = records.get(self.dag.index_of(node)?)?;
        if record.state != NodeState::Success {
            return None;
        }
        record.outputs.get(key).cloned()
    }
}

/// The task for attempt `attempt` of node `index`, or the first output
/// reference that cannot be resolved.
pub(super) fn task(
    outputs: &OutputLookup,
    records: &[NodeRecord],
    index: NodeIndex,
    attempt: u32,
    run_id: &str,
    deadline: Option<Duration>,
) -> Result<Task, MissingOutput> {
    let dag = &*outputs.dag;
    let node = &dag.nodes[index];
    let lookup = |name: &str, key: &str| outputs.get(records, name, key);
    let artifact = template::substitute(&node.artifact, &lookup)?;
    let args = node
        .args
        .iter()
        .map(|arg| template::substitute_arg(arg, &lookup))
        .collect::<Result<Vec<_>, _>>()?;
    let env = node
        .env
        .iter()
        .map(|(name, value)| Ok((name.clone(), template::substitute(value, &lookup)?)))
        .collect::<Result<Vec<_>, MissingOutput>>()?;
    let needs = || {
        node.needs
            .iter()
            .filter_map(|&need| Some((need, records.get(need)?)))
    };
    let mut inputs = Vec::with_capacity(needs().map(|(_, r)| r.outputs.len()).sum());
    for (need, record) in needs() {
        let name = &dag.nodes[need].name;
        inputs.extend(
            record
                .outputs
                .iter()
                .map(|(key, value)| (name.clone(), key.clone(), value.clone())),
        );
    }
    let mut task = Task {
        run_id: run_id.to_owned(),
        node: node.name.clone(),
        attempt,
        artifact,
        artifact_file: None,
        args,
        env,
        inputs,
        outputs: node.outputs.clone(),
        deadline: deadline.and_then(|d| SystemTime::now().checked_add(d)),
        grants: node.grants.clone(),
        secrets: node.secrets.clone(),
    };
    if let Some(base) = &dag.base_dir {
        task.resolve_artifact_file(base);
    }
    Ok(task)
}
