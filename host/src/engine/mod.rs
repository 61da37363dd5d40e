//! Runs a validated [`Dag`]: schedules its nodes on a [`Dispatch`] and records the run.

mod attempt;
mod events;
mod logcap;
mod prepare;
mod record;
mod reuse;
mod scheduler;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

#[cfg(doc)]
use crate::dag::RetryPolicy;
use crate::dag::{Dag, NodeIndex, NodeState};
use crate::task::{LogLine, LogSink, Outcome, Task};

pub use events::{EventSink, NoEvents};
pub use logcap::{CUT_MARKER, DEFAULT_LOG_BYTES, DEFAULT_LOG_LINES, LogLimits, LogTally};
pub use record::{AttemptRecord, NodeRecord, Outputs, RunRecord, RunState};
pub use reuse::reused;

/// How long a dispatcher may take to return after its token is canceled
/// before the engine gives up on it, drops its future and frees its slot.
pub const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// One attempt of one node, handed to the dispatcher.
pub struct NodeRun {
    /// The DAG being run; `dag.nodes[index]` names the driver and pool.
    pub dag: Arc<Dag>,
    /// The node's index in `dag.nodes`.
    pub index: NodeIndex,
    /// The node with upstream outputs substituted: `attempt` is 1 for the
    /// first attempt, `inputs` holds the outputs of the node's direct needs,
    /// `deadline` is now + the node's timeout.
    pub task: Task,
    /// Where the node's log lines go; the engine forwards them as
    /// [`Event::Log`], up to [`Options::log_limits`].
    pub logs: LogSink,
    /// Fires when the attempt must stop: its timeout passed, or the run was
    /// canceled, timed out or failed fast.
    pub cancel: CancellationToken,
}

impl std::fmt::Debug for NodeRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeRun")
            .field("index", &self.index)
            .field("task", &self.task)
            .field("canceled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// A boxed future returning the outcome of one attempt.
pub type DispatchFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// Runs nodes: the bridge between the engine and whatever executes drivers.
pub trait Dispatch: Send + Sync + 'static {
    /// Runs one attempt. Must end promptly after `run.cancel` fires; an
    /// attempt still running [`CANCEL_GRACE`] later is dropped.
    fn dispatch(&self, run: NodeRun) -> DispatchFuture;
}

/// How to run a DAG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// How many attempts may run at once; 0 counts as 1.
    pub parallelism: usize,
    /// Whether the first node to fail for good stops the run.
    pub fail_fast: bool,
    /// How long the whole run may take.
    pub run_timeout: Option<Duration>,
    /// Whether [`resume`] hands a node that was `running` to the dispatcher
    /// again under the same attempt number, to wait for an attempt that may
    /// still be running elsewhere (on a drone), instead of recording that
    /// attempt as interrupted. For dispatchers whose attempts outlive this
    /// process and whose attempt ids are deterministic.
    pub reattach: bool,
    /// How much of each attempt's log is kept; the rest is dropped and
    /// counted, and a line from drover says so.
    pub log_limits: LogLimits,
    /// For the attempts re-attached to (see `reattach`), what their log
    /// already holds, so that the cap counts on from there rather than
    /// from nothing.
    pub logged: BTreeMap<NodeIndex, LogTally>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            parallelism: 1,
            fail_fast: false,
            run_timeout: None,
            reattach: false,
            log_limits: LogLimits::default(),
            logged: BTreeMap::new(),
        }
    }
}

