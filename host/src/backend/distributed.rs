//! The distributed backend: runs in Redis, shared by every leader and each
//! scheduled by the one holding its lease; nodes run on drones.

mod leases;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Backend, Follow, Mode, RunDispatch, RunHost, RunStart};
use crate::store::redis::{Follower, RedisStore};
use crate::store::{RunMeta, RunStore, StoreError};
use crate::transport::redis::{DroneStatus, PoolStatus, RedisDispatcher};

/// The most nodes at once a run may ask for in distributed mode, where
/// the drones' concurrency is the real bound.
pub const MAX_DISTRIBUTED_PARALLELISM: usize = 65_536;

/// Runs kept in Redis through `store`, their nodes sent to drones through
/// `dispatcher`.
pub struct Distributed {
    store: RedisStore,
    /// The same store, for those that keep a handle on it.
    shared: Arc<dyn RunStore>,
    dispatcher: RedisDispatcher,
    /// Stops the lease upkeep.
    upkeep: CancellationToken,
}

impl Distributed {
    /// Runs kept in `store`, nodes sent through `dispatcher` (both on the
    /// same Redis).
    pub fn new(store: RedisStore, dispatcher: RedisDispatcher) -> Distributed {
        Distributed {
            shared: Arc::new(store.clone()),
            store,
            dispatcher,
            upkeep: CancellationToken::new(),
        }
    }
}

fn redis_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Redis(e.to_string())
}

#[async_trait::async_trait]
impl Backend for Distributed {
    fn mode(&self) -> Mode {
        Mode::Distributed
    }

    fn describe(&self) -> String {
        format!(
            "runs in {}, leader {}",
            self.store.url(),
            self.store.leader()
        )
    }

    fn store(&self) -> &Arc<dyn RunStore> {
        &self.shared
    }

    fn max_parallelism(&self) -> usize {
        MAX_DISTRIBUTED_PARALLELISM
    }

    fn reattaches(&self) -> bool {
        // A drone may still be running the attempt a previous leader sent.
        true
    }

    fn dispatch(&self, run: RunStart<'_>) -> RunDispatch {
        RunDispatch {
            dispatch: self
                .dispatcher
                .run(run.id, &run.drivers, run.released, run.reattached),
            wind_up: Box::pin(async {}),
        }
    }

    async fn run_ended(&self, id: &str, stored: bool) {
        if stored {
            self.dispatcher.finish_run(id).await;
        } else {
            self.dispatcher.release_run(id);
        }
    }

    async fn recover(&self, host: Arc<dyn RunHost>) -> Result<usize, StoreError> {
        // Runs another leader holds stay with it; the rest are ours now.
        let count = leases::take_over(&self.store, host.as_ref()).await?;
        leases::start(self.store.clone(), host, self.upkeep.clone());
        Ok(count)
    }

    fn hands_over(&self) -> bool {
        true
    }

    async fn hand_over(&self, ids: &[String]) {
        self.upkeep.cancel();
        // Every write queued before this one is in Redis once it is.
        let _ = self.store.write(Vec::new()).await;
        for id in ids {
            if let Err(e) = self.store.release(id).await {
                tracing::warn!(run = %id, error = %e, "cannot give the lease up; it expires");
            }
        }
    }

    async fn request_cancel(&self, id: &str) -> Result<Option<RunMeta>, StoreError> {
        // Another leader runs it (or will, after taking it over): the
        // stored flag and a message tell it.
        self.store.request_cancel(id).await
    }

    fn follower(&self) -> Option<Box<dyn Follow>> {
        Some(Box::new(self.store.follower()))
    }

    async fn drones(&self) -> Result<Vec<DroneStatus>, StoreError> {
        self.dispatcher.drones().await.map_err(redis_error)
    }

    async fn pools(&self) -> Result<Vec<PoolStatus>, StoreError> {
        self.dispatcher.pools().await.map_err(redis_error)
    }

    async fn ready(&self) -> Result<(), StoreError> {
        if !self.store.writer_alive() {
            return Err(StoreError::Stopped);
        }
        self.store.ping().await
    }
}

#[async_trait::async_trait]
impl Follow for Follower {
    async fn next(
        &mut self,
        run: &str,
        after: u64,
        limit: usize,
        wait: std::time::Duration,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        Follower::next(self, run, after, limit, wait).await
    }
}
