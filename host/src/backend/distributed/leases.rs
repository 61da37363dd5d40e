//! The upkeep of run leases in distributed mode: renewing this leader's,
//! taking over runs nobody holds, and hearing cancels asked through other
//! leaders.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::backend::RunHost;
use crate::store::redis::{RUN_CANCEL_CHANNEL, RedisStore};
use crate::store::{RunStore, StoreError};
use crate::transport::redis::subscription;

/// How soon a failed renewal is tried again.
const RETRY: Duration = Duration::from_millis(200);

/// Takes the lease of every unfinished run nobody holds and carries it on
/// through `host`; returns how many.
pub(super) async fn take_over(redis: &RedisStore, host: &dyn RunHost) -> Result<usize, StoreError> {
    let mut count = 0;
    let unfinished = redis.unfinished().await?;
    let elsewhere: Vec<&str> = unfinished
        .iter()
        .map(|meta| meta.id.as_str())
        .filter(|id| !host.runs_here(id))
        .collect();
    for id in redis.unleased(&elsewhere).await? {
        let id = id.to_owned();
        if !redis.acquire(&id).await? {
            continue;
        }
        // Read again under the lease: the last holder may have ended it.
        let meta = match redis.run(&id).await {
            Ok(Some(meta)) if meta.finished_at.is_none() => meta,
            Ok(_) => {
                redis.release(&id).await?;
                continue;
            }
            Err(e) => {
                let _ = redis.release(&id).await;
                return Err(e);
            }
        };
        // Its leader stopped (or never came back): worth telling.
        tracing::warn!(run = %id, leader = redis.leader(), "taking the run over");
        if let Err(e) = host.carry_on(meta).await {
            tracing::warn!(run = %id, error = %e, "cannot take the run over; leaving it");
            host.lose(&id);
            let _ = redis.release(&id).await;
            continue;
        }
        count += 1;
    }
    // A cancel asked while a run changed hands reached nobody: look.
    check_cancels(redis, host).await?;
    Ok(count)
}

/// Cancels every run in progress here whose stored summary asks for it.
async fn check_cancels(redis: &RedisStore, host: &dyn RunHost) -> Result<(), StoreError> {
    for id in host.running() {
        let asked = redis.run(&id).await?.is_some_and(|m| m.cancel_requested);
        if asked {
            host.cancel_here(&id);
        }
    }
    Ok(())
}

/// Starts the upkeep tasks; they stop when `stop` fires.
pub(super) fn start(redis: RedisStore, host: Arc<dyn RunHost>, stop: CancellationToken) {
    tokio::spawn(renew(redis.clone(), Arc::clone(&host), stop.clone()));
    tokio::spawn(take_over_now_and_then(
        redis.clone(),
        Arc::clone(&host),
        stop.clone(),
    ));
    tokio::spawn(cancels(redis, host, stop));
}

/// Every lease/3: extends this leader's leases. Runs whose lease turns out
/// lost stop at once. While Redis does not answer, tries again every
/// [`RETRY`]; once a lease may lapse before the next try, every run here
/// stops (another leader may hold them by then).
async fn renew(redis: RedisStore, host: Arc<dyn RunHost>, stop: CancellationToken) {
    let lease = redis.lease();
    let every = lease / 3;
    // A lease counts from before the renewal was sent: Redis's clock
    // starts later, so this leader always stops first.
    let mut renewed = Instant::now();
    let mut wait = every;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let sent = Instant::now();
        match tokio::time::timeout(RETRY.min(every), redis.renew()).await {
            Ok(Ok(lost)) => {
                renewed = sent;
                wait = every;
                for id in lost {
                    host.lose(&id);
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot renew the leases");
                wait = RETRY.min(every);
            }
            Err(_) => {
                tracing::warn!("renewing the leases takes too long");
                wait = RETRY.min(every);
            }
        }
        if renewed.elapsed() + 2 * RETRY.min(every) >= lease {
            for id in redis.forget_all() {
                host.lose(&id);
            }
            // Leases taken from now on count from now.
            renewed = Instant::now();
        }
    }
}

/// Every lease/2: carries on the runs nobody holds.
async fn take_over_now_and_then(
    redis: RedisStore,
    host: Arc<dyn RunHost>,
    stop: CancellationToken,
) {
    let lease = redis.lease();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(lease / 2) => {}
        }
        match take_over(&redis, host.as_ref()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(runs = n, "took runs over"),
            Err(e) => tracing::warn!(error = %e, "cannot look for runs to take over"),
        }
    }
}

/// Listens on the cancel channel: cancels the runs in progress here that
/// another leader was asked to cancel. Subscribes again while Redis is away.
async fn cancels(redis: RedisStore, host: Arc<dyn RunHost>, stop: CancellationToken) {
    subscription::listen(redis.client().clone(), RUN_CANCEL_CHANNEL, stop, |id| {
        host.cancel_here(&id);
    })
    .await;
}
