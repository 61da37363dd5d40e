//! A drone: pulls attempts from the jobs streams of its pools in Redis,
//! runs them in its own Wasm runtime, and reports back (see
//! [`crate::transport::redis::protocol`] for what is said where).

mod attempt;
mod cancels;
mod drivers;
mod heartbeat;
mod outbox;
pub mod streams;

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use redis::aio::{ConnectionManager, MultiplexedConnection};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::runtime::Runtime;
use crate::transport::redis::protocol::{self, AttemptId};
use crate::transport::redis::retry::{Backoff, transient};
use crate::transport::redis::{RedisError, client};

/// How a drone runs: the resolved flags and `[drone]` settings.
#[derive(Debug, Clone)]
pub struct DroneOptions {
    /// The Redis URL.
    pub redis: String,
    /// Unique per drone process.
    pub id: String,
    /// The pools it takes jobs from (valid names, no duplicates).
    pub pools: Vec<String>,
    /// The most attempts it runs at once.
    pub concurrency: usize,
    /// How long a job entry must be idle before it is taken from its drone.
    pub claim_idle: Duration,
    /// How often the drone says it is alive.
    pub heartbeat: Duration,
    /// How long running attempts may go on after a stop is asked for.
    pub grace: Duration,
}

/// Why a drone cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DroneError {
    #[error(transparent)]
    Url(RedisError),
    #[error("cannot reach Redis at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: redis::RedisError,
    },
    #[error("cannot set up the jobs streams at {url}: {source}")]
    Setup {
        url: String,
        #[source]
        source: redis::RedisError,
    },
    #[error("cannot make the drone's folder {}: {source}", path.display())]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The default drone id: `<host>-<pid>-<random>`.
pub fn default_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "drone".to_owned());
    let mut random = [0u8; 3];
    let _ = getrandom::fill(&mut random);
    format!("{host}-{}-{}", std::process::id(), hex::encode(random))
}

/// Whether `id` may name a drone: 1–128 printable characters, no spaces.
pub fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.chars().all(|c| c.is_ascii_graphic())
}

/// A drone connected to Redis and registered, ready to [`run`](Drone::run).
pub struct Drone {
    shared: Arc<Shared>,
    client: redis::Client,
    options: DroneOptions,
}

/// What the drone's tasks share.
struct Shared {
    id: String,
    conn: ConnectionManager,
    /// Where the attempts' `Started` and `Done` writes go, batched.
    outbox: outbox::Outbox,
    runtime: Runtime,
    drivers: drivers::Drivers,
    cancels: cancels::Cancels,
    /// `<workspace_dir>`, resolved once.
    workspaces: PathBuf,
    claim_idle: Duration,
    running: AtomicUsize,
    finished: AtomicU64,
    /// Fired once the grace after a stop has passed: what still runs is
    /// stopped and left to other drones.
    stop: CancellationToken,
    /// `<pool>#<entry id>` of the entries running here, so that a claim
    /// does not start one twice.
    local: Mutex<HashSet<String>>,
}

