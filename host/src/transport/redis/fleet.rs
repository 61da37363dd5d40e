//! What the leader knows of the drones: their heartbeats, the pools they
//! serve, and how many jobs wait and run in each pool.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::Serialize;
use tokio::time::Instant;

use super::RedisError;
use super::protocol::{self, DroneInfo};

/// A drone as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DroneStatus {
    /// Its id.
    pub id: String,
    /// Whether its heartbeat record is there (it expires when the drone
    /// stops reporting).
    pub alive: bool,
    /// Its last heartbeat; `None` once that has expired (or does not parse).
    pub info: Option<DroneInfo>,
}

/// A pool's queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// Every drone ever seen, by id, alive or not.
pub(super) async fn drones(conn: &mut ConnectionManager) -> Result<Vec<DroneStatus>, RedisError> {
    let ids: BTreeSet<String> = redis::cmd("SMEMBERS")
        .arg(protocol::DRONES)
        .query_async(conn)
        .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut mget = redis::cmd("MGET");
    for id in &ids {
        mget.arg(protocol::drone_key(id));
    }
    let records: Vec<Option<Vec<u8>>> = mget.query_async(conn).await?;
    Ok(ids
        .into_iter()
        .zip(records)
        .map(|(id, record)| {
            let info = record.as_deref().and_then(|bytes| {
                serde_json::from_slice::<DroneInfo>(bytes)
                    .inspect_err(|e| {
                        tracing::warn!(drone = %id, error = %e, "a drone's heartbeat does not parse");
                    })
                    .ok()
            });
            DroneStatus {
                alive: record.is_some(),
                id,
                info,
            }
        })
        .collect())
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
