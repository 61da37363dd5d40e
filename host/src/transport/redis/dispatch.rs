//! The leader's dispatch through Redis: each attempt of a run goes to its
//! pool's jobs stream, and its outcome comes back on the run's reports
//! stream (the protocol is in [`protocol`](super::protocol)).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::RedisError;
use super::enqueue::Enqueuer;
use super::fleet::{self, LivePools};
use super::protocol::{self, AttemptId, Job};
use super::reports::{self, Key, Registered, Routes};
use super::retry::Backoff;
use crate::admission::DriverSet;
use crate::engine::{Dispatch, DispatchFuture, NodeRun};
use crate::registry::Registry;
use crate::task::{LogLevel, LogLine, LogSink, LogSource, NodeStatus, Outcome};

pub use super::fleet::{DroneStatus, PoolStatus};

/// How long a cancel may take to reach Redis before the attempt ends anyway.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(2);

/// Marks an attempt canceled unless a drone finished it, takes its job out
/// of the pool's stream when its entry is known (so that no drone finds it
/// later, after the run's marks are gone), and tells the drones. KEYS: the
/// attempts hash, the jobs stream; ARGV: the attempt id, the channel, the
/// job's entry id or ``.
const CANCEL: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= 'done' then
  redis.call('HSET', KEYS[1], ARGV[1], 'canceled')
  if ARGV[3] ~= '' then
    redis.call('XDEL', KEYS[2], ARGV[3])
  end
end
return redis.call('PUBLISH', ARGV[2], ARGV[1])
";

/// The leader's side of the protocol: one per leader process, shared by
/// every run it dispatches. Cheap to clone.
#[derive(Clone)]
pub struct RedisDispatcher {
    shared: Arc<Shared>,
}

struct Shared {
    client: redis::Client,
    conn: ConnectionManager,
    registry: Registry,
    enqueuer: Enqueuer,
    /// Digests whose component is stored in Redis (by this process).
    drivers: OnceMap,
    /// Pools whose jobs stream and group exist (made by this process).
    pools: OnceMap,
    /// The report routes of every run being dispatched.
    runs: Mutex<HashMap<String, Arc<Routes>>>,
    live: LivePools,
    /// When Redis trouble was last logged (µs since the epoch), so that
    /// thousands of waiting attempts do not each say so.
    warned_us: AtomicU64,
}

/// Work done once per key (per process), retried while it fails.
type OnceMap = Mutex<HashMap<String, Arc<OnceCell<()>>>>;

/// Why an attempt could not be sent.
enum SendError {
    /// Redis failed: try again.
    Redis(String),
    /// It can never be sent: the attempt fails with this message.
    Fatal(String),
}

impl From<redis::RedisError> for SendError {
    fn from(e: redis::RedisError) -> Self {
        SendError::Redis(e.to_string())
    }
}

impl RedisDispatcher {
    /// Connects to Redis at `url`; components are taken from `registry`.
    pub async fn connect(url: &str, registry: Registry) -> Result<RedisDispatcher, RedisError> {
        let client = super::client(url)?;
        let conn = super::connect(url).await?;
        Ok(RedisDispatcher {
            shared: Arc::new(Shared {
                client,
                enqueuer: Enqueuer::start(conn.clone()),
                conn,
                registry,
                drivers: OnceMap::default(),
                pools: OnceMap::default(),
                runs: Mutex::default(),
                live: LivePools::default(),
                warned_us: AtomicU64::new(0),
            }),
        })
    }

    /// The dispatch of one run: its attempts go to the pools' job streams,
    /// its reports are read (from the start of its stream) by a task that
    /// runs until [`finish_run`](Self::finish_run). Call within a Tokio
    /// runtime; a second call for the same run shares the first's reader.
    ///
    /// `released` fires when this leader lets the run go (its lease lost,
    /// or handed over at shutdown), before the engine is dropped: attempts
    /// the engine cancels after that are left running for the leader that
    /// carries the run on, not canceled in Redis.
    ///
    /// `reattached` holds the attempts (node index, attempt number) that a
    /// resumed run's engine dispatches again, each with how many of its log
    /// lines the store already has: reading waits until they are
    /// dispatched, and drops those lines, so that none is lost or doubled.
    pub fn run(
        &self,
        run_id: &str,
        drivers: &DriverSet,
        released: CancellationToken,
        reattached: HashMap<(usize, u32), u64>,
    ) -> Arc<dyn Dispatch> {
        let routes = {
            let mut runs = self.shared.runs();
            let routes = runs.entry(run_id.to_owned()).or_insert_with(|| {
                let routes = Arc::new(Routes::new(run_id.to_owned(), reattached));
                tokio::spawn(reports::read(
                    self.shared.client.clone(),
                    Arc::clone(&routes),
                ));
                routes
            });
            Arc::clone(routes)
        };
        Arc::new(RunDispatch {
            shared: Arc::clone(&self.shared),
            run: run_id.to_owned(),
            attempts_key: protocol::attempts_key(run_id),
            routes,
            drivers: drivers.clone(),
            released,
        })
    }

