//! Engine throughput with a dispatcher that succeeds at once: chain, wide and layered DAGs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use drover::dag::{Dag, Node};
use drover::engine::{
    self, Dispatch, DispatchFuture, EventSink, NoEvents, NodeRun, Options, RunState,
};
use drover::task::{NodeStatus, Outcome};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod common;
use common::noop_node;

/// Succeeds at once.
struct Noop;

impl Dispatch for Noop {
    fn dispatch(&self, _run: NodeRun) -> DispatchFuture {
        Box::pin(std::future::ready(Outcome::with_message(
            NodeStatus::Success,
            "",
        )))
    }
}

fn build(name: &str, nodes: Vec<Node>) -> Arc<Dag> {
    Arc::new(drover::dag::from_nodes(name, nodes, &|_| true).expect("a valid DAG"))
}

fn chain(n: usize) -> Arc<Dag> {
    build(
        "chain",
        (0..n)
            .map(|i| noop_node(i, if i == 0 { vec![] } else { vec![i - 1] }))
            .collect(),
    )
}

/// One root, n - 2 parallel nodes, one sink.
fn wide(n: usize) -> Arc<Dag> {
    let mut nodes = vec![noop_node(0, vec![])];
    nodes.extend((1..n - 1).map(|i| noop_node(i, vec![0])));
    nodes.push(noop_node(n - 1, (1..n - 1).collect()));
    build("wide", nodes)
}

/// 100 layers; each node needs two nodes of the layer before.
fn layered(n: usize) -> Arc<Dag> {
    let nodes = common::layered_nodes(n);
    build("layered", nodes)
}

async fn time_run(dag: &Arc<Dag>, parallelism: usize, events: impl EventSink) -> Duration {
    let options = Options {
        parallelism,
        fail_fast: false,
        run_timeout: None,
        reattach: false,
        ..Options::default()
    };
    let start = Instant::now();
    let record = engine::run(
        Arc::clone(dag),
        "bench".to_owned(),
        Arc::new(Noop),
        options,
        events,
        CancellationToken::new(),
    )
    .await;
    let elapsed = start.elapsed();
    assert_eq!(record.state, RunState::Success);
    elapsed
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        println!(
            "{:<10} {:>8} {:>4} {:>10} {:>12}",
            "dag", "nodes", "par", "ms", "nodes/s"
        );
        for n in [10_000, 100_000] {
            for (name, dag) in [
                ("chain", chain(n)),
                ("wide", wide(n)),
                ("layered", layered(n)),
            ] {
                for parallelism in [2, 8] {
                    // Best of three, after a warm-up run.
                    time_run(&dag, parallelism, NoEvents).await;
                    let mut best = Duration::MAX;
                    for _ in 0..3 {
                        best = best.min(time_run(&dag, parallelism, NoEvents).await);
                    }
                    report(name, n, parallelism, best);
                }
            }
        }
        // The same with every event sent to a channel that a task drains.
        let dag = layered(10_000);
        let mut best = Duration::MAX;
        for _ in 0..4 {
            let (tx, mut rx) = mpsc::channel(1024);
            let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
            best = best.min(time_run(&dag, 8, tx).await);
            drain.await.expect("drain task");
        }
        report("layered+ev", 10_000, 8, best);
    });
}

fn report(name: &str, n: usize, parallelism: usize, elapsed: Duration) {
    println!(
        "{name:<10} {n:>8} {parallelism:>4} {:>10.1} {:>12.0}",
        elapsed.as_secs_f64() * 1e3,
        n as f64 / elapsed.as_secs_f64()
    );
}
