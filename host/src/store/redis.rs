//! The leaders' run state in Redis: the same summaries, DAG texts, events
//! and records as the embedded store, shared by every leader, each run
//! written by the one leader that holds its lease.
//!
//! # Keys
//! | key | type | what |
//! |---|---|---|
//! | `drover:runs` | sorted set, all scores 0 | every run id; ids start with the submission time, so lexical order is submission order |
//! | `drover:unfinished` | set | ids of runs without a final record |
//! | `drover:run:<id>:meta` | string | [`RunMeta`] as JSON |
//! | `drover:run:<id>:source` | string | the DAG text as submitted |
//! | `drover:run:<id>:events` | stream | entry `0-<last seq>`, one field per event: its seq = the event as JSON (field `e` for an entry of one event written before) |
//! | `drover:run:<id>:record` | string | the final [`RunRecord`] as JSON |
//! | `drover:run:<id>:lease` | string, expires | the token of the leader scheduling the run |
//! | `drover:run-cancel` | pub/sub channel | a run id whose run its owner must cancel |
//!
//! Writes go through one task that sends whatever has queued up as one Lua
//! script (group commit). The script writes a run's changes only while the
//! run's lease holds this leader's token, and the events of a run in one
//! batch become one stream entry whose id is the last event's sequence
//! number, so Redis itself refuses a second writer of the same events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::streams::{StreamRangeReply, StreamReadReply};
use tokio::sync::mpsc;

use super::{GROUP, Job, QUEUE, RunMeta, RunStore, StoreError, Then, Write};
use crate::engine::RunRecord;
use crate::transport::redis::retry::{Backoff, transient};
use crate::transport::redis::{self as link, RedisError};

/// Every run id, in submission order.
pub const RUNS: &str = "drover:runs";
/// Ids of runs without a final record.
pub const UNFINISHED: &str = "drover:unfinished";
/// Run ids whose owner must cancel them.
pub const RUN_CANCEL_CHANNEL: &str = "drover:run-cancel";

fn key(run: &str, what: &str) -> String {
    format!("drover:run:{run}:{what}")
}

/// A batch of writes. `ARGV[1]` is the lease length in ms, then each write
/// as its op, run and lease token followed by its values: `submit` meta,
/// source; `meta` meta; `record` record; `events` a count `n` then `n`
/// (seq, event) pairs, consecutive events of the run stored as one stream
/// entry `0-<last seq>` with the seqs as its fields. Returns the runs whose
/// writes were refused because the lease is not (or no longer) ours.
const WRITE: &str = r"
local ms = ARGV[1]
local state = {}
local seen = {}
local refused = {}
local i = 2
while i <= #ARGV do
  local op, run, token = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local values = 1
  if op == 'submit' then
    values = 2
  elseif op == 'events' then
    values = 1 + 2 * tonumber(ARGV[i + 3])
  end
  local base = 'drover:run:' .. run
  if op == 'submit' then
    -- The lease may hold our token already: this batch, sent again after
    -- its reply was lost.
    if redis.call('SET', base .. ':lease', token, 'NX', 'PX', ms)
        or redis.call('GET', base .. ':lease') == token then
      state[run] = 'ok'
    else
      state[run] = 'lost'
    end
  elseif state[run] == nil then
    if redis.call('GET', base .. ':lease') == token then
      state[run] = 'ok'
    elseif op ~= 'events' and redis.call('GET', base .. ':record') ~= false
        and redis.call('SISMEMBER', 'drover:unfinished', run) == 0 then
      -- The run has its record (this batch sent again, or another leader
      -- finished it): nothing more to write for it.
      state[run] = 'done'
    else
      state[run] = 'lost'
    end
  elseif state[run] == 'ended' then
    state[run] = 'lost'
  end
  if state[run] == 'ok' then
    local a = ARGV[i + 3]
    if op == 'submit' then
      redis.call('SET', base .. ':meta', a)
      redis.call('SET', base .. ':source', ARGV[i + 4])
      redis.call('ZADD', 'drover:runs', 0, run)
      redis.call('SADD', 'drover:unfinished', run)
    elseif op == 'meta' then
      redis.call('SET', base .. ':meta', a)
    elseif op == 'events' then
      local first, last = i + 4, i + 3 + values - 1
      local id = '0-' .. ARGV[last - 1]
      local added = redis.pcall('XADD', base .. ':events', id, unpack(ARGV, first, last))
      if type(added) == 'table' and added.err then
        -- Only the same events, sent again after a lost reply, may be there.
        local have = redis.call('XRANGE', base .. ':events', id, id)
        local same = #have == 1
        if same then
          local stored = {}
          for k = 1, #have[1][2], 2 do
            stored[have[1][2][k]] = have[1][2][k + 1]
          end
          for k = first, last, 2 do
            if stored[ARGV[k]] ~= ARGV[k + 1] then
              same = false
              break
            end
          end
        end
        if not same then
          state[run] = 'lost'
        end
      end
    elseif op == 'record' then
      redis.call('SET', base .. ':record', a)
      redis.call('SREM', 'drover:unfinished', run)
      redis.call('DEL', base .. ':lease', base .. ':reports', base .. ':attempts')
      state[run] = 'ended'
    end
  end
  if state[run] == 'lost' and seen[run] == nil then
    seen[run] = true
    table.insert(refused, run)
  end
  i = i + 3 + values
