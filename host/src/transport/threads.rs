//! Threads that run nodes next to a single-threaded caller: each node's
//! driver, its processes and their pipes live on one thread from start to
//! end, so a node costs no wake-ups between threads.
//!
//! `drover run` drives the engine on a current-thread runtime. A node runs
//! on the caller's thread when that thread has the fewest nodes, otherwise
//! on one of `threads - 1` extra threads (each with its own current-thread
//! runtime), so Wasm drivers that compute still use as many cores as nodes
//! run at once. A chain of nodes never leaves the caller's thread.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_util::sync::CancellationToken;

use crate::task::Outcome;

/// The caller's thread and the extra node threads, with how many nodes
/// each runs now. Cheap to clone; the extra threads stop when the last
/// clone is dropped (their nodes' processes are killed as they go).
#[derive(Clone)]
pub struct NodeThreads {
    inner: Arc<Inner>,
}

struct Inner {
    /// Nodes running on the caller's runtime.
    local: AtomicUsize,
    extra: Vec<Extra>,
    stop: CancellationToken,
}

struct Extra {
    handle: tokio::runtime::Handle,
    running: Arc<AtomicUsize>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Counts a node as running on a thread until dropped.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Aborts a node sent to an extra thread when the caller stops waiting.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl NodeThreads {
    /// `threads` threads in all, counting the caller's; `threads <= 1`
    /// starts none and runs every node on the caller's runtime.
    pub fn start(threads: usize) -> std::io::Result<NodeThreads> {
        let stop = CancellationToken::new();
        let mut extra = Vec::new();
        for i in 1..threads {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            let stop = stop.clone();
            // The runtime is dropped on its own thread: dropping one inside
            // another runtime's context panics.
            std::thread::Builder::new()
                .name(format!("drover-node-{i}"))
                .spawn(move || runtime.block_on(stop.cancelled_owned()))?;
            extra.push(Extra {
                handle,
                running: Arc::new(AtomicUsize::new(0)),
            });
        }
        Ok(NodeThreads {
            inner: Arc::new(Inner {
                local: AtomicUsize::new(0),
                extra,
                stop,
            }),
        })
    }

    /// How many threads run nodes, the caller's included.
    pub fn len(&self) -> usize {
        self.inner.extra.len() + 1
    }

    /// Whether only the caller's thread runs nodes.
    pub fn is_empty(&self) -> bool {
        self.inner.extra.is_empty()
    }

    /// Runs `node` on the thread with the fewest nodes (the caller's on a
    /// tie). Must be awaited on the caller's runtime.
    pub async fn run<F>(&self, node: F) -> Outcome
    where
        F: Future<Output = Outcome> + Send + 'static,
    {
        let local = self.inner.local.load(Ordering::Relaxed);
        let least = self
            .inner
            .extra
            .iter()
            .min_by_key(|e| e.running.load(Ordering::Relaxed))
            .filter(|e| e.running.load(Ordering::Relaxed) < local);
        let Some(extra) = least else {
            self.inner.local.fetch_add(1, Ordering::Relaxed);
            // Counted down however the node ends, dropped included.
            let _local = LocalRunning(&self.inner.local);
            return node.await;
        };
        extra.running.fetch_add(1, Ordering::Relaxed);
        let running = Running(Arc::clone(&extra.running));
        let task = extra.handle.spawn(async move {
            let _running = running;
            node.await
        });
        let _abort = AbortOnDrop(task.abort_handle());
        match task.await {
            Ok(outcome) => outcome,
            Err(e) if e.is_panic() => Outcome::failure("the dispatcher panicked"),
            Err(_) => Outcome::failure("the node's thread stopped before the node ended"),
        }
    }
}

/// Counts a node as running on the caller's thread until dropped.
struct LocalRunning<'a>(&'a AtomicUsize);

impl Drop for LocalRunning<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_spread_over_the_threads_and_a_chain_stays_local() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let threads = NodeThreads::start(2).unwrap();
            assert_eq!(threads.len(), 2);
            let name = || async {
                let mut out = Outcome::with_message(crate::task::NodeStatus::Success, "");
                out.outputs.insert(
                    "thread".into(),
                    std::thread::current().name().unwrap_or("").to_owned(),
                );
                out
            };
            let here = std::thread::current().name().map(str::to_owned);
            // One at a time: always the caller's thread.
            for _ in 0..3 {
                let out = threads.run(name()).await;
                assert_eq!(out.outputs.get("thread").cloned(), here.clone());
            }
            // Two at once: one each.
            let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
            let first = threads.run(async move {
                let _ = gate_rx.await;
                Outcome::with_message(crate::task::NodeStatus::Success, "")
            });
            let second = async {
                let out = threads.run(name()).await;
                let _ = gate_tx.send(());
                out
            };
            let (_, out) = tokio::join!(first, second);
            assert_eq!(
                out.outputs.get("thread").map(String::as_str),
                Some("drover-node-1")
            );
        });
    }

    #[test]
    fn a_panicking_node_fails_with_a_reason() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let threads = NodeThreads::start(2).unwrap();
            let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
            let busy = threads.run(async move {
                let _ = gate_rx.await;
                Outcome::with_message(crate::task::NodeStatus::Success, "")
            });
            let panics = async {
                let out = threads
                    .run(async {
                        if std::env::var_os("DROVER_NEVER_SET_THIS").is_none() {
                            panic!("boom");
                        }
                        Outcome::with_message(crate::task::NodeStatus::Success, "")
                    })
                    .await;
                let _ = gate_tx.send(());
                out
            };
            let (_, out) = tokio::join!(busy, panics);
            assert_eq!(out.message, "the dispatcher panicked");
        });
    }
}
