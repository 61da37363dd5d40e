//! Test helpers: a DAG builder and a scripted in-process dispatcher.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drover::dag::{Dag, Node, RetryPolicy};
use drover::engine::{
    self, Dispatch, DispatchFuture, Event, EventSink, NodeRun, Options, RunRecord,
};
use drover::task::{LogLevel, LogLine, LogSource, NodeStatus, Outcome, Task};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Builds a [`Dag`] node by node; `needs` name nodes added before.
pub struct Builder {
    nodes: Vec<Node>,
}

pub fn dag() -> Builder {
    Builder { nodes: Vec::new() }
}

impl Builder {
    pub fn node(mut self, name: &str, needs: &[&str]) -> Self {
        let mut needs: Vec<usize> = needs.iter().map(|need| self.index(need)).collect();
        needs.sort_unstable();
        needs.dedup();
        self.nodes.push(Node {
            needs,
            ..Node::new(name, "test")
        });
        self
    }

    /// Changes the last node added.
    pub fn with(mut self, change: impl FnOnce(&mut Node)) -> Self {
        if let Some(node) = self.nodes.last_mut() {
            change(node);
        }
        self
    }

    pub fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node `{name}` yet"))
    }

    pub fn build(self) -> Arc<Dag> {
        Arc::new(from_nodes(self.nodes))
    }
}

/// A validated [`Dag`] from nodes whose `needs` are set.
pub fn from_nodes(nodes: Vec<Node>) -> Dag {
    drover::dag::from_nodes("test-dag", nodes, &|_| true).expect("a valid test DAG")
}

/// A layered DAG: `layers` layers of `width` nodes, each node needing two
/// nodes of the layer before.
pub fn layered(layers: usize, width: usize) -> Arc<Dag> {
    let mut nodes = Vec::with_capacity(layers * width);
    for layer in 0..layers {
        for i in 0..width {
            let needs = if layer == 0 {
                Vec::new()
            } else {
                let base = (layer - 1) * width;
                let mut needs = vec![base + i, base + (i + 1) % width];
                needs.sort_unstable();
                needs.dedup();
                needs
            };
            nodes.push(plain_node(format!("n{layer}-{i}"), needs));
        }
    }
    Arc::new(from_nodes(nodes))
}

pub fn plain_node(name: String, needs: Vec<usize>) -> Node {
    Node {
        needs,
        ..Node::new(name, "noop")
    }
}

