//! The embedded backend: runs in the database in the data folder, nodes run
//! by this process.

use std::path::PathBuf;
use std::sync::Arc;

use super::{Backend, Follow, Mode, RunDispatch, RunHost, RunStart};
use crate::runtime::Runtime;
use crate::store::{RunMeta, RunStore, Store, StoreError};
use crate::transport::LocalDispatch;
use crate::transport::redis::{DroneStatus, PoolStatus};

/// Runs kept in `store`, their nodes run here on `runtime`.
pub struct Embedded {
    store: Store,
    /// The same store, for those that keep a handle on it.
    shared: Arc<dyn RunStore>,
    runtime: Runtime,
    /// Where each run's folder of node workspaces goes, resolved once.
    workspaces: PathBuf,
}

impl Embedded {
    /// Runs kept in `store`, nodes run on `runtime`, their workspaces in
    /// the folder the runtime's configuration names.
    pub fn new(store: Store, runtime: Runtime) -> Embedded {
        let root = runtime.config().workspace_dir();
        // Resolved here once rather than for every run; if it cannot be
        // made, each node that needs a workspace says so.
        let workspaces = std::fs::create_dir_all(&root)
            .and_then(|_| root.canonicalize())
            .unwrap_or(root);
        Embedded {
            shared: Arc::new(store.clone()),
            store,
            runtime,
            workspaces,
        }
    }
}

#[async_trait::async_trait]
impl Backend for Embedded {
    fn mode(&self) -> Mode {
        Mode::Embedded
    }

    fn describe(&self) -> String {
        format!("data in {}", self.store.path().display())
    }

    fn store(&self) -> &Arc<dyn RunStore> {
        &self.shared
    }

    fn max_parallelism(&self) -> usize {
        self.runtime.config().limits.max_instances.max(1) as usize
    }

    fn reattaches(&self) -> bool {
        false
    }

    fn dispatch(&self, run: RunStart<'_>) -> RunDispatch {
        let folder = self.workspaces.join(run.id);
        let local = LocalDispatch::resolved(self.runtime.clone(), run.drivers, folder.clone())
            .recycling_workspaces();
        let workspaces = Arc::clone(local.workspaces());
        let wind_up = Box::pin(async move {
            // Folders nodes left used are removed as they finish; wait for
            // those under way before the run's folder goes (on the blocking
            // pool only if there is a removal thread to wait for).
            if workspaces.removing() {
                let _ = tokio::task::spawn_blocking(move || workspaces.finish()).await;
            } else {
                workspaces.finish();
            }
            // Most runs of drivers that need no workspace made no folder:
            // look before paying for a blocking-pool round trip.
            if std::fs::symlink_metadata(&folder).is_ok() {
                let _ = tokio::fs::remove_dir_all(&folder).await;
            }
        });
        RunDispatch {
            dispatch: Arc::new(local),
            wind_up,
        }
    }

    async fn run_ended(&self, _id: &str, _stored: bool) {}

    async fn recover(&self, host: Arc<dyn RunHost>) -> Result<usize, StoreError> {
        let unfinished = self.store.unfinished()?;
        let count = unfinished.len();
        for meta in unfinished {
            // The run's folder holds what its interrupted attempts left:
            // their re-runs start afresh (the folders of nodes that ended
            // were removed as they ended).
            let folder = self.workspaces.join(&meta.id);
            if let Err(e) = tokio::fs::remove_dir_all(&folder).await
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(run = %meta.id, folder = %folder.display(), error = %e, "cannot clear the workspaces of an interrupted run");
            }
            host.carry_on(meta).await?;
        }
        Ok(count)
    }

    fn hands_over(&self) -> bool {
        false
    }

    async fn hand_over(&self, _ids: &[String]) {}

    async fn request_cancel(&self, id: &str) -> Result<Option<RunMeta>, StoreError> {
        // Only this process runs the runs kept here, and a run it is not
        // running has ended: there is nobody else to ask.
        self.store.run(id)
    }

    fn follower(&self) -> Option<Box<dyn Follow>> {
        None
    }

    async fn drones(&self) -> Result<Vec<DroneStatus>, StoreError> {
        Ok(Vec::new())
    }

    async fn pools(&self) -> Result<Vec<PoolStatus>, StoreError> {
        Ok(Vec::new())
    }

    async fn ready(&self) -> Result<(), StoreError> {
        if !self.store.writer_alive() {
            return Err(StoreError::Stopped);
        }
        self.store.unwritable().map_or(Ok(()), Err)
    }
}
