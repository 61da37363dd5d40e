//! The run service behind `drover serve`: accepts DAGs, runs them in this
//! process through the engine, makes every event durable before anyone
//! sees it, and carries unfinished runs on after a restart. Where runs are
//! kept and where their nodes run is its [`Backend`]'s business.

mod live;
mod metrics;
mod wire;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio_util::task::TaskTracker;

pub use live::{After, LiveRun, Published, Window};
pub use metrics::{Gauges, Metrics, render_pools};
pub use wire::{Numbered, WireEvent};

use crate::admission::{self, Accepted, Refused};
use crate::backend::{Backend, Follow, RunHost, RunStart};
use crate::dag::{self, NodeState};
use crate::engine::{
    self, CUT_MARKER, Event, EventSink, LogLimits, LogTally, Options, RunRecord, RunState,
};
use crate::registry::Registry;
use crate::rfc3339;
use crate::runtime::Runtime;
use crate::store::{Api, RunMeta, RunOptions, RunStore, StoreError, Write};
use crate::task::LogSource;

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
    /// The run has not ended: it cannot be re-run yet.
    #[error("run `{0}` is still running: re-run it once it has ended (or cancel it first)")]
    Running(String),
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

/// What a re-run runs again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Rerun {
    /// Every node.
    #[default]
    All,
    /// Only what did not succeed, and what needs it: the nodes that
    /// succeeded keep their outputs (see [`engine::reused`]).
    Failed,
}

/// Which runs [`Runs::list`] lists; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// In this state.
    pub state: Option<RunState>,
    /// With a DAG name that holds this, whatever the case.
    pub name: Option<String>,
    /// Submitted at or after this time.
    pub since: Option<SystemTime>,
    /// Submitted before this time.
    pub until: Option<SystemTime>,
}

/// The run service; cheap to clone.
#[derive(Clone)]
pub struct Runs {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    backend: Arc<dyn Backend>,
    live: Mutex<HashMap<String, Arc<LiveRun>>>,
    metrics: Metrics,
    /// Nodes at once per run, unless the submission says otherwise.
    parallelism: usize,
    /// The most nodes at once a run may ask for.
    max_parallelism: usize,
    /// How much of each attempt's log is kept.
    log_limits: LogLimits,
    /// How many of each run's latest events stay in memory.
    window: Window,
    tasks: TaskTracker,
}

/// How [`Runs::stop`] left the runs that were in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Other leaders carry this many on at once.
    HandedOver(usize),
    /// This many carry on when the server starts again.
    Left(usize),
}

impl Runs {
    /// A run service running the drivers of `registry` through `backend`;
    /// runs get `parallelism` slots each unless they ask for another number
    /// (up to what the backend allows).
    pub fn new(registry: Registry, backend: Arc<dyn Backend>, parallelism: usize) -> Runs {
        let max = backend.max_parallelism();
        let runtime = registry.runtime();
        let log_limits = runtime.config().limits.log_limits();
        let window = Window::from_config(&runtime.config().server);
        Runs {
            inner: Arc::new(Inner {
                registry,
                backend,
                live: Mutex::new(HashMap::new()),
                metrics: Metrics::default(),
                parallelism: parallelism.clamp(1, max),
                max_parallelism: max,
                log_limits,
                window,
                tasks: TaskTracker::new(),
            }),
        }
    }

    fn store(&self) -> &dyn RunStore {
        self.inner.backend.store().as_ref()
    }