impl Shared {
    fn local(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `<workspaces>/<run>/<node>-<attempt>`, with the run id made safe as
    /// one path component.
    fn workspace(&self, attempt: &AttemptId) -> PathBuf {
        self.workspaces
            .join(safe_component(&attempt.run))
            .join(format!("{}-{}", attempt.node, attempt.attempt))
    }
}

fn safe_component(text: &str) -> String {
    let safe: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() || safe.chars().all(|c| c == '.') {
        safe.replace('.', "_") + "_"
    } else {
        safe
    }
}

impl Drone {
    /// Connects, makes the group `drones` on each pool's stream and says
    /// the drone is here (in `drover:drones`, `drover:pools` and its
    /// heartbeat key).
    pub async fn start(options: DroneOptions, runtime: Runtime) -> Result<Drone, DroneError> {
        let client = client(&options.redis).map_err(DroneError::Url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_secs(2))
            .set_connection_timeout(Some(Duration::from_secs(2)))
            // Larger than any command here takes (a driver's bytes, a batch script).
            .set_response_timeout(Some(Duration::from_secs(15)));
        let connect = |source| DroneError::Connect {
            url: options.redis.clone(),
            source,
        };
        let mut conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(connect)?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(connect)?;
        streams::create_groups(&mut conn, &options.pools)
            .await
            .map_err(|source| DroneError::Setup {
                url: options.redis.clone(),
                source,
            })?;
        let config = runtime.config();
        let workspaces = config.workspace_dir();
        let drivers_dir = config.data_dir().join("drone").join("drivers");
        for dir in [&workspaces, &drivers_dir] {
            std::fs::create_dir_all(dir).map_err(|source| DroneError::Folder {
                path: dir.clone(),
                source,
            })?;
        }
        let workspaces = workspaces
            .canonicalize()
            .map_err(|source| DroneError::Folder {
                path: workspaces.clone(),
                source,
            })?;
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            id: options.id.clone(),
            outbox: outbox::Outbox::start(conn.clone(), stop.clone()),
            conn,
            drivers: drivers::Drivers::new(runtime.clone(), drivers_dir),
            runtime,
            cancels: cancels::Cancels::default(),
            workspaces,
            claim_idle: options.claim_idle,
            running: AtomicUsize::new(0),
            finished: AtomicU64::new(0),
            stop,
            local: Mutex::new(HashSet::new()),
        });
        let drone = Drone {
            shared,
            client,
            options,
        };
        heartbeat::beat_once(&drone.shared, &drone.options, SystemTime::now())
            .await
            .map_err(|source| DroneError::Setup {
                url: drone.options.redis.clone(),
                source,
            })?;
        Ok(drone)
    }

    /// The drone's id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Takes and runs jobs until `quit`; then lets running attempts finish
    /// for the grace time (or until `force`), stops what is left (other
    /// drones run it again) and removes its heartbeat.
    pub async fn run(self, quit: CancellationToken, force: CancellationToken) {
        let started = SystemTime::now();
        let tasks = TaskTracker::new();
        let background = CancellationToken::new();
        let beats = tokio::spawn(heartbeat::beat(
            self.shared.clone(),
            self.options.clone(),
            started,
            background.clone(),
        ));
        let listener = tokio::spawn(cancels::listen(
            self.client.clone(),
            self.shared.cancels.clone(),
            background.clone(),
        ));
        let slots = Arc::new(Semaphore::new(self.options.concurrency));
        intake(&self, &slots, &tasks, &quit).await;
        release_strays(&self.shared, &self.options.pools).await;
        tasks.close();
        let running = tasks.len();
        if running > 0 {
            tracing::warn!(
                running,
                grace_ms = self.options.grace.as_millis() as u64,
                "stopping: letting running attempts finish"
            );
        }
        tokio::select! {
            _ = tasks.wait() => {}
            _ = tokio::time::sleep(self.options.grace) => {}
            _ = force.cancelled() => {}
        }
        if !tasks.is_empty() {
            tracing::warn!(
                running = tasks.len(),
                "stopping what still runs; other drones will run it again"
            );
            self.shared.stop.cancel();
            self.shared.runtime.containers().remove_own().await;
            tasks.wait().await;
        }
        background.cancel();
        let _ = tokio::join!(beats, listener);
        let mut conn = self.shared.conn.clone();
        let key = protocol::drone_key(&self.shared.id);
        let removed = tokio::time::timeout(
            Duration::from_secs(2),
            redis::cmd("DEL").arg(&key).query_async::<()>(&mut conn),
        )
        .await;
        if !matches!(removed, Ok(Ok(()))) {
            tracing::warn!(key = %key, "cannot remove the drone's heartbeat; it expires by itself");
        }
    }
}

/// How long past its BLOCK time a read may take before the connection is
/// taken for dead.
const READ_SLACK: Duration = Duration::from_secs(5);

