//! Distributed mode under load: a leader (`drover serve --redis`) and two
//! drones (`drover drone --redis`) on loopback, with a private
//! `redis-server`, running a layered DAG of `noop` nodes; the same DAG
//! through an embedded `drover serve` in the same run, for the ratio.
//!
//! Prints nodes per second (submission to the run's end, over HTTP) and, in
//! a second run of the same DAG, the dispatch latency: from the leader
//! sending a node's job (`sent_us` in the job) to a drone reporting it
//! running (`at_us` of its `started` report), read by a separate Redis
//! client tailing both streams. The tailer parses every job and report, so
//! it runs apart from the throughput run, whose CPU it would share. From
//! what it saw, a node's cycle hop by hop (upstream done, job sent, job in
//! Redis, running on a drone, done in Redis). Last, what one request costs
//! Redis here, alone and pipelined: the price of each round trip.
//!
//! Run with `cargo bench -p drover --bench distributed`. Options:
//! `-- --nodes N` (default 10000), `--width W` (nodes per layer; default
//! N/100, the 100 layers of `--bench dag`'s layered DAG),
//! `--drones D` (default 2), `--concurrency K` (per drone, default 64),
//! `--drover PATH` (the binary to measure, default the one just built: to
//! compare two builds in turns on the same machine).

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use serde_json::Value;

mod common;
use common::arg;

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn drover(data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(common::drover_binary());
    cmd.arg("--data")
        .arg(data)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .env_remove("DROVER_LOG")
        .env_remove("DROVER_CONFIG");
    cmd
}

/// Starts `drover serve` and returns it with its base URL.
fn start_server(data: &Path, extra: &[&str]) -> (Proc, String) {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0", "-j", "256"];
    args.extend(extra);
    let mut child = drover(data, &args)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start drover serve");
    let base = common::listening_url(&mut child);
    (Proc(child), base)
}

fn start_drone(data: &Path, url: &str, concurrency: usize) -> Proc {
    let child = drover(
        data,
        &[
            "drone",
            "--redis",
            url,
            "--concurrency",
            &concurrency.to_string(),
        ],
    )
    .stderr(Stdio::null())
    .spawn()
    .expect("start drover drone");
    Proc(child)
}

fn layered_dag(n: usize, width: usize) -> String {
    let width = width.clamp(1, n);
    let mut nodes = serde_json::Map::new();
    for i in 0..n {
        let (layer, pos) = (i / width, i % width);
        let mut needs = Vec::new();
        if layer > 0 {
            let prev = (layer - 1) * width;
            needs.push(format!("n{}", prev + pos));
            let other = format!("n{}", prev + (pos + 1) % width);
            if !needs.contains(&other) {
                needs.push(other);
            }
        }
        nodes.insert(
            format!("n{i}"),
            serde_json::json!({"driver": "noop", "needs": needs}),
        );
    }
    serde_json::json!({"name": "layered", "nodes": nodes}).to_string()
}

async fn get(client: &reqwest::Client, url: String) -> Value {
    client
        .get(url)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .unwrap_or(Value::Null)
}

