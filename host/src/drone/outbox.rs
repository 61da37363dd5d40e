//! The drone's writes on the hot path, batched: the `Started` reports and
//! the final `Done` writes of every attempt that reaches that point while
//! the previous batch is on its way go to Redis in one script call each.
//!
//! Batching costs no waiting: a request is sent as soon as the writer is
//! free, with whatever queued behind the batch before it. Under load this
//! turns hundreds of round trips (and as many syscalls on both sides) into
//! a few.

use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::retry;
use crate::transport::redis::protocol::{self, AttemptId, GROUP, REPORT_FIELD};

/// The most requests of one kind in one script call.
const BATCH: usize = 256;

/// For each attempt: reads its mark and, if it has one that is neither
/// `done` nor `canceled`, adds its `Started` report. KEYS: per attempt, its
/// run's attempts hash and reports stream; ARGV: the report field, then per
/// attempt its id and report. Returns each attempt's mark as it was (``
/// for none: its run is over, and its reports stream is not made again).
static START: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local marks = {}
for i = 1, #KEYS / 2 do
  local mark = redis.call('HGET', KEYS[2 * i - 1], ARGV[2 * i])
  if mark and mark ~= 'done' and mark ~= 'canceled' then
    redis.call('XADD', KEYS[2 * i], '*', ARGV[1], ARGV[2 * i + 1])
  end
  marks[i] = mark or ''
end
return marks
",
    )
});

/// For each attempt: adds its `Done` report and marks it done (unless its
/// run ended meanwhile and its keys are gone: nobody reads them, and they
/// would never be deleted again), acknowledges and deletes its job entry.
/// KEYS: per attempt, its run's reports stream and attempts hash, and its
/// jobs stream; ARGV: the report field, the group, then per attempt its id,
/// report and entry id. A jobs stream that lost its group (Redis restarted
/// without its data) has nothing left to acknowledge, hence `pcall`.
static DONE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
-- A run's hash cannot go while the script runs: checked once per run.
local alive = {}
for i = 1, #KEYS / 3 do
  local entry = ARGV[3 * i + 2]
  local hash = KEYS[3 * i - 1]
  if alive[hash] == nil then
    alive[hash] = redis.call('EXISTS', hash) == 1
  end
  if alive[hash] then
    redis.call('XADD', KEYS[3 * i - 2], '*', ARGV[1], ARGV[3 * i + 1])
    redis.call('HSET', KEYS[3 * i - 1], ARGV[3 * i], 'done')
  end
  redis.pcall('XACK', KEYS[3 * i], ARGV[2], entry)
  redis.call('XDEL', KEYS[3 * i], entry)
end
return #KEYS / 3
",
    )
});

/// A `Started` report to add unless the attempt is over already.
struct Start {
    attempt: AttemptId,
    report: String,
    /// The attempt's mark as it was.
    reply: oneshot::Sender<Option<String>>,
}

/// An attempt's `Done`: the report, the mark, the entry's end.
struct Done {
    attempt: AttemptId,
    report: String,
    /// The jobs stream and entry id of the attempt's job.
    stream: String,
    entry: String,
    reply: oneshot::Sender<()>,
}

enum Request {
    Start(Start),
    Done(Done),
}

/// The handle attempts send their writes through. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    requests: mpsc::UnboundedSender<Request>,
}

impl Outbox {
    /// Starts the writer task; it ends when every handle is dropped, or at
    /// once when `stop` fires (what is queued then is not written).
    pub fn start(conn: ConnectionManager, stop: CancellationToken) -> Outbox {
        let (requests, queue) = mpsc::unbounded_channel();
        tokio::spawn(write(conn, queue, stop));
        Outbox { requests }
    }

    /// Reads the attempt's mark and, unless it is `done` or `canceled`,
    /// adds `report` (its `Started`). `None` if the drone stopped (or Redis
    /// kept refusing) before it was written; `Some(None)` for no mark.
    pub async fn start_attempt(
        &self,
        attempt: AttemptId,
        report: String,
    ) -> Option<Option<String>> {
        let (reply, answer) = oneshot::channel();
        let request = Request::Start(Start {
            attempt,
            report,
            reply,
        });
        self.requests.send(request).ok()?;
        answer.await.ok().map(|mark| mark.filter(|m| !m.is_empty()))
    }