end
return refused
";

/// The most events one stream entry holds: the script passes an entry's
/// fields to `XADD` on Lua's stack, which holds a few thousand values.
const ENTRY_EVENTS: usize = 256;

/// `ARGV[1]` the lease length in ms, then (run, token) pairs: extends each
/// lease still ours, returns the runs whose lease is not.
const RENEW: &str = r"
local lost = {}
for i = 2, #ARGV, 2 do
  local k = 'drover:run:' .. ARGV[i] .. ':lease'
  if redis.call('GET', k) == ARGV[i + 1] then
    redis.call('PEXPIRE', k, ARGV[1])
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
";

/// `KEYS[1]` a lease, `ARGV[1]` a token: deletes the lease if it is ours.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// `KEYS[1]` a run's summary: replaces `ARGV[1]` with `ARGV[2]`, only if
/// nobody changed it meanwhile.
const SWAP: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// The leases this leader holds: run id → the token its lease holds.
#[derive(Debug)]
struct Leases {
    leader: String,
    next: AtomicU64,
    held: Mutex<HashMap<String, Held>>,
}

#[derive(Debug, Clone)]
struct Held {
    token: String,
    /// Redis has the lease: until then a renewal would find none and take
    /// the lease for lost.
    confirmed: bool,
}

impl Leases {
    fn held(&self) -> MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new token for `run`, unique to this taking of its lease.
    fn issue(&self, run: &str) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let token = format!("{}/{n}", self.leader);
        let held = Held {
            token: token.clone(),
            confirmed: false,
        };
        self.held().insert(run.to_owned(), held);
        token
    }

    /// Redis has `run`'s lease with `token`.
    fn confirm(&self, run: &str, token: &str) {
        if let Some(held) = self.held().get_mut(run)
            && held.token == token
        {
            held.confirmed = true;
        }
    }

    fn token(&self, run: &str) -> Option<String> {
        self.held().get(run).map(|h| h.token.clone())
    }

    /// The leases Redis has, to renew.
    fn confirmed(&self) -> Vec<(String, String)> {
        self.held()
            .iter()
            .filter(|(_, h)| h.confirmed)
            .map(|(run, h)| (run.clone(), h.token.clone()))
            .collect()
    }

    /// Forgets `run`'s lease if it still has `token` (any token when `None`).
    fn forget(&self, run: &str, token: Option<&str>) {
        let mut held = self.held();
        if token.is_none_or(|t| held.get(run).is_some_and(|h| h.token == t)) {
            held.remove(run);
        }
    }
}

/// The run state in Redis, shared: cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    url: Arc<str>,
    client: redis::Client,
    conn: ConnectionManager,
    jobs: mpsc::Sender<Job>,
    leases: Arc<Leases>,
    lease_ms: u64,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .field("leader", &self.leases.leader)
            .finish()
    }
}

fn redis_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Redis(e.to_string())
}

impl RedisStore {
    /// Connects to `url` (failing if Redis does not answer) and starts the
    /// writer. Leases last `lease_ms`.
    pub async fn connect(url: &str, lease_ms: u64) -> Result<RedisStore, RedisError> {
        let client = link::client(url)?;
        let conn = link::connect(url).await?;
        let leases = Arc::new(Leases {
            leader: leader_id(),
            next: AtomicU64::new(1),
            held: Mutex::new(HashMap::new()),
        });
        let (jobs, rx) = mpsc::channel(QUEUE);
        let lease_ms = lease_ms.max(100);
        tokio::spawn(writer(conn.clone(), Arc::clone(&leases), rx, lease_ms));
        Ok(RedisStore {
            url: url.into(),
            client,
            conn,
            jobs,
            leases,
            lease_ms,
        })
    }

