//! The DAG model every format parses into, and the engine runs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Index of a node in [`Dag::nodes`].
pub type NodeIndex = usize;

/// A validated DAG: names unique, every dependency exists, no cycle.
/// Built only by the parsers/validator in this module.
#[derive(Debug, Clone, PartialEq)]
pub struct Dag {
    /// The DAG's name.
    pub name: String,
    /// The nodes, in file order.
    pub nodes: Vec<Node>,
    /// For each node, the nodes that need it (its children), ascending.
    pub children: Vec<Vec<NodeIndex>>,
    /// The format the DAG was read from.
    pub format: SourceFormat,
    /// The folder of the DAG file, for artifacts that name files.
    pub base_dir: Option<PathBuf>,
    /// Node name to index, for [`Dag::index_of`]. Private to this module so
    /// that a `Dag` can only be built by its parsers.
    pub(in crate::dag) index: HashMap<String, NodeIndex>,
}

/// What a DAG file was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceFormat {
    /// drover's own schema, as YAML or JSON.
    Native,
    /// gorchestrator's `{name, state, digraph, nodes}` JSON.
    Gorchestrator,
}

/// One node of a DAG.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Unique name in the DAG.
    pub name: String,
    /// The driver as written: `shell`, `shell@1`, `noop`. gorchestrator's
    /// `engine: nil` becomes `noop`.
    pub driver: String,
    /// What to run; the driver's business. May hold output references.
    pub artifact: String,
    /// Arguments. May hold output references.
    pub args: Vec<String>,
    /// Environment variables, in file order. Values may hold output references.
    pub env: Vec<(String, String)>,
    /// The nodes that must succeed before this one runs, ascending, no duplicates.
    pub needs: Vec<NodeIndex>,
    /// Names of the outputs this node is expected to produce.
    pub outputs: Vec<String>,
    /// How long one attempt may take.
    pub timeout: Option<Duration>,
    /// Retries after a failed or timed-out attempt.
    pub retries: RetryPolicy,
    /// What to do with an attempt that drover's own stop interrupted.
    pub on_interrupt: OnInterrupt,
    /// Which pool of workers runs it (gorchestrator's `target`); unused in embedded mode.
    pub pool: Option<String>,
    /// gorchestrator's numeric id, kept to answer in that format.
    pub id: Option<i64>,
    /// Grants narrower than what the driver gets: a node can only take away.
    pub grants: Option<NodeGrants>,
    /// Secrets the node's driver gets: (name, reference as written, e.g.
    /// `vault:secret/data/app#password`), in file order.
    pub secrets: Vec<(String, String)>,
    /// The sha256 of the driver component the node runs with, fixed when
    /// the run is accepted; `None` until then.
    pub driver_digest: Option<String>,
}

impl Node {
    /// A node named `name` run by `driver`, with nothing else set: no
    /// artifact, arguments, environment, needs or outputs, the default
    /// retry policy, no pool, id, grants, secrets or digest.
    pub fn new(name: impl Into<String>, driver: impl Into<String>) -> Node {
        Node {
            name: name.into(),
            driver: driver.into(),
            artifact: String::new(),
            args: Vec::new(),
            env: Vec::new(),
            needs: Vec::new(),
            outputs: Vec::new(),
            timeout: None,
            retries: RetryPolicy::default(),
            on_interrupt: OnInterrupt::default(),
            pool: None,
            id: None,
            grants: None,
            secrets: Vec::new(),
            driver_digest: None,
        }
    }
}

/// What a node lets its driver have, within what the driver is granted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeGrants {
    /// Only these of the driver's programs may be started.
    pub exec: Option<Vec<String>>,
    /// `false` takes the network away.
    pub network: Option<bool>,
    /// `false` takes containers away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<bool>,
    /// Memory of the node's processes together, in MiB: at most what its driver may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// Processes (and threads) of the node at once: at most what its driver may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<u64>,
}

/// What becomes of a node whose attempt drover's own stop (a crash, a
/// restart) interrupted, when its run is carried on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnInterrupt {
    /// Run it again, in a fresh workspace, without using up a retry.
    #[default]
    Rerun,
    /// Fail the node: for work that must not run twice.
    Fail,
}

/// Retries of a node: `max` more attempts after the first, waiting
/// `backoff`, then 2x, 4x, ... between them (capped at `max_backoff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub max: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max: 0,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt` (2 = first retry).
    pub fn delay_before(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(2).min(31);
        self.backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }
}

/// A node's state, with gorchestrator's integer codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NodeState {
    Initial,
    ToRun,
    Running,
    Success,
    Failure,
    NotRunnable,
    Timeout,
    Canceled,
    /// An attempt's state only: drover itself stopped (a crash, a restart)
    /// while the attempt ran. Not counted against the node's retries.
    Interrupted,
}

impl NodeState {
    /// gorchestrator's code: 0 initial, 1 to-run, 2 running, 3 success,
    /// 4 failure, 5 not-runnable, 10 timeout, 11 canceled; drover's own 12
    /// interrupted (an attempt's state only).
    pub fn code(self) -> u8 {
        match self {
            NodeState::Initial => 0,
            NodeState::ToRun => 1,
            NodeState::Running => 2,
            NodeState::Success => 3,
            NodeState::Failure => 4,
            NodeState::NotRunnable => 5,
            NodeState::Timeout => 10,
            NodeState::Canceled => 11,
            NodeState::Interrupted => 12,
        }
    }

    /// The kebab-case name: `not-runnable`, `to-run`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Initial => "initial",
            NodeState::ToRun => "to-run",
            NodeState::Running => "running",
            NodeState::Success => "success",
            NodeState::Failure => "failure",
            NodeState::NotRunnable => "not-runnable",
            NodeState::Timeout => "timeout",
            NodeState::Canceled => "canceled",
            NodeState::Interrupted => "interrupted",
        }
    }

    /// Whether the node is done for good.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            NodeState::Success
                | NodeState::Failure
                | NodeState::NotRunnable
                | NodeState::Timeout
                | NodeState::Canceled
        )
    }
}

/// A reference to an upstream node's output, found in an artifact, arg or
/// env value: `${{ nodes.NAME.outputs.KEY }}`, or gorchestrator's
/// `get_attribute NAME:KEY` as the value part of an arg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRef {
    pub node: String,
    pub key: String,
}
