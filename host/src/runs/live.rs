//! A run in progress as the server sees it: its record, a window of its
//! latest events (only what is durable), and a signal for watchers when
//! more arrive.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::RunsError;
use super::metrics::Metrics;
use super::wire::{Numbered, WireEvent};
use crate::dag::{Dag, NodeState};
use crate::engine::{Event, RunRecord};
use crate::store::{RunMeta, RunStore};

/// One durable event, with its JSON made once for every watcher.
#[derive(Debug)]
pub struct Published {
    pub seq: u64,
    pub event: WireEvent,
    pub json: String,
}

impl Published {
    /// Roughly the memory it takes: its JSON, the text it holds again
    /// as an event, and a little for the rest.
    fn size(&self) -> usize {
        let text = match &self.event {
            WireEvent::Log { message, .. } => message.len(),
            WireEvent::Node { error, .. } => error.as_ref().map_or(0, String::len),
            _ => 0,
        };
        self.json.len() + text + 128
    }
}

/// How many of a run's latest events stay in memory for its watchers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// At most this many events...
    pub events: usize,
    /// ...taking at most this many bytes (see [`Published`]); the latest
    /// event stays whatever its size.
    pub bytes: usize,
}

impl Window {
    /// The window `[server]` configures.
    pub fn from_config(server: &crate::config::ServerSettings) -> Window {
        Window {
            events: server.live_window_events.max(1),
            bytes: usize::try_from(server.live_window_mib.saturating_mul(1024 * 1024))
                .unwrap_or(usize::MAX),
        }
    }
}

/// What [`LiveRun::events_after`] found.
#[derive(Debug)]
pub enum After {
    /// The durable events after the one asked for (none yet, if it is the
    /// latest), and whether the run has ended (its `finished` event is
    /// durable).
    Events(Vec<Arc<Published>>, bool),
    /// The events after the one asked for have left the window: they are
    /// durable, so read them from the store.
    Stored,
}

/// A run being executed by this server.
pub struct LiveRun {
    /// The run's id.
    pub id: String,
    pub dag: Arc<Dag>,
    /// Fires to cancel the run.
    pub cancel: CancellationToken,
    /// Fires when another leader has taken the run over (Redis mode): the
    /// run stops here at once, and watchers read on from the store.
    pub lost: CancellationToken,
    meta: Mutex<RunMeta>,
    state: Mutex<State>,
    /// How many events are durable (the last `seq`).
    durable: watch::Sender<u64>,
    /// Where the events that left the window are read from.
    store: Arc<dyn RunStore>,
}

struct State {
    record: RunRecord,
    /// The latest durable events, in order with no gaps; the last one has
    /// the `seq` [`LiveRun::durable`] says.
    window: VecDeque<Arc<Published>>,
    /// What the events in `window` take ([`Published::size`]).
    window_bytes: usize,
    limits: Window,
    /// Whether the `finished` event is durable.
    ended: bool,
}

impl State {
    /// Adds the next durable event and lets the oldest go past the limits.
    fn push(&mut self, event: Arc<Published>) {
        self.ended |= matches!(event.event, WireEvent::Finished { .. });
        self.window_bytes += event.size();
        self.window.push_back(event);
        while self.window.len() > self.limits.events
            || (self.window_bytes > self.limits.bytes && self.window.len() > 1)
        {
            if let Some(old) = self.window.pop_front() {
                self.window_bytes -= old.size();
            }
        }
    }
}

