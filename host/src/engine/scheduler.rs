//! The scheduler: in-degree counters, a ready queue, a retry queue, and one loop reacting to events.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::attempt::{self, Ended};
use super::logcap::{LogLimits, LogTally};
use super::prepare::{self, OutputLookup};
use super::record::{AttemptRecord, NodeRecord, RunRecord, RunState};
use super::{Dispatch, Event, EventSink, NodeRun, Options};
use crate::dag::{Dag, NodeIndex, NodeState, OnInterrupt};
use crate::rfc3339;
use crate::task::{LogLine, NodeStatus, Outcome};

/// How many log lines may wait for the event sink before nodes slow down.
const LOG_BUFFER: usize = 1024;
/// What an attempt that drover's own stop cut short says.
const INTERRUPTED: &str = "interrupted: drover stopped while this attempt ran";
/// How many ended attempts the loop takes in one go.
const BATCH: usize = 64;

/// Why the run stopped before every node ended on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Canceled,
    Timeout(Duration),
    FailFast(NodeIndex),
}

/// The state of one run.
pub(super) struct Scheduler<E> {
    dag: Arc<Dag>,
    run_id: String,
    /// Carried from the record the run starts from to the one it returns.
    rerun_of: Option<String>,
    dispatch: Arc<dyn Dispatch>,
    parallelism: usize,
    fail_fast: bool,
    run_timeout: Option<Duration>,
    reattach: bool,
    events: E,
    /// The record of each node, updated as the run goes.
    records: Vec<NodeRecord>,
    /// For each node, how many of its needs have not succeeded yet.
    waiting: Vec<u32>,
    /// Nodes whose needs all succeeded, waiting for a slot.
    ready: VecDeque<NodeIndex>,
    /// Nodes waiting for their next attempt, earliest first.
    retries: BinaryHeap<Reverse<(Instant, NodeIndex)>>,
    /// How many attempts are running.
    running: usize,
    /// How many nodes are not in a final state.
    unfinished: usize,
    stop: Option<Stop>,
    outputs: OutputLookup,
    /// Fires when the run stops; each attempt then cancels its own token.
    run_token: Arc<CancellationToken>,
    ended_tx: mpsc::UnboundedSender<Ended>,
    ended_rx: mpsc::UnboundedReceiver<Ended>,
    log_tx: mpsc::Sender<LogLine>,
    log_rx: mpsc::Receiver<LogLine>,
    log_limits: LogLimits,
    /// What each node's current (or last) attempt has logged.
    logged: Vec<LogTally>,
}

impl<E: EventSink> Scheduler<E> {
    /// A scheduler carrying on from `record` (fresh from [`RunRecord::new`]
    /// for a new run).
    pub(super) fn new(
        dag: Arc<Dag>,
        record: RunRecord,
        dispatch: Arc<dyn Dispatch>,
        options: Options,
        events: E,
    ) -> Self {
        let RunRecord {
            id: run_id,
            rerun_of,
            nodes: mut records,
            ..
        } = record;
        // A record that does not match the DAG cannot be carried on: start over.
        if records.len() != dag.nodes.len() {
            let fresh = RunRecord::new(&dag, String::new());
            records = fresh.nodes;
        }
        let waiting = dag
            .nodes
            .iter()
            .map(|node| {
                let pending = node
                    .needs
                    .iter()
                    .filter(|&&need| records[need].state != NodeState::Success)
                    .count();
                u32::try_from(pending).unwrap_or(u32::MAX)
            })
            .collect();
        let unfinished = records.iter().filter(|r| !r.state.is_final()).count();
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        let (log_tx, log_rx) = mpsc::channel(LOG_BUFFER);
        let mut logged = vec![LogTally::default(); dag.nodes.len()];
        for (index, tally) in options.logged {
            if let Some(slot) = logged.get_mut(index) {
                *slot = tally;
            }
        }
        Scheduler {
            run_id,
            rerun_of,
            dispatch,
            parallelism: options.parallelism.max(1),
            fail_fast: options.fail_fast,
            run_timeout: options.run_timeout,
            reattach: options.reattach,
            events,
            records,
            waiting,
            ready: VecDeque::new(),
            retries: BinaryHeap::new(),
            running: 0,
            unfinished,
            stop: None,
            outputs: OutputLookup::new(Arc::clone(&dag)),
            dag,
            run_token: Arc::new(CancellationToken::new()),
            ended_tx,
            ended_rx,
            log_tx,
            log_rx,
            log_limits: options.log_limits,
            logged,
        }
    }

