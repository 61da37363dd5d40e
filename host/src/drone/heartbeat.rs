//! The drone's heartbeat: its [`DroneInfo`] under `drover:drone:<id>`,
//! expiring after three missed beats, a copy that does not expire in
//! `drover:drones:last`, and its id and pools in the sets.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::{DroneOptions, Shared};
use crate::rfc3339;
use crate::transport::redis::protocol::{self, DroneInfo};

/// Writes one heartbeat (and re-adds the drone and its pools to their sets,
/// which a Redis restarted without its data has lost).
pub(super) async fn beat_once(
    shared: &Shared,
    options: &DroneOptions,
    started: SystemTime,
) -> redis::RedisResult<()> {
    let info = DroneInfo {
        id: shared.id.clone(),
        host: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default(),
        pid: std::process::id(),
        pools: options.pools.clone(),
        concurrency: options.concurrency,
        running: shared.running.load(Ordering::Relaxed),
        finished: shared.finished.load(Ordering::Relaxed),
        started_at: rfc3339::format(started),
        last_seen: rfc3339::format(rfc3339::now()),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let text = serde_json::to_string(&info).unwrap_or_default();
    let expiry = u64::try_from(options.heartbeat.as_millis().saturating_mul(3)).unwrap_or(u64::MAX);
    let mut conn = shared.conn.clone();
    // In one transaction: a leader never sees the id without its records.
    redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(protocol::drone_key(&shared.id))
        .arg(&text)
        .arg("PX")
        .arg(expiry.max(1))
        .ignore()
        .cmd("HSET")
        .arg(protocol::DRONES_LAST)
        .arg(&shared.id)
        .arg(&text)
        .ignore()
        .cmd("SADD")
        .arg(protocol::DRONES)
        .arg(&shared.id)
        .ignore()
        .cmd("SADD")
        .arg(protocol::POOLS)
        .arg(&options.pools)
        .ignore()
        .query_async(&mut conn)
        .await
}

/// Beats every `options.heartbeat` until `quit`.
pub(super) async fn beat(
    shared: Arc<Shared>,
    options: DroneOptions,
    started: SystemTime,
    quit: CancellationToken,
) {
    let mut ticks = tokio::time::interval(options.heartbeat.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = quit.cancelled() => return,
        }
        match beat_once(&shared, &options, started).await {
            Ok(()) if failing => {
                tracing::warn!("heartbeat written again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot write the heartbeat; retrying every beat");
                }
                failing = true;
            }
        }
    }
}
