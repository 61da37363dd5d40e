//! One job entry on a drone, from the stream to its `Done`: decode, mark
//! check, driver, run (logs, cancel, deadline, keep-alive), final report.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;

use super::drivers::Fetched;
use super::streams::{self, Entry};
use super::{Shared, retry};
use crate::runtime::NodeContext;
use crate::task::{LogLine, NodeStatus, Outcome};
use crate::transport::redis::protocol::{
    self, AttemptId, AttemptMark, GROUP, Job, REPORT_FIELD, Report, VERSION,
};

/// How many log lines wait for Redis before the driver is slowed down.
const LOG_BUFFER: usize = 1024;
/// The most log lines sent in one round trip.
const LOG_BATCH: usize = 256;
/// How long a released entry looks idle: any drone's next claim takes it.
const RELEASED_IDLE: Duration = Duration::from_secs(24 * 3600);

/// An attempt's mark as read from its run's attempts hash.
enum Mark {
    /// None: the run's marks are gone, so the run is over.
    Missing,
    /// A mark; `None` for a value this drone does not know.
    Found(Option<AttemptMark>),
}

impl Mark {
    fn of(raw: Option<String>) -> Mark {
        match raw {
            None => Mark::Missing,
            Some(raw) => Mark::Found(AttemptMark::parse(&raw)),
        }
    }
}

/// Takes one entry of a jobs stream to its end. Holds its slot until then.
pub async fn take(shared: Arc<Shared>, entry: Entry, _slot: OwnedSemaphorePermit) {
    let local = format!("{}#{}", entry.pool, entry.id);
    shared.running.fetch_add(1, Ordering::Relaxed);
    run(&shared, &entry).await;
    shared.running.fetch_sub(1, Ordering::Relaxed);
    shared.local().remove(&local);
}

async fn run(shared: &Shared, entry: &Entry) {
    let stream = entry.stream();
    let mut job = match entry.job() {
        Ok(job) => job,
        Err(e) => {
            tracing::warn!(stream = %stream, entry = %entry.id, reason = %e, "dropping a job entry that cannot be taken");
            drop_entry(shared, entry).await;
            return;
        }
    };
    // A path on the leader's machine: here it would name a file of the
    // drone's for the driver's processes to read.
    job.task.artifact_file = None;
    let attempt = job.attempt_id.to_string();
    // Registered before the mark is read, so that a cancel sent in between
    // is not missed.
    let cancel = shared.stop.child_token();
    let _registered = shared.cancels.register(attempt.clone(), cancel.clone());
    let work = async {
        let fetched = shared.drivers.get(&shared.conn, &job, &shared.stop).await;
        // The mark is read with the `Started` report when the driver is here
        // (one round trip on the hot path), on its own otherwise.
        let start = match &fetched {
            Fetched::Driver(_) => start(shared, &job).await,
            _ => mark(shared, &job.attempt_id).await,
        };
        match start {
            None => End::Release,
            // Every attempt a leader sends is marked first, and the marks
            // go when the run ends: a job without one is of a run that is over.
            Some(Mark::Missing) => {
                tracing::info!(attempt = %attempt, "skipping an attempt whose run is over (it has no mark)");
                End::Drop
            }
            Some(Mark::Found(Some(mark @ (AttemptMark::Done | AttemptMark::Canceled)))) => {
                tracing::info!(attempt = %attempt, mark = mark.as_str(), "skipping an attempt that is already {}", mark.as_str());
                End::Drop
            }
            Some(Mark::Found(_)) => match fetched {
                Fetched::Stopped => End::Release,
                Fetched::Refused(why) => {
                    tracing::warn!(attempt = %attempt, reason = %why, "not running an attempt");
                    End::Finish(Outcome::failure(why))
                }
                Fetched::Driver(_) if cancel.is_cancelled() && !shared.stop.is_cancelled() => {
                    End::Finish(Outcome::with_message(
                        NodeStatus::Canceled,
                        "canceled before it started",
                    ))
                }
                Fetched::Driver(driver) => {
                    match run_driver(shared, &job, driver, cancel.clone()).await {
                        Some(outcome) => End::Finish(outcome),
                        None => End::Release,
                    }
                }
            },
        }
    };
    // The keep-alive runs in this task, beside the work: no task of its own
    // to spawn for each attempt.
    let keep_alive = keep_alive(
        shared.conn.clone(),
        &shared.id,
        entry,
        &job.attempt_id,
        &cancel,
        shared.claim_idle / 3,
    );
    let end = tokio::select! {
        biased;
        end = work => end,
        never = keep_alive => match never {},
    };
    match end {
        End::Drop => drop_entry(shared, entry).await,
        End::Finish(outcome)
            if !(shared.stop.is_cancelled() && outcome.status == NodeStatus::Canceled) =>
        {
            finish(shared, entry, &job, outcome).await;
        }
        // The drone is stopping before the attempt ended: another drone
        // runs it again, at once.
        End::Finish(_) | End::Release => release(shared, entry).await,
    }
}

