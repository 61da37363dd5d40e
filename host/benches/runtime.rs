//! Runtime benchmark: each standard driver's compile and cache-load time,
//! and the per-node cost of instantiating and running `noop` (and `shell`
//! running `true`, next to a bare spawn of the same command).
//!
//! Run with `cargo bench -p drover --bench runtime` (a release build). Pass
//! `-- --nodes N` to change the number of noop nodes (default 20000).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover::config::Config;
use drover::registry;
use drover::runtime::{CacheOutcome, Driver, NodeContext, Runtime};
use drover::task::{NodeStatus, Task};
use tokio_util::sync::CancellationToken;

fn main() {
    let nodes = std::env::args()
        .skip_while(|a| a != "--nodes")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000usize);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(bench(nodes));
}

fn config(dir: &Path) -> Config {
    Config {
        data_dir: Some(dir.to_path_buf()),
        ..Config::default()
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

async fn bench(nodes: usize) {
    if std::env::args().any(|a| a == "--shell-only") {
        // For profiling the exec path alone.
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = Runtime::new(config(dir.path())).expect("runtime");
        let shell = runtime
            .load(registry::builtin("shell").expect("shell").into())
            .await
            .expect("load shell");
        let took = run_many(&runtime, &shell, "true", 500, 1).await;
        println!("shell `true`: {} per node", ms(took / 500));
        return;
    }
    println!("drover runtime benchmark (release host, pooling allocator)\n");
    println!(
        "{:<8} {:>10} {:>14} {:>16}",
        "plugin", "size", "compile", "cache load"
    );
    for name in registry::builtin_names() {
        let bytes: Arc<[u8]> = registry::builtin(name).expect("built-in").into();
        let mut compile = Vec::new();
        let mut cached = Vec::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("tempdir");
            let runtime = Runtime::new(config(dir.path())).expect("runtime");
            let started = Instant::now();
            let driver = runtime.load(bytes.clone()).await.expect("load");
            compile.push(started.elapsed());
            assert_eq!(driver.cache_outcome(), CacheOutcome::Compiled);
            for _ in 0..10 {
                // A fresh runtime each time: one runtime keeps what it loaded in memory.
                let runtime = Runtime::new(config(dir.path())).expect("runtime");
                let started = Instant::now();
                let driver = runtime.load(bytes.clone()).await.expect("load");
                cached.push(started.elapsed());
                assert_eq!(driver.cache_outcome(), CacheOutcome::Hit);
            }
        }
        println!(
            "{:<8} {:>7} KiB {:>14} {:>16}",
            name,
            bytes.len() / 1024,
            ms(median(compile)),
            ms(median(cached))
        );
    }
    println!(
        "(compile: median of 3 into an empty cache; cache load: median of 30, includes describe)\n"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = Runtime::new(config(dir.path())).expect("runtime");
    let noop = runtime
        .load(registry::builtin("noop").expect("noop").into())
        .await
        .expect("load noop");

    // Warm up the pool and the allocator.
    run_many(&runtime, &noop, "", 1_000, 1).await;
    for parallel in [1, 2] {
        let elapsed = run_many(&runtime, &noop, "", nodes, parallel).await;
        let per_node = elapsed / nodes as u32;
        println!(
            "noop, {parallel} at a time: {nodes} nodes in {} = {:.1} µs per node ({:.0} nodes/s)",
            ms(elapsed),
            per_node.as_secs_f64() * 1e6,
            nodes as f64 / elapsed.as_secs_f64()
        );
    }

    let shell = runtime
        .load(registry::builtin("shell").expect("shell").into())
        .await
        .expect("load shell");
    const SPAWNS: usize = 300;
    run_many(&runtime, &shell, "true", 20, 1).await;
    let drover = run_many(&runtime, &shell, "true", SPAWNS, 1).await / SPAWNS as u32;
    let started = Instant::now();
    for _ in 0..SPAWNS {
        let status = std::process::Command::new("/bin/sh")
            .args(["-c", "true"])
            .status()
            .expect("spawn sh");
        assert!(status.success());
    }
    let bare = started.elapsed() / SPAWNS as u32;
    println!(
        "\nshell `true`: {} per node through drover (sandboxed) vs {} for a bare posix_spawn+wait of `sh -c true`: {:.2}x",
        ms(drover),
        ms(bare),
        drover.as_secs_f64() / bare.as_secs_f64()
    );
}

/// Runs `count` nodes, `parallel` at a time; returns the wall time.
async fn run_many(
    runtime: &Runtime,
    driver: &Driver,
    artifact: &str,
    count: usize,
    parallel: usize,
) -> Duration {
    let started = Instant::now();
    let per_worker = count / parallel;
    let mut workers = Vec::new();
    for w in 0..parallel {
        let runtime = runtime.clone();
        let driver = driver.clone();
        let artifact = artifact.to_string();
        let root = std::env::temp_dir().join(format!("drover-bench-{}", std::process::id()));
        workers.push(tokio::spawn(async move {
            // One log channel for all nodes, as the engine does.
            let (logs, mut rx) = tokio::sync::mpsc::channel(1024);
            let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
            for i in 0..per_worker {
                let logs = logs.clone();
                let task = Task {
                    run_id: "bench".into(),
                    node: format!("n{w}-{i}"),
                    attempt: 1,
                    artifact: artifact.clone(),
                    ..Task::default()
                };
                let workspace = root.join(&task.node);
                let outcome = runtime
                    .run(
                        &driver,
                        task,
                        NodeContext {
                            workspace,
                            logs,
                            cancel: CancellationToken::new(),
                        },
                    )
                    .await;
                assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
            }
            drop(logs);
            let _ = drain.await;
            let _ = std::fs::remove_dir_all(&root);
        }));
    }
    for w in workers {
        w.await.expect("worker");
    }
    started.elapsed()
}