/// Submits the DAG and waits for its end: (run id, wall time, final state).
async fn run_dag(client: &reqwest::Client, base: &str, dag: &str) -> (String, Duration, String) {
    let start = Instant::now();
    let response = client
        .post(format!("{base}/api/v1/runs"))
        .header(reqwest::header::CONTENT_TYPE, "application/yaml")
        .body(dag.to_owned())
        .send()
        .await
        .expect("submit");
    assert_eq!(response.status(), 201, "submission refused");
    let id = response.json::<Value>().await.expect("json")["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // The list's summaries, not the run record: encoding a record of
    // thousands of nodes every few milliseconds would cost the leader (and
    // this process) more than the run itself.
    loop {
        let page = get(client, format!("{base}/api/v1/runs?limit=1")).await;
        let newest = &page["runs"][0];
        if newest["id"] == id.as_str() && newest["state"] != "running" {
            let state = newest["state"].as_str().unwrap_or("").to_owned();
            return (id, start.elapsed(), state);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn wait_drones(client: &reqwest::Client, base: &str, count: usize) {
    let start = Instant::now();
    loop {
        let drones = get(client, format!("{base}/api/v1/drones")).await;
        let alive = drones["drones"]
            .as_array()
            .map_or(0, |d| d.iter().filter(|d| d["alive"] == true).count());
        if alive >= count {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "drones did not come up: {drones}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the tailer saw of one attempt, in µs since the Unix epoch: the
/// leader's and drone's own clocks where the message says, Redis's (the
/// entry id, to the millisecond) otherwise. One machine, so one clock.
#[derive(Default)]
struct Seen {
    node: String,
    /// The leader sent the job (`sent_us`).
    sent: Option<u64>,
    /// Redis added the job entry.
    queued: Option<u64>,
    /// A drone reported it running (`at_us` of `Started`).
    started: Option<u64>,
    /// Redis added its `Done` report.
    done: Option<u64>,
}

/// Redis's time of an entry id (`<ms>-<seq>`), in µs: the middle of its
/// millisecond, so that hops to and from the other clocks are not biased.
fn entry_us(id: &str) -> Option<u64> {
    id.split('-')
        .next()?
        .parse::<u64>()
        .ok()
        .map(|ms| ms * 1000 + 500)
}

/// Tails the jobs stream and every run's reports stream until `stop`, and
/// returns what it saw of each attempt.
async fn tail(url: String, stop: tokio::sync::watch::Receiver<bool>) -> HashMap<String, Seen> {
    let client = redis::Client::open(url).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new().set_response_timeout(None),
        )
        .await
        .expect("redis");
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut cursors: HashMap<String, String> =
        HashMap::from([("drover:jobs:default".to_owned(), "$".to_owned())]);
    while !*stop.borrow() {
        let keys: Vec<String> = cursors.keys().cloned().collect();
        let ids: Vec<String> = keys.iter().map(|k| cursors[k].clone()).collect();
        let options = redis::streams::StreamReadOptions::default()
            .count(4096)
            .block(100);
        let reply: Option<redis::streams::StreamReadReply> = conn
            .xread_options(&keys, &ids, &options)
            .await
            .unwrap_or(None);
        let Some(reply) = reply else { continue };
        for stream in reply.keys {
            for entry in &stream.ids {
                if let Some(redis::Value::BulkString(bytes)) = entry.map.get("job") {
                    let job: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
                    let attempt = job["attempt_id"].as_str().unwrap_or_default().to_owned();
                    if let Some(run) = attempt.rsplitn(3, '/').nth(2) {
                        cursors
                            .entry(format!("drover:run:{run}:reports"))
                            .or_insert_with(|| "0".to_owned());
                    }
                    let seen = seen.entry(attempt).or_default();
                    seen.node = job["task"]["node"].as_str().unwrap_or_default().to_owned();
                    seen.sent = job["sent_us"].as_u64();
                    seen.queued = entry_us(&entry.id);
                } else if let Some(redis::Value::BulkString(bytes)) = entry.map.get("report") {
                    let report: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
                    let attempt = report["attempt_id"].as_str().unwrap_or_default().to_owned();
                    let seen = seen.entry(attempt).or_default();
                    match report["kind"].as_str() {
                        Some("started") => {
                            seen.started = seen.started.or(report["at_us"].as_u64());
                        }
                        Some("done") => seen.done = seen.done.or(entry_us(&entry.id)),
                        _ => {}
                    }
                }
            }
            if let Some(last) = stream.ids.last() {
                cursors.insert(stream.key.clone(), last.id.clone());
            }
        }
    }
    seen
}

/// Runs `dag` while a tailer reads the streams: (wall time, what it saw).
async fn with_tailer(
    client: &reqwest::Client,
    base: &str,
    url: &str,
    dag: &str,
) -> (Duration, HashMap<String, Seen>) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let tailer = tokio::spawn(tail(url.to_owned(), stop_rx));
    // Let the tailer's first read start before anything is sent.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, took, _) = run_dag(client, base, dag).await;
    let _ = stop_tx.send(true);
    (took, tailer.await.expect("tailer"))
}

/// The dispatch latency of every attempt seen whole, sorted.
fn dispatch_latencies(seen: &HashMap<String, Seen>) -> Vec<u64> {
    let mut latencies: Vec<u64> = seen
        .values()
        .filter_map(|s| Some(s.started?.saturating_sub(s.sent?)))
        .collect();
    latencies.sort_unstable();
    latencies
}

fn print_latencies(what: &str, sorted: &[u64]) {
    println!(
        "{what}: dispatch latency (job sent -> running on a drone), {} attempts: \
         median {:.3} ms, p90 {:.3} ms, p99 {:.3} ms",
        sorted.len(),
        percentile(sorted, 0.5),
        percentile(sorted, 0.9),
        percentile(sorted, 0.99)
    );
}

/// Where a node's cycle goes, hop by hop (medians): from its last upstream
/// node's `Done` reaching Redis to its own. No more than the DAG's width
/// is in flight, so throughput is at most width / cycle (Little's law),
/// and the hops under load say where nodes queue for the CPUs. Hops
/// between two clocks (Redis's entry ids are to the millisecond) are
/// accurate to about half a millisecond each. The cycle's mean times the
/// DAG's depth is about the run's length.
fn print_hops(dag: &str, seen: &HashMap<String, Seen>) {
    let dag: Value = serde_json::from_str(dag).unwrap_or(Value::Null);
    let done: HashMap<&str, u64> = seen
        .values()
        .filter_map(|s| Some((s.node.as_str(), s.done?)))
        .collect();
    // (µs) upstream done -> sent, sent -> queued, queued -> started,
    // started -> done, and the whole cycle.
    let mut hops: [Vec<f64>; 5] = Default::default();
    for s in seen.values() {
        let needs = dag["nodes"][&s.node]["needs"].as_array();
        let upstream = needs.and_then(|needs| {
            needs
                .iter()
                .map(|n| done.get(n.as_str()?).copied())
                .collect::<Option<Vec<u64>>>()?
                .into_iter()
                .max()
        });
        let (Some(up), Some(sent), Some(queued), Some(started), Some(end)) =
            (upstream, s.sent, s.queued, s.started, s.done)
        else {
            continue;
        };
        let gap = |from: u64, to: u64| (to as f64 - from as f64) / 1000.0;
        for (hop, value) in hops.iter_mut().zip([
            gap(up, sent),
            gap(sent, queued),
            gap(queued, started),
            gap(started, end),
            gap(up, end),
        ]) {
            hop.push(value);
        }
    }
    let [ready, enqueue, pickup, run, cycle] = hops;
    let (count, mean) = (
        cycle.len(),
        cycle.iter().sum::<f64>() / cycle.len().max(1) as f64,
    );
    println!(
        "  a node's cycle, medians of {} nodes: upstream Done in Redis -> job sent {:.2} ms (leader), \
         -> job in Redis {:.2} ms, -> running on a drone {:.2} ms, -> its Done in Redis {:.2} ms; \
         whole cycle {:.2} ms (mean {mean:.2} ms)",
        count,
        common::median(ready),
        common::median(enqueue),
        common::median(pickup),
        common::median(run),
        common::median(cycle)
    );
}

/// The length of the chain whose latency is measured one node at a time.
const CHAIN: usize = 500;

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// `INFO commandstats` as (command, calls, µs), the costliest first.
fn command_stats(info: &str) -> Vec<(String, u64, u64)> {
    let mut stats: Vec<(String, u64, u64)> = info
        .lines()
        .filter_map(|line| {
            let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |key: &str| {
                fields
                    .split(',')
                    .find_map(|f| f.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
            };
            Some((name.to_owned(), field("calls")?, field("usec")?))
        })
        .collect();
    stats.sort_by_key(|(_, _, usec)| std::cmp::Reverse(*usec));
    stats
}

fn main() {
    if common::flag("--list") {
        return;
    }
    let nodes = arg("--nodes", 10_000);
    // The project's layered DAG (`--bench dag`, the embedded targets): 100
    // layers. Its width is how many nodes can be in flight, so with the
    // cycle of a node through Redis it bounds the throughput.
    let width = arg("--width", (nodes / 100).max(1));
    let drones = arg("--drones", 2);
    let concurrency = arg("--concurrency", 64);
    let dag = layered_dag(nodes, width);
    let warm = layered_dag(200, width);
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    runtime.block_on(async {
        let client = reqwest::Client::new();

        // Embedded, for the ratio.
        let embedded_data = dir.path().join("embedded");
        let (server, base) = start_server(&embedded_data, &[]);
        run_dag(&client, &base, &warm).await;
        let before = common::usage(server.0.id());
        let (_, took, state) = run_dag(&client, &base, &dag).await;
        let used = common::usage(server.0.id()).since(before).cpu;
        let embedded = nodes as f64 / took.as_secs_f64();
        println!(
            "embedded serve: layered {nodes} noop nodes: {:.0} ms, {embedded:.0} nodes/s ({state}); CPU per node: {:.0} µs",
            took.as_secs_f64() * 1000.0,
            used.as_secs_f64() * 1e6 / nodes as f64
        );
        drop(server);

        // Distributed: a leader and the drones, each with its own data dir.
        let redis = common::Redis::start(true);
        let url = redis.url();
        let (leader, base) = start_server(&dir.path().join("leader"), &["--redis", &url]);
        let drone_procs: Vec<Proc> = (0..drones)
            .map(|i| start_drone(&dir.path().join(format!("drone{i}")), &url, concurrency))
            .collect();
        wait_drones(&client, &base, drones).await;
        run_dag(&client, &base, &warm).await;
        let pids: Vec<(&str, u32)> = [("leader", leader.0.id())]
            .into_iter()
            .chain(drone_procs.iter().map(|d| ("drones", d.0.id())))
            .chain([("redis", redis.pid())])
            .collect();
        let mut conn = redis::Client::open(url.as_str())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("redis");
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut conn)
            .await
            .expect("CONFIG RESETSTAT");
        let before: Vec<common::Usage> = pids.iter().map(|(_, p)| common::usage(*p)).collect();
        let (_, took, state) = run_dag(&client, &base, &dag).await;
        let distributed = nodes as f64 / took.as_secs_f64();
        println!(
            "leader + {drones} drones (concurrency {concurrency}) over Redis: layered {nodes} noop nodes: \
             {:.0} ms, {distributed:.0} nodes/s ({state}); {:.2}x embedded's time",
            took.as_secs_f64() * 1000.0,
            embedded / distributed
        );
        // (process, CPU µs, page faults) per node, the drones summed.
        let mut per_node: Vec<(&str, f64, f64)> = Vec::new();
        for ((what, pid), before) in pids.iter().zip(before) {
            let used = common::usage(*pid).since(before);
            let us = used.cpu.as_secs_f64() * 1e6 / nodes as f64;
            let faults = used.faults as f64 / nodes as f64;
            match per_node.iter_mut().find(|(w, _, _)| w == what) {
                Some((_, cpu, f)) => {
                    *cpu += us;
                    *f += faults;
                }
                None => per_node.push((what, us, faults)),
            }
        }
        let total: f64 = per_node.iter().map(|(_, us, _)| us).sum();
        let parts: Vec<String> = per_node
            .iter()
            .map(|(what, us, _)| format!("{what} {us:.0}"))
            .collect();
        println!("CPU per node: {total:.0} µs ({})", parts.join(", "));
        let parts: Vec<String> = per_node
            .iter()
            .map(|(what, _, faults)| format!("{what} {faults:.2}"))
            .collect();
        println!("page faults per node: {}", parts.join(", "));
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await
            .expect("INFO commandstats");
        println!("Redis commands per node (calls, µs; those inside scripts count twice):");
        for (command, calls, usec) in command_stats(&stats).into_iter().take(12) {
            println!(
                "  {command:<14} {:>6.2} calls {:>6.1} µs",
                calls as f64 / nodes as f64,
                usec as f64 / nodes as f64
            );
        }
        let (took, seen) = with_tailer(&client, &base, &url, &dag).await;
        print_latencies(
            &format!(
                "layered {nodes}, with a tailer reading every job and report ({:.0} nodes/s)",
                nodes as f64 / took.as_secs_f64()
            ),
            &dispatch_latencies(&seen),
        );
        print_hops(&dag, &seen);
        // One node at a time: the latency of the path itself, without the
        // queueing of a saturated machine.
        let chain = layered_dag(CHAIN, 1);
        let (took, seen) = with_tailer(&client, &base, &url, &chain).await;
        print_latencies(
            &format!(
                "chain {CHAIN}, one node at a time ({:.2} ms per node, end to end)",
                took.as_secs_f64() * 1000.0 / CHAIN as f64
            ),
            &dispatch_latencies(&seen),
        );
        print_hops(&chain, &seen);
        let left: usize = conn.xlen("drover:jobs:default").await.unwrap_or(0);
        println!("jobs left on the stream afterwards: {left}");
        round_trip_cost(&mut conn, redis.pid()).await;
    });
}

/// What a request costs Redis on this machine, one at a time against
/// pipelined: the price of every round trip the protocol makes, and why
/// it batches.
async fn round_trip_cost(conn: &mut redis::aio::MultiplexedConnection, pid: u32) {
    // As many round trips each way: CPU time is counted in ticks of 10 ms,
    // and this keeps both figures well above one.
    const TRIPS: usize = 4000;
    const DEPTH: usize = 16;
    let before = common::usage(pid);
    for _ in 0..TRIPS {
        let _: String = redis::cmd("PING").query_async(conn).await.expect("PING");
    }
    let single = common::usage(pid).since(before).cpu;
    let before = common::usage(pid);
    for _ in 0..TRIPS {
        let mut pipe = redis::pipe();
        for _ in 0..DEPTH {
            pipe.cmd("PING");
        }
        let _: Vec<String> = pipe.query_async(conn).await.expect("PING");
    }
    let piped = common::usage(pid).since(before).cpu;
    let per = |cpu: Duration, pings: usize| cpu.as_secs_f64() * 1e6 / pings as f64;
    println!(
        "Redis CPU per PING: {:.1} µs one round trip each, {:.1} µs {DEPTH} to a round trip",
        per(single, TRIPS),
        per(piped, TRIPS * DEPTH)
    );
}