impl LiveRun {
    /// A run of `dag` at the point `record` describes, after `durable`
    /// events of which `latest` are the last ones (in order, the last with
    /// `seq` `durable`), all of them in `store`; `window` of them stay in
    /// memory from here on.
    pub fn new(
        meta: RunMeta,
        dag: Arc<Dag>,
        record: RunRecord,
        durable: u64,
        latest: impl IntoIterator<Item = Arc<Published>>,
        window: Window,
        store: Arc<dyn RunStore>,
    ) -> Arc<LiveRun> {
        let mut state = State {
            record,
            window: VecDeque::new(),
            window_bytes: 0,
            limits: window,
            ended: false,
        };
        for event in latest {
            state.push(event);
        }
        Arc::new(LiveRun {
            id: meta.id.clone(),
            dag,
            cancel: CancellationToken::new(),
            lost: CancellationToken::new(),
            meta: Mutex::new(meta),
            state: Mutex::new(state),
            durable: watch::Sender::new(durable),
            store,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; carry on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The run's summary.
    pub fn meta(&self) -> RunMeta {
        self.meta.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes the run's summary.
    pub fn update_meta(&self, change: impl FnOnce(&mut RunMeta)) -> RunMeta {
        let mut meta = self.meta.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut meta);
        meta.clone()
    }

    /// The record as of the last durable event.
    pub fn record(&self) -> RunRecord {
        self.state().record.clone()
    }

    /// How many nodes are in state `a` and how many in state `b`, without
    /// copying the record.
    pub fn count_states(&self, a: NodeState, b: NodeState) -> (u64, u64) {
        let state = self.state();
        state.record.nodes.iter().fold((0, 0), |(x, y), node| {
            (
                x + u64::from(node.state == a),
                y + u64::from(node.state == b),
            )
        })
    }

    /// How many events are durable.
    pub fn durable(&self) -> u64 {
        *self.durable.borrow()
    }

    /// The durable events after `after`, at most `limit`, and whether the
    /// run has ended (its `finished` event is durable), read together so
    /// that a watcher past the end knows that nothing more will come; or,
    /// when they have left the window, [`After::Stored`].
    pub fn events_after(&self, after: u64, limit: usize) -> After {
        let state = self.state();
        let first = state
            .window
            .front()
            .map_or_else(|| self.durable().saturating_add(1), |e| e.seq);
        if after.saturating_add(1) < first {
            return After::Stored;
        }
        let start = usize::try_from(after - (first - 1))
            .unwrap_or(usize::MAX)
            .min(state.window.len());
        let events = state.window.range(start..).take(limit).cloned().collect();
        After::Events(events, state.ended)
    }

    /// Up to `limit` events after `after` that have left the window, from
    /// the store (which has every durable event).
    pub async fn stored(&self, after: u64, limit: usize) -> Result<Vec<Arc<Published>>, RunsError> {
        let stored = self.store.events(&self.id, after, limit).await?;
        Ok(super::published(&self.id, stored)?)
    }

    /// Up to `limit` durable events after `after`, from the window or, for
    /// those that have left it, the store; without waiting for more.
    pub async fn read(&self, after: u64, limit: usize) -> Result<Vec<Arc<Published>>, RunsError> {
        match self.events_after(after, limit) {
            After::Events(events, _) => Ok(events),
            After::Stored => self.stored(after, limit).await,
        }
    }

    /// How many events the window holds now, and roughly how many bytes.
    pub fn window(&self) -> (usize, usize) {
        let state = self.state();
        (state.window.len(), state.window_bytes)
    }

    /// Wakes when more events are durable.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.durable.subscribe()
    }

    /// Publishes `numbered`, now durable: brings the record up to date and
    /// wakes the watchers. Called in `seq` order.
    pub(super) fn publish(
        &self,
        numbered: Numbered,
        json: String,
        event: &Event,
        metrics: &Metrics,
    ) {
        let mut state = self.state();
        if let Event::NodeState {
            node,
            state: to,
            at,
            ..
        } = event
            && to.is_final()
        {
            let started = state.record.nodes.get(*node).and_then(|n| n.started_at);
            metrics.node_finished(*to, started.and_then(|s| at.duration_since(s).ok()));
        }
        state.record.apply(event);
        let seq = numbered.seq;
        state.push(Arc::new(Published {
            seq,
            event: numbered.event,
            json,
        }));
        drop(state);
        self.durable.send_replace(seq);
    }
}