    /// A run ended: stops reading its reports (attempts still waiting end
    /// failed), and deletes its reports stream and attempts hash.
    pub async fn finish_run(&self, run_id: &str) {
        self.release_run(run_id);
        let mut conn = self.shared.conn.clone();
        let deleted: redis::RedisResult<()> = redis::cmd("DEL")
            .arg(protocol::reports_key(run_id))
            .arg(protocol::attempts_key(run_id))
            .query_async(&mut conn)
            .await;
        if let Err(e) = deleted {
            tracing::warn!(run = %run_id, error = %e, "cannot delete the run's reports and attempt marks");
        }
    }

    /// This leader no longer dispatches the run, which goes on elsewhere
    /// (handed over, or its lease lost): stops reading its reports (attempts
    /// still waiting end failed) and keeps its keys for the next leader.
    pub fn release_run(&self, run_id: &str) {
        if let Some(routes) = self.shared.runs().remove(run_id) {
            routes.close();
        }
    }

    /// Every drone seen within [`protocol::DRONE_RETENTION`], alive (its
    /// heartbeat record is there) or not (with its last heartbeat).
    pub async fn drones(&self) -> Result<Vec<DroneStatus>, RedisError> {
        fleet::drones(&mut self.shared.conn.clone()).await
    }

    /// Every pool a job was sent to or a live drone serves: jobs queued and
    /// running, live drones.
    pub async fn pools(&self) -> Result<Vec<PoolStatus>, RedisError> {
        fleet::pools(&mut self.shared.conn.clone()).await
    }
}

impl Shared {
    fn runs(&self) -> MutexGuard<'_, HashMap<String, Arc<Routes>>> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs Redis trouble at most once a second.
    fn warn(&self, what: &str, error: &str) {
        let now = protocol::now_us();
        let last = self.warned_us.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1_000_000
            && self
                .warned_us
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(%error, "{what}; retrying");
        } else {
            tracing::debug!(%error, "{what}; retrying");
        }
    }

    /// Runs `init` for `key` once per process, again after it failed.
    async fn once<F, Fut>(map: &OnceMap, key: &str, init: F) -> Result<(), SendError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(), SendError>>,
    {
        let cell = {
            let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(map.entry(key.to_owned()).or_default())
        };
        cell.get_or_try_init(init).await.map(|_| ())
    }

    /// Makes sure the component of `digest` is in Redis for drones to fetch.
    async fn store_driver(&self, digest: &str) -> Result<(), SendError> {
        Self::once(&self.drivers, digest, || async {
            let key = protocol::driver_key(digest);
            let mut conn = self.conn.clone();
            let stored: bool = redis::cmd("EXISTS")
                .arg(&key)
                .query_async(&mut conn)
                .await?;
            if !stored {
                let bytes = self.registry.component(digest).map_err(SendError::Fatal)?;
                let _: Option<String> = redis::cmd("SET")
                    .arg(&key)
                    .arg(&*bytes)
                    .arg("NX")
                    .query_async(&mut conn)
                    .await?;
            }
            Ok(())
        })
        .await
    }

    /// Makes sure `pool`'s jobs stream and its drones' group exist, so that
    /// jobs sent before any drone came are delivered to the first one.
    async fn make_pool(&self, pool: &str) -> Result<(), SendError> {
        Self::once(&self.pools, pool, || async {
            let mut conn = self.conn.clone();
            let made: redis::RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(protocol::jobs_key(pool))
                .arg(protocol::GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut conn)
                .await;
            match made {
                Err(e) if e.code() != Some("BUSYGROUP") => return Err(e.into()),
                _ => {}
            }
            let _: () = redis::cmd("SADD")
                .arg(protocol::POOLS)
                .arg(pool)
                .query_async(&mut conn)
                .await?;
            Ok(())
        })
        .await
    }

    /// Sends `job` (unless an earlier dispatch of the same attempt did),
    /// says on the node's log if no drone serves its pool, then waits for
    /// ever. Returns only why the attempt can never be sent.
    async fn send(
        &self,
        attempts_key: &str,
        mut job: Job,
        entry: &OnceLock<String>,
        logs: &LogSink,
        node: &Arc<str>,
    ) -> String {
        let mut backoff = Backoff::new();
        loop {
            let ready = match self.make_pool(&job.pool).await {
                Ok(()) => self.store_driver(&job.digest).await,
                Err(e) => Err(e),
            };
            match ready {
                Ok(()) => break,
                Err(SendError::Fatal(message)) => return message,
                Err(SendError::Redis(e)) => {
                    self.warn("cannot prepare a pool or driver in Redis", &e);
                    tokio::time::sleep(backoff.next()).await;
                }
            }
        }
        backoff.reset();
        let id = job.attempt_id.to_string();
        let jobs_key = protocol::jobs_key(&job.pool);
        let added = loop {
            job.sent_us = protocol::now_us();
            let sent = self
                .enqueuer
                .enqueue(
                    attempts_key.to_owned(),
                    jobs_key.clone(),
                    id.clone(),
                    job.encode(),
                )
                .await;
            match sent {
                Ok(added) => break added,
                Err(e) => {
                    self.warn("cannot send an attempt to Redis", &e);
                    tokio::time::sleep(backoff.next()).await;
                }
            }
        };
        match added {
            Some(added) => {
                let _ = entry.set(added);
            }
            None => {
                tracing::debug!(attempt = %id, "attempt sent before; waiting for its reports");
            }
        }
        if self.live.served(&self.conn, &job.pool).await == Some(false) {
            let line = LogLine {
                node: Arc::clone(node),
                source: LogSource::Drover,
                level: LogLevel::Warn,
                message: format!(
                    "waiting for a drone of pool `{}`: none is connected",
                    job.pool
                ),
            };
            let _ = logs.send(line).await;
        }
        std::future::pending().await
    }

    /// Marks attempt `id` canceled, takes its job `entry` (when known) out
    /// of `pool`'s stream and tells the drones, giving up after
    /// [`CANCEL_TIMEOUT`].
    async fn cancel(&self, attempts_key: &str, pool: &str, id: &AttemptId, entry: Option<&str>) {
        let mut conn = self.conn.clone();
        let script = redis::Script::new(CANCEL);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(attempts_key)
            .key(protocol::jobs_key(pool))
            .arg(id.to_string())
            .arg(protocol::ATTEMPT_CANCEL_CHANNEL)
            .arg(entry.unwrap_or_default());
        let sent =
            tokio::time::timeout(CANCEL_TIMEOUT, invocation.invoke_async::<i64>(&mut conn)).await;
        match sent {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(attempt = %id, error = %e, "cannot cancel an attempt"),
            Err(_) => {
                tracing::warn!(attempt = %id, "Redis did not take an attempt's cancel in time")
            }
        }
    }
}

