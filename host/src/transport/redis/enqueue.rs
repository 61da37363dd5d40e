//! Sends attempts to the pools' job streams in batches: the attempts that
//! wait meanwhile are marked and added by one script call, one round trip.

use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use super::protocol;

/// For each attempt: `HSETNX` its mark `queued`, and only if the mark is
/// new, `XADD` its job (making the stream and its drones' group first if
/// the stream is gone, say after Redis lost its data). KEYS are (attempts
/// hash, jobs stream) pairs, ARGV the matching (attempt id, job) pairs then
/// the group's name; returns the new entry's id per attempt added, 0 per
/// attempt that was marked already.
const SCRIPT: &str = r"
local added = {}
local group = ARGV[#KEYS + 1]
-- A stream made or seen here stays while the script runs: checked once.
local ready = {}
for i = 1, #KEYS, 2 do
  if redis.call('HSETNX', KEYS[i], ARGV[i], 'queued') == 1 then
    if ready[KEYS[i + 1]] == nil and redis.call('EXISTS', KEYS[i + 1]) == 0 then
      redis.call('XGROUP', 'CREATE', KEYS[i + 1], group, '0', 'MKSTREAM')
    end
    ready[KEYS[i + 1]] = true
    added[#added + 1] = redis.call('XADD', KEYS[i + 1], '*', 'job', ARGV[i + 1])
  else
    added[#added + 1] = 0
  end
end
return added
";

/// The most attempts one script call carries: a script blocks Redis while
/// it runs, so a batch stays well under a millisecond there.
const MAX_BATCH: usize = 256;

/// One attempt to enqueue.
struct Request {
    attempts_key: String,
    jobs_key: String,
    attempt_id: String,
    job: String,
    reply: oneshot::Sender<Result<Option<String>, String>>,
}

/// The handle of the task that enqueues; the task ends when every handle
/// is dropped.
#[derive(Clone)]
pub(super) struct Enqueuer {
    tx: mpsc::UnboundedSender<Request>,
}

impl Enqueuer {
    /// Starts the task, sending on `conn`.
    pub(super) fn start(conn: ConnectionManager) -> Enqueuer {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write(conn, rx));
        Enqueuer { tx }
    }

    /// Marks attempt `attempt_id` queued in `attempts_key` and, if it was
    /// not marked before, adds `job` to `jobs_key`. `Ok(Some(entry id))`
    /// when it was added, `Ok(None)` when an earlier enqueue of the same
    /// attempt was found; an error says why Redis did not answer (then the attempt may
    /// or may not be marked: enqueuing again is safe).
    pub(super) async fn enqueue(
        &self,
        attempts_key: String,
        jobs_key: String,
        attempt_id: String,
        job: String,
    ) -> Result<Option<String>, String> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            attempts_key,
            jobs_key,
            attempt_id,
            job,
            reply,
        };
        if self.tx.send(request).is_err() {
            return Err("the enqueue task has stopped".to_owned());
        }
        answer
            .await
            .unwrap_or_else(|_| Err("the enqueue task has stopped".to_owned()))
    }
}

/// Takes whatever requests have queued, sends them in one script call, and
/// answers each; one batch in flight at a time, so that requests arriving
/// meanwhile make the next batch.
async fn write(mut conn: ConnectionManager, mut rx: mpsc::UnboundedReceiver<Request>) {
    let script = redis::Script::new(SCRIPT);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut invocation = script.prepare_invoke();
        for request in &batch {
            invocation
                .key(&request.attempts_key)
                .key(&request.jobs_key)
                .arg(&request.attempt_id)
                .arg(&request.job);
        }
        invocation.arg(protocol::GROUP);
        let answer: redis::RedisResult<Vec<redis::Value>> =
            invocation.invoke_async(&mut conn).await;
        match answer {
            Ok(added) if added.len() == batch.len() => {
                for (request, added) in batch.drain(..).zip(added) {
                    let entry = match added {
                        redis::Value::BulkString(id) => String::from_utf8(id).ok(),
                        redis::Value::SimpleString(id) => Some(id),
                        _ => None,
                    };
                    let _ = request.reply.send(Ok(entry));
                }
            }
            Ok(added) => {
                let error = format!(
                    "the enqueue script answered {} values for {} attempts",
                    added.len(),
                    batch.len()
                );
                for request in batch.drain(..) {
                    let _ = request.reply.send(Err(error.clone()));
                }
            }
            Err(e) => {
                let error = e.to_string();
                for request in batch.drain(..) {
                    let _ = request.reply.send(Err(error.clone()));
                }
            }
        }
    }
}
