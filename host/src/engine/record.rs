//! The record of a run, as `drover run --output json` prints it and as it is stored.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Event;
use crate::dag::{Dag, NodeState};
use crate::rfc3339;

/// A node's outputs, shared between the record and the nodes that read them.
pub type Outputs = Arc<BTreeMap<String, String>>;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// The run has not ended yet; never the state of a record [`run`](super::run) returns.
    Running,
    /// Every node succeeded.
    Success,
    /// Some node did not succeed.
    Failure,
    /// The run-wide timeout passed.
    Timeout,
    /// The run was canceled.
    Canceled,
}

impl RunState {
    /// The lower-case name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Success => "success",
            RunState::Failure => "failure",
            RunState::Timeout => "timeout",
            RunState::Canceled => "canceled",
        }
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunRecord {
    /// The run's id.
    pub id: String,
    /// The DAG's name.
    pub name: String,
    /// How the run ended.
    pub state: RunState,
    /// The run this one re-runs, if it is a re-run.
    #[serde(default)]
    pub rerun_of: Option<String>,
    /// One record per node, in DAG order.
    pub nodes: Vec<NodeRecord>,
}

impl RunRecord {
    /// The record of a run of `dag` that has not started: every node `initial`.
    pub fn new(dag: &Dag, id: String) -> Self {
        let no_outputs: Outputs = Arc::new(BTreeMap::new());
        RunRecord {
            id,
            name: dag.name.clone(),
            state: RunState::Running,
            rerun_of: None,
            nodes: dag
                .nodes
                .iter()
                .map(|node| {
                    let mut record = NodeRecord::new(node.name.clone(), Arc::clone(&no_outputs));
                    record.driver.clone_from(&node.driver);
                    record.needs = node
                        .needs
                        .iter()
                        .filter_map(|&need| dag.nodes.get(need).map(|n| n.name.clone()))
                        .collect();
                    record.driver_digest =
                        node.driver_digest.as_ref().map(|d| format!("sha256:{d}"));
                    record
                })
                .collect(),
        }
    }

    /// Brings the record up to date with `event`, the next event of the run.
    /// Events naming a node the record does not have are ignored.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::NodeState {
                node,
                state,
                at,
                error,
                outputs,
                reused_from,
                ..
            } => {
                let Some(record) = self.nodes.get_mut(*node) else {
                    return;
                };
                record.set_state(*state);
                if reused_from.is_some() {
                    record.reused_from.clone_from(reused_from);
                }
                match state {
                    NodeState::Running => {
                        record.started_at.get_or_insert(*at);
                        record.running_since = Some(*at);
                    }
                    state if state.is_final() => {
                        record.finished_at = Some(*at);
                        record.error.clone_from(error);
                        if let Some(outputs) = outputs {
                            record.outputs = Arc::clone(outputs);
                        }
                    }
                    _ => {}
                }
            }
            Event::Attempt {
                node,
                record: attempt,
            } => {
                if let Some(record) = self.nodes.get_mut(*node) {
                    record.exit_code = attempt.exit_code;
                    record.running_since = None;
                    record.attempts.push(attempt.clone());
                }
            }
            Event::Retry { node, .. } => {
                if let Some(record) = self.nodes.get_mut(*node) {
                    record.set_state(NodeState::ToRun);
                }
            }
            Event::Log(_) => {}
            Event::Finished(state) => self.state = *state,
        }
    }
}

