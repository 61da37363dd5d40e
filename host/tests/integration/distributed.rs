//! Distributed mode end to end: real `drover serve --redis` leaders, real
//! `drover drone` processes, a real redis-server, HTTP over loopback; and
//! the faults the design promises to survive (kill -9 of a drone or a
//! leader, a Redis restart, foreign messages on the streams).

use crate::support;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Drover;
use support::drone::{Drone, leader, wait_drones};
use support::redis::Redis;
use support::server::{Server, get_json, submit, wait_end};

/// Waits until some drone with this pid reports running attempts.
async fn wait_running_on(server: &Server, pid: u32) {
    let start = Instant::now();
    loop {
        let (_, body) = get_json(server, "/api/v1/drones").await;
        let busy = body["drones"].as_array().is_some_and(|drones| {
            drones
                .iter()
                .any(|d| d["pid"] == pid && d["running"].as_u64().unwrap_or(0) > 0)
        });
        if busy {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "drone {pid} never ran anything: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What of a record must be the same wherever a DAG ran: per node, its
/// state, exit code, outputs, error and number of attempts.
fn essence(record: &Value) -> BTreeMap<String, Value> {
    record["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_owned(),
                json!({
                    "state": n["state"],
                    "state_code": n["state_code"],
                    "exit_code": n["exit_code"],
                    "outputs": n["outputs"],
                    "error": n["error"],
                    "attempts": n["attempts"].as_array().map(Vec::len),
                }),
            )
        })
        .collect()
}

/// A layered DAG of `n` nodes, 50 per layer, mostly noop; every 100th
/// node is a shell node with an output, which a shell node of the next
/// layer reads.
fn big_dag(n: usize) -> String {
    let width = 50;
    let mut nodes = serde_json::Map::new();
    for i in 0..n {
        let (layer, pos) = (i / width, i % width);
        let mut needs = Vec::new();
        if layer > 0 {
            let prev = (layer - 1) * width;
            needs.push(format!("n{}", prev + pos));
            needs.push(format!("n{}", prev + (pos + 1) % width));
        }
        // (layer 2k+1, position 49) needs (2k, 49) and (2k, 0), node 100k.
        let node = if i % 100 == 0 {
            json!({"driver": "shell", "artifact": format!("echo value={i}"), "outputs": ["value"], "needs": needs})
        } else if i % 100 == 99 {
            let from = i - 99;
            json!({"driver": "shell", "artifact": format!("echo got=${{{{ nodes.n{from}.outputs.value }}}}"), "outputs": ["got"], "needs": needs})
        } else {
            json!({"driver": "noop", "needs": needs})
        };
        nodes.insert(format!("n{i}"), node);
    }
    json!({"name": "big", "nodes": nodes}).to_string()
}

/// Every `running` event of the run, as (node, attempt), from its SSE
/// history on `server`.
async fn running_events(server: &Server, id: &str) -> Vec<(String, u64)> {
    support::server::sse(&server.base, id, None, usize::MAX)
        .await
        .into_iter()
        .filter(|(_, _, data)| data["type"] == "node" && data["state"] == "running")
        .map(|(_, _, data)| {
            (
                data["node"].as_str().unwrap().to_owned(),
                data["attempt"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// `count` sleep nodes of `seconds` each, side by side.
fn sleepers(count: usize, seconds: f64) -> String {
    let mut nodes = serde_json::Map::new();
    for i in 0..count {
        nodes.insert(
            format!("s{i}"),
            json!({"driver": "sleep", "artifact": format!("{seconds}s")}),
        );
    }
    json!({"name": "sleepers", "nodes": nodes}).to_string()
}

fn assert_all_succeeded(record: &Value) {
    assert_eq!(record["state"], "success", "{record}");
    for node in record["nodes"].as_array().unwrap() {
        assert_eq!(node["state"], "success", "{node}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_leaders_and_three_drones_run_each_node_once_and_match_an_embedded_run() {
    let redis = Redis::start();
    let (home_a, home_b) = (Drover::new(), Drover::new());
    let a = leader(&redis, &home_a);
    let b = leader(&redis, &home_b);
    let _drones: Vec<Drone> = (0..3)
        .map(|_| Drone::start(&redis, &["--concurrency", "8"]))
        .collect();
    wait_drones(&a, 3).await;

    let dag = big_dag(2000);
    let id = submit(&a, &dag).await;
    // Watched through the other leader.
    let record = wait_end(&b, &id).await;
    assert_eq!(record["state"], "success", "{record}");
    let running = running_events(&b, &id).await;
    assert_eq!(running.len(), 2000, "every node ran exactly once");
    let mut seen = std::collections::HashSet::new();
    for (node, attempt) in &running {
        assert_eq!(*attempt, 1, "node {node}");
        assert!(seen.insert(node.clone()), "node {node} was scheduled twice");
    }

    let embedded = Drover::new();
    let file = embedded.write("big.json", &dag);
    let (code, local) = embedded.record(&["run", &file]);
    assert_eq!(code, 0, "{local}");
    assert_eq!(essence(&record), essence(&local));
    let (_, mine) = get_json(&a, &format!("/api/v1/runs/{id}")).await;
    assert_eq!(essence(&mine), essence(&local), "both leaders agree");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_of_a_drone_killed_mid_run_finish_on_another() {
    let redis = Redis::start();
    let home = Drover::new();
    let server = leader(&redis, &home);
    let mut doomed = Drone::start(&redis, &["--concurrency", "4", "--claim-idle", "1500ms"]);
    wait_drones(&server, 1).await;
    let id = submit(&server, &sleepers(8, 1.5)).await;
    wait_running_on(&server, doomed.pid()).await;
    doomed.kill();
    let _rescuer = Drone::start(&redis, &["--concurrency", "8", "--claim-idle", "1500ms"]);
    let record = wait_end(&server, &id).await;
    assert_all_succeeded(&record);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_mid_run_carries_the_run_on_when_it_comes_back() {
    let redis = Redis::start();
    let home = Drover::new();
    let mut first = leader(&redis, &home);
    let _drone = Drone::start(&redis, &["--concurrency", "2"]);
    wait_drones(&first, 1).await;
    // Two rounds of sleepers: the leader dies while the first round runs.
    let mut nodes = serde_json::Map::new();
    for i in 0..4 {
        nodes.insert(
            format!("a{i}"),
            json!({"driver": "sleep", "artifact": "1s"}),
        );
        nodes.insert(
            format!("b{i}"),
            json!({"driver": "sleep", "artifact": "0.2s", "needs": [format!("a{i}")]}),
        );
    }
    let id = submit(
        &first,
        &json!({"name": "rounds", "nodes": nodes}).to_string(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.kill();
    let again = leader(&redis, &home);
    let record = wait_end(&again, &id).await;
    assert_all_succeeded(&record);
    assert_eq!(record["nodes"].as_array().unwrap().len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_run_loses_nothing() {
    let mut redis = Redis::start();
    let home = Drover::new();
    let server = leader(&redis, &home);
    let _drone = Drone::start(&redis, &["--concurrency", "4"]);
    wait_drones(&server, 1).await;
    let mut nodes = serde_json::Map::new();
    for i in 0..6 {
        let needs: Vec<String> = if i >= 3 {
            vec![format!("s{}", i - 3)]
        } else {
            vec![]
        };
        nodes.insert(
            format!("s{i}"),
            json!({"driver": "sleep", "artifact": "1s", "needs": needs}),
        );
    }
    let id = submit(
        &server,
        &json!({"name": "restart", "nodes": nodes}).to_string(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    redis.restart();
    let record = wait_end(&server, &id).await;
    assert_all_succeeded(&record);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_and_malformed_entries_on_the_streams_are_dropped() {
    let redis = Redis::start();
    let home = Drover::new();
    let server = leader(&redis, &home);
    let _drone = Drone::start(&redis, &[]);
    wait_drones(&server, 1).await;
    let mut conn = redis.connection().await;
    for (field, value) in [
        ("job", "{not json"),
        ("job", r#"{"v": 99, "anything": true}"#),
        ("other", "x"),
    ] {
        let _: String = redis::cmd("XADD")
            .arg("drover:jobs:default")
            .arg("*")
            .arg(field)
            .arg(value)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let id = submit(&server, &big_dag(60)).await;
    let record = wait_end(&server, &id).await;
    assert_all_succeeded(&record);
    let left: usize = redis::cmd("XLEN")
        .arg("drover:jobs:default")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0, "every entry was taken or dropped");
    wait_drones(&server, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_for_a_pool_without_drones_waits_visibly_then_times_out() {
    let redis = Redis::start();
    let home = Drover::new();
    let server = leader(&redis, &home);
    let _drone = Drone::start(&redis, &[]);
    wait_drones(&server, 1).await;
    let dag = json!({"name": "pools", "nodes": {
        "here": {"driver": "noop"},
        "gpu": {"driver": "noop", "pool": "gpu", "timeout": "2s"},
    }});
    let id = submit(&server, &dag.to_string()).await;
    let record = wait_end(&server, &id).await;
    assert_eq!(support::node(&record, "here")["state"], "success");
    assert_eq!(
        support::node(&record, "gpu")["state"],
        "timeout",
        "{record}"
    );
    let events = support::server::sse(&server.base, &id, None, usize::MAX).await;
    assert!(
        events.iter().any(|(_, _, e)| e["type"] == "log"
            && e["node"] == "gpu"
            && e["message"].as_str().unwrap_or("").contains("pool `gpu`")),
        "the wait is visible: {events:?}"
    );
}

/// The README's example runs alike on an embedded server and on drones:
/// its flaky step passes on its retry (which may run on another drone, in a
/// fresh workspace) and the outputs reach the last node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_example_succeeds_embedded_and_on_drones() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/dags/service.yaml");
    let dag = std::fs::read_to_string(&path).expect("read examples/dags/service.yaml");

    let redis = Redis::start();
    let home = Drover::new();
    let distributed = leader(&redis, &home);
    let _drones: Vec<Drone> = (0..2).map(|_| Drone::start(&redis, &[])).collect();
    wait_drones(&distributed, 2).await;
    let embedded_home = Drover::new();
    let embedded = Server::start(&embedded_home, &[]);

    for server in [&distributed, &embedded] {
        let id = submit(server, &dag).await;
        let record = wait_end(server, &id).await;
        assert_all_succeeded(&record);
        let test = support::node(&record, "test");
        assert_eq!(test["attempts"].as_array().map(Vec::len), Some(2), "{test}");
        let url = server.url(&format!("/api/v1/runs/{id}/nodes/publish/logs"));
        let log = support::server::client()
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(log.contains("publishing app-"), "{log}");
        assert!(log.contains(".tar"), "{log}");
    }
}