    /// Runs the DAG to the end.
    pub(super) async fn run(mut self, cancel: CancellationToken) -> RunRecord {
        tracing::debug!(run = %self.run_id, dag = %self.dag.name, nodes = self.dag.nodes.len(), "run starts");
        // Attempts still running if this future is dropped are canceled.
        let _guard = (*self.run_token).clone().drop_guard();
        let run_deadline = tokio::time::sleep(self.run_timeout.unwrap_or(Duration::MAX));
        let retry_sleep = tokio::time::sleep(Duration::MAX);
        tokio::pin!(run_deadline, retry_sleep);
        let mut ended = Vec::with_capacity(BATCH);
        let canceled = cancel.cancelled();
        tokio::pin!(canceled);

        if cancel.is_cancelled() {
            self.stop(Stop::Canceled).await;
        } else if self.run_timeout == Some(Duration::ZERO) {
            self.stop(Stop::Timeout(Duration::ZERO)).await;
        }
        self.restore().await;

        loop {
            self.start_ready().await;
            if self.unfinished == 0 {
                break;
            }
            if self.running == 0 && self.ready.is_empty() && self.retries.is_empty() {
                self.stalled().await;
                break;
            }
            if !self.retries.is_empty() {
                // Here rather than only in `select!`, where a busy run could starve it.
                self.wake_retries().await;
            }
            let next_retry = self.retries.peek().map(|Reverse((at, _))| *at);
            if let Some(at) = next_retry
                && retry_sleep.deadline() != at
            {
                retry_sleep.as_mut().reset(at);
            }
            tokio::select! {
                biased;
                _ = &mut canceled, if self.stop.is_none() => self.stop(Stop::Canceled).await,
                _ = &mut run_deadline, if self.run_timeout.is_some() && self.stop.is_none() => {
                    self.stop(Stop::Timeout(self.run_timeout.unwrap_or_default())).await;
                }
                _ = self.ended_rx.recv_many(&mut ended, BATCH) => {
                    // An attempt's log lines were all sent before it ended.
                    self.forward_logs().await;
                    for end in ended.drain(..) {
                        self.ended(end).await;
                    }
                }
                Some(line) = self.log_rx.recv() => self.log(line).await,
                _ = &mut retry_sleep, if next_retry.is_some() => self.wake_retries().await,
            }
        }

        self.forward_logs().await;
        let state = match self.stop {
            Some(Stop::Canceled) => RunState::Canceled,
            Some(Stop::Timeout(_)) => RunState::Timeout,
            _ if self.records.iter().all(|r| r.state == NodeState::Success) => RunState::Success,
            _ => RunState::Failure,
        };
        tracing::debug!(run = %self.run_id, %state, "run ends");
        self.events.emit(Event::Finished(state)).await;
        RunRecord {
            id: self.run_id,
            name: self.dag.name.clone(),
            state,
            rerun_of: self.rerun_of,
            nodes: self.records,
        }
    }

    /// Picks up the nodes of the record the run starts from: all of them
    /// `initial` for a new run, any mix for a resumed one.
    async fn restore(&mut self) {
        let nodes = self.records.len();
        for index in 0..nodes {
            let record = &self.records[index];
            if record.state.is_final() && record.state != NodeState::Success {
                let reason = self.upstream_reason(index);
                self.propagate(index, &reason).await;
            }
        }
        // Which nodes were waiting to start, before the interrupted ones
        // (which schedule their own retries) change anything.
        let waiting: Vec<NodeIndex> = (0..nodes)
            .filter(|&index| match self.records[index].state {
                NodeState::ToRun => true,
                NodeState::Initial => self.waiting[index] == 0,
                _ => false,
            })
            .collect();
        for index in 0..nodes {
            if self.records[index].state == NodeState::Running {
                if self.reattach {
                    self.reattach(index).await;
                } else {
                    self.interrupted(index).await;
                }
            }
        }
        for index in waiting {
            let record = &self.records[index];
            if self.stop.is_some() || record.state.is_final() {
                continue;
            }
            let attempt = record.current_attempt();
            self.make_ready(index, attempt).await;
        }
    }

