//! `drover serve --redis` end to end: real leader processes sharing a real
//! redis-server, HTTP over loopback, nodes run by a real drone. What is
//! tested is the run state: shared, leased, taken over, followed and
//! canceled from any leader.

use crate::support;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use support::drone::Drone;
use support::redis::Redis;
use support::server::{Server, client, get_json, post, submit, wait_end, wait_for};
use support::{Drover, node};

/// A folder whose config gives leases of `lease_ms` milliseconds.
fn drover(lease_ms: u64) -> Drover {
    let drover = Drover::new();
    drover.configure(&format!("\n[redis]\nlease = \"{lease_ms}ms\""));
    drover
}

fn leader(drover: &Drover, redis: &Redis) -> Server {
    Server::start(drover, &["--redis", &redis.url()])
}

/// Reads an SSE stream to its end: (id, event, data).
async fn sse(base: &str, id: &str) -> Vec<(u64, String, Value)> {
    support::server::sse(base, id, None, usize::MAX).await
}

/// A drone for the leaders' nodes.
fn drone(redis: &Redis) -> Drone {
    Drone::start(redis, &["--concurrency", "8", "--claim-idle", "3000ms"])
}

/// Events numbered 1, 2, … with no gap, ending with `finished`, and no
/// attempt of any node started twice.
fn check_events(events: &[(u64, String, Value)]) {
    let seqs: Vec<u64> = events.iter().map(|e| e.0).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
    assert_eq!(events.last().map(|e| e.1.as_str()), Some("finished"));
    let mut running: HashMap<(String, u64), usize> = HashMap::new();
    for (_, _, data) in events {
        if data["state"] == "running"
            && let Some(name) = data["node"].as_str()
        {
            *running
                .entry((name.to_owned(), data["attempt"].as_u64().unwrap()))
                .or_default() += 1;
        }
    }
    for ((name, attempt), count) in running {
        assert_eq!(
            count, 1,
            "node {name} attempt {attempt} was started {count} times"
        );
    }
}

fn log_of(server: &Server) -> String {
    server.log.lock().unwrap().join("\n")
}

#[tokio::test]
async fn a_run_submitted_to_one_leader_is_seen_live_on_another() {
    let redis = Redis::start();
    let _drone = drone(&redis);
    let drover = drover(5000);
    let a = leader(&drover, &redis);
    let b = leader(&drover, &redis);
    assert!(log_of(&a).contains(&redis.url()), "{}", log_of(&a));
    let id = submit(
        &a,
        r#"
name: shared
nodes:
  talk:
    driver: shell
    artifact: 'sleep 0.5; for i in 1 2 3 4 5; do echo "line $i"; sleep 0.1; done'
  after:
    driver: noop
    needs: [talk]
"#,
    )
    .await;

    // B streams the run live (it started after the run) and follows the log.
    let watch = tokio::spawn({
        let base = b.base.clone();
        let id = id.clone();
        async move { sse(&base, &id).await }
    });
    let logs = tokio::spawn({
        let url = b.url(&format!("/api/v1/runs/{id}/nodes/talk/logs?follow=true"));
        async move {
            client()
                .get(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    });
    let running = wait_for(&b, &id, |r| node(r, "talk")["state"] == "running").await;
    assert_eq!(running["state"], "running");
    let (status, list) = get_json(&b, "/api/v1/runs").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["runs"][0]["id"], id.as_str(), "{list}");
    assert_eq!(list["runs"][0]["state"], "running", "{list}");

    let seen_on_b = watch.await.unwrap();
    check_events(&seen_on_b);
    let lines = logs.await.unwrap();
    assert_eq!(lines, "line 1\nline 2\nline 3\nline 4\nline 5\n");
    let record = wait_end(&b, &id).await;
    assert_eq!(record["state"], "success", "{record}");
    assert_eq!(node(&record, "after")["state"], "success");

    // Both leaders tell the same story, event for event.
    let seen_on_a = sse(&a.base, &id).await;
    assert_eq!(seen_on_a, seen_on_b);
    let (_, on_a) = get_json(&a, &format!("/api/v1/runs/{id}")).await;
    assert_eq!(on_a, record);
    assert!(
        !drover.data().join("drover.redb").exists(),
        "the embedded database is not opened in Redis mode"
    );
}

#[tokio::test]
async fn a_leader_killed_mid_run_is_taken_over_by_another() {
    let redis = Redis::start();
    let _drone = drone(&redis);
    let drover = drover(2000);
    let mut a = leader(&drover, &redis);
    let id = submit(
        &a,
        r#"
name: survivor
nodes:
  first: {driver: shell, artifact: 'echo "token=abc"', outputs: [token]}
  nap: {driver: sleep, artifact: 2s, needs: [first], retries: {max: 1, backoff: 10ms}}
  last:
    driver: shell
    needs: [nap]
    artifact: 'echo "got $T"'
    env: {T: '${{ nodes.first.outputs.token }}'}
"#,
    )
    .await;
    wait_for(&a, &id, |r| node(r, "nap")["state"] == "running").await;
    a.kill();
    let b = leader(&drover, &redis);
    let started = Instant::now();
    let record = wait_end(&b, &id).await;
    assert_eq!(record["state"], "success", "{record}");
    assert!(log_of(&b).contains("taking the run over"), "{}", log_of(&b));
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        node(&record, "first")["attempts"].as_array().unwrap().len(),
        1
    );
    // The drone went on with the attempt while no leader watched; the new
    // leader waited for it instead of running it again.
    let nap = node(&record, "nap");
    let attempts = nap["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{nap}");
    assert_eq!(attempts[0]["state"], "success");
    let last = node(&record, "last");
    assert_eq!(last["state"], "success");
    assert_eq!(last["attempts"].as_array().unwrap().len(), 1);
    check_events(&sse(&b.base, &id).await);
}

