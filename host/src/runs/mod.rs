//! The run service behind `drover serve`: accepts DAGs, runs them in this
//! process through the engine, makes every event durable before anyone
//! sees it, and carries unfinished runs on after a restart (in Redis mode,
//! also the runs of other leaders that stopped: see `lease`).

mod lease;
mod live;
mod metrics;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::task::TaskTracker;

pub use live::{LiveRun, Published};
pub use metrics::{Gauges, Metrics, render_pools};
pub use wire::{Numbered, WireEvent};

use crate::dag::{self, NodeState};
use crate::engine::{self, Dispatch, Event, EventSink, Options, RunRecord, RunState};
use crate::registry::Registry;
use crate::rfc3339;
use crate::runtime::Runtime;
use crate::store::redis::Follower;
use crate::store::{Api, RunMeta, RunOptions, RunStore, StoreError, Write};
use crate::task::LogSource;
use crate::transport::redis::RedisDispatcher;
use crate::transport::{self, Accepted, LocalDispatch, Refused};

/// What can go wrong with a request to the run service.
#[derive(Debug, thiserror::Error)]
pub enum RunsError {
    /// The DAG was refused; nothing was stored.
    #[error("the DAG was refused:\n{0}")]
    Refused(#[from] Refused),
    /// A run option is out of range.
    #[error("{0}")]
    BadOption(String),
    /// No run has this id.
    #[error("no run has the id `{0}`")]
    NotFound(String),
    /// The run has ended: it cannot be canceled any more.
    #[error("run `{0}` has already ended")]
    Ended(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A DAG to run, and how.
#[derive(Debug, Clone)]
pub struct Submission<'a> {
    /// The DAG text, in any format drover reads.
    pub text: &'a str,
    /// Which API it came through.
    pub api: Api,
    /// How many nodes may run at once; the server's default when `None`.
    pub parallelism: Option<usize>,
    /// Stop at the first failure.
    pub fail_fast: bool,
    /// The run-wide timeout.
    pub timeout: Option<Duration>,
}

impl<'a> Submission<'a> {
    /// `text` through drover's own API, with default options.
    pub fn new(text: &'a str) -> Self {
        Submission {
            text,
            api: Api::Native,
            parallelism: None,
            fail_fast: false,
            timeout: None,
        }
    }
}

/// The run service; cheap to clone.
#[derive(Clone)]
pub struct Runs {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    store: RunStore,
    live: Mutex<HashMap<String, Arc<LiveRun>>>,
    metrics: Metrics,
    /// Nodes at once per run, unless the submission says otherwise.
    parallelism: usize,
    /// The most nodes at once a run may ask for: the instance pool's size.
    max_parallelism: usize,
    /// Where each run's folder of node workspaces goes, resolved once.
    workspaces: PathBuf,
    tasks: TaskTracker,
    /// Stops the lease upkeep of Redis mode.
    upkeep: tokio_util::sync::CancellationToken,
    /// Where nodes go in distributed mode: drones, through Redis. `None`:
    /// this process runs them.
    dispatcher: Option<RedisDispatcher>,
}

impl Runs {
    /// A run service executing drivers from `registry` and keeping runs in
    /// `store`; runs get `parallelism` slots each unless they ask for
    /// another number.
    pub fn new(registry: Registry, store: impl Into<RunStore>, parallelism: usize) -> Runs {
        Runs::with_dispatcher(registry, store, parallelism, None)
    }

    /// A run service whose nodes go to drones through `dispatcher` (when
    /// given) instead of running here. Drones bound how many nodes run at
    /// once, so a run may ask for up to [`MAX_DISTRIBUTED_PARALLELISM`].
    pub fn with_dispatcher(
        registry: Registry,
        store: impl Into<RunStore>,
        parallelism: usize,
        dispatcher: Option<RedisDispatcher>,
    ) -> Runs {
        let store = store.into();
        let runtime = registry.runtime();
        let max = match dispatcher {
            Some(_) => MAX_DISTRIBUTED_PARALLELISM,
            None => runtime.config().limits.max_instances.max(1) as usize,
        };
        let root = runtime.config().workspace_dir();
        // Resolved here once rather than for every run; if it cannot be
        // made, each node that needs a workspace says so.
        let workspaces = std::fs::create_dir_all(&root)
            .and_then(|_| root.canonicalize())
            .unwrap_or(root);
        Runs {
            inner: Arc::new(Inner {
                registry,
                store,
                live: Mutex::new(HashMap::new()),
                metrics: Metrics::default(),
                parallelism: parallelism.clamp(1, max),
                max_parallelism: max,
                workspaces,
                tasks: TaskTracker::new(),
                upkeep: tokio_util::sync::CancellationToken::new(),
                dispatcher,
            }),
        }
    }

    fn live_map(&self) -> MutexGuard<'_, HashMap<String, Arc<LiveRun>>> {
        self.inner.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The runtime runs execute on.
    pub fn runtime(&self) -> &Runtime {
        self.inner.registry.runtime()
    }

    /// The drivers runs can use.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Validates and stores a DAG, then starts running it. Returns once the
    /// run is durable; a refused DAG stores nothing.
    pub async fn submit(&self, submission: Submission<'_>) -> Result<RunMeta, RunsError> {
        let parallelism = match submission.parallelism {
            Some(0) => {
                return Err(RunsError::BadOption(
                    "parallelism must be at least 1".into(),
                ));
            }
            Some(n) => n.min(self.inner.max_parallelism),
            None => self.inner.parallelism,
        };
        let no_pins = BTreeMap::new();
        let accepted = transport::accept(
            &self.inner.registry,
            submission.text,
            None,
            parallelism,
            &no_pins,
        )
        .await
        .inspect_err(|_| {
            self.inner.metrics.refused.fetch_add(1, Ordering::Relaxed);
        })?;
        let meta = RunMeta {
            id: new_run_id(),
            name: accepted.dag.name.clone(),
            state: RunState::Running,
            nodes: accepted.dag.nodes.len(),
            api: submission.api,
            options: RunOptions {
                parallelism,
                fail_fast: submission.fail_fast,
                timeout_ms: submission
                    .timeout
                    .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            },
            submitted_at: rfc3339::now(),
            finished_at: None,
            cancel_requested: false,
            drivers: accepted.drivers.pins(),
        };
        self.inner
            .store
            .write(vec![Write::submit(&meta, submission.text)])
            .await?;
        self.inner.metrics.submitted.fetch_add(1, Ordering::Relaxed);
        let record = RunRecord::new(&accepted.dag, meta.id.clone());
        self.start(meta.clone(), accepted, record, Vec::new());
        Ok(meta)
    }

    /// Carries on every run a previous server left unfinished. Call once,
    /// before serving.
    pub async fn recover(&self) -> Result<usize, RunsError> {
        if self.inner.store.redis().is_some() {
            // Runs another leader holds stay with it; the rest are ours now.
            let count = self.take_over().await?;
            lease::start(self.clone());
            return Ok(count);
        }
        let unfinished = self.inner.store.unfinished().await?;
        let count = unfinished.len();
        for meta in unfinished {
            self.recover_one(meta).await?;
        }
        Ok(count)
    }

    async fn recover_one(&self, meta: RunMeta) -> Result<(), RunsError> {
        let id = meta.id.clone();
        let text = self.inner.store.source(&id).await?.unwrap_or_default();
        let accepted = match transport::accept(
            &self.inner.registry,
            &text,
            None,
            meta.options.parallelism,
            &meta.drivers,
        )
        .await
        {
            Ok(accepted) => accepted,
            Err(refused) => {
                // The DAG was valid when accepted; a driver it needs has
                // gone since. End the run rather than retrying for ever.
                tracing::error!(run = %id, error = %refused, "cannot carry on run; failing it");
                let mut meta = meta;
                meta.state = RunState::Failure;
                meta.finished_at = Some(rfc3339::now());
                // Without the DAG its nodes are unknown: an empty record.
                let record = RunRecord {
                    id: id.clone(),
                    name: meta.name.clone(),
                    state: RunState::Failure,
                    nodes: Vec::new(),
                };
                self.inner
                    .store
                    .write(vec![Write::meta(&meta), Write::record(&record)])
                    .await?;
                return Ok(());
            }
        };
        let mut record = RunRecord::new(&accepted.dag, id.clone());
        let mut events = Vec::new();
        loop {
            let after = events.last().map_or(0, |p: &Arc<Published>| p.seq);
            let batch = self.stored_events(&id, after, 4096).await?;
            if batch.is_empty() {
                break;
            }
            for published in &batch {
                if let Some(event) = published.event.to_event(&accepted.dag) {
                    record.apply(&event);
                }
            }
            events.extend(batch);
        }
        tracing::info!(run = %id, events = events.len(), "carrying on a run after a restart");
        if record.state != RunState::Running {
            // It ended, but the server stopped before storing the record.
            let mut meta = meta;
            meta.state = record.state;
            meta.finished_at = Some(rfc3339::now());
            self.inner
                .store
                .write(vec![Write::meta(&meta), Write::record(&record)])
                .await?;
            return Ok(());
        }
        self.start(meta, accepted, record, events);
        Ok(())
    }

    /// Runs `accepted` from `record` in the background.
    fn start(
        &self,
        meta: RunMeta,
        accepted: Accepted,
        record: RunRecord,
        events: Vec<Arc<Published>>,
    ) {
        let Accepted { dag, drivers } = accepted;
        // The run's components stay on disk until it ends, even if their
        // versions are removed meanwhile.
        let hold = self.inner.registry.hold(drivers.digests());
        let id = meta.id.clone();
        let options = Options {
            parallelism: meta.options.parallelism,
            fail_fast: meta.options.fail_fast,
            run_timeout: meta.options.timeout(),
            // A drone may still be running the attempt a previous leader
            // sent: wait for it rather than count it as interrupted.
            reattach: self.inner.dispatcher.is_some(),
            log_limits: self.runtime().config().limits.log_limits(),
            ..Options::default()
        };
        let cancel_requested = meta.cancel_requested;
        let next = events.len() as u64 + 1;
        let reattached = match &self.inner.dispatcher {
            Some(_) => reattached(&dag, &record, &events),
            None => HashMap::new(),
        };
        let live = LiveRun::new(meta, Arc::clone(&dag), record.clone(), events);
        if cancel_requested {
            live.cancel.cancel();
        }
        self.live_map().insert(id.clone(), Arc::clone(&live));
        let workspaces = self.inner.workspaces.join(&id);
        // Where the run's nodes go: to drones through Redis, or this
        // process runs them itself.
        let mut node_workspaces = None;
        let dispatch: Arc<dyn Dispatch> = match &self.inner.dispatcher {
            Some(dispatcher) => dispatcher.run(&id, &drivers, live.lost.clone(), reattached),
            None => {
                let local =
                    LocalDispatch::resolved(self.runtime().clone(), drivers, workspaces.clone())
                        .recycling_workspaces();
                node_workspaces = Some(Arc::clone(local.workspaces()));
                Arc::new(local)
            }
        };
        let sink = Persist {
            live: Arc::clone(&live),
            store: self.inner.store.clone(),
            runs: Arc::clone(&self.inner),
            id: id.clone(),
            next: AtomicU64::new(next),
        };
        let this = self.clone();
        self.inner.tasks.spawn(async move {
            let cancel = live.cancel.clone();
            let lost = live.lost.clone();
            // A lost lease stops the run here at once: dropping the engine
            // aborts it, and nothing more is written for the run.
            let record = tokio::select! {
                record = engine::resume(dag, record, dispatch, options, sink, cancel) => Some(record),
                () = lost.cancelled() => None,
            };
            // Folders nodes left used are removed as they finish; wait for
            // those under way before the run's folder goes (on the blocking
            // pool only if there is a removal thread to wait for).
            if let Some(node_workspaces) = node_workspaces {
                if node_workspaces.removing() {
                    let _ = tokio::task::spawn_blocking(move || node_workspaces.finish()).await;
                } else {
                    node_workspaces.finish();
                }
            }
            // Most runs of drivers that need no workspace made no folder:
            // look before paying for a blocking-pool round trip.
            if std::fs::symlink_metadata(&workspaces).is_ok() {
                let _ = tokio::fs::remove_dir_all(&workspaces).await;
            }
            match record {
                Some(record) => this.finish(&live, &record).await,
                None => {
                    tracing::warn!(run = %live.meta().id, "another leader has the run now; stopped here");
                    this.let_go(&live);
                }
            }
            drop(hold);
        });
    }

    /// Stores the final record of a run and lets it go from memory.
    async fn finish(&self, live: &LiveRun, record: &RunRecord) {
        let meta = live.update_meta(|meta| {
            meta.state = record.state;
            meta.finished_at = Some(rfc3339::now());
        });
        let written = self
            .inner
            .store
            .write(vec![Write::meta(&meta), Write::record(record)])
            .await;
        if let Err(e) = written {
            if let StoreError::LeaseLost { .. } = e {
                tracing::warn!(run = %meta.id, "another leader has the run now; its record is theirs to store");
                live.lost.cancel();
                self.let_go(live);
                return;
            }
            // The events are durable; a restart rebuilds the record from them.
            tracing::error!(run = %meta.id, error = %e, "cannot store the final record");
            if let Some(dispatcher) = &self.inner.dispatcher {
                dispatcher.release_run(&meta.id);
            }
            return;
        }
        if let Some(dispatcher) = &self.inner.dispatcher {
            dispatcher.finish_run(&meta.id).await;
        }
        self.inner.metrics.run_finished(record.state);
        self.live_map().remove(&meta.id);
    }

    /// Drops a run from memory without storing anything: another leader
    /// carries it on.
    fn let_go(&self, live: &LiveRun) {
        let id = live.meta().id;
        if let Some(dispatcher) = &self.inner.dispatcher {
            dispatcher.release_run(&id);
        }
        let mut map = self.live_map();
        if map
            .get(&id)
            .is_some_and(|l| std::ptr::eq(Arc::as_ptr(l), live))
        {
            map.remove(&id);
        }
    }

    /// The run in progress with this id, if there is one.
    pub fn live(&self, id: &str) -> Option<Arc<LiveRun>> {
        self.live_map().get(id).cloned()
    }

    /// The summary of run `id`.
    pub async fn meta(&self, id: &str) -> Result<RunMeta, RunsError> {
        if let Some(live) = self.live(id) {
            return Ok(live.meta());
        }
        self.inner
            .store
            .run(id)
            .await?
            .ok_or_else(|| RunsError::NotFound(id.to_owned()))
    }

    /// The record of run `id`: live while it runs, stored after; for a run
    /// another leader runs, as of its stored events.
    pub async fn record(&self, id: &str) -> Result<RunRecord, RunsError> {
        if let Some(live) = self.live(id) {
            return Ok(live.record());
        }
        if let Some(record) = self.inner.store.record(id).await? {
            return Ok(record);
        }
        if self.inner.store.run(id).await?.is_none() {
            return Err(RunsError::NotFound(id.to_owned()));
        }
        let text = self.source(id).await?;
        let dag = dag::parse(&text, None, &|_| true).map_err(|e| StoreError::Corrupt {
            what: "DAG",
            message: format!("run {id}: {e}"),
        })?;
        let mut record = RunRecord::new(&dag, id.to_owned());
        let mut after = 0;
        loop {
            let batch = self.stored_events(id, after, 4096).await?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            for published in &batch {
                if let Some(event) = published.event.to_event(&dag) {
                    record.apply(&event);
                }
            }
        }
        Ok(record)
    }

    /// The DAG text run `id` was submitted with.
    pub async fn source(&self, id: &str) -> Result<String, RunsError> {
        self.inner
            .store
            .source(id)
            .await?
            .ok_or_else(|| RunsError::NotFound(id.to_owned()))
    }

    /// Up to `limit` runs, newest first, after run `before`, only those in
    /// `state` when given.
    pub async fn list(
        &self,
        state: Option<RunState>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunMeta>, RunsError> {
        Ok(self
            .inner
            .store
            .runs(before, limit, |meta| state.is_none_or(|s| s == meta.state))
            .await?)
    }

    /// Cancels run `id`. The cancel is durable: a run carried on after a
    /// restart is canceled too.
    pub async fn cancel(&self, id: &str) -> Result<RunMeta, RunsError> {
        let Some(live) = self.live(id) else {
            if let Some(redis) = self.inner.store.redis() {
                // Another leader runs it (or will, after taking it over):
                // the stored flag and a message tell it.
                return match redis.request_cancel(id).await? {
                    Some(meta) if meta.finished_at.is_some() => {
                        Err(RunsError::Ended(id.to_owned()))
                    }
                    Some(meta) => Ok(meta),
                    None => Err(RunsError::NotFound(id.to_owned())),
                };
            }
            return match self.inner.store.run(id).await? {
                Some(_) => Err(RunsError::Ended(id.to_owned())),
                None => Err(RunsError::NotFound(id.to_owned())),
            };
        };
        let meta = live.update_meta(|meta| meta.cancel_requested = true);
        self.inner.store.write(vec![Write::meta(&meta)]).await?;
        live.cancel.cancel();
        Ok(meta)
    }

    /// Up to `limit` stored events of run `id` after `after`.
    pub async fn stored_events(
        &self,
        id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Arc<Published>>, RunsError> {
        let stored = self.inner.store.events(id, after, limit).await?;
        published(id, stored)
    }

    /// In Redis mode, a reader of stored events that waits for more.
    pub fn follower(&self) -> Option<Follower> {
        self.inner.store.redis().map(|redis| redis.follower())
    }

    /// Up to `limit` stored events of run `id` after `after`, waiting a
    /// moment for the first (none if nothing came meanwhile).
    pub async fn follow(
        &self,
        follower: &mut Follower,
        id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Arc<Published>>, RunsError> {
        let stored = follower
            .next(id, after, limit, Duration::from_secs(2))
            .await?;
        published(id, stored)
    }

    /// The metrics, in Prometheus' text format.
    pub fn metrics(&self) -> String {
        let live: Vec<Arc<LiveRun>> = self.live_map().values().cloned().collect();
        let mut gauges = Gauges {
            runs_running: live.len() as u64,
            ..Gauges::default()
        };
        for run in live {
            let (running, queued) = run.count_states(NodeState::Running, NodeState::ToRun);
            gauges.nodes_running += running;
            gauges.nodes_queued += queued;
        }
        self.inner.metrics.render(gauges)
    }

    /// How many runs are in progress.
    pub fn running(&self) -> usize {
        self.live_map().len()
    }

    /// Waits for every run in progress to end (after canceling them, when
    /// `cancel` is set).
    pub async fn drain(&self, cancel: bool) {
        if cancel {
            for live in self.live_map().values() {
                live.cancel.cancel();
            }
        }
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}

/// The engine's event sink for a served run: numbers each event, queues it
/// for the store, and publishes it once it is durable.
struct Persist {
    live: Arc<LiveRun>,
    store: RunStore,
    runs: Arc<Inner>,
    id: String,
    next: AtomicU64,
}

impl EventSink for Persist {
    async fn emit(&self, event: Event) {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let numbered = Numbered {
            seq,
            event: WireEvent::from_event(&self.live.dag, &event),
        };
        // Plain data: serializing it cannot fail.
        let json = serde_json::to_string(&numbered).unwrap_or_default();
        let write = Write::Event {
            run: self.id.clone(),
            seq,
            event: json.clone().into_bytes(),
        };
        let live = Arc::clone(&self.live);
        let runs = Arc::clone(&self.runs);
        let then = Box::new(move |result: Result<(), Arc<StoreError>>| {
            if let Err(e) = &result
                && let StoreError::LeaseLost { .. } = **e
            {
                // Another leader has the run: it is stopped here, and what
                // it did since is not shown.
                live.lost.cancel();
                return;
            }
            if let Err(e) = result {
                // Watchers still get the event (a gap would stall them), but
                // a run whose events cannot be kept must not go on.
                tracing::error!(seq = numbered.seq, error = %e, "an event could not be stored; canceling the run");
                live.cancel.cancel();
            }
            live.publish(numbered, json, &event, &runs.metrics);
        });
        if let Err(e) = self.store.write_then(vec![write], then).await {
            tracing::error!(run = %self.id, error = %e, "the store has stopped; event lost");
        }
    }
}

/// The attempts a resumed run re-attaches to (its nodes still running),
/// each with how many lines its drones wrote that `events` has: the lines
/// logged since the node's last `running` event, but those drover itself
/// wrote there.
fn reattached(
    dag: &dag::Dag,
    record: &RunRecord,
    events: &[Arc<Published>],
) -> HashMap<(usize, u32), u64> {
    let mut lines: HashMap<usize, u64> = HashMap::new();
    for published in events {
        match &published.event {
            WireEvent::Node {
                node,
                state: NodeState::Running,
                ..
            } => {
                if let Some(index) = dag.index_of(node) {
                    lines.insert(index, 0);
                }
            }
            WireEvent::Log { node, source, .. } if *source != LogSource::Drover => {
                if let Some(count) = dag.index_of(node).and_then(|i| lines.get_mut(&i)) {
                    *count += 1;
                }
            }
            _ => {}
        }
    }
    record
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, node)| node.state == NodeState::Running)
        .map(|(index, node)| {
            (
                (index, node.current_attempt()),
                lines.get(&index).copied().unwrap_or_default(),
            )
        })
        .collect()
}

/// Stored events of run `id` as published events.
fn published(id: &str, stored: Vec<(u64, Vec<u8>)>) -> Result<Vec<Arc<Published>>, RunsError> {
    let mut found = Vec::with_capacity(stored.len());
    for (seq, json) in stored {
        let numbered: Numbered =
            serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt {
                what: "event",
                message: format!("run {id}, event {seq}: {e}"),
            })?;
        found.push(Arc::new(Published {
            seq,
            event: numbered.event,
            json: String::from_utf8_lossy(&json).into_owned(),
        }));
    }
    Ok(found)
}

/// The most nodes at once a run may ask for in distributed mode, where
/// the drones' concurrency is the real bound.
pub const MAX_DISTRIBUTED_PARALLELISM: usize = 65_536;

/// A new run id: 16 hex digits of the time in nanoseconds, strictly
/// increasing within a process (so ids sort in submission order), then 4
/// of the process id (so that two processes sharing a folder differ).
pub fn new_run_id() -> String {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    let mut last = LAST.load(Ordering::Relaxed);
    let id = loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(seen) => last = seen,
        }
    };
    format!("{id:016x}{:04x}", std::process::id() & 0xffff)
}
