//! In-process dispatch: each node runs in this process's Wasm runtime, with the drivers that
//! admission loaded before the run started.

use std::path::PathBuf;
use std::sync::Arc;

use crate::admission::DriverSet;
use crate::engine::{Dispatch, DispatchFuture, NodeRun};
use crate::runtime::{NodeContext, Runtime};
use crate::task::{NodeStatus, Outcome};

use super::Workspaces;

/// Runs nodes in this process.
pub struct LocalDispatch {
    runtime: Runtime,
    drivers: DriverSet,
    workspaces: Arc<Workspaces>,
    threads: Option<super::NodeThreads>,
}

impl LocalDispatch {
    /// Each node gets the workspace `<workspaces>/<node name>`.
    pub fn new(runtime: Runtime, drivers: DriverSet, workspaces: PathBuf) -> Self {
        // Resolved once here so that the runtime need not resolve each node's
        // path; if it cannot be made, each node says so when it runs.
        let workspaces = std::fs::create_dir_all(&workspaces)
            .and_then(|_| workspaces.canonicalize())
            .unwrap_or(workspaces);
        LocalDispatch::resolved(runtime, drivers, workspaces)
    }

    /// Like [`new`](Self::new) for a `workspaces` path already made
    /// canonical (by canonicalizing its parent once for many runs): touches
    /// no file. The folder is made when a node first needs a workspace.
    pub fn resolved(runtime: Runtime, drivers: DriverSet, workspaces: PathBuf) -> Self {
        LocalDispatch {
            runtime,
            drivers,
            workspaces: Arc::new(Workspaces::per_node(workspaces)),
            threads: None,
        }
    }

    /// Recycles the nodes' workspaces under the same folder (see
    /// [`Workspaces::recycled`]) instead of `<workspaces>/<node name>`.
    pub fn recycling_workspaces(mut self) -> Self {
        let root = self.workspaces.root().to_path_buf();
        self.workspaces = Arc::new(Workspaces::recycled(root));
        self
    }

    /// Where the nodes work.
    pub fn workspaces(&self) -> &Arc<Workspaces> {
        &self.workspaces
    }

    /// Runs each node on one of `threads` (see [`super::NodeThreads`])
    /// instead of in the attempt's own task: for a caller on a
    /// current-thread runtime.
    pub fn on_threads(mut self, threads: super::NodeThreads) -> Self {
        self.threads = Some(threads);
        self
    }
}

impl Dispatch for LocalDispatch {
    fn dispatch(&self, run: NodeRun) -> DispatchFuture {
        let node = &run.dag.nodes[run.index];
        let driver = self.drivers.get(&node.driver).cloned();
        let runtime = self.runtime.clone();
        // Nodes whose drivers never make a folder take none from the pool.
        let uses_workspace = driver
            .as_ref()
            .is_some_and(|d| runtime.makes_workspace(d, &run.task));
        let workspace = if uses_workspace {
            self.workspaces.take(run.index, &node.name)
        } else {
            self.workspaces.root().join(&node.name)
        };
        let workspaces = Arc::clone(&self.workspaces);
        // No attempt follows a success or the last retry.
        let last_attempt = run.task.attempt > node.retries.max;
        let threads = self.threads.clone();
        let node = async move {
            let Some(driver) = driver else {
                return Outcome::failure(format!(
                    "driver `{}` is not loaded",
                    run.dag.nodes[run.index].driver
                ));
            };
            let ctx = NodeContext {
                workspace,
                logs: run.logs,
                cancel: run.cancel,
            };
            let outcome = runtime.run(&driver, run.task, ctx).await;
            if uses_workspace && (last_attempt || outcome.status == NodeStatus::Success) {
                // A container's removal may still be under way; its folder
                // must not reach another node.
                let reusable = !driver.description().capabilities.container;
                workspaces.release(run.index, reusable);
            }
            outcome
        };
        match threads {
            Some(threads) => Box::pin(async move { threads.run(node).await }),
            None => Box::pin(node),
        }
    }
}
