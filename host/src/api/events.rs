//! Live views of a run: Server-Sent Events of everything, and one node's log as text.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt, stream};
use serde::Deserialize;
use tokio::sync::watch;
use utoipa::IntoParams;

use super::extract::{Path, Query};
use super::{ApiError, AppState};
use crate::backend::Follow;
use crate::runs::{After, LiveRun, Published, Runs, RunsError, WireEvent};

/// How many events are read in one go.
const BATCH: usize = 512;

/// Where a run's events come from: memory while it runs here (its latest
/// events; older ones from the store), the store otherwise (followed as
/// they come, when another leader runs it).
enum Source {
    Live(Arc<LiveRun>, watch::Receiver<u64>),
    Stored(Runs, String, Option<Box<dyn Follow>>),
}

impl Source {
    async fn open(runs: &Runs, id: &str) -> Result<Source, RunsError> {
        if let Some(live) = runs.live(id) {
            let rx = live.subscribe();
            return Ok(Source::Live(live, rx));
        }
        // In embedded mode only a run that has ended leaves the live set,
        // and its events are all durable by then. In Redis mode another
        // leader may be running it: follow its events.
        let meta = runs.meta(id).await?;
        let follow = match meta.finished_at {
            Some(_) => None,
            None => runs.follower(),
        };
        Ok(Source::Stored(runs.clone(), id.to_owned(), follow))
    }

    /// Up to `limit` durable events after `after`, without waiting for more.
    async fn read(&self, after: u64, limit: usize) -> Result<Vec<Arc<Published>>, RunsError> {
        match self {
            Source::Live(live, _) => live.read(after, limit).await,
            Source::Stored(runs, id, _) => runs.stored_events(id, after, limit).await,
        }
    }
}

/// Reads a run's events in order from after a given one, waiting for more
/// while the run goes on, and ends after the `finished` event.
struct Cursor {
    source: Source,
    after: u64,
    buffer: VecDeque<Arc<Published>>,
    done: bool,
}

impl Cursor {
    async fn next(&mut self) -> Option<Arc<Published>> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                self.after = event.seq;
                if matches!(event.event, WireEvent::Finished { .. }) {
                    self.done = true;
                }
                return Some(event);
            }
            if self.done {
                return None;
            }
            match &mut self.source {
                Source::Live(live, rx) => {
                    // Mark the signal seen before reading, so that nothing
                    // published in between is missed.
                    rx.borrow_and_update();
                    let (batch, ended) = match live.events_after(self.after, BATCH) {
                        After::Events(batch, ended) => (batch, ended),
                        After::Stored => {
                            // Gone from the window, so durable: the store
                            // has them, and the window carries on after.
                            match live.stored(self.after, BATCH).await {
                                Ok(batch) if !batch.is_empty() => {
                                    self.buffer.extend(batch);
                                    continue;
                                }
                                Ok(_) => {
                                    tracing::error!(run = %live.id, after = self.after, "events left the window but the store has none");
                                    return None;
                                }
                                Err(e) => {
                                    tracing::error!(run = %live.id, error = %e, "cannot read stored events");
                                    return None;
                                }
                            }
                        }
                    };
                    if batch.is_empty() {
                        if ended {
                            // Resumed after the `finished` event.
                            return None;
                        }
                        tokio::select! {
                            // The sender lives as long as `live`: this only
                            // fails if it were dropped.
                            changed = rx.changed() => changed.ok()?,
                            // Another leader carries the run on: the stream
                            // ends, and a watcher resuming from its last
                            // event id follows the run there.
                            () = live.lost.cancelled() => return None,
                        }
                    }
                    self.buffer.extend(batch);
                }
                Source::Stored(runs, id, follow) => {
                    let batch = match runs.stored_events(id, self.after, BATCH).await {
                        Ok(batch) => batch,
                        Err(e) => {
                            tracing::error!(run = %id, error = %e, "cannot read stored events");
                            return None;
                        }
                    };
                    if !batch.is_empty() {
                        self.buffer.extend(batch);
                        continue;
                    }
                    let Some(follower) = follow else {
                        return None;
                    };
                    match runs.follow(follower.as_mut(), id, self.after, BATCH).await {
                        Ok(batch) if !batch.is_empty() => self.buffer.extend(batch),
                        Ok(_) => {
                            // Nothing for a while: a run that ended without
                            // a `finished` event (its DAG could not be
                            // carried on) has nothing more to come.
                            let ended = runs.meta(id).await.is_ok_and(|m| m.finished_at.is_some());
                            if ended {
                                *follow = None;
                            }
                        }
                        Err(e) => {
                            tracing::error!(run = %id, error = %e, "cannot follow stored events");
                            return None;
                        }
                    }
                }
            }
        }
    }

    fn into_stream(self) -> impl Stream<Item = Arc<Published>> + Send {
        stream::unfold(self, |mut cursor| async move {
            cursor.next().await.map(|event| (event, cursor))
        })
    }
}

