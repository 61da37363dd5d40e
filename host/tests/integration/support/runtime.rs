//! The Wasm runtime in-process, for the tests that run drivers without the
//! `drover` binary: a runtime over a temporary data folder, sharing the
//! compile cache of every test, and a node's outcome with its log lines.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use drover::config::Config;
use drover::runtime::{Driver, NodeContext, Runtime};
use drover::task::{LogLine, Outcome, Task};
use tokio_util::sync::CancellationToken;

pub struct Harness {
    pub runtime: Runtime,
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(|_| {})
    }

    pub fn with_config(edit: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: Some(dir.path().join("data")),
            // Shared by all tests: each driver is compiled once per build.
            cache_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("drover-compiled")),
            ..Config::default()
        };
        edit(&mut config);
        Harness {
            runtime: Runtime::new(config).unwrap(),
            dir,
        }
    }

    pub async fn load(&self, bytes: Arc<[u8]>) -> Driver {
        self.runtime.load(bytes).await.unwrap()
    }

    pub fn workspace(&self, node: &str) -> PathBuf {
        self.dir.path().join("ws").join(node)
    }

    pub async fn run(&self, driver: &Driver, task: Task) -> (Outcome, Vec<LogLine>) {
        self.run_with(driver, task, CancellationToken::new()).await
    }

    pub async fn run_with(
        &self,
        driver: &Driver,
        task: Task,
        cancel: CancellationToken,
    ) -> (Outcome, Vec<LogLine>) {
        let (logs, mut rx) = tokio::sync::mpsc::channel(64);
        let collect = tokio::spawn(async move {
            let mut lines = Vec::new();
            while let Some(line) = rx.recv().await {
                lines.push(line);
            }
            lines
        });
        let ctx = NodeContext {
            workspace: self.workspace(&task.node),
            logs,
            cancel,
        };
        let outcome = self.runtime.run(driver, task, ctx).await;
        (outcome, collect.await.unwrap())
    }
}
