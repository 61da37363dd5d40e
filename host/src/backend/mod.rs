//! Where runs are kept and where their nodes run, chosen once by `drover
//! serve`: [`Embedded`] (a database in the data folder; this process runs
//! the nodes) or [`Distributed`] (Redis shared by leaders; drones run the
//! nodes). The run service and the API see only [`Backend`].

mod distributed;
mod embedded;

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

pub use distributed::{Distributed, MAX_DISTRIBUTED_PARALLELISM};
pub use embedded::Embedded;

use crate::admission::DriverSet;
use crate::engine::Dispatch;
use crate::store::{RunMeta, RunStore, StoreError};
use crate::transport::redis::{DroneStatus, PoolStatus};

/// Which kind of backend a server has (`GET /api/v1/drones` says it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One process keeps its runs and runs their nodes.
    Embedded,
    /// Leaders share runs in Redis; drones run the nodes.
    Distributed,
}

/// What a backend needs to start dispatching a run's nodes.
pub struct RunStart<'a> {
    /// The run's id.
    pub id: &'a str,
    /// The drivers the run was accepted with.
    pub drivers: DriverSet,
    /// Fires when this process lets the run go to another leader.
    pub released: CancellationToken,
    /// The attempts (node index, attempt number) a resumed run waits for
    /// rather than counting as interrupted, each with how many of its log
    /// lines are stored already. Empty unless [`Backend::reattaches`].
    pub reattached: HashMap<(usize, u32), u64>,
}

/// How a run's nodes are dispatched, and what to do once the engine is done
/// with the run (before its final record is stored).
pub struct RunDispatch {
    /// Runs the run's attempts.
    pub dispatch: Arc<dyn Dispatch>,
    /// Tidies up after the run's last attempt (its workspaces, say).
    pub wind_up: BoxFuture<'static, ()>,
}

/// What a backend needs of the run service: used by a backend whose runs
/// change hands between processes.
#[async_trait::async_trait]
pub trait RunHost: Send + Sync + 'static {
    /// The ids of the runs in progress here.
    fn running(&self) -> Vec<String>;
    /// Whether run `id` is in progress here.
    fn runs_here(&self, id: &str) -> bool;
    /// Carries on an unfinished run that this process now owns.
    async fn carry_on(&self, meta: RunMeta) -> Result<(), StoreError>;
    /// Stops run `id` here at once, writing nothing more for it: another
    /// process owns it now.
    fn lose(&self, id: &str);
    /// Cancels run `id` if it is in progress here: its stored summary
    /// already asks for that.
    fn cancel_here(&self, id: &str);
}

/// Where runs are kept and where their nodes run.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Which kind it is.
    fn mode(&self) -> Mode;

    /// Where runs are kept, for the server's start-up line.
    fn describe(&self) -> String;

    /// The runs' summaries, DAG texts, events and records.
    fn store(&self) -> &Arc<dyn RunStore>;

    /// The most nodes at once a run may ask for.
    fn max_parallelism(&self) -> usize;

    /// Whether an attempt that was running when its run was carried on
    /// may still be running elsewhere, to be waited for.
    fn reattaches(&self) -> bool;

    /// Starts dispatching the nodes of a run.
    fn dispatch(&self, run: RunStart<'_>) -> RunDispatch;

    /// Run `id` has ended here; `stored` says whether its final record is
    /// stored (when not, another process may still carry it on).
    async fn run_ended(&self, id: &str, stored: bool);

    /// Carries on the unfinished runs that are this process's to carry on,
    /// through `host`; returns how many. Call once, before serving.
    async fn recover(&self, host: Arc<dyn RunHost>) -> Result<usize, StoreError>;

    /// Whether runs stopped at shutdown go on elsewhere at once (rather
    /// than when this server starts again).
    fn hands_over(&self) -> bool;

    /// At shutdown, after the runs `ids` were stopped here: lets others
    /// carry them on.
    async fn hand_over(&self, ids: &[String]);

    /// Asks for run `id`, not in progress here, to be canceled by whoever
    /// runs it. Its summary as stored; `None` when there is no such run.
    async fn request_cancel(&self, id: &str) -> Result<Option<RunMeta>, StoreError>;

    /// A reader that waits for new events of a run in progress elsewhere;
    /// `None` when no run is ever in progress elsewhere.
    fn follower(&self) -> Option<Box<dyn Follow>>;

    /// The drones and their state (none in embedded mode).
    async fn drones(&self) -> Result<Vec<DroneStatus>, StoreError>;

    /// The pools of drones and their queues (none in embedded mode).
    async fn pools(&self) -> Result<Vec<PoolStatus>, StoreError>;

    /// Whether runs can be accepted now: the store's writer is alive and
    /// whatever the backend needs answers. The error says what is not.
    async fn ready(&self) -> Result<(), StoreError>;
}

/// Waits for the new events of a run in progress elsewhere.
#[async_trait::async_trait]
pub trait Follow: Send + Sync {
    /// Up to `limit` events of `run` after `after`, waiting up to `wait` for
    /// the first; none if nothing came meanwhile.
    async fn next(
        &mut self,
        run: &str,
        after: u64,
        limit: usize,
        wait: std::time::Duration,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
}