/// What the test dispatcher does for a node. Nodes without one succeed at once.
#[derive(Debug, Clone)]
pub enum Act {
    /// Succeed with these outputs.
    Succeed(Vec<(&'static str, &'static str)>),
    /// Fail with this message and exit code.
    Fail(&'static str, Option<i32>),
    /// Fail with this message and these outputs (a test report, say).
    FailWith(&'static str, Vec<(&'static str, &'static str)>),
    /// Fail the first `n` attempts, then succeed.
    FailTimes(u32),
    /// Sleep, then succeed (or end canceled if canceled first).
    Sleep(Duration),
    /// Sleep, then fail.
    SleepFail(Duration),
    /// Wait until canceled, then report canceled.
    Hang,
    /// Wait until canceled, then keep going this long before reporting.
    IgnoreCancel(Duration),
    /// Report a timeout at once.
    ReportTimeout,
    /// Write these log lines, then succeed.
    Log(Vec<&'static str>),
    /// Panic.
    Panic,
}

/// One attempt the dispatcher saw.
#[derive(Debug, Clone)]
pub struct Call {
    pub node: String,
    pub attempt: u32,
    pub start_seq: u64,
    pub end_seq: u64,
    pub started: Instant,
    pub ended: Instant,
    pub saw_cancel: bool,
    pub task: Task,
}

#[derive(Default)]
pub struct Probe {
    seq: AtomicU64,
    running: AtomicUsize,
    pub max_running: AtomicUsize,
    calls: Mutex<Vec<Call>>,
}

impl Probe {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls lock").clone()
    }

    pub fn calls_of(&self, node: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.node == node)
            .collect()
    }

    pub fn max_running(&self) -> usize {
        self.max_running.load(Ordering::SeqCst)
    }
}

/// A scripted dispatcher recording every attempt.
#[derive(Clone, Default)]
pub struct TestDispatch {
    acts: Arc<HashMap<String, Act>>,
    pub probe: Arc<Probe>,
}

impl TestDispatch {
    pub fn new(acts: &[(&str, Act)]) -> Self {
        TestDispatch {
            acts: Arc::new(
                acts.iter()
                    .map(|(n, a)| ((*n).to_owned(), a.clone()))
                    .collect(),
            ),
            probe: Arc::default(),
        }
    }
}

impl Dispatch for TestDispatch {
    fn dispatch(&self, run: NodeRun) -> DispatchFuture {
        let act = self.acts.get(&run.task.node).cloned();
        let probe = Arc::clone(&self.probe);
        Box::pin(async move {
            let start_seq = probe.seq.fetch_add(1, Ordering::SeqCst);
            let started = Instant::now();
            let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
            probe.max_running.fetch_max(now, Ordering::SeqCst);
            let node: Arc<str> = run.task.node.as_str().into();
            let cancel = run.cancel.clone();
            let outcome = match act {
                None => Outcome::with_message(NodeStatus::Success, ""),
                Some(Act::Succeed(outputs)) => Outcome {
                    status: NodeStatus::Success,
                    exit_code: Some(0),
                    outputs: outputs
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect::<BTreeMap<_, _>>(),
                    message: String::new(),
                },
                Some(Act::Fail(message, code)) => Outcome {
                    exit_code: code,
                    ..Outcome::failure(message)
                },
                Some(Act::FailWith(message, outputs)) => Outcome {
                    outputs: outputs
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect::<BTreeMap<_, _>>(),
                    ..Outcome::failure(message)
                },
                Some(Act::FailTimes(n)) if run.task.attempt <= n => {
                    Outcome::failure(format!("attempt {} fails", run.task.attempt))
                }
                Some(Act::FailTimes(_)) => Outcome::with_message(NodeStatus::Success, ""),
                Some(Act::Sleep(d)) => tokio::select! {
                    _ = tokio::time::sleep(d) => Outcome::with_message(NodeStatus::Success, ""),
                    _ = cancel.cancelled() => Outcome::with_message(NodeStatus::Canceled, "canceled"),
                },
                Some(Act::SleepFail(d)) => tokio::select! {
                    _ = tokio::time::sleep(d) => Outcome::failure("slept and failed"),
                    _ = cancel.cancelled() => Outcome::with_message(NodeStatus::Canceled, "canceled"),
                },
                Some(Act::Hang) => {
                    cancel.cancelled().await;
                    Outcome::with_message(NodeStatus::Canceled, "canceled")
                }
                Some(Act::IgnoreCancel(extra)) => {
                    cancel.cancelled().await;
                    tokio::time::sleep(extra).await;
                    Outcome::with_message(NodeStatus::Success, "")
                }
                Some(Act::ReportTimeout) => {
                    Outcome::with_message(NodeStatus::Timeout, "driver says too slow")
                }
                Some(Act::Log(lines)) => {
                    for line in lines {
                        let line = LogLine {
                            node: Arc::clone(&node),
                            source: LogSource::Stdout,
                            level: LogLevel::Info,
                            message: line.to_owned(),
                        };
                        run.logs.send(line).await.expect("log channel open");
                    }
                    Outcome::with_message(NodeStatus::Success, "")
                }
                Some(Act::Panic) => panic!("test dispatcher panics on purpose"),
            };
            probe.running.fetch_sub(1, Ordering::SeqCst);
            let call = Call {
                node: run.task.node.clone(),
                attempt: run.task.attempt,
                start_seq,
                end_seq: probe.seq.fetch_add(1, Ordering::SeqCst),
                started,
                ended: Instant::now(),
                saw_cancel: cancel.is_cancelled(),
                task: run.task,
            };
            probe.calls.lock().expect("calls lock").push(call);
            outcome
        })
    }
}

/// Succeeds at once.
pub struct Noop;

impl Dispatch for Noop {
    fn dispatch(&self, _run: NodeRun) -> DispatchFuture {
        Box::pin(std::future::ready(Outcome::with_message(
            NodeStatus::Success,
            "",
        )))
    }
}

/// Folds a run's events into a record as they come, the way a server keeps
/// its live view of a run.
#[derive(Clone)]
pub struct Fold(pub Arc<Mutex<RunRecord>>);

impl Fold {
    pub fn new(dag: &Dag, id: &str) -> Self {
        Fold(Arc::new(Mutex::new(RunRecord::new(dag, id.to_owned()))))
    }

    pub fn record(&self) -> RunRecord {
        self.0.lock().expect("fold lock").clone()
    }
}

impl EventSink for Fold {
    fn emit(&self, event: Event) -> impl std::future::Future<Output = ()> + Send {
        self.0.lock().expect("fold lock").apply(&event);
        std::future::ready(())
    }
}

/// Runs `dag` on `dispatch` with `options`, no cancel, and checks that
/// folding the run's events gives the record the run returned.
pub async fn run_with(dag: &Arc<Dag>, dispatch: &TestDispatch, options: Options) -> RunRecord {
    let fold = Fold::new(dag, "run-1");
    let record = engine::run(
        Arc::clone(dag),
        "run-1".to_owned(),
        Arc::new(dispatch.clone()),
        options,
        fold.clone(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(
        fold.record(),
        record,
        "the fold of the events differs from the record"
    );
    record
}

pub fn parallel(n: usize) -> Options {
    Options {
        parallelism: n,
        ..Options::default()
    }
}

/// The record of the node called `name`.
pub fn node<'a>(record: &'a RunRecord, name: &str) -> &'a engine::NodeRecord {
    record
        .nodes
        .iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("no record for `{name}`"))
}

pub fn retries(max: u32, backoff_ms: u64, max_backoff_ms: u64) -> RetryPolicy {
    RetryPolicy {
        max,
        backoff: Duration::from_millis(backoff_ms),
        max_backoff: Duration::from_millis(max_backoff_ms),
    }
}