/// How a taken entry ends on this drone.
enum End {
    /// It must not run at all: acknowledged and deleted.
    Drop,
    /// It ended so: reported, and the entry acknowledged and deleted.
    Finish(Outcome),
    /// The drone stopped first: left to the other drones.
    Release,
}

/// Reads the attempt's mark and, unless it is done or canceled, reports
/// `Started`, in one script call (shared with other attempts starting at
/// the same time). `None` if the drone stopped first.
async fn start(shared: &Shared, job: &Job) -> Option<Mark> {
    let started = Report::Started {
        v: VERSION,
        attempt_id: job.attempt_id.clone(),
        drone: shared.id.clone(),
        at_us: protocol::now_us(),
    }
    .encode();
    let mark = shared
        .outbox
        .start_attempt(job.attempt_id.clone(), started)
        .await;
    mark.map(Mark::of)
}

/// Runs the driver with logs forwarded, and says how it ended; `None` when
/// the drone stopped first.
async fn run_driver(
    shared: &Shared,
    job: &Job,
    driver: crate::runtime::Driver,
    cancel: CancellationToken,
) -> Option<Outcome> {
    let reports = protocol::reports_key(&job.attempt_id.run);
    let (logs, lines) = mpsc::channel(LOG_BUFFER);
    let workspace = shared.workspace(&job.attempt_id);
    let ctx = NodeContext {
        workspace: workspace.clone(),
        logs,
        cancel,
    };
    // The forwarder ends once the driver is done and its log sender dropped;
    // both run in this task.
    let (outcome, forwarded) = tokio::join!(
        shared.runtime.run(&driver, job.task.clone(), ctx),
        forward_logs(shared, &reports, &job.attempt_id, lines),
    );
    // Most drivers never make their workspace: one stat instead of two
    // trips to the blocking pool.
    if std::fs::symlink_metadata(&workspace).is_ok() {
        if let Err(e) = tokio::fs::remove_dir_all(&workspace).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(workspace = %workspace.display(), error = %e, "cannot remove a workspace");
        }
        if let Some(run_dir) = workspace.parent() {
            // Only when empty: other attempts of the run may be using it.
            let _ = tokio::fs::remove_dir(run_dir).await;
        }
    }
    forwarded.then_some(outcome)
}

/// Sends the attempt's log lines as `Log` reports, many per round trip,
/// until the driver is done with them. `false` if the drone stopped first.
async fn forward_logs(
    shared: &Shared,
    reports: &str,
    attempt: &AttemptId,
    mut lines: mpsc::Receiver<LogLine>,
) -> bool {
    let mut batch = Vec::with_capacity(LOG_BATCH);
    let mut seq = 0;
    while lines.recv_many(&mut batch, LOG_BATCH).await > 0 {
        let encoded: Vec<String> = batch
            .drain(..)
            .map(|line| {
                seq += 1;
                Report::Log {
                    v: VERSION,
                    attempt_id: attempt.clone(),
                    drone: shared.id.clone(),
                    seq,
                    line,
                }
                .encode()
            })
            .collect();
        // All or none of the batch is written, so that a retry after a lost
        // reply repeats whole numbered lines, which the leader drops.
        let sent = retry("XADD Log", &shared.stop, &shared.conn, |mut c| {
            let mut pipe = redis::pipe();
            pipe.atomic();
            for report in &encoded {
                pipe.cmd("XADD")
                    .arg(reports)
                    .arg("*")
                    .arg(REPORT_FIELD)
                    .arg(report)
                    .ignore();
            }
            async move { pipe.query_async::<()>(&mut c).await }
        })
        .await;
        if sent.is_none() {
            return false;
        }
    }
    true
}