impl Drop for Shared {
    /// The last handle is gone: no run can be waiting, stop the readers.
    fn drop(&mut self) {
        for routes in self.runs().values() {
            routes.close();
        }
    }
}

/// The dispatch of one run.
struct RunDispatch {
    shared: Arc<Shared>,
    run: String,
    attempts_key: String,
    routes: Arc<Routes>,
    drivers: DriverSet,
    /// Fires when this leader lets the run go.
    released: CancellationToken,
}

/// Stops routing an attempt's reports when its dispatch ends or is dropped.
struct Unregister {
    routes: Arc<Routes>,
    key: Key,
}

impl Drop for Unregister {
    fn drop(&mut self) {
        self.routes.unregister(self.key);
    }
}

impl Dispatch for RunDispatch {
    fn dispatch(&self, run: NodeRun) -> DispatchFuture {
        let node = &run.dag.nodes[run.index];
        let pool = node
            .pool
            .clone()
            .unwrap_or_else(|| protocol::DEFAULT_POOL.to_owned());
        let digest = self
            .drivers
            .get(&node.driver)
            .map(|d| d.digest().to_owned())
            .or_else(|| node.driver_digest.clone());
        let driver = node.driver.clone();
        let name: Arc<str> = node.name.as_str().into();
        let shared = Arc::clone(&self.shared);
        let routes = Arc::clone(&self.routes);
        let attempts_key = self.attempts_key.clone();
        let released = self.released.clone();
        let attempt_id = AttemptId {
            run: self.run.clone(),
            node: run.index,
            attempt: run.task.attempt,
        };
        Box::pin(async move {
            let NodeRun {
                task, logs, cancel, ..
            } = run;
            let Some(digest) = digest else {
                return Outcome::failure(format!("driver `{driver}` is not loaded"));
            };
            if !protocol::valid_pool(&pool) {
                return Outcome::failure(format!(
                    "`{pool}` cannot name a pool: 1 to 64 letters, digits, `_`, `.` or `-`"
                ));
            }
            let key = (attempt_id.node, attempt_id.attempt);
            let mut done = match routes.register(key, Arc::clone(&name), logs.clone()) {
                Registered::Done(outcome) => return outcome,
                Registered::Waiting(done) => done,
            };
            let _unregister = Unregister {
                routes: Arc::clone(&routes),
                key,
            };
            let entry = OnceLock::new();
            let job = Job {
                v: protocol::VERSION,
                attempt_id: attempt_id.clone(),
                pool: pool.clone(),
                driver,
                digest,
                task,
                sent_us: 0,
            };
            tokio::select! {
                biased;
                outcome = &mut done => outcome.unwrap_or_else(|_| {
                    Outcome::failure("drover stopped reading this run's reports")
                }),
                _ = cancel.cancelled() => {
                    if released.is_cancelled() || routes.stopped() {
                        // The engine stops because the run goes on under
                        // another leader: the attempt is theirs now, and
                        // may be running on a drone.
                        return Outcome::failure("this leader let the run go");
                    }
                    let entry = entry.get().map(String::as_str);
                    shared.cancel(&attempts_key, &pool, &attempt_id, entry).await;
                    Outcome::with_message(NodeStatus::Canceled, "canceled")
                }
                fatal = shared.send(&attempts_key, job, &entry, &logs, &name) => {
                    Outcome::failure(fatal)
                }
            }
        })
    }
}
