//! The leader's dispatch through a real Redis, with drones in this process
//! that answer every job at once (read, Started, Done in one MULTI, as
//! `drover drone` does without running anything): what the leader and Redis
//! cost per node. Layered DAGs of noop nodes; dispatch latency is from the
//! job's `sent_us` to the moment a drone read it.
//!
//! `cargo bench -p drover --bench dispatch [-- --nodes 10000 --drones 2 --parallelism 256]`

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use drover::admission::load_drivers;
use drover::config::Config;
use drover::dag::Dag;
use drover::engine::{self, NoEvents, Options, RunState};
use drover::registry::Registry;
use drover::runtime::Runtime;
use drover::task::{NodeStatus, Outcome};
use drover::transport::redis::RedisDispatcher;
use drover::transport::redis::protocol::{self, Job, Report, VERSION};
use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};
use tokio_util::sync::CancellationToken;

mod common;
use common::Redis;

/// 100 layers; each node needs two nodes of the layer before.
fn layered(n: usize) -> Dag {
    let nodes = common::layered_nodes(n);
    drover::dag::from_nodes("layered", nodes, &|_| true).expect("a valid DAG")
}

/// A drone that answers every job of the default pool at once, recording
/// each job's dispatch latency in µs.
async fn drone(
    url: String,
    name: String,
    latencies: Arc<Mutex<Vec<u64>>>,
    stop: CancellationToken,
) {
    let client = redis::Client::open(url).expect("url");
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("the drone connects");
    let jobs = protocol::jobs_key(protocol::DEFAULT_POOL);
    let _: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&jobs)
        .arg(protocol::GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await;
    let options = StreamReadOptions::default()
        .group(protocol::GROUP, &name)
        .count(128)
        .block(200);
    while !stop.is_cancelled() {
        let reply: Option<StreamReadReply> = conn
            .xread_options(&[&jobs], &[">"], &options)
            .await
            .expect("XREADGROUP");
        let read_us = protocol::now_us();
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut seen = Vec::new();
        for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            let bytes: Vec<u8> = entry.get(protocol::JOB_FIELD).expect("a job field");
            let job = Job::decode(&bytes).expect("a job");
            seen.push(read_us.saturating_sub(job.sent_us));
            let reports = protocol::reports_key(&job.attempt_id.run);
            let started = Report::Started {
                v: VERSION,
                attempt_id: job.attempt_id.clone(),
                drone: name.clone(),
                at_us: read_us,
            };
            let done = Report::Done {
                v: VERSION,
                attempt_id: job.attempt_id.clone(),
                drone: name.clone(),
                outcome: Outcome::with_message(NodeStatus::Success, ""),
            };
            pipe.cmd("XADD")
                .arg(&reports)
                .arg("*")
                .arg(protocol::REPORT_FIELD)
                .arg(started.encode())
                .ignore()
                .cmd("XADD")
                .arg(&reports)
                .arg("*")
                .arg(protocol::REPORT_FIELD)
                .arg(done.encode())
                .ignore()
                .cmd("HSET")
                .arg(protocol::attempts_key(&job.attempt_id.run))
                .arg(job.attempt_id.to_string())
                .arg("done")
                .ignore()
                .cmd("XACK")
                .arg(&jobs)
                .arg(protocol::GROUP)
                .arg(&entry.id)
                .ignore()
                .cmd("XDEL")
                .arg(&jobs)
                .arg(&entry.id)
                .ignore();
        }
        if seen.is_empty() {
            continue;
        }
        let _: () = pipe.query_async(&mut conn).await.expect("MULTI done");
        latencies.lock().expect("latencies").extend(seen);
    }
}

fn flag(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let nodes = flag(&args, "--nodes", 10_000);
    let drones = flag(&args, "--drones", 2);
    let parallelism = flag(&args, "--parallelism", 256);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let server = Redis::start(false);
    let dir = tempfile::tempdir().expect("a temporary folder");
    runtime.block_on(async {
        let config = Config {
            data_dir: Some(dir.path().join("data")),
            cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("drover-compiled")),
            ..Config::default()
        };
        let registry = Registry::open(Runtime::new(config).expect("runtime")).expect("registry");
        let dispatcher = RedisDispatcher::connect(&server.url(), registry.clone())
            .await
            .expect("the dispatcher connects");
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        for i in 0..drones {
            tasks.push(tokio::spawn(drone(
                server.url(),
                format!("bench-{i}"),
                Arc::clone(&latencies),
                stop.clone(),
            )));
        }
        let mut dag = layered(nodes);
        let drivers = load_drivers(&registry, &mut dag, &BTreeMap::new())
            .await
            .expect("noop loads");
        let dag = Arc::new(dag);
        println!(
            "{:<10} {:>7} {:>4} {:>6} {:>9} {:>9} {:>10} {:>10}",
            "dag", "nodes", "par", "drones", "ms", "nodes/s", "p50 µs", "p99 µs"
        );
        for round in 0..4 {
            latencies.lock().expect("latencies").clear();
            let run = format!("bench-{round}");
            let options = Options {
                parallelism,
                ..Options::default()
            };
            let start = Instant::now();
            let record = engine::run(
                Arc::clone(&dag),
                run.clone(),
                dispatcher.run(&run, &drivers, CancellationToken::new(), Default::default()),
                options,
                NoEvents,
                CancellationToken::new(),
            )
            .await;
            let elapsed = start.elapsed();
            assert_eq!(record.state, RunState::Success);
            dispatcher.finish_run(&run).await;
            let mut seen = latencies.lock().expect("latencies").clone();
            seen.sort_unstable();
            let at = |q: f64| {
                seen.get(((seen.len() as f64 * q) as usize).min(seen.len().saturating_sub(1)))
                    .copied()
                    .unwrap_or(0)
            };
            println!(
                "{:<10} {nodes:>7} {parallelism:>4} {drones:>6} {:>9.1} {:>9.0} {:>10} {:>10}{}",
                "layered",
                elapsed.as_secs_f64() * 1e3,
                nodes as f64 / elapsed.as_secs_f64(),
                at(0.5),
                at(0.99),
                if round == 0 { "  (warm-up)" } else { "" }
            );
        }
        stop.cancel();
        for task in tasks {
            let _ = task.await;
        }
        let mut conn = redis::Client::open(server.url())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("connects");
        let left: usize = redis::cmd("DBSIZE")
            .query_async(&mut conn)
            .await
            .expect("DBSIZE");
        println!("keys left in Redis: {left} (pools, jobs stream, driver)");
    });
}
