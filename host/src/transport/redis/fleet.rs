//! What the leader knows of the drones: their heartbeats, the pools they
//! serve, and how many jobs wait and run in each pool.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, SystemTime};

use redis::aio::ConnectionManager;
use serde::Serialize;
use tokio::time::Instant;

use super::RedisError;
use super::protocol::{self, DRONE_RETENTION, DroneInfo};
use crate::rfc3339;

/// A drone as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DroneStatus {
    /// Its id.
    pub id: String,
    /// Whether its heartbeat record is there (it expires when the drone
    /// stops reporting).
    pub alive: bool,
    /// Its last heartbeat, also once it stopped beating; `None` if that
    /// does not parse.
    pub info: Option<DroneInfo>,
}

/// A pool's queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = Pool)]
pub struct PoolStatus {
    /// The pool's name.
    pub name: String,
    /// Jobs no drone has taken yet.
    pub queued: u64,
    /// Jobs a drone has taken and not finished (or that a dead drone left).
    pub running: u64,
    /// Live drones serving the pool.
    pub drones: usize,
}

/// For each jobs stream in KEYS: its length and how many of its entries are
/// pending in the drones' group (0 when the group does not exist yet).
const DEPTHS: &str = r"
local out = {}
for i = 1, #KEYS do
  out[#out + 1] = redis.call('XLEN', KEYS[i])
  local ok, pending = pcall(redis.call, 'XPENDING', KEYS[i], ARGV[1])
  if ok and type(pending) == 'table' then
    out[#out + 1] = pending[1]
  else
    out[#out + 1] = 0
  end
end
return out
";

/// Every drone seen in the last [`DRONE_RETENTION`], by id: alive (its
/// heartbeat record is there) or not (then with its last heartbeat).
/// Drones silent for longer, and ids with no record at all, are dropped
/// from the set as they are found.
pub(super) async fn drones(conn: &mut ConnectionManager) -> Result<Vec<DroneStatus>, RedisError> {
    let ids: BTreeSet<String> = redis::cmd("SMEMBERS")
        .arg(protocol::DRONES)
        .query_async(conn)
        .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    let mget = pipe.cmd("MGET");
    for id in &ids {
        mget.arg(protocol::drone_key(id));
    }
    let hmget = pipe.cmd("HMGET").arg(protocol::DRONES_LAST);
    for id in &ids {
        hmget.arg(id);
    }
    type Records = Vec<Option<Vec<u8>>>;
    let (live, last): (Records, Records) = pipe.query_async(conn).await?;
    let now = SystemTime::now();
    let (mut listed, mut stale) = (Vec::new(), Vec::new());
    for ((id, live), last) in ids.into_iter().zip(live).zip(last) {
        if let Some(record) = live {
            listed.push(DroneStatus {
                alive: true,
                info: parse(&id, &record),
                id,
            });
            continue;
        }
        let last = last.and_then(|record| parse(&id, &record));
        let recent = last
            .as_ref()
            .and_then(|info| rfc3339::parse(&info.last_seen))
            .is_some_and(|seen| now.duration_since(seen).unwrap_or_default() < DRONE_RETENTION);
        if recent {
            listed.push(DroneStatus {
                alive: false,
                info: last,
                id,
            });
        } else {
            stale.push(id);
        }
    }
    if !stale.is_empty() {
        let dropped: redis::RedisResult<()> = redis::pipe()
            .cmd("SREM")
            .arg(protocol::DRONES)
            .arg(&stale)
            .ignore()
            .cmd("HDEL")
            .arg(protocol::DRONES_LAST)
            .arg(&stale)
            .ignore()
            .query_async(conn)
            .await;
        match dropped {
            Ok(()) => tracing::info!(
                drones = ?stale,
                "dropped drones silent for over {} s from the list",
                DRONE_RETENTION.as_secs()
            ),
            Err(e) => tracing::debug!(error = %e, "cannot drop stale drones from the list"),
        }
    }
    Ok(listed)
}

/// A heartbeat record; `None` (and a warning) if it does not parse.
fn parse(id: &str, record: &[u8]) -> Option<DroneInfo> {
    serde_json::from_slice::<DroneInfo>(record)
        .inspect_err(|e| {
            tracing::warn!(drone = %id, error = %e, "a drone's heartbeat does not parse");
        })
        .ok()
}

/// Every pool a job was sent to or a live drone serves, by name.
pub(super) async fn pools(conn: &mut ConnectionManager) -> Result<Vec<PoolStatus>, RedisError> {
    let drones = drones(conn).await?;
    let mut live: BTreeMap<String, usize> = BTreeMap::new();
    for drone in drones.iter().filter(|d| d.alive) {
        for pool in drone.info.iter().flat_map(|i| &i.pools) {
            *live.entry(pool.clone()).or_default() += 1;
        }
    }
    let mut names: BTreeSet<String> = redis::cmd("SMEMBERS")
        .arg(protocol::POOLS)
        .query_async(conn)
        .await?;
    names.extend(live.keys().cloned());
    let names: Vec<String> = names
        .into_iter()
        .filter(|p| protocol::valid_pool(p))
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let script = redis::Script::new(DEPTHS);
    let mut invocation = script.prepare_invoke();
    for name in &names {
        invocation.key(protocol::jobs_key(name));
    }
    invocation.arg(protocol::GROUP);
    let depths: Vec<u64> = invocation.invoke_async(conn).await?;
    Ok(names
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let length = depths.get(2 * i).copied().unwrap_or(0);
            let pending = depths.get(2 * i + 1).copied().unwrap_or(0);
            PoolStatus {
                drones: live.get(&name).copied().unwrap_or(0),
                name,
                queued: length.saturating_sub(pending),
                running: pending,
            }
        })
        .collect())
}

/// How long the pools with a live drone are taken as known.
const FRESH: Duration = Duration::from_secs(1);

/// The pools that had a live drone when last looked at, looked at again
/// when asked after [`FRESH`]: at most one look a second however many nodes
/// ask.
#[derive(Default)]
pub(super) struct LivePools {
    seen: tokio::sync::Mutex<Option<(Instant, HashSet<String>)>>,
}

impl LivePools {
    /// Whether a live drone serves `pool`; `None` when Redis cannot say.
    pub(super) async fn served(&self, conn: &ConnectionManager, pool: &str) -> Option<bool> {
        let mut seen = self.seen.lock().await;
        if let Some((at, pools)) = &*seen
            && at.elapsed() < FRESH
        {
            return Some(pools.contains(pool));
        }
        let mut conn = conn.clone();
        let found = tokio::time::timeout(FRESH, drones(&mut conn)).await;
        let drones = match found {
            Ok(Ok(drones)) => drones,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cannot list drones");
                return None;
            }
            Err(_) => return None,
        };
        let pools: HashSet<String> = drones
            .into_iter()
            .filter(|d| d.alive)
            .filter_map(|d| d.info)
            .flat_map(|i| i.pools)
            .collect();
        let served = pools.contains(pool);
        *seen = Some((Instant::now(), pools));
        Some(served)
    }
}
