//! A run's events as JSON: how they are stored and how watchers receive them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::dag::{Dag, NodeState};
use crate::engine::{AttemptRecord, Event, RunState};
use crate::rfc3339;
use crate::task::{LogLevel, LogLine, LogSource};

/// One event of a run, numbered: `seq` counts from 1 with no gaps, and is
/// the Server-Sent Events id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Numbered {
    pub seq: u64,
    #[serde(flatten)]
    pub event: WireEvent,
}

/// An engine [`Event`] with nodes named rather than numbered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum WireEvent {
    /// A node entered a state.
    Node {
        node: String,
        state: NodeState,
        state_code: u8,
        attempt: u32,
        #[serde(with = "rfc3339::required")]
        at: SystemTime,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outputs: Option<BTreeMap<String, String>>,
        /// On the `success` of a node a re-run did not run again: the run
        /// whose outputs it keeps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reused_from: Option<String>,
    },
    /// An attempt of a node ended.
    Attempt {
        node: String,
        attempt: AttemptRecord,
    },
    /// A failed attempt will be retried after `delay_ms`.
    Retry {
        node: String,
        attempt: u32,
        state: NodeState,
        delay_ms: u64,
        error: String,
    },
    /// A line a node logged.
    Log {
        node: String,
        source: LogSource,
        level: LogLevel,
        message: String,
    },
    /// The run ended; always the last event.
    Finished { state: RunState },
}

impl WireEvent {
    /// `event` of a run of `dag`.
    pub fn from_event(dag: &Dag, event: &Event) -> WireEvent {
        let name = |index: usize| {
            dag.nodes
                .get(index)
                .map(|n| n.name.clone())
                .unwrap_or_default()
        };
        match event {
            Event::NodeState {
                node,
                state,
                attempt,
                at,
                error,
                outputs,
                reused_from,
            } => WireEvent::Node {
                node: name(*node),
                state: *state,
                state_code: state.code(),
                attempt: *attempt,
                at: *at,
                error: error.clone(),
                outputs: outputs.as_ref().map(|o| (**o).clone()),
                reused_from: reused_from.clone(),
            },
            Event::Attempt { node, record } => WireEvent::Attempt {
                node: name(*node),
                attempt: record.clone(),
            },
            Event::Retry {
                node,
                attempt,
                state,
                delay,
                error,
            } => WireEvent::Retry {
                node: name(*node),
                attempt: *attempt,
                state: *state,
                delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error: error.clone(),
            },
            Event::Log(line) => WireEvent::Log {
                node: line.node.to_string(),
                source: line.source,
                level: line.level,
                message: line.message.clone(),
            },
            Event::Finished(state) => WireEvent::Finished { state: *state },
        }
    }

    /// The engine event this is, for a run of `dag`; `None` if it names a
    /// node `dag` does not have.
    pub fn to_event(&self, dag: &Dag) -> Option<Event> {
        Some(match self {
            WireEvent::Node {
                node,
                state,
                attempt,
                at,
                error,
                outputs,
                reused_from,
                ..
            } => Event::NodeState {
                node: dag.index_of(node)?,
                state: *state,
                attempt: *attempt,
                at: *at,
                error: error.clone(),
                outputs: outputs.clone().map(Arc::new),
                reused_from: reused_from.clone(),
            },
            WireEvent::Attempt { node, attempt } => Event::Attempt {
                node: dag.index_of(node)?,
                record: attempt.clone(),
            },
            WireEvent::Retry {
                node,
                attempt,
                state,
                delay_ms,
                error,
            } => Event::Retry {
                node: dag.index_of(node)?,
                attempt: *attempt,
                state: *state,
                delay: Duration::from_millis(*delay_ms),
                error: error.clone(),
            },
            WireEvent::Log {
                node,
                source,
                level,
                message,
            } => Event::Log(LogLine {
                node: Arc::from(dag.nodes.get(dag.index_of(node)?)?.name.as_str()),
                source: *source,
                level: *level,
                message: message.clone(),
            }),
            WireEvent::Finished { state } => Event::Finished(*state),
        })
    }

    /// The node the event is about, if any.
    pub fn node(&self) -> Option<&str> {
        match self {
            WireEvent::Node { node, .. }
            | WireEvent::Attempt { node, .. }
            | WireEvent::Retry { node, .. }
            | WireEvent::Log { node, .. } => Some(node),
            WireEvent::Finished { .. } => None,
        }
    }

    /// The SSE event name: `node`, `attempt`, `retry`, `log` or `finished`.
    pub fn kind(&self) -> &'static str {
        match self {
            WireEvent::Node { .. } => "node",
            WireEvent::Attempt { .. } => "attempt",
            WireEvent::Retry { .. } => "retry",
            WireEvent::Log { .. } => "log",
            WireEvent::Finished { .. } => "finished",
        }
    }
}