    /// Records the attempt of `index` that was running when the run was
    /// interrupted as such (see [`Self::after_interrupt`] for what follows).
    async fn interrupted(&mut self, index: NodeIndex) {
        let now = rfc3339::now();
        let record = &mut self.records[index];
        let attempt = AttemptRecord {
            attempt: record.current_attempt(),
            state: NodeState::Interrupted,
            exit_code: None,
            started_at: record.running_since.take().unwrap_or(now),
            finished_at: now,
            error: Some(INTERRUPTED.to_owned()),
        };
        tracing::info!(node = %record.name, attempt = attempt.attempt, "attempt interrupted by a restart");
        self.after_attempt(index, attempt, BTreeMap::new()).await;
    }

    /// After an attempt drover's own stop cut short: runs the node again
    /// (its retries left as they were), or fails it when it says
    /// `on_interrupt: fail`.
    async fn after_interrupt(&mut self, index: NodeIndex, number: u32) {
        if self.dag.nodes[index].on_interrupt == OnInterrupt::Fail {
            let message = format!("{INTERRUPTED}; the node says `on_interrupt: fail`");
            self.finish(index, NodeState::Failure, message).await;
            return;
        }
        self.records[index].set_state(NodeState::ToRun);
        self.events
            .emit(Event::Retry {
                node: index,
                attempt: number,
                state: NodeState::Interrupted,
                delay: Duration::ZERO,
                error: INTERRUPTED.to_owned(),
            })
            .await;
        self.make_ready(index, number + 1).await;
    }

    /// Hands the attempt of `index` that was running when the run was
    /// interrupted to the dispatcher again, under the same attempt number,
    /// with what is left of its timeout: the attempt may still be running
    /// elsewhere, and the dispatcher knows it by its number. The record
    /// already says it runs, so no event is emitted.
    async fn reattach(&mut self, index: NodeIndex) {
        let attempt = self.records[index].current_attempt();
        let timeout = self.dag.nodes[index].timeout;
        let now = rfc3339::now();
        let started_at = self.records[index].running_since.unwrap_or(now);
        let mut task = match prepare::task(
            &self.outputs,
            &self.records,
            index,
            attempt,
            &self.run_id,
            timeout,
        ) {
            Ok(task) => task,
            Err(missing) => {
                self.finish(index, NodeState::Failure, missing.to_string())
                    .await;
                return;
            }
        };
        task.deadline = timeout.and_then(|t| started_at.checked_add(t));
        let elapsed = now.duration_since(started_at).unwrap_or_default();
        let deadline = timeout.map(|t| (t, Instant::now() + t.saturating_sub(elapsed)));
        let record = &mut self.records[index];
        tracing::info!(node = %record.name, attempt, "re-attaching to an attempt begun before a restart");
        record.started_at.get_or_insert(started_at);
        record.running_since = Some(started_at);
        self.launch(index, task, started_at, deadline);
    }

    /// Moves `index` to the ready queue for attempt `attempt`.
    async fn make_ready(&mut self, index: NodeIndex, attempt: u32) {
        self.records[index].set_state(NodeState::ToRun);
        self.ready.push_back(index);
        self.emit_state(index, NodeState::ToRun, attempt).await;
    }

    /// Starts ready nodes while there are free slots.
    async fn start_ready(&mut self) {
        while self.running < self.parallelism && self.stop.is_none() {
            let Some(index) = self.ready.pop_front() else {
                break;
            };
            self.start(index).await;
        }
    }

