//! The stored summary of a run: what the run list shows and what a restart needs to carry the run on.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::engine::RunState;
use crate::rfc3339;

/// Which API a run was submitted through; it decides how the run is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Api {
    /// `/api/v1/runs`, or the command line.
    #[default]
    Native,
    /// gorchestrator's `/v1/tasks`.
    Gorchestrator,
}

/// How a run is to be run; kept so that a restart runs it the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// How many nodes may run at once.
    pub parallelism: usize,
    /// Whether the first failure stops the run.
    #[serde(default)]
    pub fail_fast: bool,
    /// The run-wide timeout, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl RunOptions {
    /// The run-wide timeout.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_ms.map(Duration::from_millis)
    }
}

/// A run's summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMeta {
    /// The run's id; ids sort in submission order.
    pub id: String,
    /// The DAG's name.
    pub name: String,
    /// `running` until the run ends, then how it ended.
    pub state: RunState,
    /// How many nodes the DAG has.
    pub nodes: usize,
    /// Which API it came through.
    #[serde(default)]
    pub api: Api,
    /// How to run it.
    pub options: RunOptions,
    /// When it was accepted.
    #[serde(with = "rfc3339::required")]
    pub submitted_at: SystemTime,
    /// When it ended; `None` while it runs.
    #[serde(default, with = "rfc3339::optional")]
    pub finished_at: Option<SystemTime>,
    /// A cancel was asked for: a run carried on after a restart is canceled at once.
    #[serde(default)]
    pub cancel_requested: bool,
    /// The digest of each driver as the DAG names it, fixed at acceptance:
    /// a run carried on after a restart uses the very same components.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub drivers: BTreeMap<String, String>,
    /// The run this one re-runs, if it is a re-run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<String>,
}

impl RunMeta {
    pub(super) fn to_json(&self) -> Vec<u8> {
        // Plain data: serializing it cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(super) fn from_json(bytes: &[u8]) -> Result<RunMeta, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            what: "run summary",
            message: e.to_string(),
        })
    }
}