    /// Where runs are kept and where their nodes run.
    pub fn backend(&self) -> &dyn Backend {
        self.inner.backend.as_ref()
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
        let accepted = self.admit(submission.text, parallelism).await?;
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
            rerun_of: None,
        };
        self.begin(meta, accepted, submission.text, Vec::new())
            .await
    }

    /// Runs the DAG of run `id`, which has ended, again as a new run with
    /// the same options: every node, or with [`Rerun::Failed`] only those
    /// that did not succeed and what needs them. The DAG is accepted
    /// afresh, as a submission of its text would be: driver names resolve
    /// to what the registry has now.
    pub async fn rerun(&self, id: &str, from: Rerun) -> Result<RunMeta, RunsError> {
        let old = self.meta(id).await?;
        if old.finished_at.is_none() {
            return Err(RunsError::Running(id.to_owned()));
        }
        let text = self.source(id).await?;
        let parallelism = old.options.parallelism.clamp(1, self.inner.max_parallelism);
        let accepted = self.admit(&text, parallelism).await?;
        let now = rfc3339::now();
        let first = match from {
            Rerun::All => Vec::new(),
            Rerun::Failed => engine::reused(&accepted.dag, &self.record(id).await?, now),
        };
        let meta = RunMeta {
            id: new_run_id(),
            name: accepted.dag.name.clone(),
            state: RunState::Running,
            nodes: accepted.dag.nodes.len(),
            // Made through drover's API, whichever the old run came through.
            api: Api::Native,
            options: RunOptions {
                parallelism,
                ..old.options
            },
            submitted_at: now,
            finished_at: None,
            cancel_requested: false,
            drivers: accepted.drivers.pins(),
            rerun_of: Some(old.id),
        };
        self.begin(meta, accepted, &text, first).await
    }

    /// Checks `text` as [`Self::submit`] would, storing and running nothing.
    pub async fn validate(&self, text: &str) -> Result<Accepted, RunsError> {
        Ok(admission::accept(
            &self.inner.registry,
            text,
            None,
            self.inner.parallelism,
            &BTreeMap::new(),
        )
        .await?)
    }

    /// Accepts `text` for a new run, resolving its drivers afresh.
    async fn admit(&self, text: &str, parallelism: usize) -> Result<Accepted, RunsError> {
        let no_pins = BTreeMap::new();
        let accepted = admission::accept(&self.inner.registry, text, None, parallelism, &no_pins)
            .await
            .inspect_err(|_| {
                self.inner.metrics.refused.fetch_add(1, Ordering::Relaxed);
            })?;
        Ok(accepted)
    }

    /// Stores the new run `meta` of `accepted` (its DAG `text`), with
    /// `first` as its first events, all in one write; then starts it from
    /// the record those events make, as a restart would.
    async fn begin(
        &self,
        meta: RunMeta,
        accepted: Accepted,
        text: &str,
        first: Vec<Event>,
    ) -> Result<RunMeta, RunsError> {
        let dag = &accepted.dag;
        let mut replay = Replay::new(fresh_record(dag, &meta));
        let mut writes = Vec::with_capacity(1 + first.len());
        writes.push(Write::submit(&meta, text));
        for (seq, event) in (1..).zip(&first) {
            let numbered = Numbered {
                seq,
                event: WireEvent::from_event(dag, event),
            };
            // Plain data: serializing it cannot fail.
            let json = serde_json::to_string(&numbered).unwrap_or_default();
            writes.push(Write::Event {
                run: meta.id.clone(),
                seq,
                event: json.clone().into_bytes(),
            });
            let published = Published {
                seq,
                event: numbered.event,
                json,
            };
            replay.push(dag, Arc::new(published), self.inner.window.events);
        }
        self.store().write(writes).await?;
        self.inner.metrics.submitted.fetch_add(1, Ordering::Relaxed);
        self.start(meta.clone(), accepted, replay);
        Ok(meta)
    }

    /// Carries on every run a previous server left unfinished (in
    /// distributed mode, those no other leader holds). Call once, before
    /// serving.
    pub async fn recover(&self) -> Result<usize, RunsError> {
        let host: Arc<dyn RunHost> = Arc::new(self.clone());
        Ok(self.inner.backend.recover(host).await?)
    }

    async fn recover_one(&self, meta: RunMeta) -> Result<(), StoreError> {
        let id = meta.id.clone();
        let text = self.store().source(&id).await?.unwrap_or_default();
        let accepted = match admission::accept(
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
                    rerun_of: meta.rerun_of.clone(),
                    nodes: Vec::new(),
                };
                self.store()
                    .write(vec![Write::meta(&meta), Write::record(&record)])
                    .await?;
                return Ok(());
            }
        };
        // Folded batch by batch: only the window's worth stays in memory.
        let mut replay = Replay::new(fresh_record(&accepted.dag, &meta));
        self.replay(&id, &accepted.dag, &mut replay, self.inner.window.events)
            .await?;
        tracing::info!(run = %id, events = replay.last, "carrying on a run after a restart");
        let record = &replay.record;
        if record.state != RunState::Running {
            // It ended, but the server stopped before storing the record.
            let mut meta = meta;
            meta.state = record.state;
            meta.finished_at = Some(rfc3339::now());
            self.store()
                .write(vec![Write::meta(&meta), Write::record(record)])
                .await?;
            return Ok(());
        }
        self.start(meta, accepted, replay);
        Ok(())
    }

    /// Runs `accepted` in the background from where `replay` got to.
    fn start(&self, meta: RunMeta, accepted: Accepted, replay: Replay) {
        let Accepted { dag, drivers } = accepted;
        // The run's components stay on disk until it ends, even if their
        // versions are removed meanwhile.
        let hold = self.inner.registry.hold(drivers.digests());
        let id = meta.id.clone();
        let Replay {
            record,
            last,
            latest,
            since_running,
        } = replay;
        // An attempt may still be running elsewhere (on a drone): wait for
        // it rather than count it as interrupted.
        let reattach = self.inner.backend.reattaches();
        // The attempts re-attached to: how many of their drones' lines the
        // store has, and what their log holds for the cap to count on from.
        let mut reattached = HashMap::new();
        let mut logged = BTreeMap::new();
        for (index, so_far) in since_running {
            let node = &record.nodes[index];
            if reattach && node.state == NodeState::Running {
                reattached.insert((index, node.current_attempt()), so_far.from_drones);
                logged.insert(index, so_far.tally);
            }
        }
        let options = Options {
            parallelism: meta.options.parallelism,
            fail_fast: meta.options.fail_fast,
            run_timeout: meta.options.timeout(),
            reattach,
            log_limits: self.inner.log_limits,
            logged,
        };
        let cancel_requested = meta.cancel_requested;
        let next = last + 1;
        let live = LiveRun::new(
            meta,
            Arc::clone(&dag),
            record.clone(),
            last,
            latest,
            self.inner.window,
            Arc::clone(self.inner.backend.store()),
        );
        if cancel_requested {
            live.cancel.cancel();
        }
        self.live_map().insert(id.clone(), Arc::clone(&live));
        let run = self.inner.backend.dispatch(RunStart {
            id: &id,
            drivers,
            released: live.lost.clone(),
            reattached,
        });
        let sink = Persist {
            live: Arc::clone(&live),
            store: Arc::clone(self.inner.backend.store()),
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
                record = engine::resume(dag, record, run.dispatch, options, sink, cancel) => Some(record),
                () = lost.cancelled() => None,
            };
            run.wind_up.await;
            match record {
                Some(record) => this.finish(&live, &record).await,
                None => {
                    tracing::warn!(run = %live.meta().id, "another leader has the run now; stopped here");
                    this.let_go(&live).await;
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
            .store()
            .write(vec![Write::meta(&meta), Write::record(record)])
            .await;
        if let Err(e) = written {
            if let StoreError::LeaseLost { .. } = e {
                tracing::warn!(run = %meta.id, "another leader has the run now; its record is theirs to store");
                live.lost.cancel();
                self.let_go(live).await;
                return;
            }
            // The events are durable; a restart rebuilds the record from them.
            tracing::error!(run = %meta.id, error = %e, "cannot store the final record");
            self.inner.backend.run_ended(&meta.id, false).await;
            return;
        }
        self.inner.backend.run_ended(&meta.id, true).await;
        self.inner.metrics.run_finished(record.state);
        self.live_map().remove(&meta.id);
    }

    /// Drops a run from memory without storing anything: another leader
    /// carries it on.
    async fn let_go(&self, live: &LiveRun) {
        let id = live.meta().id;
        self.inner.backend.run_ended(&id, false).await;
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
        self.store()
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
        if let Some(record) = self.store().record(id).await? {
            return Ok(record);
        }
        let Some(meta) = self.store().run(id).await? else {
            return Err(RunsError::NotFound(id.to_owned()));
        };
        let text = self.source(id).await?;
        let dag = dag::parse(&text, None, &|_| true).map_err(|e| StoreError::Corrupt {
            what: "DAG",
            message: format!("run {id}: {e}"),
        })?;
        let mut replay = Replay::new(fresh_record(&dag, &meta));
        self.replay(id, &dag, &mut replay, 0).await?;
        Ok(replay.record)
    }

    /// Folds the stored events of run `id` after `replay`'s last into it,
    /// keeping the latest `window` of them.
    async fn replay(
        &self,
        id: &str,
        dag: &dag::Dag,
        replay: &mut Replay,
        window: usize,
    ) -> Result<(), StoreError> {
        // Batch by batch: only the window's worth stays in memory.
        loop {
            let batch = published(id, self.store().events(id, replay.last, 4096).await?)?;
            if batch.is_empty() {
                return Ok(());
            }
            for event in batch {
                replay.push(dag, event, window);
            }
        }
    }

    /// The DAG text run `id` was submitted with.
    pub async fn source(&self, id: &str) -> Result<String, RunsError> {
        self.store()
            .source(id)
            .await?
            .ok_or_else(|| RunsError::NotFound(id.to_owned()))
    }

    /// Up to `limit` runs that `filter` keeps, newest first, after run
    /// `before`.
    pub async fn list(
        &self,
        filter: &RunFilter,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunMeta>, RunsError> {
        let name = filter.name.as_deref().map(str::to_lowercase);
        let keep = |meta: &RunMeta| {
            filter.state.is_none_or(|s| s == meta.state)
                && filter.since.is_none_or(|t| meta.submitted_at >= t)
                && filter.until.is_none_or(|t| meta.submitted_at < t)
                && name
                    .as_deref()
                    .is_none_or(|part| meta.name.to_lowercase().contains(part))
        };
        Ok(self.store().runs(before, limit, &keep).await?)
    }

    /// Cancels run `id`. The cancel is durable: a run carried on after a
    /// restart is canceled too.
    pub async fn cancel(&self, id: &str) -> Result<RunMeta, RunsError> {
        let Some(live) = self.live(id) else {
            return match self.inner.backend.request_cancel(id).await? {
                Some(meta) if meta.finished_at.is_some() => Err(RunsError::Ended(id.to_owned())),
                Some(meta) => Ok(meta),
                None => Err(RunsError::NotFound(id.to_owned())),
            };
        };
        let meta = live.update_meta(|meta| meta.cancel_requested = true);
        self.store().write(vec![Write::meta(&meta)]).await?;
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
        let stored = self.store().events(id, after, limit).await?;
        Ok(published(id, stored)?)
    }

    /// A reader of stored events that waits for more, when runs may be in
    /// progress elsewhere (in distributed mode).
    pub fn follower(&self) -> Option<Box<dyn Follow>> {
        self.inner.backend.follower()
    }

    /// Up to `limit` stored events of run `id` after `after`, waiting a
    /// moment for the first (none if nothing came meanwhile).
    pub async fn follow(
        &self,
        follower: &mut dyn Follow,
        id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Arc<Published>>, RunsError> {
        let stored = follower
            .next(id, after, limit, Duration::from_secs(2))
            .await?;
        Ok(published(id, stored)?)
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
            let (events, bytes) = run.window();
            gauges.live_events += events as u64;
            gauges.live_event_bytes += bytes as u64;
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

    /// At shutdown: in distributed mode, stops every run here without
    /// writing anything more for it and lets other leaders carry them on
    /// at once; otherwise leaves them to carry on at the next start.
    pub async fn stop(&self) -> Stopped {
        let ids: Vec<String> = self.live_map().keys().cloned().collect();
        if !self.inner.backend.hands_over() {
            return Stopped::Left(ids.len());
        }
        for id in &ids {
            RunHost::lose(self, id);
        }
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        self.inner.backend.hand_over(&ids).await;
        Stopped::HandedOver(ids.len())
    }
}

#[async_trait::async_trait]
impl RunHost for Runs {
    fn running(&self) -> Vec<String> {
        self.live_map().keys().cloned().collect()
    }

    fn runs_here(&self, id: &str) -> bool {
        self.live(id).is_some()
    }

    async fn carry_on(&self, meta: RunMeta) -> Result<(), StoreError> {
        self.recover_one(meta).await
    }

    fn lose(&self, id: &str) {
        if let Some(live) = self.live(id) {
            tracing::warn!(run = %id, "lost the run's lease; stopping it here");
            live.lost.cancel();
        }
    }

    fn cancel_here(&self, id: &str) {
        if let Some(run) = self.live(id) {
            if !run.cancel.is_cancelled() {
                tracing::info!(run = %id, "canceled through another leader");
            }
            run.update_meta(|m| m.cancel_requested = true);
            run.cancel.cancel();
        }
    }
}

/// The engine's event sink for a served run: numbers each event, queues it
/// for the store, and publishes it once it is durable.
struct Persist {
    live: Arc<LiveRun>,
    store: Arc<dyn RunStore>,
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

/// A run's stored events folded in order: the record they make, the last
/// one's `seq`, the latest of them (a window's worth), and what each node
/// logged since its last `running` event.
struct Replay {
    record: RunRecord,
    last: u64,
    latest: VecDeque<Arc<Published>>,
    since_running: HashMap<usize, Logged>,
}

/// What a node's attempt running now has logged, as its stored events say.
#[derive(Debug, Default)]
struct Logged {
    /// The lines its drones wrote (all but drover's own): how many of
    /// their reports a leader re-attaching to it skips.
    from_drones: u64,
    /// What the log cap has counted of it, to count on from.
    tally: LogTally,
}

impl Replay {
    /// The replay of a run with no events yet, at `record`.
    fn new(record: RunRecord) -> Replay {
        Replay {
            record,
            last: 0,
            latest: VecDeque::new(),
            since_running: HashMap::new(),
        }
    }

    /// Takes the next stored event of a run of `dag`, keeping the latest
    /// `window` of them.
    fn push(&mut self, dag: &dag::Dag, published: Arc<Published>, window: usize) {
        if let Some(event) = published.event.to_event(dag) {
            self.record.apply(&event);
        }
        match &published.event {
            WireEvent::Node {
                node,
                state: NodeState::Running,
                ..
            } => {
                if let Some(index) = dag.index_of(node) {
                    self.since_running.insert(index, Logged::default());
                }
            }
            WireEvent::Log {
                node,
                source,
                message,
                ..
            } => {
                let logged = dag
                    .index_of(node)
                    .and_then(|i| self.since_running.get_mut(&i));
                if let Some(logged) = logged {
                    if *source != LogSource::Drover {
                        logged.from_drones += 1;
                    }
                    if *source == LogSource::Drover && message.starts_with(CUT_MARKER) {
                        // The first lines dropped were counted by the leader
                        // that dropped them; the reports after the skipped
                        // ones are read again, and counted here on.
                        logged.tally.cut = true;
                    } else if !logged.tally.cut {
                        logged.tally.lines += 1;
                        logged.tally.bytes += message.len() as u64;
                    }
                }
            }
            _ => {}
        }
        self.last = published.seq;
        self.latest.push_back(published);
        while self.latest.len() > window {
            self.latest.pop_front();
        }
    }
}

/// The record a run described by `meta` starts from: every node `initial`.
fn fresh_record(dag: &dag::Dag, meta: &RunMeta) -> RunRecord {
    let mut record = RunRecord::new(dag, meta.id.clone());
    record.rerun_of.clone_from(&meta.rerun_of);
    record
}

/// Stored events of run `id` as published events.
fn published(id: &str, stored: Vec<(u64, Vec<u8>)>) -> Result<Vec<Arc<Published>>, StoreError> {
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

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::task::LogLevel;

    fn published(seq: u64, event: WireEvent) -> Arc<Published> {
        Arc::new(Published {
            seq,
            event,
            json: String::new(),
        })
    }

    fn log(source: LogSource, message: &str) -> WireEvent {
        WireEvent::Log {
            node: "a".to_owned(),
            source,
            level: LogLevel::Info,
            message: message.to_owned(),
        }
    }

    #[test]
    fn a_replay_keeps_a_window_and_counts_the_running_attempts_log() {
        let dag = dag::parse("name: one\nnodes: {a: {driver: noop}}", None, &|_| true).unwrap();
        let mut replay = Replay::new(RunRecord::new(&dag, "r".to_owned()));
        let running = WireEvent::Node {
            node: "a".to_owned(),
            state: NodeState::Running,
            state_code: NodeState::Running.code(),
            attempt: 1,
            at: SystemTime::UNIX_EPOCH,
            error: None,
            outputs: None,
            reused_from: None,
        };
        let cut = format!("{CUT_MARKER}2 lines / 6 bytes (…); later lines are dropped");
        let events = [
            running,
            log(LogSource::Stdout, "one"),
            log(LogSource::Drover, "waiting for a drone"),
            log(LogSource::Stderr, "two"),
            log(LogSource::Drover, &cut),
        ];
        for (i, event) in events.into_iter().enumerate() {
            replay.push(&dag, published(i as u64 + 1, event), 3);
        }
        assert_eq!(replay.last, 5);
        let window: Vec<u64> = replay.latest.iter().map(|p| p.seq).collect();
        assert_eq!(window, [3, 4, 5]);
        let logged = &replay.since_running[&0];
        // The drone's lines the store has (to skip when re-attaching), and
        // what the cap counted, the marker aside.
        assert_eq!(logged.from_drones, 2);
        assert_eq!(
            logged.tally,
            LogTally {
                lines: 3,
                bytes: 3 + 19 + 3,
                cut: true,
                dropped_lines: 0,
                dropped_bytes: 0,
            }
        );
        assert_eq!(replay.record.nodes[0].state, NodeState::Running);
    }
}
