//! Counters of what the server did, written out in Prometheus' text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::dag::NodeState;
use crate::engine::RunState;
use crate::transport::redis::PoolStatus;

/// Upper bounds of the node duration histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 3600.0,
];
const RUN_STATES: [RunState; 4] = [
    RunState::Success,
    RunState::Failure,
    RunState::Timeout,
    RunState::Canceled,
];
const NODE_STATES: [NodeState; 5] = [
    NodeState::Success,
    NodeState::Failure,
    NodeState::NotRunnable,
    NodeState::Timeout,
    NodeState::Canceled,
];

/// Counters since the server started.
#[derive(Default)]
pub struct Metrics {
    pub(super) submitted: AtomicU64,
    pub(super) refused: AtomicU64,
    runs: [AtomicU64; RUN_STATES.len()],
    nodes: [AtomicU64; NODE_STATES.len()],
    buckets: [AtomicU64; BUCKETS.len()],
    duration_count: AtomicU64,
    duration_sum_us: AtomicU64,
}

/// Gauges read from the live runs when metrics are asked for.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gauges {
    pub runs_running: u64,
    pub nodes_running: u64,
    /// Nodes whose needs are met, waiting for a slot (or a retry).
    pub nodes_queued: u64,
    /// Events the live runs hold in memory (their windows), and roughly
    /// how many bytes they take.
    pub live_events: u64,
    pub live_event_bytes: u64,
}

impl Metrics {
    pub(super) fn run_finished(&self, state: RunState) {
        if let Some(i) = RUN_STATES.iter().position(|s| *s == state) {
            self.runs[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A node reached final state `state`, after running for `ran` (`None`
    /// if it never started).
    pub(super) fn node_finished(&self, state: NodeState, ran: Option<Duration>) {
        if let Some(i) = NODE_STATES.iter().position(|s| *s == state) {
            self.nodes[i].fetch_add(1, Ordering::Relaxed);
        }
        let Some(ran) = ran else { return };
        let seconds = ran.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&b| seconds <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.duration_count.fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(ran.as_micros()).unwrap_or(u64::MAX);
        self.duration_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Everything, in Prometheus' text exposition format.
    pub fn render(&self, gauges: Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP drover_submissions_total DAGs accepted for running.\n# TYPE drover_submissions_total counter\ndrover_submissions_total {}",
            get(&self.submitted)
        );
        let _ = writeln!(
            out,
            "# HELP drover_submissions_refused_total DAGs refused as invalid.\n# TYPE drover_submissions_refused_total counter\ndrover_submissions_refused_total {}",
            get(&self.refused)
        );
        let _ = writeln!(
            out,
            "# HELP drover_runs_total Runs that ended, by final state.\n# TYPE drover_runs_total counter"
        );
        for (state, count) in RUN_STATES.iter().zip(&self.runs) {
            let _ = writeln!(out, "drover_runs_total{{state=\"{state}\"}} {}", get(count));
        }
        let _ = writeln!(
            out,
            "# HELP drover_runs_running Runs in progress.\n# TYPE drover_runs_running gauge\ndrover_runs_running {}",
            gauges.runs_running
        );
        let _ = writeln!(
            out,
            "# HELP drover_nodes_total Nodes that reached a final state, by state.\n# TYPE drover_nodes_total counter"
        );
        for (state, count) in NODE_STATES.iter().zip(&self.nodes) {
            let _ = writeln!(
                out,
                "drover_nodes_total{{state=\"{}\"}} {}",
                state.as_str(),
                get(count)
            );
        }
        let _ = writeln!(
            out,
            "# HELP drover_nodes_running Nodes running now.\n# TYPE drover_nodes_running gauge\ndrover_nodes_running {}",
            gauges.nodes_running
        );
        let _ = writeln!(
            out,
            "# HELP drover_queue_depth Nodes ready to run, waiting for a slot or a retry.\n# TYPE drover_queue_depth gauge\ndrover_queue_depth {}",
            gauges.nodes_queued
        );
        let _ = writeln!(
            out,
            "# HELP drover_live_events Events of runs in progress held in memory for watchers (the runs' windows).\n# TYPE drover_live_events gauge\ndrover_live_events {}",
            gauges.live_events
        );
        let _ = writeln!(
            out,
            "# HELP drover_live_event_bytes Roughly the memory those events take.\n# TYPE drover_live_event_bytes gauge\ndrover_live_event_bytes {}",
            gauges.live_event_bytes
        );
        let _ = writeln!(
            out,
            "# HELP drover_node_duration_seconds How long nodes ran, from first start to final state.\n# TYPE drover_node_duration_seconds histogram"
        );
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += get(count);
            let _ = writeln!(
                out,
                "drover_node_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let total = get(&self.duration_count);
        let _ = writeln!(
            out,
            "drover_node_duration_seconds_bucket{{le=\"+Inf\"}} {total}\ndrover_node_duration_seconds_sum {}\ndrover_node_duration_seconds_count {total}",
            get(&self.duration_sum_us) as f64 / 1e6
        );
        out
    }
}

/// A per-pool gauge: its name, its help, and its value for a pool.
type PoolGauge = (&'static str, &'static str, fn(&PoolStatus) -> u64);

/// The queue of each pool of a distributed leader, in Prometheus' text
/// exposition format: jobs waiting for a drone, jobs running, live drones.
pub fn render_pools(pools: &[PoolStatus]) -> String {
    let mut out = String::with_capacity(256 + pools.len() * 128);
    let gauges: [PoolGauge; 3] = [
        (
            "drover_pool_queued",
            "Jobs sent to a pool that no drone has taken yet.",
            |p| p.queued,
        ),
        (
            "drover_pool_running",
            "Jobs a drone of the pool has taken and not finished.",
            |p| p.running,
        ),
        ("drover_pool_drones", "Live drones serving the pool.", |p| {
            p.drones as u64
        }),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for pool in pools {
            // Pool names are `[A-Za-z0-9_.-]`: nothing to escape.
            let _ = writeln!(out, "{name}{{pool=\"{}\"}} {}", pool.name, value(pool));
        }
    }
    out
}
