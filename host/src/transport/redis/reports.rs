//! The reports of one run: a reader task on its own connection blocks on the
//! run's reports stream and routes each report to the attempt waiting for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::entries::{self, RawEntry};
use super::protocol::{self, Report};
use super::retry::Backoff;
use crate::task::{LogLine, LogSink, Outcome};

/// How long one blocking read waits for a report before asking again.
const BLOCK: Duration = Duration::from_secs(5);
/// How long past [`BLOCK`] an answer may take before the connection is
/// taken for dead and opened again.
const SILENCE: Duration = Duration::from_secs(5);
/// The most reports one read takes.
const COUNT: usize = 1024;

/// An attempt of the run: (node index, attempt number).
pub(super) type Key = (usize, u32);

/// How long the reader of a resumed run waits for the engine to re-attach
/// to its running attempts before it reads anyway.
const ATTACH_WAIT: Duration = Duration::from_secs(10);

/// An attempt waiting for its reports.
struct Waiter {
    /// The node's name, for the log lines forwarded.
    node: Arc<str>,
    logs: LogSink,
    /// The last log line forwarded, by number, of each drone that ran the
    /// attempt (one, unless a drone was taken for dead and the attempt
    /// claimed by another).
    logged: HashMap<String, u64>,
    /// Lines still to drop because the store has them: those a previous
    /// leader forwarded before the run was taken over.
    stored: u64,
    done: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct State {
    waiting: HashMap<Key, Waiter>,
    /// The first `Done` of every attempt seen: later ones are ignored, and an
    /// attempt dispatched after its `Done` was read (re-attached after a
    /// restart) finds its outcome here.
    done: HashMap<Key, Outcome>,
    /// The attempts a resumed run re-attaches to and that have not
    /// registered yet, with how many of their log lines the store has.
    reattached: HashMap<Key, u64>,
}

/// What [`Routes::register`] found.
pub(super) enum Registered {
    /// Wait for the outcome here.
    Waiting(oneshot::Receiver<Outcome>),
    /// The attempt had already ended.
    Done(Outcome),
}

/// Where the reports of one run go.
pub(super) struct Routes {
    run: String,
    state: Mutex<State>,
    /// Fires when the run's reports need no more reading.
    pub(super) stop: CancellationToken,
    /// Fires when every re-attached attempt has registered: reading starts
    /// then, so that none of their lines is read with nobody to take it.
    attached: CancellationToken,
}

impl Routes {
    /// The routes of run `run`, which re-attaches to the attempts in
    /// `reattached` (each with how many of its log lines the store has):
    /// empty for a new run.
    pub(super) fn new(run: String, reattached: HashMap<Key, u64>) -> Self {
        let attached = CancellationToken::new();
        if reattached.is_empty() {
            attached.cancel();
        }
        Routes {
            run,
            state: Mutex::new(State {
                reattached,
                ..State::default()
            }),
            stop: CancellationToken::new(),
            attached,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Routes the reports of attempt `key` to `logs` and the returned
    /// receiver, unless its outcome is known already.
    pub(super) fn register(&self, key: Key, node: Arc<str>, logs: LogSink) -> Registered {
        let mut state = self.state();
        let stored = state.reattached.remove(&key);
        if stored.is_some() && state.reattached.is_empty() {
            self.attached.cancel();
        }
        let stored = stored.unwrap_or(0);
        if let Some(outcome) = state.done.get(&key) {
            return Registered::Done(outcome.clone());
        }
        if self.stop.is_cancelled() {
            return Registered::Done(Outcome::failure(
                "drover stopped reading this run's reports",
            ));
        }
        let (done, receiver) = oneshot::channel();
        state.waiting.insert(
            key,
            Waiter {
                node,
                logs,
                logged: HashMap::new(),
                stored,
                done,
            },
        );
        Registered::Waiting(receiver)
    }

    /// Stops reading: attempts still waiting end, and later ones too.
    pub(super) fn close(&self) {
        self.stop.cancel();
        self.state().waiting.clear();
    }

    /// Whether the run's dispatch here has ended ([`close`](Self::close)).
    pub(super) fn stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Stops routing the reports of `key` (its dispatch ended or was dropped).
    pub(super) fn unregister(&self, key: Key) {
        self.state().waiting.remove(&key);
    }

    /// Takes one report; returns the log line to forward, and where.
    fn route(&self, report: Report) -> Option<(LogSink, LogLine)> {
        let (key, report) = match report {
            Report::Started {
                attempt_id,
                drone,
                at_us,
                ..
            } => {
                tracing::trace!(attempt = %attempt_id, %drone, at_us, "attempt started");
                return None;
            }
            Report::Log {
                attempt_id,
                drone,
                seq,
                line,
                ..
            } => (
                (attempt_id.node, attempt_id.attempt),
                Ok((drone, seq, line)),
            ),
            Report::Done {
                attempt_id,
                outcome,
                drone,
                ..
            } => ((attempt_id.node, attempt_id.attempt), Err((outcome, drone))),
        };
        let mut state = self.state();
        match report {
            Ok((drone, seq, mut line)) => {
                let waiter = state.waiting.get_mut(&key)?;
                if seq > 0 {
                    let logged = waiter.logged.entry(drone).or_default();
                    if seq <= *logged {
                        tracing::debug!(run = %self.run, node = key.0, attempt = key.1, seq, "a log line written twice ignored");
                        return None;
                    }
                    *logged = seq;
                }
                if waiter.stored > 0 {
                    waiter.stored -= 1;
                    return None;
                }
                line.node = Arc::clone(&waiter.node);
                Some((waiter.logs.clone(), line))
            }
            Err((outcome, drone)) => {
                if state.done.contains_key(&key) {
                    tracing::debug!(run = %self.run, node = key.0, attempt = key.1, %drone, "a later Done of an attempt ignored");
                    return None;
                }
                state.done.insert(key, outcome.clone());
                if let Some(waiter) = state.waiting.remove(&key) {
                    let _ = waiter.done.send(outcome);
                }
                None
            }
        }
    }

    /// Takes one entry of the reports stream: malformed or foreign ones are
    /// logged and skipped.
    fn entry(&self, entry: &RawEntry) -> Option<(LogSink, LogLine)> {
        let id = &entry.id;
        let report = match entry.field(protocol::REPORT_FIELD) {
            Some(bytes) => Report::decode(bytes),
            None => Err(protocol::ProtocolError::Malformed(format!(
                "no `{}` field",
                protocol::REPORT_FIELD
            ))),
        };
        match report {
            Ok(report) if report.attempt_id().run == self.run => self.route(report),
            Ok(report) => {
                tracing::warn!(run = %self.run, entry = %id, attempt = %report.attempt_id(), "a report about another run; skipped");
                None
            }
            Err(e) => {
                tracing::warn!(run = %self.run, entry = %id, error = %e, "a malformed report; skipped");
                None
            }
        }
    }
}

/// Reads the run's reports from the start of its stream (so that reports
/// written while no leader watched are found) until `routes.stop` fires,
/// opening its connection again whenever Redis goes away and carrying on
/// after the last entry read.
pub(super) async fn read(client: redis::Client, routes: Arc<Routes>) {
    let key = protocol::reports_key(&routes.run);
    let mut last = "0-0".to_owned();
    let mut backoff = Backoff::new();
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    tokio::select! {
        _ = routes.stop.cancelled() => return,
        _ = routes.attached.cancelled() => {}
        _ = tokio::time::sleep(ATTACH_WAIT) => {
            tracing::warn!(run = %routes.run, "attempts of the resumed run did not re-attach; reading its reports anyway");
        }
    }
    loop {
        let connected = tokio::select! {
            _ = routes.stop.cancelled() => return,
            c = client.get_multiplexed_async_connection_with_config(&config) => c,
        };
        let mut conn: MultiplexedConnection = match connected {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(run = %routes.run, error = %e, "cannot reach Redis to read reports; retrying");
                if pause(&routes.stop, backoff.next()).await {
                    return;
                }
                continue;
            }
        };
        loop {
            let mut command = redis::cmd("XREAD");
            command
                .arg("COUNT")
                .arg(COUNT)
                .arg("BLOCK")
                .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(u64::MAX))
                .arg("STREAMS")
                .arg(&key)
                .arg(&last);
            let next = command.query_async::<redis::Value>(&mut conn);
            let read = tokio::select! {
                _ = routes.stop.cancelled() => return,
                r = tokio::time::timeout(BLOCK + SILENCE, next) => r,
            };
            let reply = match read {
                Ok(Ok(reply)) => reply,
                Ok(Err(e)) => {
                    tracing::warn!(run = %routes.run, error = %e, "reading reports failed; reconnecting");
                    break;
                }
                Err(_) => {
                    tracing::warn!(run = %routes.run, "Redis did not answer a read of reports; reconnecting");
                    break;
                }
            };
            backoff.reset();
            for (_, read) in entries::streams(reply) {
                for entry in read {
                    let forward = routes.entry(&entry);
                    last = entry.id;
                    if let Some((logs, line)) = forward {
                        // Backpressure: a run whose events lag slows its reports.
                        tokio::select! {
                            _ = routes.stop.cancelled() => return,
                            _ = logs.send(line) => {}
                        }
                    }
                }
            }
        }
        if pause(&routes.stop, backoff.next()).await {
            return;
        }
    }
}

/// Sleeps for `wait`; true if `stop` fired meanwhile.
async fn pause(stop: &CancellationToken, wait: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(wait) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{LogLevel, LogSource, NodeStatus};
    use protocol::{AttemptId, VERSION};

    fn id(node: usize, attempt: u32) -> AttemptId {
        AttemptId {
            run: "r1".into(),
            node,
            attempt,
        }
    }

    fn done(node: usize, attempt: u32, message: &str) -> Report {
        Report::Done {
            v: VERSION,
            attempt_id: id(node, attempt),
            drone: "d1".into(),
            outcome: Outcome::with_message(NodeStatus::Success, message),
        }
    }

    fn entry(id: &str, report: &Report) -> RawEntry {
        raw(id, report.encode().as_bytes())
    }

    fn raw(id: &str, report: &[u8]) -> RawEntry {
        RawEntry {
            id: id.into(),
            fields: Some(vec![(
                protocol::REPORT_FIELD.as_bytes().to_vec(),
                report.to_vec(),
            )]),
        }
    }

    #[tokio::test]
    async fn the_first_done_wins_and_later_ones_are_ignored() {
        let routes = Routes::new("r1".into(), HashMap::new());
        let (logs, _rx) = tokio::sync::mpsc::channel(4);
        let Registered::Waiting(rx) = routes.register((3, 1), "n".into(), logs.clone()) else {
            panic!("nothing is done yet");
        };
        assert!(routes.entry(&entry("1-0", &done(3, 1, "first"))).is_none());
        assert!(routes.entry(&entry("2-0", &done(3, 1, "second"))).is_none());
        assert_eq!(rx.await.unwrap().message, "first");
        // Dispatched again (re-attached): the first outcome, at once.
        match routes.register((3, 1), "n".into(), logs) {
            Registered::Done(outcome) => assert_eq!(outcome.message, "first"),
            Registered::Waiting(_) => panic!("the attempt is done"),
        }
    }

    #[tokio::test]
    async fn a_done_read_before_its_dispatch_is_kept_for_it() {
        let routes = Routes::new("r1".into(), HashMap::new());
        routes.entry(&entry("1-0", &done(0, 2, "early")));
        let (logs, _rx) = tokio::sync::mpsc::channel(4);
        match routes.register((0, 2), "n".into(), logs.clone()) {
            Registered::Done(outcome) => assert_eq!(outcome.message, "early"),
            Registered::Waiting(_) => panic!("the attempt is done"),
        }
        assert!(
            matches!(
                routes.register((0, 3), "n".into(), logs),
                Registered::Waiting(_)
            ),
            "another attempt of the node still waits"
        );
    }

    #[tokio::test]
    async fn log_lines_go_to_their_attempt_under_its_node_name() {
        let routes = Routes::new("r1".into(), HashMap::new());
        let (logs, _rx) = tokio::sync::mpsc::channel(4);
        let _waiting = routes.register((1, 1), "build".into(), logs);
        let (_, line) = routes
            .entry(&entry("1-0", &log(1, "d1", 1, "hello")))
            .expect("routed");
        assert_eq!(&*line.node, "build");
        assert_eq!(line.message, "hello");
        assert!(
            routes
                .entry(&entry("2-0", &log(2, "d1", 1, "hello")))
                .is_none(),
            "nobody waits for attempt 2"
        );
    }

    fn log(attempt: u32, drone: &str, seq: u64, message: &str) -> Report {
        Report::Log {
            v: VERSION,
            attempt_id: id(1, attempt),
            drone: drone.into(),
            seq,
            line: LogLine {
                node: "whatever the drone says".into(),
                source: LogSource::Stdout,
                level: LogLevel::Info,
                message: message.into(),
            },
        }
    }

    #[tokio::test]
    async fn a_batch_of_log_lines_written_twice_is_forwarded_once() {
        let routes = Routes::new("r1".into(), HashMap::new());
        let (logs, _rx) = tokio::sync::mpsc::channel(4);
        let _waiting = routes.register((1, 1), "build".into(), logs);
        let mut forwarded = Vec::new();
        // Lines 1 and 2 written again after their reply was lost, then a
        // second drone that claimed the attempt counts from 1 again.
        let written = [
            ("d1", 1, "a"),
            ("d1", 2, "b"),
            ("d1", 1, "a"),
            ("d1", 2, "b"),
            ("d1", 3, "c"),
            ("d2", 1, "again"),
            ("d1", 3, "c"),
            // Unnumbered (an older drone): nothing to know a repeat by.
            ("d3", 0, "old"),
            ("d3", 0, "old"),
        ];
        for (n, (drone, seq, message)) in written.into_iter().enumerate() {
            let report = log(1, drone, seq, message);
            if let Some((_, line)) = routes.entry(&entry(&format!("{n}-0"), &report)) {
                forwarded.push(line.message);
            }
        }
        assert_eq!(forwarded, ["a", "b", "c", "again", "old", "old"]);
    }

    #[tokio::test]
    async fn a_reattached_attempt_skips_the_lines_the_store_has() {
        let routes = Routes::new("r1".into(), HashMap::from([((1, 1), 2), ((1, 2), 0)]));
        let (logs, _rx) = tokio::sync::mpsc::channel(4);
        let _first = routes.register((1, 1), "build".into(), logs.clone());
        assert!(
            !routes.attached.is_cancelled(),
            "reading waits for every re-attached attempt"
        );
        let _second = routes.register((1, 2), "build".into(), logs);
        assert!(routes.attached.is_cancelled());
        let mut forwarded = Vec::new();
        for (n, (attempt, seq, message)) in [
            (1, 1, "a"),
            (1, 1, "a"),
            (2, 1, "x"),
            (1, 2, "b"),
            (1, 3, "c"),
        ]
        .into_iter()
        .enumerate()
        {
            let report = log(attempt, "d1", seq, message);
            if let Some((_, line)) = routes.entry(&entry(&format!("{n}-0"), &report)) {
                forwarded.push(line.message);
            }
        }
        assert_eq!(forwarded, ["x", "c"]);
    }

    #[tokio::test]
    async fn malformed_and_foreign_reports_are_skipped() {
        let routes = Routes::new("r1".into(), HashMap::new());
        let (logs, _rx) = tokio::sync::mpsc::channel(4);
        let Registered::Waiting(mut rx) = routes.register((0, 1), "n".into(), logs) else {
            panic!("nothing is done yet");
        };
        assert!(routes.entry(&raw("1-0", b"{not json")).is_none());
        let empty = RawEntry {
            id: "2-0".into(),
            fields: Some(Vec::new()),
        };
        assert!(routes.entry(&empty).is_none());
        let mut foreign = done(0, 1, "other run");
        if let Report::Done { attempt_id, .. } = &mut foreign {
            attempt_id.run = "r2".into();
        }
        assert!(routes.entry(&entry("3-0", &foreign)).is_none());
        assert!(rx.try_recv().is_err(), "none of them ended the attempt");
        routes.entry(&entry("4-0", &done(0, 1, "real")));
        assert_eq!(rx.await.unwrap().message, "real");
    }
}