    /// The Redis URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// This leader's id: `<host>-<pid>-<random>`.
    pub fn leader(&self) -> &str {
        &self.leases.leader
    }

    /// How long a lease lasts unless renewed.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    /// The client, for connections of one's own (blocking reads, pub/sub).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Whether the writer task still takes writes.
    pub fn writer_alive(&self) -> bool {
        !self.jobs.is_closed()
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(redis_error)
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Takes the lease of `run` if nobody holds it.
    pub async fn acquire(&self, run: &str) -> Result<bool, StoreError> {
        let token = self.leases.issue(run);
        let taken: Option<String> = redis::cmd("SET")
            .arg(key(run, "lease"))
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(self.lease_ms)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| {
                self.leases.forget(run, Some(&token));
                redis_error(e)
            })?;
        match taken {
            Some(_) => self.leases.confirm(run, &token),
            None => self.leases.forget(run, Some(&token)),
        }
        Ok(taken.is_some())
    }

    /// Which of `runs` nobody holds the lease of, in one round trip.
    pub async fn unleased<'a>(&self, runs: &[&'a str]) -> Result<Vec<&'a str>, StoreError> {
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = runs.iter().map(|run| key(run, "lease")).collect();
        let holders: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(runs
            .iter()
            .zip(holders)
            .filter(|(_, holder)| holder.is_none())
            .map(|(run, _)| *run)
            .collect())
    }

    /// Whether this leader holds `run`'s lease, as far as it knows.
    pub fn holds(&self, run: &str) -> bool {
        self.leases.token(run).is_some()
    }

    /// Extends every lease this leader holds; returns the runs whose lease
    /// turned out not to be ours any more (forgotten now).
    pub async fn renew(&self) -> Result<Vec<String>, StoreError> {
        let held = self.leases.confirmed();
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let script = redis::Script::new(RENEW);
        let mut call = script.prepare_invoke();
        call.arg(self.lease_ms);
        for (run, token) in &held {
            call.arg(run).arg(token);
        }
        let lost: Vec<String> = call
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        for run in &lost {
            let token = held.iter().find(|(r, _)| r == run).map(|(_, t)| t.as_str());
            self.leases.forget(run, token);
        }
        Ok(lost)
    }

    /// Forgets every lease locally, without touching Redis: for when Redis
    /// has been away longer than a lease, so another leader may hold them.
    pub fn forget_all(&self) -> Vec<String> {
        self.leases.held().drain().map(|(run, _)| run).collect()
    }

    /// Gives `run`'s lease up, if it is still ours.
    pub async fn release(&self, run: &str) -> Result<(), StoreError> {
        let Some(token) = self.leases.token(run) else {
            return Ok(());
        };
        self.leases.forget(run, Some(&token));
        let _: i64 = redis::Script::new(RELEASE)
            .key(key(run, "lease"))
            .arg(&token)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    /// Marks run `id` canceled in its stored summary, whoever runs it, and
    /// tells its owner. `None` when there is no such run; the summary as
    /// stored otherwise (a finished run is left as it is).
    pub async fn request_cancel(&self, id: &str) -> Result<Option<RunMeta>, StoreError> {
        let meta_key = key(id, "meta");
        let mut conn = self.conn();
        let meta = loop {
            let Some(old): Option<Vec<u8>> = conn.get(&meta_key).await.map_err(redis_error)? else {
                return Ok(None);
            };
            let mut meta = RunMeta::from_json(&old)?;
            if meta.finished_at.is_some() || meta.cancel_requested {
                return Ok(Some(meta));
            }
            meta.cancel_requested = true;
            let swapped: i64 = redis::Script::new(SWAP)
                .key(&meta_key)
                .arg(old)
                .arg(meta.to_json())
                .invoke_async(&mut conn)
                .await
                .map_err(redis_error)?;
            if swapped == 1 {
                break meta;
            }
        };
        let _: i64 = conn
            .publish(RUN_CANCEL_CHANNEL, id)
            .await
            .map_err(redis_error)?;
        Ok(Some(meta))
    }

    /// The summaries of runs `ids` that exist, in that order.
    async fn metas(&self, ids: &[String]) -> Result<Vec<RunMeta>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| key(id, "meta")).collect();
        let found: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        found
            .into_iter()
            .flatten()
            .map(|b| RunMeta::from_json(&b))
            .collect()
    }

    /// A reader that waits for a run's new events.
    pub fn follower(&self) -> Follower {
        Follower {
            client: self.client.clone(),
            conn: None,
        }
    }
}

