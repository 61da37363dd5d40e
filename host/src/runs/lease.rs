//! Redis mode's upkeep of run leases: renewing this leader's, taking over
//! runs nobody holds, and hearing cancels asked through other leaders.

use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::{Runs, RunsError};
use crate::store::redis::{RUN_CANCEL_CHANNEL, RedisStore};
use crate::transport::redis::retry::Backoff;

/// How soon a failed renewal is tried again.
const RETRY: Duration = Duration::from_millis(200);

impl Runs {
    /// Takes the lease of every unfinished run nobody holds and carries it
    /// on; returns how many.
    pub(super) async fn take_over(&self) -> Result<usize, RunsError> {
        let Some(redis) = self.inner.store.redis() else {
            return Ok(0);
        };
        let mut count = 0;
        let unfinished = self.inner.store.unfinished().await?;
        let elsewhere: Vec<&str> = unfinished
            .iter()
            .map(|meta| meta.id.as_str())
            .filter(|id| self.live(id).is_none())
            .collect();
        for id in redis.unleased(&elsewhere).await? {
            let id = id.to_owned();
            if !redis.acquire(&id).await? {
                continue;
            }
            // Read again under the lease: the last holder may have ended it.
            let meta = match self.inner.store.run(&id).await {
                Ok(Some(meta)) if meta.finished_at.is_none() => meta,
                Ok(_) => {
                    redis.release(&id).await?;
                    continue;
                }
                Err(e) => {
                    let _ = redis.release(&id).await;
                    return Err(e.into());
                }
            };
            // Its leader stopped (or never came back): worth telling.
            tracing::warn!(run = %id, leader = redis.leader(), "taking the run over");
            if let Err(e) = self.recover_one(meta).await {
                tracing::warn!(run = %id, error = %e, "cannot take the run over; leaving it");
                if let Some(live) = self.live(&id) {
                    live.lost.cancel();
                }
                let _ = redis.release(&id).await;
                continue;
            }
            count += 1;
        }
        // A cancel asked while a run changed hands reached nobody: look.
        self.check_cancels().await?;
        Ok(count)
    }

    /// Cancels every run live here whose stored summary asks for it.
    async fn check_cancels(&self) -> Result<(), RunsError> {
        let live: Vec<String> = self.live_map().keys().cloned().collect();
        for id in live {
            let asked = self
                .inner
                .store
                .run(&id)
                .await?
                .is_some_and(|m| m.cancel_requested);
            if asked && let Some(run) = self.live(&id) {
                if !run.cancel.is_cancelled() {
                    tracing::info!(run = %id, "canceled through another leader");
                }
                run.update_meta(|m| m.cancel_requested = true);
                run.cancel.cancel();
            }
        }
        Ok(())
    }

    /// Stops run `id` here: its lease is not ours any more.
    fn lose(&self, id: &str) {
        if let Some(live) = self.live(id) {
            tracing::warn!(run = %id, "lost the run's lease; stopping it here");
            live.lost.cancel();
        }
    }

    /// Redis mode, at shutdown: stops every run here without writing
    /// anything more for it, and gives their leases up so that another
    /// leader carries them on at once. Returns how many.
    pub async fn hand_over(&self) -> usize {
        let Some(redis) = self.inner.store.redis() else {
            return 0;
        };
        self.inner.upkeep.cancel();
        let live: Vec<String> = self.live_map().keys().cloned().collect();
        for id in &live {
            self.lose(id);
        }
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        // Every write queued before this one is in Redis once it is.
        let _ = redis.write(Vec::new()).await;
        for id in &live {
            if let Err(e) = redis.release(id).await {
                tracing::warn!(run = %id, error = %e, "cannot give the lease up; it expires");
            }
        }
        live.len()
    }
}

/// Starts the upkeep tasks of Redis mode; they stop with [`Runs::hand_over`].
pub(super) fn start(runs: Runs) {
    let Some(redis) = runs.inner.store.redis().cloned() else {
        return;
    };
    tokio::spawn(renew(runs.clone(), redis.clone()));
    tokio::spawn(take_over(runs.clone(), redis.lease()));
    tokio::spawn(cancels(runs, redis));
}

/// Every lease/3: extends this leader's leases. Runs whose lease turns out
/// lost stop at once. While Redis does not answer, tries again every
/// [`RETRY`]; once a lease may lapse before the next try, every run here
/// stops (another leader may hold them by then).
async fn renew(runs: Runs, redis: RedisStore) {
    let lease = redis.lease();
    let every = lease / 3;
    // A lease counts from before the renewal was sent: Redis's clock
    // starts later, so this leader always stops first.
    let mut renewed = Instant::now();
    let mut wait = every;
    loop {
        tokio::select! {
            () = runs.inner.upkeep.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let sent = Instant::now();
        match tokio::time::timeout(RETRY.min(every), redis.renew()).await {
            Ok(Ok(lost)) => {
                renewed = sent;
                wait = every;
                for id in lost {
                    runs.lose(&id);
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
                runs.lose(&id);
            }
            // Leases taken from now on count from now.
            renewed = Instant::now();
        }
    }
}

/// Every lease/2: carries on the runs nobody holds.
async fn take_over(runs: Runs, lease: Duration) {
    loop {
        tokio::select! {
            () = runs.inner.upkeep.cancelled() => return,
            () = tokio::time::sleep(lease / 2) => {}
        }
        match runs.take_over().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(runs = n, "took runs over"),
            Err(e) => tracing::warn!(error = %e, "cannot look for runs to take over"),
        }
    }
}

/// Listens on the cancel channel: cancels the runs live here that another
/// leader was asked to cancel. Reconnects while Redis is away.
async fn cancels(runs: Runs, redis: RedisStore) {
    let mut backoff = Backoff::new();
    loop {
        let subscribed = async {
            let mut pubsub = redis.client().get_async_pubsub().await?;
            pubsub.subscribe(RUN_CANCEL_CHANNEL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::select! {
            () = runs.inner.upkeep.cancelled() => return,
            pubsub = subscribed => pubsub,
        };
        match pubsub {
            Ok(pubsub) => {
                backoff.reset();
                let mut messages = pubsub.into_on_message();
                loop {
                    let message = tokio::select! {
                        () = runs.inner.upkeep.cancelled() => return,
                        message = messages.next() => message,
                    };
                    let Some(message) = message else { break };
                    let Ok(id) = message.get_payload::<String>() else {
                        continue;
                    };
                    if runs.live(&id).is_some()
                        && let Err(e) = runs.cancel(&id).await
                    {
                        tracing::warn!(run = %id, error = %e, "cannot cancel the run");
                    }
                }
                tracing::debug!("the cancel subscription ended; subscribing again");
            }
            Err(e) => tracing::debug!(error = %e, "cannot subscribe to cancels"),
        }
        tokio::select! {
            () = runs.inner.upkeep.cancelled() => return,
            () = backoff.wait() => {}
        }
    }
}
