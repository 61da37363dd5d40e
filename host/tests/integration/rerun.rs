//! Re-running a run over HTTP (`POST /api/v1/runs/{id}/rerun`): every node,
//! or only what failed with the rest reused, on a real `drover serve`
//! (embedded, and a leader with a drone sharing a real redis-server).

use crate::support;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::drone::Drone;
use support::redis::Redis;
use support::server::{
    Server, client, detail, get_json, post, problem, sse, submit, wait_end, wait_for,
};
use support::{Drover, node};

/// POSTs a re-run of run `id` (`query` is the query string, `?` included)
/// with `token` as bearer, if any.
async fn rerun(server: &Server, id: &str, query: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = client().post(server.url(&format!("/api/v1/runs/{id}/rerun{query}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// Re-runs run `id` and checks the answer: 201, the new run's path in
/// `Location` and `url`. Returns the new run's id.
async fn rerun_ok(server: &Server, id: &str, query: &str) -> String {
    let response = rerun(server, id, query, None).await;
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let new = body["id"].as_str().unwrap().to_owned();
    assert_ne!(new, id);
    let url = format!("/api/v1/runs/{new}");
    assert_eq!(location.as_deref(), Some(url.as_str()));
    assert_eq!(body["url"], url.as_str());
    new
}

fn attempts(node: &Value) -> &Vec<Value> {
    node["attempts"].as_array().unwrap()
}

/// Seconds since the epoch, a few from now: a node that fails before then
/// and succeeds after stands for a flaky one that a re-run fixes.
fn seconds_from_now(seconds: u64) -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + seconds
}

async fn sleep_until(epoch_seconds: u64) {
    let at = UNIX_EPOCH + Duration::from_secs(epoch_seconds) + Duration::from_millis(100);
    if let Ok(left) = at.duration_since(SystemTime::now()) {
        tokio::time::sleep(left).await;
    }
}

#[tokio::test]
async fn a_rerun_from_failed_reuses_what_succeeded_and_runs_the_rest_even_across_a_crash() {
    let drover = Drover::new();
    let mut server = Server::start(&drover, &[]);
    let ready = seconds_from_now(5);
    let dag = format!(
        r#"
name: flaky
nodes:
  make:
    driver: shell
    artifact: 'echo "token=$(date +%s%N)"'
    outputs: [token]
  side:
    driver: noop
  check:
    driver: shell
    needs: [make]
    # Fails until {ready}; then takes a while, long enough to crash the server in.
    artifact: |
      echo "saw=$T"
      if [ "$(date +%s)" -lt {ready} ]; then echo "too early"; exit 1; fi
      sleep 2
    env: {{T: '${{{{ nodes.make.outputs.token }}}}'}}
    outputs: [saw]
  after:
    driver: shell
    needs: [check, side]
    artifact: 'echo "after=$S"'
    env: {{S: '${{{{ nodes.check.outputs.saw }}}}'}}
    outputs: [after]
"#
    );
    let old = submit(&server, &dag).await;
    let first = wait_end(&server, &old).await;
    assert_eq!(first["state"], "failure", "{first}");
    assert_eq!(first["rerun_of"], Value::Null);
    assert_eq!(node(&first, "check")["state"], "failure", "{first}");
    assert_eq!(node(&first, "after")["state"], "not-runnable", "{first}");
    let token = node(&first, "make")["outputs"]["token"].clone();
    assert!(token.is_string(), "{first}");
    // The graph is in the record: each node's driver and needs, in DAG order.
    assert_eq!(node(&first, "after")["needs"], json!(["side", "check"]));
    assert_eq!(node(&first, "check")["needs"], json!(["make"]));
    assert_eq!(node(&first, "make")["needs"], json!([]));
    assert_eq!(node(&first, "side")["driver"], "noop");
    assert_eq!(node(&first, "make")["driver"], "shell");

    sleep_until(ready).await;
    let new = rerun_ok(&server, &old, "?from=failed").await;
    wait_for(&server, &new, |r| node(r, "check")["state"] == "running").await;
    let running = get_json(&server, &format!("/api/v1/runs/{new}")).await.1;
    // The server dies with `check` running: the run is carried on from its
    // stored events, which must say again what was reused.
    server.kill();
    let server = Server::start(&drover, &[]);
    let record = wait_end(&server, &new).await;
    assert_eq!(record["state"], "success", "{record}");
    assert_eq!(record["rerun_of"], old.as_str());
    assert_eq!(running["rerun_of"], old.as_str());
    for name in ["make", "side"] {
        for seen in [&running, &record] {
            let reused = node(seen, name);
            assert_eq!(reused["state"], "success", "{seen}");
            assert_eq!(reused["reused_from"], old.as_str(), "{seen}");
            assert_eq!(reused["attempts"], json!([]), "never dispatched: {seen}");
            assert_eq!(reused["started_at"], Value::Null, "{seen}");
            assert_eq!(reused["outputs"], node(&first, name)["outputs"]);
        }
    }
    let check = node(&record, "check");
    assert_eq!(check["reused_from"], Value::Null);
    // The attempt the crash cut short, then the one that finished.
    let states: Vec<&Value> = attempts(check).iter().map(|a| &a["state"]).collect();
    assert_eq!(states, ["interrupted", "success"], "{record}");
    // The reused outputs fed the node run again, and it fed the next.
    assert_eq!(check["outputs"]["saw"], token, "{record}");
    assert_eq!(
        node(&record, "after")["outputs"]["after"],
        token,
        "{record}"
    );
    assert_eq!(attempts(node(&record, "after")).len(), 1);

    // The events say it too: the reuses first, and no reused node runs.
    let events = sse(&server.base, &new, None, usize::MAX).await;
    let reuses: Vec<(u64, &str)> = events
        .iter()
        .filter(|(_, kind, data)| kind == "node" && data["reused_from"] == old.as_str())
        .map(|(seq, _, data)| (*seq, data["node"].as_str().unwrap()))
        .collect();
    assert_eq!(reuses, [(1, "make"), (2, "side")], "{events:?}");
    for (_, _, data) in &events[..2] {
        assert_eq!(data["state"], "success");
        assert_eq!(data["state_code"], 3);
    }
    assert_eq!(events[0].2["outputs"], node(&first, "make")["outputs"]);
    let ran: Vec<&str> = events
        .iter()
        .filter(|(_, kind, data)| kind == "node" && data["state"] == "running")
        .map(|(_, _, data)| data["node"].as_str().unwrap())
        .collect();
    assert_eq!(ran, ["check", "check", "after"], "{events:?}");

    // The list says which run each re-runs; the old run is as it was.
    let (_, list) = get_json(&server, "/api/v1/runs").await;
    let runs = list["runs"].as_array().unwrap();
    assert_eq!(runs[0]["id"], new.as_str(), "{list}");
    assert_eq!(runs[0]["rerun_of"], old.as_str(), "{list}");
    assert_eq!(runs[1]["id"], old.as_str(), "{list}");
    assert_eq!(runs[1]["rerun_of"], Value::Null, "{list}");
    let (_, again) = get_json(&server, &format!("/api/v1/runs/{old}")).await;
    assert_eq!(again, first);

    // A re-run of the re-run, from what failed: nothing did, so every node
    // is reused and it succeeds at once, naming the run it re-runs.
    let third = rerun_ok(&server, &new, "?from=failed").await;
    let record = wait_end(&server, &third).await;
    assert_eq!(record["state"], "success", "{record}");
    assert_eq!(record["rerun_of"], new.as_str());
    for name in ["make", "side", "check", "after"] {
        assert_eq!(node(&record, name)["reused_from"], new.as_str(), "{record}");
    }
}

#[tokio::test]
async fn a_rerun_of_all_runs_every_node_again_with_the_same_options() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let dag = r#"
name: strict
nodes:
  ok:
    driver: shell
    artifact: 'echo "n=$(date +%s%N)"'
    outputs: [n]
  bad:
    driver: shell
    needs: [ok]
    artifact: 'exit 3'
  slow:
    driver: sleep
    artifact: 30s
"#;
    // With fail_fast, `bad` failing cancels `slow`.
    let response = post(&server, "/api/v1/runs?fail_fast=true", dag).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let old = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = wait_end(&server, &old).await;
    assert_eq!(first["state"], "failure", "{first}");
    assert_eq!(node(&first, "slow")["state"], "canceled", "{first}");

    for query in ["", "?from=all"] {
        let new = rerun_ok(&server, &old, query).await;
        let record = wait_end(&server, &new).await;
        assert_eq!(record["rerun_of"], old.as_str());
        assert_eq!(record["state"], "failure", "{record}");
        // The same options: it failed fast again, well before `slow` ended.
        assert_eq!(node(&record, "slow")["state"], "canceled", "{record}");
        assert_eq!(node(&record, "bad")["exit_code"], 3, "{record}");
        for name in ["ok", "bad"] {
            let again = node(&record, name);
            assert_eq!(again["reused_from"], Value::Null, "{record}");
            assert_eq!(attempts(again).len(), 1, "{record}");
        }
        // `ok` ran again: its output is new.
        assert_ne!(
            node(&record, "ok")["outputs"]["n"],
            node(&first, "ok")["outputs"]["n"]
        );
    }
}

#[tokio::test]
async fn a_rerun_is_refused_for_unknown_running_or_bad_requests_and_to_viewers() {
    let drover = Drover::new();
    let server = Server::start_with(
        &drover,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("DROVER_TOKENS", "operator:op-secret,viewer:view-secret")],
    );
    let op = Some("op-secret");

    let response = rerun(&server, "nope", "", op).await;
    let error = problem(response, StatusCode::NOT_FOUND, "not-found").await;
    assert!(detail(&error).contains("`nope`"), "{error}");
    assert_eq!(error["instance"], "/api/v1/runs/nope/rerun");

    let response = client()
        .post(server.url("/api/v1/runs"))
        .bearer_auth("op-secret")
        .header("content-type", "application/yaml")
        .body("name: long\nnodes:\n  wait: {driver: sleep, artifact: 30s}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Still running: a conflict that says so.
    let response = rerun(&server, &id, "?from=failed", op).await;
    let error = problem(response, StatusCode::CONFLICT, "conflict").await;
    assert!(detail(&error).contains("still running"), "{error}");

    // A bad `from` is named, with its value.
    let response = rerun(&server, &id, "?from=everything", op).await;
    let error = problem(response, StatusCode::BAD_REQUEST, "invalid-parameter").await;
    assert!(
        detail(&error).contains("`from`") && detail(&error).contains("`everything`"),
        "{error}"
    );

    // Viewers may not; nobody without a token may.
    let response = rerun(&server, &id, "", Some("view-secret")).await;
    let error = problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(detail(&error).contains("`operator`"), "{error}");
    let response = rerun(&server, &id, "", None).await;
    problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // Once it has ended (canceled here), an operator may.
    let response = client()
        .post(server.url(&format!("/api/v1/runs/{id}/cancel")))
        .bearer_auth("op-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let ended = wait_for_with(&server, &id, "view-secret").await;
    assert_eq!(ended["state"], "canceled", "{ended}");
    let response = rerun(&server, &id, "?from=failed", op).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let new = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The canceled node runs again.
    let response = client()
        .post(server.url(&format!("/api/v1/runs/{new}/cancel")))
        .bearer_auth("op-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let record = wait_for_with(&server, &new, "view-secret").await;
    assert_eq!(record["rerun_of"], id.as_str());
    assert_eq!(node(&record, "wait")["reused_from"], Value::Null);
}

/// The record of run `id` once it has ended, read with `token`.
async fn wait_for_with(server: &Server, id: &str, token: &str) -> Value {
    let started = std::time::Instant::now();
    loop {
        let record: Value = client()
            .get(server.url(&format!("/api/v1/runs/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if record["state"] != "running" {
            return record;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{record}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A test driver component built from `tests/drivers`.
fn greet(version: u8) -> Vec<u8> {
    let file = match version {
        1 => "test_driver_greet.wasm",
        _ => "test_driver_greet_v2.wasm",
    };
    std::fs::read(support::test_drivers::folder().join(file)).unwrap()
}

async fn publish(server: &Server, bytes: Vec<u8>) -> String {
    let response = post(server, "/api/v1/plugins", bytes).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["digest"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_rerun_resolves_its_drivers_afresh_and_is_refused_when_one_is_gone() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let v1 = publish(&server, greet(1)).await;
    let old = submit(
        &server,
        "name: hi\nnodes:\n  a: {driver: greet, artifact: ann}\n  b: {driver: noop, needs: [a]}\n",
    )
    .await;
    let first = wait_end(&server, &old).await;
    assert_eq!(first["state"], "success", "{first}");
    assert_eq!(node(&first, "a")["driver_digest"], v1.as_str());

    // A newer version published since: the re-run gets it, as a new
    // submission of the same DAG would.
    let v2 = publish(&server, greet(2)).await;
    let new = rerun_ok(&server, &old, "").await;
    let record = wait_end(&server, &new).await;
    assert_eq!(record["state"], "success", "{record}");
    let a = node(&record, "a");
    assert_eq!(a["driver_digest"], v2.as_str(), "{record}");
    assert_eq!(a["outputs"]["version"], "2.0.0", "{record}");
    assert_eq!(a["driver"], "greet");

    // Every version withdrawn: refused as a submission would be, every
    // problem listed with where it is, and nothing stored.
    for version in ["1.0.0", "2.0.0"] {
        let response = client()
            .delete(server.url(&format!("/api/v1/plugins/greet/{version}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let (_, before) = get_json(&server, "/api/v1/runs").await;
    for query in ["", "?from=failed"] {
        let response = rerun(&server, &old, query, None).await;
        let error = problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid-dag").await;
        let problems = error["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 1, "{error}");
        assert_eq!(problems[0]["location"], "node `a`, field `driver`");
        assert!(detail(&error).contains("greet"), "{error}");
    }
    let (_, after) = get_json(&server, "/api/v1/runs").await;
    assert_eq!(before, after, "a refused re-run stores nothing");
}

#[tokio::test]
async fn a_distributed_rerun_from_failed_dispatches_only_what_runs_again() {
    use drover::transport::redis::protocol;
    use redis::AsyncCommands;

    let redis = Redis::start();
    let drover = Drover::new();
    let server = Server::start(&drover, &["--redis", &redis.url()]);
    let mut drone = Drone::start(&redis, &["--concurrency", "4"]);
    let old = submit(
        &server,
        r#"
name: spread
nodes:
  make:
    driver: shell
    artifact: 'echo "token=$(date +%s%N)"'
    outputs: [token]
  use:
    driver: shell
    needs: [make]
    artifact: 'echo "saw=$T"; exit 1'
    env: {T: '${{ nodes.make.outputs.token }}'}
    outputs: [saw]
"#,
    )
    .await;
    let first = wait_end(&server, &old).await;
    assert_eq!(first["state"], "failure", "{first}");
    let token = node(&first, "make")["outputs"]["token"].clone();

    // With no drone to take them, the jobs the re-run sends stay in the
    // pool's stream for the test to read.
    drone.kill();
    let new = rerun_ok(&server, &old, "?from=failed").await;
    let mut conn = redis.connection().await;
    let jobs = protocol::jobs_key(protocol::DEFAULT_POOL);
    let started = std::time::Instant::now();
    let sent: Vec<protocol::Job> = loop {
        let entries: redis::streams::StreamRangeReply = conn.xrange_all(&jobs).await.unwrap();
        let sent: Vec<protocol::Job> = entries
            .ids
            .iter()
            .filter_map(|entry| entry.get::<String>(protocol::JOB_FIELD))
            .map(|job| serde_json::from_str(&job).unwrap())
            .filter(|job: &protocol::Job| job.attempt_id.run == new)
            .collect();
        if !sent.is_empty() {
            break sent;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no job was sent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // `use` is sent only once `make` is done: had `make` been sent, it
    // would be there first.
    let nodes: Vec<&str> = sent.iter().map(|job| job.task.node.as_str()).collect();
    assert_eq!(nodes, ["use"]);
    assert!(
        sent[0]
            .task
            .inputs
            .iter()
            .any(|(node, key, value)| node == "make"
                && key == "token"
                && Some(value.as_str()) == token.as_str()),
        "the reused outputs go to the drone: {:?}",
        sent[0].task.inputs
    );

    let _drone = Drone::start(&redis, &["--concurrency", "4"]);
    let record = wait_end(&server, &new).await;
    assert_eq!(record["rerun_of"], old.as_str());
    let make = node(&record, "make");
    assert_eq!(make["reused_from"], old.as_str(), "{record}");
    assert_eq!(make["attempts"], json!([]), "{record}");
    let used = node(&record, "use");
    assert_eq!(attempts(used).len(), 1, "{record}");
    assert_eq!(used["outputs"]["saw"], token, "{record}");
    let (_, list) = get_json(&server, "/api/v1/runs").await;
    assert_eq!(list["runs"][0]["rerun_of"], old.as_str(), "{list}");
}