    /// Adds `report` (the attempt's `Done`), marks the attempt done and
    /// acknowledges and deletes `entry` of `stream`, all at once. `false`
    /// if the drone stopped (or Redis kept refusing) before it was written.
    pub async fn finish_attempt(
        &self,
        attempt: AttemptId,
        report: String,
        stream: String,
        entry: String,
    ) -> bool {
        let (reply, answer) = oneshot::channel();
        let request = Request::Done(Done {
            attempt,
            report,
            stream,
            entry,
            reply,
        });
        self.requests.send(request).is_ok() && answer.await.is_ok()
    }
}

/// The writer: takes what is queued, writes it (starts and dones at once,
/// each kind in one script call, retried while Redis is away), answers,
/// and goes again.
async fn write(
    conn: ConnectionManager,
    mut queue: mpsc::UnboundedReceiver<Request>,
    stop: CancellationToken,
) {
    let mut requests = Vec::with_capacity(BATCH);
    loop {
        let taken = tokio::select! {
            taken = queue.recv_many(&mut requests, 2 * BATCH) => taken,
            _ = stop.cancelled() => return,
        };
        if taken == 0 {
            return;
        }
        let (mut starts, mut dones) = (Vec::new(), Vec::new());
        for request in requests.drain(..) {
            match request {
                Request::Start(start) => starts.push(start),
                Request::Done(done) => dones.push(done),
            }
        }
        tokio::join!(
            write_starts(&conn, &stop, &mut starts),
            write_dones(&conn, &stop, &mut dones)
        );
    }
}

async fn write_starts(conn: &ConnectionManager, stop: &CancellationToken, starts: &mut Vec<Start>) {
    let args = |invocation: &mut redis::ScriptInvocation<'static>, start: &Start| {
        invocation
            .key(protocol::attempts_key(&start.attempt.run))
            .key(protocol::reports_key(&start.attempt.run))
            .arg(start.attempt.to_string())
            .arg(&start.report);
    };
    let answer = |batch: Vec<Start>, marks: Vec<String>| {
        for (start, mark) in batch.into_iter().zip(marks) {
            let _ = start.reply.send(Some(mark));
        }
    };
    let call = || {
        let mut invocation = START.prepare_invoke();
        invocation.arg(REPORT_FIELD);
        invocation
    };
    in_batches("Started", conn, stop, starts, call, args, answer).await;
}

async fn write_dones(conn: &ConnectionManager, stop: &CancellationToken, dones: &mut Vec<Done>) {
    let args = |invocation: &mut redis::ScriptInvocation<'static>, done: &Done| {
        invocation
            .key(protocol::reports_key(&done.attempt.run))
            .key(protocol::attempts_key(&done.attempt.run))
            .key(&done.stream)
            .arg(done.attempt.to_string())
            .arg(&done.report)
            .arg(&done.entry);
    };
    let answer = |batch: Vec<Done>, _written: usize| {
        for done in batch {
            let _ = done.reply.send(());
        }
    };
    let call = || {
        let mut invocation = DONE.prepare_invoke();
        invocation.arg(REPORT_FIELD).arg(GROUP);
        invocation
    };
    in_batches("Done", conn, stop, dones, call, args, answer).await;
}

/// Sends `requests` in script calls of [`BATCH`]: each starts as `call`
/// makes it, then `args` adds each request's; hands each call's answer to
/// `answer`. Stops at the first batch that cannot be written (the drone
/// stopped, or Redis kept refusing): dropping the replies of the rest says
/// "not written".
async fn in_batches<'s, T, R: redis::FromRedisValue>(
    what: &str,
    conn: &ConnectionManager,
    stop: &CancellationToken,
    requests: &mut Vec<T>,
    call: impl Fn() -> redis::ScriptInvocation<'s>,
    args: impl Fn(&mut redis::ScriptInvocation<'s>, &T),
    answer: impl Fn(Vec<T>, R),
) {
    while !requests.is_empty() {
        let batch: Vec<T> = requests.drain(..requests.len().min(BATCH)).collect();
        let mut invocation = call();
        for request in &batch {
            args(&mut invocation, request);
        }
        let answered: Option<R> = retry(what, stop, conn, |mut c| {
            let invocation = &invocation;
            async move { invocation.invoke_async(&mut c).await }
        })
        .await;
        let Some(answered) = answered else {
            return;
        };
        answer(batch, answered);
    }
}