/// The attempt's mark: `None` if the drone stopped before it could be read.
async fn mark(shared: &Shared, attempt: &AttemptId) -> Option<Mark> {
    let key = protocol::attempts_key(&attempt.run);
    let field = attempt.to_string();
    let mark: Option<Option<String>> = retry("HGET mark", &shared.stop, &shared.conn, |mut c| {
        let (key, field) = (key.clone(), field.clone());
        async move {
            redis::cmd("HGET")
                .arg(key)
                .arg(field)
                .query_async(&mut c)
                .await
        }
    })
    .await;
    mark.map(Mark::of)
}

/// While the attempt runs: keeps its entry owned and fresh, and cancels it
/// when its mark says so (a cancel message may have been missed).
async fn keep_alive(
    mut conn: ConnectionManager,
    consumer: &str,
    entry: &Entry,
    attempt: &AttemptId,
    cancel: &CancellationToken,
    every: Duration,
) -> std::convert::Infallible {
    let key = protocol::attempts_key(&attempt.run);
    let field = attempt.to_string();
    let every = every.max(Duration::from_millis(10));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = streams::touch(&mut conn, consumer, entry, None).await {
            tracing::debug!(entry = %entry.id, error = %e, "cannot refresh a running job's entry");
        }
        let mark: redis::RedisResult<Option<String>> = redis::cmd("HGET")
            .arg(&key)
            .arg(&field)
            .query_async(&mut conn)
            .await;
        if let Ok(Some(mark)) = mark
            && AttemptMark::parse(&mark) == Some(AttemptMark::Canceled)
            && !cancel.is_cancelled()
        {
            tracing::info!(attempt = %field, "canceling an attempt marked canceled");
            cancel.cancel();
        }
    }
}

/// The end, in one script call (shared with other attempts ending at the
/// same time): `Done` reported, the attempt marked done, its entry
/// acknowledged and deleted. Retried until it is written (or the drone is
/// made to stop: then the entry stays pending and runs elsewhere).
async fn finish(shared: &Shared, entry: &Entry, job: &Job, outcome: Outcome) {
    let done = Report::Done {
        v: VERSION,
        attempt_id: job.attempt_id.clone(),
        drone: shared.id.clone(),
        outcome,
    }
    .encode();
    let written = shared
        .outbox
        .finish_attempt(
            job.attempt_id.clone(),
            done,
            entry.stream(),
            entry.id.clone(),
        )
        .await;
    if written {
        shared.finished.fetch_add(1, Ordering::Relaxed);
    } else {
        tracing::warn!(attempt = %job.attempt_id, "stopped before the attempt's Done could be written; another drone will run it again");
    }
}

/// Acknowledges and deletes an entry that must not run.
async fn drop_entry(shared: &Shared, entry: &Entry) {
    let stream = entry.stream();
    let _: Option<()> = retry("XACK+XDEL", &shared.stop, &shared.conn, |mut c| {
        let mut pipe = redis::pipe();
        ack_and_delete(&mut pipe, &stream, &entry.id);
        async move { no_group_is_fine(pipe.query_async::<()>(&mut c).await) }
    })
    .await;
}

/// Adds to `pipe` the acknowledgement and deletion of entry `id` of `stream`.
fn ack_and_delete(pipe: &mut redis::Pipeline, stream: &str, id: &str) {
    pipe.cmd("XACK")
        .arg(stream)
        .arg(GROUP)
        .arg(id)
        .ignore()
        .cmd("XDEL")
        .arg(stream)
        .arg(id)
        .ignore();
}

/// A jobs stream that lost its group (Redis restarted without its data)
/// has nothing left to acknowledge: the rest of the transaction is done.
fn no_group_is_fine(result: redis::RedisResult<()>) -> redis::RedisResult<()> {
    match result {
        Err(e) if streams::is_no_group(&e) => Ok(()),
        other => other,
    }
}

/// Leaves an unfinished entry to the other drones, claimable at once.
pub(super) async fn release(shared: &Shared, entry: &Entry) {
    let mut conn = shared.conn.clone();
    let released = tokio::time::timeout(
        Duration::from_secs(2),
        streams::touch(&mut conn, &shared.id, entry, Some(RELEASED_IDLE)),
    )
    .await;
    if !matches!(released, Ok(Ok(()))) {
        tracing::warn!(entry = %entry.id, "cannot release an unfinished job entry; it is claimed once idle");
    }
}