/// What happened to one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeRecord {
    /// The node's name.
    pub name: String,
    /// The driver as the DAG names it (`shell`, `greet@1`, …).
    #[serde(default)]
    pub driver: String,
    /// The names of the nodes it needs, in DAG order: with the nodes'
    /// names, the graph.
    #[serde(default)]
    pub needs: Vec<String>,
    /// The node's state.
    pub state: NodeState,
    /// gorchestrator's code for `state`; always `state.code()`.
    #[schema(value_type = u8, minimum = 0, maximum = 11)]
    pub state_code: u8,
    /// The exit code of the last attempt, when it has one.
    pub exit_code: Option<i32>,
    /// The outputs of the last attempt: of the successful one, or of the one
    /// that failed for good (only a success feeds downstream nodes).
    #[schema(value_type = BTreeMap<String, String>)]
    pub outputs: Outputs,
    /// Every attempt, in order; empty for a node that never started.
    pub attempts: Vec<AttemptRecord>,
    /// When the first attempt started.
    #[serde(with = "rfc3339::optional")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<SystemTime>,
    /// When the node reached its final state.
    #[serde(with = "rfc3339::optional")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<SystemTime>,
    /// Why the node did not succeed; `None` on success.
    pub error: Option<String>,
    /// The driver component the node runs with (`sha256:<hex>`), pinned
    /// when the run was accepted.
    #[serde(default)]
    pub driver_digest: Option<String>,
    /// For a node of a re-run that was not run again but took its outputs
    /// from the run it re-runs: that run's id. Such a node has no attempts.
    #[serde(default)]
    pub reused_from: Option<String>,
    /// When the attempt running now started; `None` when none is running.
    /// Kept so that a resumed run can record the attempt it interrupted.
    #[serde(skip)]
    pub running_since: Option<SystemTime>,
}

impl NodeRecord {
    /// A node that has not started, with `outputs` as its (empty) outputs.
    pub(super) fn new(name: String, outputs: Outputs) -> Self {
        NodeRecord {
            name,
            driver: String::new(),
            needs: Vec::new(),
            state: NodeState::Initial,
            state_code: NodeState::Initial.code(),
            exit_code: None,
            outputs,
            attempts: Vec::new(),
            started_at: None,
            finished_at: None,
            error: None,
            driver_digest: None,
            reused_from: None,
            running_since: None,
        }
    }

    /// The number of the attempt running now, or of the next one: one more
    /// than the attempts recorded (those that ended).
    pub fn current_attempt(&self) -> u32 {
        u32::try_from(self.attempts.len() + 1).unwrap_or(u32::MAX)
    }

    /// Sets `state` and `state_code` together.
    pub(super) fn set_state(&mut self, state: NodeState) {
        self.state = state;
        self.state_code = state.code();
    }
}

/// One attempt of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttemptRecord {
    /// 1 for the first attempt, 2 for the first retry, and so on.
    pub attempt: u32,
    /// How the attempt ended: `success`, `failure`, `timeout` or `canceled`.
    pub state: NodeState,
    /// The exit code the dispatcher reported, if any.
    pub exit_code: Option<i32>,
    /// When the attempt was handed to the dispatcher.
    #[serde(with = "rfc3339::required")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: SystemTime,
    /// When the dispatcher returned (or was given up on).
    #[serde(with = "rfc3339::required")]
    #[schema(value_type = String, format = DateTime)]
    pub finished_at: SystemTime,
    /// Why the attempt did not succeed; `None` on success.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_stored_before_the_graph_and_reruns_were_recorded_still_loads() {
        let stored = r#"{"id": "r", "name": "old", "state": "success", "nodes": [
            {"name": "a", "state": "success", "state_code": 3, "exit_code": 0,
             "outputs": {"k": "v"}, "attempts": [], "started_at": null,
             "finished_at": null, "error": null}]}"#;
        let record: RunRecord = serde_json::from_str(stored).unwrap();
        assert_eq!(record.rerun_of, None);
        let node = &record.nodes[0];
        assert_eq!(node.driver, "");
        assert!(node.needs.is_empty());
        assert_eq!(node.reused_from, None);
        assert_eq!(node.driver_digest, None);
        assert_eq!(node.outputs["k"], "v");
    }

    #[test]
    fn a_new_record_names_each_nodes_driver_and_needs_in_dag_order() {
        let dag = crate::dag::parse(
            "name: g\nnodes:\n  z: {driver: noop}\n  y: {driver: 'shell@0.1', needs: [z, x]}\n  \
             x: {driver: noop}\n",
            None,
            &|_| true,
        )
        .unwrap();
        let record = RunRecord::new(&dag, "r".to_owned());
        let y = &record.nodes[1];
        assert_eq!(y.driver, "shell@0.1");
        assert_eq!(y.needs, ["z", "x"]);
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["nodes"][1]["needs"], serde_json::json!(["z", "x"]));
        assert_eq!(json["rerun_of"], serde_json::Value::Null);
        assert_eq!(json["nodes"][1]["reused_from"], serde_json::Value::Null);
    }
}