/// Where a stream of events starts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct EventsQuery {
    /// Start after this event id (like `Last-Event-ID`).
    after: Option<u64>,
}

/// Where a reconnecting stream of events starts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(
    dead_code,
    reason = "a shape for the document; the handler reads the header itself"
)]
pub(super) struct EventsHeaders {
    /// Resume after this event id; wins over `after`.
    #[serde(rename = "Last-Event-ID")]
    #[param(nullable = false)]
    last_event_id: Option<u64>,
}

pub(super) async fn stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let after = match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::invalid_parameter(
                    "header `Last-Event-ID`: must be the id (a number) of an event",
                )
            })?,
        None => query.after.unwrap_or(0),
    };
    let cursor = Cursor {
        source: Source::open(&state.runs, &id).await?,
        after,
        buffer: VecDeque::new(),
        done: false,
    };
    let events = cursor
        .into_stream()
        .take_until(state.shutdown.clone().cancelled_owned())
        .map(|published| {
            Ok(Event::default()
                .id(published.seq.to_string())
                .event(published.event.kind())
                .data(&published.json))
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// How much of a log to send.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct LogsQuery {
    /// Keep streaming until the node ends.
    #[serde(default)]
    follow: bool,
}

pub(super) async fn logs(
    State(state): State<AppState>,
    Path((id, node)): Path<(String, String)>,
    Query(query): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let source = Source::open(&state.runs, &id).await?;
    let known = match &source {
        Source::Live(live, _) => live.dag.index_of(&node).is_some(),
        Source::Stored(runs, id, _) => runs.record(id).await?.nodes.iter().any(|n| n.name == node),
    };
    if !known {
        return Err(ApiError::not_found(format!(
            "run `{id}` has no node `{node}`"
        )));
    }
    let line_of = {
        let node = node.clone();
        move |published: &Published| match &published.event {
            WireEvent::Log {
                node: n, message, ..
            } if *n == node => Some(Bytes::from(format!("{message}\n"))),
            _ => None,
        }
    };
    let body = if query.follow {
        let cursor = Cursor {
            source,
            after: 0,
            buffer: VecDeque::new(),
            done: false,
        };
        let lines = cursor
            .into_stream()
            .take_until(state.shutdown.clone().cancelled_owned())
            .take_while(move |published| {
                let ended = match &published.event {
                    WireEvent::Node { node: n, state, .. } => *n == node && state.is_final(),
                    WireEvent::Finished { .. } => true,
                    _ => false,
                };
                std::future::ready(!ended)
            })
            .filter_map(move |published| {
                std::future::ready(line_of(&published).map(Ok::<_, Infallible>))
            });
        Body::from_stream(lines)
    } else {
        // Everything durable now, a batch at a time: a long log is never
        // held whole. A read that fails ends the body with an error, so the
        // client cannot take a cut log for the whole.
        let until = match &source {
            Source::Live(live, _) => live.durable(),
            Source::Stored(..) => u64::MAX,
        };
        let chunks = stream::unfold((source, 0), move |(source, after)| {
            let line_of = line_of.clone();
            async move {
                if after >= until {
                    return None;
                }
                match source.read(after, BATCH).await {
                    Ok(batch) => {
                        let last = batch.last()?.seq;
                        let text: Vec<u8> = batch
                            .iter()
                            .filter(|p| p.seq <= until)
                            .filter_map(|p| line_of(p))
                            .flat_map(|line| line.to_vec())
                            .collect();
                        Some((Ok(Bytes::from(text)), (source, last)))
                    }
                    Err(e) => Some((
                        Err(std::io::Error::other(e.to_string())),
                        (source, u64::MAX),
                    )),
                }
            }
        });
        Body::from_stream(chunks)
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::dag;
    use crate::engine::{RunRecord, RunState};
    use crate::runs::{Numbered, Window};
    use crate::store::{Api, RunMeta, RunOptions, Store, Write};
    use crate::task::{LogLevel, LogSource};

    /// A live run of a one-node DAG whose stored events are `events` (then
    /// `seq` 1, 2, …) and whose window holds the last `window` of them;
    /// the store lives in the returned folder.
    async fn live_run(events: Vec<WireEvent>, window: usize) -> (Arc<LiveRun>, tempfile::TempDir) {
        let dag = dag::parse("name: one\nnodes: {a: {driver: noop}}", None, &|_| true);
        let dag = Arc::new(dag.expect("a one-node DAG"));
        let meta = RunMeta {
            id: "r".to_owned(),
            name: "one".to_owned(),
            state: RunState::Success,
            nodes: 1,
            api: Api::Native,
            options: RunOptions {
                parallelism: 1,
                fail_fast: false,
                timeout_ms: None,
            },
            submitted_at: SystemTime::UNIX_EPOCH,
            finished_at: Some(SystemTime::UNIX_EPOCH),
            cancel_requested: false,
            drivers: Default::default(),
            rerun_of: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("runs.redb")).unwrap();
        let mut published = Vec::new();
        let mut writes = vec![Write::submit(&meta, "")];
        for (i, event) in events.into_iter().enumerate() {
            let seq = i as u64 + 1;
            let numbered = Numbered { seq, event };
            let json = serde_json::to_string(&numbered).unwrap();
            writes.push(Write::Event {
                run: "r".to_owned(),
                seq,
                event: json.clone().into_bytes(),
            });
            published.push(Arc::new(Published {
                seq,
                event: numbered.event,
                json,
            }));
        }
        store.write(writes).await.unwrap();
        let durable = published.len() as u64;
        let record = RunRecord::new(&dag, "r".to_owned());
        let window = Window {
            events: window,
            bytes: usize::MAX,
        };
        let live = LiveRun::new(
            meta,
            dag,
            record,
            durable,
            published,
            window,
            Arc::new(store),
        );
        (live, dir)
    }

    fn finished() -> WireEvent {
        WireEvent::Finished {
            state: RunState::Success,
        }
    }

    fn cursor(live: Arc<LiveRun>, after: u64) -> Cursor {
        let rx = live.subscribe();
        Cursor {
            source: Source::Live(live, rx),
            after,
            buffer: VecDeque::new(),
            done: false,
        }
    }

    async fn drain(mut cursor: Cursor) -> Vec<u64> {
        let mut seqs = Vec::new();
        while let Some(event) = cursor.next().await {
            seqs.push(event.seq);
        }
        seqs
    }

    #[tokio::test]
    async fn a_watcher_resuming_after_the_end_of_a_live_run_gets_nothing_and_stops() {
        let (live, _dir) = live_run(vec![finished()], 1).await;
        let mut past_end = cursor(Arc::clone(&live), 1);
        let next = tokio::time::timeout(Duration::from_secs(5), past_end.next()).await;
        assert!(matches!(next, Ok(None)), "the stream must end, not wait");

        let mut from_start = cursor(live, 0);
        let first = from_start.next().await.expect("the finished event");
        assert_eq!(first.seq, 1);
        assert!(from_start.next().await.is_none());
    }

    #[tokio::test]
    async fn events_that_left_the_window_are_read_from_the_store_without_gaps() {
        let log = |i: usize| WireEvent::Log {
            node: "a".to_owned(),
            source: LogSource::Stdout,
            level: LogLevel::Info,
            message: format!("line {i}"),
        };
        let mut events: Vec<WireEvent> = (1..=1200).map(log).collect();
        events.push(finished());
        let (live, _dir) = live_run(events, 100).await;
        assert_eq!(live.window().0, 100, "only the window stays in memory");
        assert!(matches!(live.events_after(0, 10), After::Stored));
        // From the start, across the window's edge (batches of 512 from the
        // store, then the window), and from inside the window.
        assert_eq!(
            drain(cursor(Arc::clone(&live), 0)).await,
            (1..=1201).collect::<Vec<_>>()
        );
        assert_eq!(
            drain(cursor(Arc::clone(&live), 1000)).await,
            (1001..=1201).collect::<Vec<_>>()
        );
        assert_eq!(
            drain(cursor(Arc::clone(&live), 1150)).await,
            (1151..=1201).collect::<Vec<_>>()
        );
        let read = live.read(1095, 10).await.unwrap();
        let seqs: Vec<u64> = read.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, (1096..=1105).collect::<Vec<_>>());
    }
}