/// How many XAUTOCLAIM calls one claim round makes per pool, at most.
const CLAIM_CALLS: usize = 32;

/// Reads new entries (and claims idle ones every `claim_idle / 2`) while
/// slots are free, starting an attempt task per entry, until `quit`.
async fn intake(
    drone: &Drone,
    slots: &Arc<Semaphore>,
    tasks: &TaskTracker,
    quit: &CancellationToken,
) {
    let shared = &drone.shared;
    let pools = &drone.options.pools;
    let claim_every = (shared.claim_idle / 2).max(Duration::from_millis(10));
    let mut next_claim = Instant::now();
    let mut cursors: Vec<String> = vec!["0-0".to_owned(); pools.len()];
    let mut reader: Option<MultiplexedConnection> = None;
    let mut backoff = Backoff::new();
    loop {
        let first = tokio::select! {
            slot = Arc::clone(slots).acquire_owned() => slot,
            _ = quit.cancelled() => return,
        };
        let Ok(first) = first else { return };
        let mut free = vec![first];
        while let Ok(slot) = Arc::clone(slots).try_acquire_owned() {
            free.push(slot);
        }
        if Instant::now() >= next_claim {
            let mut conn = shared.conn.clone();
            for (pool, cursor) in pools.iter().zip(cursors.iter_mut()) {
                if free.is_empty() {
                    break;
                }
                let claimed = tokio::select! {
                    claimed = streams::claim_idle(&mut conn, &shared.id, pool, shared.claim_idle, free.len(), cursor, CLAIM_CALLS) => claimed,
                    _ = quit.cancelled() => return,
                };
                match claimed {
                    Ok(entries) => {
                        for entry in entries {
                            if !shared
                                .local()
                                .contains(&format!("{}#{}", entry.pool, entry.id))
                            {
                                tracing::warn!(stream = %entry.stream(), entry = %entry.id, "claimed a job entry of an unresponsive drone");
                            }
                            start(shared, entry, &mut free, tasks);
                        }
                    }
                    Err(e) if streams::is_no_group(&e) => recreate_groups(shared, pools).await,
                    Err(e) => {
                        tracing::warn!(error = %e, pool = %pool, "cannot claim idle job entries")
                    }
                }
            }
            next_claim = Instant::now() + claim_every;
            if free.is_empty() {
                continue;
            }
        }
        if reader.is_none() {
            let config = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(2)))
                // Blocking reads answer late on purpose.
                .set_response_timeout(None);
            let connected = tokio::select! {
                c = drone.client.get_multiplexed_async_connection_with_config(&config) => c,
                _ = quit.cancelled() => return,
            };
            match connected {
                Ok(conn) => reader = Some(conn),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot connect to Redis to read jobs; retrying");
                    drop(free);
                    tokio::select! {
                        _ = backoff.wait() => {}
                        _ = quit.cancelled() => return,
                    }
                    continue;
                }
            }
        }
        let Some(conn) = reader.as_mut() else {
            continue;
        };
        let block = next_claim.saturating_duration_since(Instant::now());
        // A Redis that vanished without closing the socket would leave the
        // read blocked for ever.
        let read = tokio::time::timeout(
            block + READ_SLACK,
            streams::read_new(conn, &shared.id, pools, free.len(), block),
        );
        let read = tokio::select! {
            read = read => read.unwrap_or_else(|_| Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "a blocking read got no answer",
            )))),
            _ = quit.cancelled() => return,
        };
        match read {
            Ok(entries) => {
                backoff.reset();
                for entry in entries {
                    start(shared, entry, &mut free, tasks);
                }
            }
            Err(e) if streams::is_no_group(&e) => recreate_groups(shared, pools).await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read jobs from Redis; retrying");
                reader = None;
                drop(free);
                tokio::select! {
                    _ = backoff.wait() => {}
                    _ = quit.cancelled() => return,
                }
            }
        }
    }
}