#[async_trait::async_trait]
impl RunStore for RedisStore {
    /// Queues `writes` (sent together, after every write queued before) and
    /// calls `then` once Redis has them. Writes of a run whose lease this
    /// leader does not hold fail with [`StoreError::LeaseLost`].
    async fn write_then(&self, writes: Vec<Write>, then: Then) -> Result<(), StoreError> {
        self.jobs
            .send(Job { writes, then })
            .await
            .map_err(|_| StoreError::Stopped)
    }

    /// Writes `writes` and waits until Redis has them.
    async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let then: Then = Box::new(move |result| {
            let _ = tx.send(result);
        });
        self.write_then(writes, then).await?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(match &*e {
                StoreError::LeaseLost { run } => StoreError::LeaseLost { run: run.clone() },
                other => StoreError::Redis(other.to_string()),
            }),
            Err(_) => Err(StoreError::Stopped),
        }
    }

    /// The summary of run `id`.
    async fn run(&self, id: &str) -> Result<Option<RunMeta>, StoreError> {
        let bytes: Option<Vec<u8>> = self
            .conn()
            .get(key(id, "meta"))
            .await
            .map_err(redis_error)?;
        bytes.map(|b| RunMeta::from_json(&b)).transpose()
    }

    /// Up to `limit` run summaries, newest first, starting after run
    /// `before` (exclusive) and keeping those `keep` accepts.
    async fn runs(
        &self,
        before: Option<&str>,
        limit: usize,
        keep: &(dyn for<'m> Fn(&'m RunMeta) -> bool + Send + Sync),
    ) -> Result<Vec<RunMeta>, StoreError> {
        let mut found = Vec::new();
        let mut max = before.map_or_else(|| "+".to_owned(), |b| format!("({b}"));
        let page = limit.clamp(16, 1024);
        while found.len() < limit {
            let ids: Vec<String> = redis::cmd("ZREVRANGEBYLEX")
                .arg(RUNS)
                .arg(&max)
                .arg("-")
                .arg("LIMIT")
                .arg(0)
                .arg(page)
                .query_async(&mut self.conn())
                .await
                .map_err(redis_error)?;
            let Some(last) = ids.last() else { break };
            max = format!("({last}");
            for meta in self.metas(&ids).await? {
                if found.len() < limit && keep(&meta) {
                    found.push(meta);
                }
            }
            if ids.len() < page {
                break;
            }
        }
        Ok(found)
    }

    /// Every run not finished, oldest first.
    async fn unfinished(&self) -> Result<Vec<RunMeta>, StoreError> {
        let mut ids: Vec<String> = self
            .conn()
            .smembers(UNFINISHED)
            .await
            .map_err(redis_error)?;
        ids.sort();
        Ok(self
            .metas(&ids)
            .await?
            .into_iter()
            .filter(|m| m.finished_at.is_none())
            .collect())
    }

    /// The DAG text run `id` was submitted with.
    async fn source(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.conn()
            .get(key(id, "source"))
            .await
            .map_err(redis_error)
    }

    /// The final record of run `id`, once it has one.
    async fn record(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        let bytes: Option<Vec<u8>> = self
            .conn()
            .get(key(id, "record"))
            .await
            .map_err(redis_error)?;
        bytes
            .map(|b| {
                serde_json::from_slice(&b).map_err(|e| StoreError::Corrupt {
                    what: "run record",
                    message: e.to_string(),
                })
            })
            .transpose()
    }

    /// Up to `limit` events of run `run` with sequence numbers above `after`.
    async fn events(
        &self,
        run: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(key(run, "events"))
            .arg(format!("(0-{after}"))
            .arg("+")
            .arg("COUNT")
            .arg(limit.max(1))
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        entries(run, reply.ids, after, limit)
    }
}