#[tokio::test]
async fn a_leader_restarted_after_kill_9_carries_its_run_on() {
    let redis = Redis::start();
    let _drone = drone(&redis);
    let drover = drover(2000);
    let mut a = leader(&drover, &redis);
    let id = submit(
        &a,
        "name: again\nnodes:\n  nap: {driver: sleep, artifact: 2s, retries: {max: 1}}\n  b: {driver: noop, needs: [nap]}\n",
    )
    .await;
    wait_for(&a, &id, |r| node(r, "nap")["state"] == "running").await;
    a.kill();
    let a = leader(&drover, &redis);
    let record = wait_end(&a, &id).await;
    assert_eq!(
        record["state"],
        "success",
        "{record}\ndrone: {}",
        _drone.log()
    );
    assert_eq!(
        node(&record, "nap")["attempts"].as_array().unwrap().len(),
        1,
        "the attempt the drone ran is waited for, not run again"
    );
    assert_eq!(node(&record, "b")["state"], "success");
    check_events(&sse(&a.base, &id).await);
}

#[tokio::test]
async fn two_leaders_at_once_never_schedule_the_same_run() {
    let redis = Redis::start();
    let _drone = drone(&redis);
    // Leases long enough that a busy machine never lets one lapse here.
    let drover = drover(5000);
    let a = leader(&drover, &redis);
    let b = leader(&drover, &redis);
    let dag = "name: pair\nnodes:\n  one: {driver: sleep, artifact: 300ms}\n  two: {driver: sleep, artifact: 300ms, needs: [one]}\n  three: {driver: shell, artifact: 'echo hi', needs: [one]}\n  four: {driver: noop, needs: [two, three]}\n";
    let mut ids = Vec::new();
    for i in 0..6 {
        let to = if i % 2 == 0 { &a } else { &b };
        ids.push(submit(to, dag).await);
    }
    for id in &ids {
        let record = wait_end(&a, id).await;
        assert_eq!(record["state"], "success", "{record}");
        for name in ["one", "two", "three", "four"] {
            let attempts = node(&record, name)["attempts"].as_array().unwrap().len();
            assert_eq!(attempts, 1, "{name} of {id} ran {attempts} times");
        }
        let events = sse(&b.base, id).await;
        check_events(&events);
    }
    // Listed newest first on either leader, page by page.
    let mut listed = Vec::new();
    let mut before = String::new();
    loop {
        let (_, page) = get_json(&b, &format!("/api/v1/runs?limit=4{before}")).await;
        for run in page["runs"].as_array().unwrap() {
            assert_eq!(run["state"], "success");
            listed.push(run["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => before = format!("&before={next}"),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first);
    let (_, running) = get_json(&a, "/api/v1/runs?state=running").await;
    assert_eq!(running["runs"], serde_json::json!([]));
    for server in [&a, &b] {
        let log = log_of(server);
        assert!(!log.contains("taking the run over"), "{log}");
        assert!(!log.contains("lost the run's lease"), "{log}");
    }
}

#[tokio::test]
async fn a_run_completes_when_redis_restarts_mid_run() {
    let mut redis = Redis::start();
    let _drone = drone(&redis);
    let drover = drover(5000);
    let a = leader(&drover, &redis);
    let id = submit(
        &a,
        r#"
name: steady
nodes:
  one: {driver: sleep, artifact: 500ms}
  two: {driver: sleep, artifact: 1s, needs: [one]}
  talk: {driver: shell, needs: [one], artifact: 'for i in $(seq 1 100); do echo "l$i"; sleep 0.01; done'}
  three: {driver: shell, artifact: 'echo done', needs: [two, talk]}
"#,
    )
    .await;
    wait_for(&a, &id, |r| node(r, "two")["state"] == "running").await;
    // Killed while log lines are being written.
    redis.restart();
    let record = wait_end(&a, &id).await;
    assert_eq!(record["state"], "success", "{record}");
    for name in ["one", "two", "talk", "three"] {
        assert_eq!(node(&record, name)["attempts"].as_array().unwrap().len(), 1);
    }
    check_events(&sse(&a.base, &id).await);
    assert_eq!(node_log(&a, &id, "talk").await, counted(100));
}

#[tokio::test]
async fn a_leader_killed_while_a_node_logs_neither_loses_nor_doubles_a_line() {
    let redis = Redis::start();
    let _drone = drone(&redis);
    let drover = drover(2000);
    let mut a = leader(&drover, &redis);
    let id = submit(
        &a,
        r#"
name: chatty
nodes:
  talk: {driver: shell, artifact: 'for i in $(seq 1 150); do echo "l$i"; sleep 0.02; done'}
  after: {driver: noop, needs: [talk]}
"#,
    )
    .await;
    // Killed with some lines stored, more on their way, and more to come
    // while no leader reads them.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !node_log(&a, &id, "talk").await.contains("l20\n") {
        assert!(Instant::now() < deadline, "talk never logged 20 lines");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.kill();
    let a = leader(&drover, &redis);
    let record = wait_end(&a, &id).await;
    assert_eq!(record["state"], "success", "{record}");
    assert_eq!(
        node(&record, "talk")["attempts"].as_array().unwrap().len(),
        1
    );
    assert_eq!(node_log(&a, &id, "talk").await, counted(150));
    check_events(&sse(&a.base, &id).await);
}

/// The log of `node` in run `id`, as `server` serves it.
async fn node_log(server: &Server, id: &str, node: &str) -> String {
    client()
        .get(server.url(&format!("/api/v1/runs/{id}/nodes/{node}/logs")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `l1` to `l{n}`, a line each.
fn counted(n: usize) -> String {
    (1..=n).map(|i| format!("l{i}\n")).collect()
}

#[tokio::test]
async fn a_run_is_canceled_through_another_leader() {
    let redis = Redis::start();
    let _drone = drone(&redis);
    let drover = drover(5000);
    let a = leader(&drover, &redis);
    let b = leader(&drover, &redis);
    let id = submit(
        &a,
        "name: long\nnodes:\n  nap: {driver: sleep, artifact: 30s}\n  after: {driver: noop, needs: [nap]}\n",
    )
    .await;
    wait_for(&b, &id, |r| node(r, "nap")["state"] == "running").await;
    let started = Instant::now();
    let response = post(&b, &format!("/api/v1/runs/{id}/cancel"), "").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let record = wait_end(&b, &id).await;
    assert_eq!(record["state"], "canceled", "{record}");
    // The owner heard it at once, not after a lease ran out.
    assert!(started.elapsed() < Duration::from_secs(4));
    let (_, meta) = get_json(&a, &format!("/api/v1/runs/{id}")).await;
    assert_eq!(meta["state"], "canceled");
    let again = post(&b, &format!("/api/v1/runs/{id}/cancel"), "").await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let missing = post(&b, "/api/v1/runs/nope/cancel", "").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_run_canceled_while_its_leader_is_dead_is_canceled_on_takeover() {
    let redis = Redis::start();
    let _drone = drone(&redis);
    let drover = drover(2000);
    let mut a = leader(&drover, &redis);
    let b = leader(&drover, &redis);
    let id = submit(
        &a,
        "name: orphan\nnodes:\n  nap: {driver: sleep, artifact: 30s}\n  after: {driver: noop, needs: [nap]}\n",
    )
    .await;
    wait_for(&b, &id, |r| node(r, "nap")["state"] == "running").await;
    a.kill();
    // Nobody runs it now: the cancel is stored, and whoever takes the run
    // over cancels it at once.
    let response = post(&b, &format!("/api/v1/runs/{id}/cancel"), "").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let record = wait_end(&b, &id).await;
    assert_eq!(record["state"], "canceled", "{record}");
    assert_eq!(
        node(&record, "after")["attempts"].as_array().unwrap().len(),
        0
    );
    check_events(&sse(&b.base, &id).await);
}

#[test]
fn an_unreachable_or_bad_redis_url_is_refused_by_name() {
    let drover = Drover::new();
    let port = support::openbao::free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let out = drover.run(&["serve", "--listen", "127.0.0.1:0", "--redis", &url]);
    // As `drover drone` says it: a Redis that does not answer is a failure (1), a URL that is
    // not Redis's is bad input (2).
    assert_eq!(out.status.code(), Some(1), "{}", support::stderr(&out));
    assert!(
        support::stderr(&out).contains(&format!("cannot reach Redis at {url}")),
        "{}",
        support::stderr(&out)
    );

    let out = drover.run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--redis",
        "nonsense://x",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", support::stderr(&out));
    assert!(
        support::stderr(&out).contains("nonsense://x"),
        "{}",
        support::stderr(&out)
    );
}

#[tokio::test]
async fn a_leader_stopped_by_sigterm_hands_its_runs_over_at_once() {
    let redis = Redis::start();
    let drone = drone(&redis);
    // Long leases: a takeover before one lapses proves the hand-over.
    let drover = drover(20_000);
    let mut a = leader(&drover, &redis);
    let b = leader(&drover, &redis);
    let id = submit(
        &a,
        "name: handed\nnodes:\n  nap: {driver: sleep, artifact: 1s, retries: {max: 1}}\n  b: {driver: noop, needs: [nap]}\n",
    )
    .await;
    wait_for(&a, &id, |r| node(r, "nap")["state"] == "running").await;
    let stopped = Instant::now();
    assert!(a.terminate().success());
    // Everyone's log if the run is not carried on (seen once on a fresh
    // CI machine, not reproduced since).
    let Ok(record) = tokio::time::timeout(Duration::from_secs(45), wait_end(&b, &id)).await else {
        let (_, record) = get_json(&b, &format!("/api/v1/runs/{id}")).await;
        panic!(
            "the run was not carried on: {record}\n--- leader a:\n{}\n--- leader b:\n{}\n--- drone:\n{}",
            log_of(&a),
            log_of(&b),
            drone.log()
        );
    };
    assert_eq!(record["state"], "success", "{record}");
    assert!(
        stopped.elapsed() < Duration::from_secs(15),
        "{:?}",
        stopped.elapsed()
    );
    assert!(
        log_of(&a).contains("go to another leader"),
        "{}",
        log_of(&a)
    );
    assert!(log_of(&b).contains("taking the run over"), "{}", log_of(&b));
    check_events(&sse(&b.base, &id).await);
}

/// The fence itself, through the library: two stores (two leaders) on one Redis.
#[tokio::test]
async fn writes_of_a_leader_that_lost_the_lease_are_refused() {
    use drover::engine::RunState;
    use drover::store::redis::RedisStore;
    use drover::store::{Api, RunMeta, RunOptions, RunStore, StoreError, Write};
    use redis::AsyncCommands;

    let redis = Redis::start();
    let a = RedisStore::connect(&redis.url(), 60_000).await.unwrap();
    let b = RedisStore::connect(&redis.url(), 60_000).await.unwrap();
    assert_ne!(a.leader(), b.leader());
    let meta = RunMeta {
        id: "00000000000000010000".to_owned(),
        name: "fenced".to_owned(),
        state: RunState::Running,
        nodes: 1,
        api: Api::Native,
        options: RunOptions {
            parallelism: 1,
            fail_fast: false,
            timeout_ms: None,
        },
        submitted_at: std::time::SystemTime::now(),
        finished_at: None,
        cancel_requested: false,
        drivers: Default::default(),
        rerun_of: None,
    };
    let id = meta.id.clone();
    let event = |seq: u64, who: &str| Write::Event {
        run: id.clone(),
        seq,
        event: format!("{{\"seq\":{seq},\"by\":\"{who}\"}}").into_bytes(),
    };
    a.write(vec![Write::submit(
        &meta,
        "name: fenced\nnodes: {x: {driver: noop}}",
    )])
    .await
    .unwrap();
    assert!(
        !b.acquire(&id).await.unwrap(),
        "the submitter holds the lease"
    );
    // A batch sent again (its reply lost) is taken as already done.
    a.write(vec![event(1, "a")]).await.unwrap();
    a.write(vec![event(1, "a"), event(2, "a")]).await.unwrap();
    let rewritten = a.write(vec![event(1, "x")]).await;
    assert!(
        matches!(rewritten, Err(StoreError::LeaseLost { .. })),
        "another event under a taken number is refused: {rewritten:?}"
    );
    assert!(!a.holds(&id));
    assert!(
        !a.acquire(&id).await.unwrap(),
        "A's old lease is still there"
    );
    let mut conn = redis.connection().await;
    let _: i64 = conn.del(format!("drover:run:{id}:lease")).await.unwrap();
    assert!(a.acquire(&id).await.unwrap());
    // B writing without the lease is refused before anything is sent.
    let refused = b.write(vec![event(3, "b")]).await;
    assert!(
        matches!(refused, Err(StoreError::LeaseLost { .. })),
        "{refused:?}"
    );

    // The lease lapses (A stalled); B takes the run over.
    let _: i64 = conn.del(format!("drover:run:{id}:lease")).await.unwrap();
    assert!(b.acquire(&id).await.unwrap());
    b.write(vec![event(3, "b")]).await.unwrap();
    // A's next write is refused by the script, and so is its renewal.
    let stale = a.write(vec![event(3, "a"), event(4, "a")]).await;
    assert!(
        matches!(stale, Err(StoreError::LeaseLost { .. })),
        "{stale:?}"
    );
    assert!(
        a.renew().await.unwrap().is_empty(),
        "A forgot the lease already"
    );
    assert!(!a.holds(&id));
    assert_eq!(b.renew().await.unwrap(), Vec::<String>::new());

    // Only A's events before the takeover and B's after it are kept.
    let kept = b.events(&id, 0, 100).await.unwrap();
    let kept: Vec<(u64, String)> = kept
        .into_iter()
        .map(|(seq, json)| (seq, String::from_utf8(json).unwrap()))
        .collect();
    assert_eq!(
        kept,
        [
            (1, r#"{"seq":1,"by":"a"}"#.to_owned()),
            (2, r#"{"seq":2,"by":"a"}"#.to_owned()),
            (3, r#"{"seq":3,"by":"b"}"#.to_owned()),
        ]
    );
    // Redis itself refuses a second writer of an event number.
    let again: redis::RedisResult<String> = redis::cmd("XADD")
        .arg(format!("drover:run:{id}:events"))
        .arg("0-3")
        .arg("e")
        .arg("{}")
        .query_async(&mut conn)
        .await;
    assert!(again.is_err());

    // A run's events written together are one stream entry, readable from
    // any event in it; an entry of one event in the older form (field `e`)
    // still reads.
    let entries = |conn: &mut redis::aio::MultiplexedConnection| {
        let mut conn = conn.clone();
        let key = format!("drover:run:{id}:events");
        async move { conn.xlen::<_, usize>(key).await.unwrap() }
    };
    let before = entries(&mut conn).await;
    b.write(vec![event(4, "b"), event(5, "b"), event(6, "b")])
        .await
        .unwrap();
    assert_eq!(entries(&mut conn).await, before + 1);
    let _: String = redis::cmd("XADD")
        .arg(format!("drover:run:{id}:events"))
        .arg("0-7")
        .arg("e")
        .arg(r#"{"seq":7,"by":"old"}"#)
        .query_async(&mut conn)
        .await
        .unwrap();
    let seqs = |events: Vec<(u64, Vec<u8>)>| events.into_iter().map(|(s, _)| s).collect::<Vec<_>>();
    assert_eq!(seqs(b.events(&id, 4, 100).await.unwrap()), [5, 6, 7]);
    assert_eq!(seqs(b.events(&id, 0, 5).await.unwrap()), [1, 2, 3, 4, 5]);
    assert_eq!(seqs(a.events(&id, 6, 100).await.unwrap()), [7]);
    // The same events sent again in one batch are taken as written.
    b.write(vec![event(5, "b"), event(6, "b")]).await.unwrap();
    assert!(b.holds(&id));

    // The record ends the run: off the unfinished set, lease gone.
    let record = drover::engine::RunRecord {
        id: id.clone(),
        name: "fenced".to_owned(),
        state: RunState::Success,
        rerun_of: None,
        nodes: Vec::new(),
    };
    let mut done = meta.clone();
    done.state = RunState::Success;
    done.finished_at = Some(std::time::SystemTime::now());
    b.write(vec![Write::meta(&done), Write::record(&record)])
        .await
        .unwrap();
    assert!(!b.holds(&id));
    let late = b.write(vec![Write::meta(&done)]).await;
    assert!(
        matches!(late, Err(StoreError::LeaseLost { .. })),
        "{late:?}"
    );
    assert!(b.unfinished().await.unwrap().is_empty());
    let lease: Option<String> = conn.get(format!("drover:run:{id}:lease")).await.unwrap();
    assert_eq!(lease, None);
    assert_eq!(
        a.record(&id).await.unwrap().unwrap().state,
        RunState::Success
    );
    let listed = a.runs(None, 10, &|_| true).await.unwrap();
    let listed: Vec<(&str, RunState)> = listed.iter().map(|m| (m.id.as_str(), m.state)).collect();
    assert_eq!(listed, [(id.as_str(), RunState::Success)]);
}

#[tokio::test]
async fn readyz_says_when_redis_does_not_answer() {
    let mut redis = Redis::start();
    let drover = drover(5000);
    let server = leader(&drover, &redis);
    let ready = |server: &Server| {
        let url = server.url("/readyz");
        async move { client().get(url).send().await.unwrap() }
    };
    assert_eq!(ready(&server).await.status(), StatusCode::OK);
    redis.kill();
    let answer = ready(&server).await;
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = answer.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.starts_with("not ready: "), "{body}");
    // Liveness is another matter: the process still answers.
    let healthz = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), StatusCode::OK);
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready(&server).await.status() != StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "never ready again after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_run_list_filters_runs_kept_in_redis_as_the_embedded_store_does() {
    let redis = Redis::start();
    let _drone = drone(&redis);
    let drover = drover(5000);
    let a = leader(&drover, &redis);
    crate::serve::check_list_filters(&a).await;
}