/// Starts an attempt task for `entry` on one of the `free` slots, unless
/// the same entry runs here already.
fn start(
    shared: &Arc<Shared>,
    entry: streams::Entry,
    free: &mut Vec<tokio::sync::OwnedSemaphorePermit>,
    tasks: &TaskTracker,
) {
    if !shared
        .local()
        .insert(format!("{}#{}", entry.pool, entry.id))
    {
        return;
    }
    let Some(slot) = free.pop() else {
        // Cannot happen: Redis returns at most COUNT entries. The entry
        // stays pending and is claimed once idle.
        shared
            .local()
            .remove(&format!("{}#{}", entry.pool, entry.id));
        return;
    };
    tasks.spawn(attempt::take(shared.clone(), entry, slot));
}

/// Entries delivered to this drone that it never started (a read cut short
/// by the stop) go back to the other drones at once.
async fn release_strays(shared: &Shared, pools: &[String]) {
    let mut conn = shared.conn.clone();
    for pool in pools {
        let pending = tokio::time::timeout(
            Duration::from_secs(2),
            streams::pending_of(&mut conn, &shared.id, pool, 1000),
        )
        .await;
        let Ok(Ok(ids)) = pending else { continue };
        for id in ids {
            if shared.local().contains(&format!("{pool}#{id}")) {
                continue;
            }
            let entry = streams::Entry {
                pool: pool.clone(),
                id,
                fields: None,
            };
            attempt::release(shared, &entry).await;
        }
    }
}

async fn recreate_groups(shared: &Shared, pools: &[String]) {
    tracing::warn!(
        "the jobs streams lost their consumer group (Redis restarted without its data?); making them again"
    );
    let mut conn = shared.conn.clone();
    if let Err(e) = streams::create_groups(&mut conn, pools).await {
        tracing::warn!(error = %e, "cannot make the consumer groups again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How often a command Redis refuses (not a lost connection: a wrong type,
/// a script error) is tried before the drone gives up on it.
const REFUSALS: u32 = 10;

/// Runs `command` until it succeeds, backing off while Redis is away;
/// `None` if `stop` fires first, or Redis keeps refusing the command.
pub(crate) async fn retry<T, F, Fut>(
    what: &str,
    stop: &CancellationToken,
    conn: &ConnectionManager,
    mut command: F,
) -> Option<T>
where
    F: FnMut(ConnectionManager) -> Fut,
    Fut: Future<Output = redis::RedisResult<T>>,
{
    let mut backoff = Backoff::new();
    let (mut failures, mut refusals) = (0u32, 0u32);
    loop {
        let result = tokio::select! {
            result = command(conn.clone()) => result,
            _ = stop.cancelled() => return None,
        };
        match result {
            Ok(value) => {
                if failures > 0 {
                    tracing::warn!(what, failures, "Redis answers again");
                }
                return Some(value);
            }
            Err(e) => {
                failures += 1;
                if !transient(&e) {
                    refusals += 1;
                    if refusals >= REFUSALS {
                        tracing::error!(what, error = %e, "Redis keeps refusing a command; giving up on it");
                        return None;
                    }
                }
                if failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(what, failures, error = %e, "Redis command failed; retrying");
                }
            }
        }
        tokio::select! {
            _ = backoff.wait() => {}
            _ = stop.cancelled() => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_become_one_safe_path_component() {
        assert_eq!(safe_component("r-1/x"), "r-1_x");
        assert_eq!(safe_component(".."), "___");
        assert_eq!(safe_component(""), "_");
        assert_eq!(safe_component("2026-abc.1"), "2026-abc.1");
    }

    #[test]
    fn drone_ids_are_checked() {
        assert!(valid_id(&default_id()));
        assert!(!valid_id(""));
        assert!(!valid_id("a b"));
        assert!(!valid_id(&"x".repeat(129)));
    }
}