/// The events of stream entries, in order, from the one after `after`, at
/// most `limit`. An entry holds one event (field `e`, its seq the entry's
/// id) or several (one field per event, named by its seq).
fn entries(
    run: &str,
    ids: Vec<redis::streams::StreamId>,
    after: u64,
    limit: usize,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let corrupt = |id: &str| StoreError::Corrupt {
        what: "event",
        message: format!("run {run}: stream entry {id} is not an event"),
    };
    let mut events: Vec<(u64, Vec<u8>)> = Vec::new();
    for entry in ids {
        let first = events.len();
        for (field, value) in entry.map {
            let seq = if field == "e" {
                entry
                    .id
                    .strip_prefix("0-")
                    .and_then(|s| s.parse::<u64>().ok())
            } else {
                field.parse::<u64>().ok()
            };
            let json = match value {
                redis::Value::BulkString(json) => Some(json),
                _ => None,
            };
            match (seq, json) {
                (Some(seq), Some(json)) => events.push((seq, json)),
                _ => return Err(corrupt(&entry.id)),
            }
        }
        events[first..].sort_unstable_by_key(|(seq, _)| *seq);
    }
    // An entry ending past `after` may begin before it; and events written
    // twice (a batch sent again as another entry) are kept once.
    let mut last = after;
    events.retain(|(seq, _)| {
        let keep = *seq > last;
        if keep {
            last = *seq;
        }
        keep
    });
    events.truncate(limit.max(1));
    Ok(events)
}

/// Waits for a run's events on a connection of its own (a blocking read
/// would hold up every other command on a shared one).
pub struct Follower {
    client: redis::Client,
    conn: Option<MultiplexedConnection>,
}

impl Follower {
    /// Up to `limit` events of `run` after `after`, waiting up to `wait`
    /// for the first; none if nothing came (or Redis is away: try again).
    pub async fn next(
        &mut self,
        run: &str,
        after: u64,
        limit: usize,
        wait: Duration,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
                let conn = self
                    .client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await;
                match conn {
                    Ok(conn) => self.conn.insert(conn),
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot reach Redis to follow events");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        return Ok(Vec::new());
                    }
                }
            }
        };
        let read: Result<Option<StreamReadReply>, _> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(limit.max(1))
            .arg("BLOCK")
            .arg(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1))
            .arg("STREAMS")
            .arg(key(run, "events"))
            .arg(format!("0-{after}"))
            .query_async(conn)
            .await;
        match read {
            Ok(reply) => {
                let ids = reply
                    .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
                    .unwrap_or_default();
                entries(run, ids, after, limit)
            }
            Err(e) if transient(&e) => {
                tracing::debug!(error = %e, "lost the connection following events; reconnecting");
                self.conn = None;
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(Vec::new())
            }
            Err(e) => Err(redis_error(e)),
        }
    }
}

/// The writer task: sends every job queued as one script, retrying while
/// Redis is away, then tells each job how it went.
async fn writer(
    mut conn: ConnectionManager,
    leases: Arc<Leases>,
    mut jobs: mpsc::Receiver<Job>,
    lease_ms: u64,
) {
    let script = redis::Script::new(WRITE);
    let mut batch: Vec<Job> = Vec::with_capacity(GROUP);
    while let Some(job) = jobs.recv().await {
        batch.push(job);
        while batch.len() < GROUP {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Jobs touching a run whose lease is not ours are refused here,
        // without sending anything.
        let mut call = Call::new(&script, lease_ms);
        let mut refused: Vec<Option<String>> = vec![None; batch.len()];
        let mut submitted: Vec<(String, String)> = Vec::new();
        for (job, refusal) in batch.iter().zip(refused.iter_mut()) {
            // A job's writes are nearly always of one run: one lookup each.
            let mut tokens: Vec<(&str, String)> = Vec::with_capacity(1);
            for write in &job.writes {
                let run = write_run(write);
                let token = match write {
                    Write::Submit { id, .. } => {
                        let token = leases.issue(id);
                        submitted.push((id.clone(), token.clone()));
                        token
                    }
                    _ if tokens.iter().any(|(r, _)| *r == run) => continue,
                    _ => match leases.token(run) {
                        Some(token) => token,
                        None => {
                            *refusal = Some(run.to_owned());
                            break;
                        }
                    },
                };
                tokens.retain(|(r, _)| *r != run);
                tokens.push((run, token));
            }
            if refusal.is_none() {
                for write in &job.writes {
                    let run = write_run(write);
                    if let Some((_, token)) = tokens.iter().find(|(r, _)| *r == run) {
                        call.push(write, token);
                    }
                }
            }
        }
        let result = match call.finish() {
            None => Ok(Vec::new()),
            Some(cmd) => send(&cmd, &script, &mut conn).await,
        };
        let lost: Vec<String> = match &result {
            Ok(lost) => lost.clone(),
            Err(_) => Vec::new(),
        };
        for run in &lost {
            leases.forget(run, None);
        }
        if result.is_ok() {
            for (run, token) in &submitted {
                leases.confirm(run, token);
            }
        }
        let failure = result.err().map(Arc::new);
        for (job, refusal) in batch.drain(..).zip(refused) {
            let outcome = if let Some(run) = refusal {
                Err(Arc::new(StoreError::LeaseLost { run }))
            } else if let Some(e) = &failure {
                Err(Arc::clone(e))
            } else if let Some(run) = job
                .writes
                .iter()
                .map(write_run)
                .find(|r| lost.iter().any(|l| l == r))
            {
                Err(Arc::new(StoreError::LeaseLost {
                    run: run.to_owned(),
                }))
            } else {
                for write in &job.writes {
                    if let Write::Record { id, .. } = write {
                        // The script deleted the lease with the record.
                        leases.forget(id, None);
                    }
                }
                Ok(())
            };
            (job.then)(outcome);
        }
    }
    tracing::debug!("redis store writer stops");
}

/// One call of the write script being built: an `EVALSHA` whose arguments
/// are written once, straight from the writes (the events of one run that
/// follow each other become one `events` op, one stream entry).
struct Call<'a> {
    cmd: redis::Cmd,
    ops: usize,
    events: Option<Events<'a>>,
}