    /// Starts the next attempt of `index`, or fails it if an output
    /// reference cannot be resolved.
    async fn start(&mut self, index: NodeIndex) {
        let attempt = self.records[index].current_attempt();
        let timeout = self.dag.nodes[index].timeout;
        let task = match prepare::task(
            &self.outputs,
            &self.records,
            index,
            attempt,
            &self.run_id,
            timeout,
        ) {
            Ok(task) => task,
            Err(missing) => {
                tracing::debug!(node = %self.records[index].name, %missing, "output reference not resolved");
                self.finish(index, NodeState::Failure, missing.to_string())
                    .await;
                return;
            }
        };
        let started_at = rfc3339::now();
        self.logged[index] = LogTally::default();
        let record = &mut self.records[index];
        record.set_state(NodeState::Running);
        record.started_at.get_or_insert(started_at);
        record.running_since = Some(started_at);
        if record.attempts.is_empty() {
            record.attempts.reserve_exact(1);
        }
        let deadline = timeout.map(|t| (t, Instant::now() + t));
        self.launch(index, task, started_at, deadline);
        self.emit_state(index, NodeState::Running, attempt).await;
    }

    /// Spawns the attempt `task` of `index`, which the engine stops at
    /// `deadline` (the node's timeout, and when it passes).
    fn launch(
        &mut self,
        index: NodeIndex,
        task: crate::task::Task,
        started_at: std::time::SystemTime,
        deadline: Option<(Duration, Instant)>,
    ) {
        self.running += 1;
        let run = NodeRun {
            dag: Arc::clone(&self.dag),
            index,
            task,
            logs: self.log_tx.clone(),
            cancel: CancellationToken::new(),
        };
        let span = tracing::info_span!(
            "node",
            node = %self.dag.nodes[index].name,
            attempt = run.task.attempt,
        );
        let attempt = attempt::run(
            Arc::clone(&self.dispatch),
            run,
            started_at,
            deadline,
            Arc::clone(&self.run_token),
            self.ended_tx.clone(),
        );
        tokio::spawn(tracing::Instrument::instrument(attempt, span));
    }

    /// Records an ended attempt and decides what comes next for its node.
    async fn ended(&mut self, end: Ended) {
        self.running -= 1;
        let Ended {
            index,
            attempt,
            started_at,
            finished_at,
            outcome,
            timed_out,
        } = end;
        let Outcome {
            status,
            exit_code,
            outputs,
            message,
        } = outcome;
        // The attempt's lines are all in: say how much of them was cut.
        if let Some(summary) = self.logged[index].summary(&self.dag.nodes[index].name) {
            self.events.emit(Event::Log(summary)).await;
        }
        let (mut state, mut error) = judge(status, exit_code, message, timed_out);
        if state != NodeState::Success
            && let Some(stop) = self.stop
        {
            (state, error) = match stop {
                Stop::Timeout(limit) => (
                    NodeState::Timeout,
                    Some(format!("the run timed out after {limit:?}")),
                ),
                _ => (NodeState::Canceled, Some(self.stop_message(stop))),
            };
        }
        let attempt = AttemptRecord {
            attempt,
            state,
            exit_code,
            started_at,
            finished_at,
            error,
        };
        self.after_attempt(index, attempt, outputs).await;
    }

    /// Records an ended attempt of `index` (its outputs given apart) and
    /// retries the node, or puts it in its final state.
    async fn after_attempt(
        &mut self,
        index: NodeIndex,
        attempt: AttemptRecord,
        outputs: BTreeMap<String, String>,
    ) {
        let record = &mut self.records[index];
        record.exit_code = attempt.exit_code;
        record.running_since = None;
        record.started_at.get_or_insert(attempt.started_at);
        record.attempts.push(attempt.clone());
        let (number, state, finished_at, error) = (
            attempt.attempt,
            attempt.state,
            attempt.finished_at,
            attempt.error.clone(),
        );
        self.events
            .emit(Event::Attempt {
                node: index,
                record: attempt,
            })
            .await;
        if state == NodeState::Interrupted {
            self.after_interrupt(index, number).await;
            return;
        }
        let attempt = number;
        let record = &mut self.records[index];
        let retry = &self.dag.nodes[index].retries;
        let retryable =
            matches!(state, NodeState::Failure | NodeState::Timeout) && self.stop.is_none();
        // Attempts drover's own stop cut short are not the node's to count.
        let counted = record
            .attempts
            .iter()
            .filter(|a| a.state != NodeState::Interrupted)
            .count();
        let counted = u32::try_from(counted).unwrap_or(u32::MAX);
        if retryable && counted <= retry.max {
            let delay = retry.delay_before(counted + 1);
            tracing::debug!(node = %record.name, attempt, ?delay, "attempt failed; will retry");
            record.set_state(NodeState::ToRun);
            self.events
                .emit(Event::Retry {
                    node: index,
                    attempt,
                    state,
                    delay,
                    error: error.unwrap_or_default(),
                })
                .await;
            if delay.is_zero() {
                self.make_ready(index, attempt + 1).await;
            } else {
                self.retries.push(Reverse((Instant::now() + delay, index)));
            }
            return;
        }
        // A failed node keeps what its last attempt reported (a test report
        // matters most when tests fail); only a success feeds its children.
        self.records[index].outputs = Arc::new(outputs);
        if state == NodeState::Success {
            self.records[index].finished_at = Some(finished_at);
            self.succeed(index, attempt).await;
        } else {
            self.finish(index, state, error.unwrap_or_default()).await;
        }
    }

