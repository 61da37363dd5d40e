//! A run in progress as the server sees it: its record and events so far
//! (only what is durable), and a signal for watchers when more arrive.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use super::wire::{Numbered, WireEvent};
use crate::dag::{Dag, NodeState};
use crate::engine::{Event, RunRecord};
use crate::store::RunMeta;

/// One durable event, with its JSON made once for every watcher.
#[derive(Debug)]
pub struct Published {
    pub seq: u64,
    pub event: WireEvent,
    pub json: String,
}

/// A run being executed by this server.
pub struct LiveRun {
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
}

struct State {
    record: RunRecord,
    /// `events[i]` has `seq` i + 1.
    events: Vec<Arc<Published>>,
}

impl LiveRun {
    /// A run of `dag` at the point `record` and `events` describe.
    pub fn new(
        meta: RunMeta,
        dag: Arc<Dag>,
        record: RunRecord,
        events: Vec<Arc<Published>>,
    ) -> Arc<LiveRun> {
        let durable = events.len() as u64;
        Arc::new(LiveRun {
            dag,
            cancel: CancellationToken::new(),
            lost: CancellationToken::new(),
            meta: Mutex::new(meta),
            state: Mutex::new(State { record, events }),
            durable: watch::Sender::new(durable),
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
    /// that a watcher past the end knows that nothing more will come.
    pub fn events_after(&self, after: u64, limit: usize) -> (Vec<Arc<Published>>, bool) {
        let state = self.state();
        let start = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(state.events.len());
        let end = start.saturating_add(limit).min(state.events.len());
        let ended = state
            .events
            .last()
            .is_some_and(|e| matches!(e.event, WireEvent::Finished { .. }));
        (state.events[start..end].to_vec(), ended)
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
        state.events.push(Arc::new(Published {
            seq,
            event: numbered.event,
            json,
        }));
        drop(state);
        self.durable.send_replace(seq);
    }
}