/// Consecutive events of one run, not yet written into the call.
struct Events<'a> {
    run: &'a str,
    token: String,
    list: Vec<(u64, &'a [u8])>,
}

impl<'a> Call<'a> {
    fn new(script: &redis::Script, lease_ms: u64) -> Call<'a> {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(script.get_hash()).arg(0).arg(lease_ms);
        Call {
            cmd,
            ops: 0,
            events: None,
        }
    }

    fn push(&mut self, write: &'a Write, token: &str) {
        match write {
            Write::Event { run, seq, event } => {
                if let Some(events) = &mut self.events {
                    let follows = events.run == run
                        && events.token == token
                        && events.list.last().is_some_and(|(last, _)| last + 1 == *seq)
                        && events.list.len() < ENTRY_EVENTS;
                    if follows {
                        events.list.push((*seq, event));
                        return;
                    }
                }
                self.flush();
                self.events = Some(Events {
                    run,
                    token: token.to_owned(),
                    list: vec![(*seq, event.as_slice())],
                });
            }
            Write::Submit { id, meta, source } => {
                self.op("submit", id, token).arg(meta).arg(source);
            }
            Write::Meta { id, meta } => {
                self.op("meta", id, token).arg(meta);
            }
            Write::Record { id, record } => {
                self.op("record", id, token).arg(record);
            }
        }
    }

    /// Starts an op other than events: the events gathered so far go first.
    fn op(&mut self, name: &str, id: &str, token: &str) -> &mut redis::Cmd {
        self.flush();
        self.ops += 1;
        self.cmd.arg(name).arg(id).arg(token)
    }

    fn flush(&mut self) {
        if let Some(events) = self.events.take() {
            self.ops += 1;
            self.cmd
                .arg("events")
                .arg(events.run)
                .arg(events.token)
                .arg(events.list.len());
            for (seq, event) in events.list {
                self.cmd.arg(seq).arg(event);
            }
        }
    }

    /// The command, unless there is nothing to write.
    fn finish(mut self) -> Option<redis::Cmd> {
        self.flush();
        (self.ops > 0).then_some(self.cmd)
    }
}

/// Sends one batch, retrying (100 ms → 2 s) while Redis is away, and
/// loading the script first where Redis does not have it (it restarted, or
/// is new).
async fn send(
    cmd: &redis::Cmd,
    script: &redis::Script,
    conn: &mut ConnectionManager,
) -> Result<Vec<String>, StoreError> {
    let mut backoff = Backoff::new();
    loop {
        let result = match cmd.query_async::<Vec<String>>(conn).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                match script.load_async(conn).await {
                    Ok(_) => cmd.query_async::<Vec<String>>(conn).await,
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        match result {
            Ok(lost) => return Ok(lost),
            Err(e) if transient(&e) => {
                tracing::warn!(error = %e, "redis is away; retrying the store's writes");
                backoff.wait().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "redis refused the store's writes");
                return Err(redis_error(e));
            }
        }
    }
}

fn write_run(write: &Write) -> &str {
    match write {
        Write::Submit { id, .. } | Write::Meta { id, .. } | Write::Record { id, .. } => id,
        Write::Event { run, .. } => run,
    }
}

/// `<host>-<pid>-<random>`: unique per process, readable in Redis.
fn leader_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    let mut random = [0u8; 4];
    // Without randomness the pid still tells processes of one host apart.
    let _ = getrandom::fill(&mut random);
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        u32::from_le_bytes(random)
    )
}
