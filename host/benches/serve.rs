//! `drover serve` under load, over real HTTP on loopback against the release
//! binary: how many small-DAG submissions per second are accepted (each
//! answered only once durable), whether every one is still there after the
//! server is killed with SIGKILL and started again, and whether many SSE
//! watchers of one run each get every event.
//!
//! Run with `cargo bench -p drover --bench serve`. Options:
//! `-- --submissions N` (default 20000), `--concurrency C` (default 64),
//! `--watchers W` (default 1000), `--lines L` (log lines of the watched run,
//! default 500).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;

mod common;
use common::arg;

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(data: &std::path::Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_drover"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env_remove("DROVER_LOG")
            .spawn()
            .expect("start drover serve");
        let base = common::listening_url(&mut child);
        Server { child, base }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Raises the soft limit on open files to the hard one: a thousand SSE
/// connections need a thousand descriptors on each side.
fn raise_nofile() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

async fn submissions(server: &Server, total: usize, concurrency: usize) -> (Duration, Vec<String>) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    let next = Arc::new(AtomicUsize::new(0));
    let url = format!("{}/api/v1/runs", server.base);
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let client = client.clone();
            let next = Arc::clone(&next);
            let url = url.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    let response = client
                        .post(&url)
                        .header(reqwest::header::CONTENT_TYPE, "application/yaml")
                        .body("name: small\nnodes:\n  a: {driver: noop}\n  b: {driver: noop, needs: [a]}\n")
                        .send()
                        .await
                        .expect("submit");
                    assert_eq!(response.status(), 201, "submission refused");
                    let body: Value = response.json().await.expect("json");
                    ids.push(body["id"].as_str().unwrap_or_default().to_owned());
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(total);
    for worker in workers {
        ids.extend(worker.await.expect("worker"));
    }
    (start.elapsed(), ids)
}

/// Waits until no run is in progress.
async fn wait_idle(server: &Server) {
    let client = reqwest::Client::new();
    loop {
        let health: Value = client
            .get(format!("{}/api/v1/health", server.base))
            .send()
            .await
            .expect("health")
            .json()
            .await
            .expect("json");
        if health["runs_running"] == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn count_runs(server: &Server) -> usize {
    let client = reqwest::Client::new();
    let mut count = 0;
    let mut before: Option<String> = None;
    loop {
        let mut url = format!("{}/api/v1/runs?limit=1000", server.base);
        if let Some(b) = &before {
            url.push_str(&format!("&before={b}"));
        }
        let page: Value = client
            .get(url)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        let runs = page["runs"].as_array().cloned().unwrap_or_default();
        count += runs.len();
        match page["next"].as_str() {
            Some(next) => before = Some(next.to_owned()),
            None => return count,
        }
    }
}

/// Each watcher reads the run's events to the end and checks that their
/// ids go 1, 2, 3... with nothing missing or repeated.
async fn watchers(server: &Server, watchers: usize, lines: usize) -> (Duration, usize, usize) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let dag = format!(
        "name: watched\nnodes:\n  talk:\n    driver: shell\n    artifact: 'sleep 1; for i in $(seq 1 {lines}); do echo \"line $i\"; done; sleep 0.5'\n"
    );
    let response = client
        .post(format!("{}/api/v1/runs", server.base))
        .header(reqwest::header::CONTENT_TYPE, "application/yaml")
        .body(dag)
        .send()
        .await
        .expect("submit");
    let id = response.json::<Value>().await.expect("json")["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let start = Instant::now();
    let tasks: Vec<_> = (0..watchers)
        .map(|_| {
            let client = client.clone();
            let url = format!("{}/api/v1/runs/{id}/events", server.base);
            tokio::spawn(async move {
                let response = client.get(url).send().await.expect("watch");
                let mut stream = response.bytes_stream();
                let mut buffer = String::new();
                let (mut expected, mut logs, mut ok) = (1u64, 0usize, true);
                while let Some(chunk) = stream.next().await {
                    let Ok(chunk) = chunk else {
                        ok = false;
                        break;
                    };
                    buffer.push_str(&String::from_utf8_lossy(&chunk));
                    while let Some(end) = buffer.find("\n\n") {
                        let block: String = buffer.drain(..end + 2).collect();
                        for line in block.lines() {
                            if let Some(seq) = line.strip_prefix("id: ") {
                                ok &= seq.parse::<u64>().ok() == Some(expected);
                                expected += 1;
                            } else if line == "event: log" {
                                logs += 1;
                            }
                        }
                    }
                }
                (ok, logs)
            })
        })
        .collect();
    let (mut complete, mut min_logs) = (0, usize::MAX);
    for task in tasks {
        let (ok, logs) = task.await.expect("watcher");
        complete += usize::from(ok && logs == lines);
        min_logs = min_logs.min(logs);
    }
    (start.elapsed(), complete, min_logs)
}

fn main() {
    if common::flag("--list") {
        return;
    }
    raise_nofile();
    let total = arg("--submissions", 20_000);
    let concurrency = arg("--concurrency", 64);
    let watcher_count = arg("--watchers", 1000);
    let lines = arg("--lines", 500);
    let data = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    runtime.block_on(async {
        let server = Server::start(data.path());
        // Warm up: compile the drivers and open connections.
        submissions(&server, 200, concurrency).await;
        wait_idle(&server).await;
        let started = Instant::now();
        let (took, ids) = submissions(&server, total, concurrency).await;
        let rate = total as f64 / took.as_secs_f64();
        println!(
            "submissions: {total} small DAGs, {concurrency} at a time: {:.2} s, {rate:.0} accepted and durable per second",
            took.as_secs_f64()
        );
        wait_idle(&server).await;
        let all = started.elapsed();
        println!(
            "  and all {total} runs finished after {:.2} s: {:.0} runs per second end to end",
            all.as_secs_f64(),
            total as f64 / all.as_secs_f64()
        );
        server.kill();
        let server = Server::start(data.path());
        let stored = count_runs(&server).await;
        println!(
            "after SIGKILL and restart: {stored} runs stored of {} accepted ({} lost)",
            ids.len() + 200,
            (ids.len() + 200).saturating_sub(stored)
        );
        let (took, complete, min_logs) = watchers(&server, watcher_count, lines).await;
        println!(
            "SSE: {watcher_count} watchers of one run with {lines} log lines: {complete} got every event in order \
             (fewest log lines seen: {min_logs}), {:.2} s",
            took.as_secs_f64()
        );
        server.kill();
    });
}