/// Something that happened during a run, in the order it happened.
///
/// The events carry everything the run record holds: folding them in order
/// with [`RunRecord::apply`] onto [`RunRecord::new`] gives the record the run
/// returns, which is how a persisted run is rebuilt and how a live view of a
/// running run is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A node entered `state`. `attempt` is the attempt the state belongs to:
    /// the coming one for `to-run`, the current one for `running`, the last
    /// one (0 if none) for a final state.
    NodeState {
        node: NodeIndex,
        state: NodeState,
        attempt: u32,
        /// When it happened.
        at: SystemTime,
        /// Why a node in a final state did not succeed.
        error: Option<String>,
        /// The outputs of a node that succeeded, or that failed with some.
        outputs: Option<Outputs>,
        /// For a node of a re-run that is not run again (see [`reused`]):
        /// the run whose outputs it keeps. Never set by the scheduler.
        reused_from: Option<String>,
    },
    /// An attempt of a node ended; comes before the node's `Retry` or final state.
    Attempt {
        node: NodeIndex,
        record: AttemptRecord,
    },
    /// Attempt `attempt` of a node ended in `state` (`failure` or `timeout`);
    /// the next attempt becomes `to-run` after `delay`.
    Retry {
        node: NodeIndex,
        attempt: u32,
        state: NodeState,
        delay: Duration,
        error: String,
    },
    /// A log line a node wrote, or one drover wrote about the node (such as
    /// the markers of a log cut at [`Options::log_limits`]).
    Log(LogLine),
    /// The run is over; always the last event.
    Finished(RunState),
}

/// Runs `dag` to the end and returns its record.
///
/// Scheduling is event-driven: each node keeps a count of unfinished needs
/// and becomes ready the moment its last need succeeds; up to
/// [`Options::parallelism`] attempts run at once. A node that ends badly for
/// good makes all its descendants `not-runnable`. Failed or timed-out
/// attempts are retried after [`RetryPolicy::delay_before`] without holding
/// a slot. Upstream outputs are substituted into each node's artifact, args
/// and env before it is dispatched; an unresolvable reference fails the node
/// without dispatching it.
///
/// The scheduler runs as a task of its own (so that it sits on a runtime
/// worker next to the attempts it spawns); dropping the returned future
/// aborts it and cancels the attempts still running. Firing `cancel` stops the run: running attempts are canceled and awaited,
/// and every unfinished node ends `canceled`. `events` receives every state
/// change and log line; a slow sink slows the run down.
pub async fn run(
    dag: Arc<Dag>,
    run_id: String,
    dispatch: Arc<dyn Dispatch>,
    options: Options,
    events: impl EventSink,
    cancel: CancellationToken,
) -> RunRecord {
    let record = RunRecord::new(&dag, run_id);
    resume(dag, record, dispatch, options, events, cancel).await
}

/// Carries on a run that was interrupted, from its record so far (the fold
/// of the events it had emitted): nodes that succeeded are not run again and
/// their outputs feed their children; a node that was `running` gets its
/// interrupted attempt recorded as a failure and is retried under its retry
/// policy (or, with [`Options::reattach`], is dispatched again under the same
/// attempt number, its timeout counted from when that attempt started);
/// `to-run` nodes start again; descendants of nodes that ended badly
/// are `not-runnable`. With a record fresh from [`RunRecord::new`] this is
/// [`run`]; with one that the events of [`reused`] were folded into, it is
/// a re-run from an earlier run's failures.
pub async fn resume(
    dag: Arc<Dag>,
    record: RunRecord,
    dispatch: Arc<dyn Dispatch>,
    options: Options,
    events: impl EventSink,
    cancel: CancellationToken,
) -> RunRecord {
    // drover's own logs about the run (and its nodes, in spans of their
    // own) name it.
    let span = tracing::info_span!("run", id = %record.id, dag = %dag.name);
    let scheduler = scheduler::Scheduler::new(dag, record, dispatch, options, events);
    let task = tokio::spawn(tracing::Instrument::instrument(scheduler.run(cancel), span));
    let _abort = AbortOnDrop(task.abort_handle());
    match task.await {
        Ok(record) => record,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only this future aborts the task, and it is no longer waiting then.
        Err(e) => unreachable!("the scheduler task was aborted: {e}"),
    }
}

/// Aborts the scheduler task when [`run`]'s future is dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