    /// Marks `index` succeeded (its `finished_at` already set) and readies the children whose needs all succeeded.
    async fn succeed(&mut self, index: NodeIndex, attempt: u32) {
        let record = &mut self.records[index];
        record.set_state(NodeState::Success);
        record.error = None;
        self.unfinished -= 1;
        self.emit_state(index, NodeState::Success, attempt).await;
        let dag = Arc::clone(&self.dag);
        for &child in dag
            .children
            .get(index)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let Some(waiting) = self.waiting.get_mut(child) else {
                continue;
            };
            if *waiting > 1 {
                *waiting -= 1;
            } else if *waiting == 1 {
                *waiting = 0;
                if self.records[child].state == NodeState::Initial && self.stop.is_none() {
                    self.make_ready(child, 1).await;
                }
            }
        }
    }

    /// Marks `index` ended badly for good (`state` is failure, timeout or
    /// canceled), every node downstream of it not-runnable, and stops the
    /// run when failing fast.
    async fn finish(&mut self, index: NodeIndex, state: NodeState, error: String) {
        tracing::debug!(node = %self.records[index].name, %error, "node ended {}", state.as_str());
        self.set_final(index, state, error).await;
        let reason = self.upstream_reason(index);
        self.propagate(index, &reason).await;
        if self.fail_fast && self.stop.is_none() {
            self.stop(Stop::FailFast(index)).await;
        }
    }

    /// Why the nodes downstream of `index`, which ended badly, are not run.
    fn upstream_reason(&self, index: NodeIndex) -> String {
        let record = &self.records[index];
        match record.state {
            // Already not-runnable: the reason names the node that failed.
            NodeState::NotRunnable => record.error.clone().unwrap_or_default(),
            state => format!(
                "not run: upstream node `{}` {}",
                record.name,
                match state {
                    NodeState::Timeout => "timed out",
                    NodeState::Canceled => "was canceled",
                    _ => "failed",
                }
            ),
        }
    }

    /// Makes every unfinished node downstream of `index` not-runnable.
    async fn propagate(&mut self, index: NodeIndex, reason: &str) {
        let dag = Arc::clone(&self.dag);
        let mut stack = vec![index];
        while let Some(node) = stack.pop() {
            for &child in dag
                .children
                .get(node)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                if self.records.get(child).is_some_and(|r| !r.state.is_final()) {
                    self.set_final(child, NodeState::NotRunnable, reason.to_owned())
                        .await;
                    stack.push(child);
                }
            }
        }
    }

    /// Puts `index` in final state `state` with `error`.
    async fn set_final(&mut self, index: NodeIndex, state: NodeState, error: String) {
        let record = &mut self.records[index];
        record.set_state(state);
        record.finished_at = Some(rfc3339::now());
        record.error = Some(error);
        let attempt = attempt_number(record.attempts.len());
        self.unfinished -= 1;
        self.emit_state(index, state, attempt).await;
    }

    /// Stops the run: cancels running attempts (they end when they return)
    /// and marks every node that is neither final nor running canceled.
    async fn stop(&mut self, stop: Stop) {
        tracing::debug!(run = %self.run_id, ?stop, "run stops");
        self.stop = Some(stop);
        self.run_token.cancel();
        self.ready.clear();
        self.retries.clear();
        let message = format!("canceled: {}", self.stop_message(stop));
        for index in 0..self.records.len() {
            let state = self.records[index].state;
            if !state.is_final() && state != NodeState::Running {
                self.set_final(index, NodeState::Canceled, message.clone())
                    .await;
            }
        }
    }

    /// Why the run stopped, for the records of the nodes it stopped.
    fn stop_message(&self, stop: Stop) -> String {
        match stop {
            Stop::Canceled => "the run was canceled".to_owned(),
            Stop::Timeout(limit) => format!("the run timed out after {limit:?}"),
            Stop::FailFast(node) => format!(
                "node `{}` failed and the run fails fast",
                self.dag.nodes[node].name
            ),
        }
    }

    /// Moves the nodes whose backoff has passed to the ready queue.
    async fn wake_retries(&mut self) {
        let now = Instant::now();
        while let Some(&Reverse((at, index))) = self.retries.peek() {
            if at > now {
                break;
            }
            self.retries.pop();
            let attempt = self.records[index].current_attempt();
            self.make_ready(index, attempt).await;
        }
    }

    /// Ends nodes that can never start: only reachable with an invalid DAG
    /// (a cycle, or `children` not matching `needs`).
    async fn stalled(&mut self) {
        tracing::warn!(run = %self.run_id, unfinished = self.unfinished, "nodes can never start; is the DAG valid?");
        for index in 0..self.records.len() {
            if !self.records[index].state.is_final() {
                let error = "not run: its needs never completed (invalid DAG)".to_owned();
                self.set_final(index, NodeState::NotRunnable, error).await;
            }
        }
    }

    /// Forwards the log lines already waiting (at most a buffer's worth, so
    /// that a chatty node cannot hold the loop).
    async fn forward_logs(&mut self) {
        for _ in 0..LOG_BUFFER {
            let Ok(line) = self.log_rx.try_recv() else {
                break;
            };
            self.log(line).await;
        }
    }

    /// Emits `line` if its attempt's log has room for it (see
    /// [`LogTally::admit`]).
    async fn log(&mut self, line: LogLine) {
        let Some(index) = self.dag.index_of(&line.node) else {
            // Dispatchers name lines after the node they run; a line
            // naming no node of the DAG has no log to go to.
            tracing::debug!(run = %self.run_id, node = %line.node, "a log line of no node dropped");
            return;
        };
        if let Some(line) = self.logged[index].admit(self.log_limits, line) {
            self.events.emit(Event::Log(line)).await;
        }
    }

    /// Emits the state `node` just entered, with what its record now says
    /// about it: when, and for a final state its error and outputs.
    async fn emit_state(&self, node: NodeIndex, state: NodeState, attempt: u32) {
        let record = &self.records[node];
        let (at, error, outputs) = if state.is_final() {
            let outputs = (!record.outputs.is_empty() || state == NodeState::Success)
                .then(|| Arc::clone(&record.outputs));
            (record.finished_at, record.error.clone(), outputs)
        } else if state == NodeState::Running {
            (record.running_since, None, None)
        } else {
            (None, None, None)
        };
        self.events
            .emit(Event::NodeState {
                node,
                state,
                attempt,
                at: at.unwrap_or_else(rfc3339::now),
                error,
                outputs,
                reused_from: None,
            })
            .await;
    }
}

/// The state and error of an attempt from what the dispatcher reported and
/// whether the engine had to stop it at its deadline (`timed_out`).
fn judge(
    status: NodeStatus,
    exit_code: Option<i32>,
    message: String,
    timed_out: Option<Duration>,
) -> (NodeState, Option<String>) {
    let state = match (status, timed_out) {
        (_, Some(_)) | (NodeStatus::Timeout, None) => NodeState::Timeout,
        (NodeStatus::Success, None) => NodeState::Success,
        (NodeStatus::Failure, None) => NodeState::Failure,
        (NodeStatus::Canceled, None) => NodeState::Canceled,
    };
    let error = match (state, timed_out, exit_code) {
        (NodeState::Success, _, _) => None,
        (_, Some(limit), _) => Some(format!("timed out after {limit:?}")),
        _ if !message.is_empty() => Some(message),
        (NodeState::Failure, _, Some(code)) => Some(format!("failed with exit code {code}")),
        _ => Some(state.as_str().to_owned()),
    };
    (state, error)
}

fn attempt_number(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
