//! `drover serve` end to end: a real server process, real HTTP over loopback.

use crate::support;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::server::{
    Server, client, detail, get_json, post, problem, sse, submit, wait_end, wait_for,
};
use support::{Drover, node};

const SMALL: &str = r#"
name: small
nodes:
  hello:
    driver: shell
    artifact: |
      echo "line one"
      echo "line two"
      echo "greeting=hi there"
    outputs: [greeting]
  use:
    driver: shell
    needs: [hello]
    artifact: 'echo "got $G"'
    env: {G: '${{ nodes.hello.outputs.greeting }}'}
  idle:
    driver: noop
"#;

#[tokio::test]
async fn a_submitted_dag_runs_and_its_record_matches_drover_run() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let response = post(&server, "/api/v1/runs", SMALL).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/v1/runs/{id}"));
    assert_eq!(created["url"], location.as_str());

    let record = wait_end(&server, id).await;
    assert_eq!(record["state"], "success", "{record}");
    assert_eq!(record["id"], id);
    assert_eq!(record["name"], "small");
    assert_eq!(node(&record, "hello")["outputs"]["greeting"], "hi there");
    assert_eq!(node(&record, "use")["state_code"], 3);
    // The graph: each node's driver as named, and its needs.
    assert_eq!(node(&record, "use")["driver"], "shell");
    assert_eq!(node(&record, "use")["needs"], json!(["hello"]));
    assert_eq!(node(&record, "idle")["driver"], "noop");
    assert_eq!(node(&record, "idle")["needs"], json!([]));
    assert_eq!(node(&record, "use")["reused_from"], Value::Null);
    assert_eq!(record["rerun_of"], Value::Null);

    // The same DAG through `drover run`: the same shape, key for key.
    drover.write("small.yaml", SMALL);
    let (code, cli) = drover.record(&["run", "small.yaml"]);
    assert_eq!(code, 0);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&record), keys(&cli));
    assert_eq!(keys(node(&record, "hello")), keys(node(&cli, "hello")));
    assert_eq!(
        keys(&node(&record, "hello")["attempts"][0]),
        keys(&node(&cli, "hello")["attempts"][0])
    );

    // The log of one node, as text.
    let text = client()
        .get(server.url(&format!("/api/v1/runs/{id}/nodes/hello/logs")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.starts_with("line one\nline two\n"), "{text}");
}

#[tokio::test]
async fn a_runs_workspaces_are_recycled_when_left_empty_and_gone_when_it_ends() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let dag = r#"
name: recycle
nodes:
  a:
    driver: shell
    artifact: 'echo ws=$PWD; echo seen=$(ls -A | wc -l)'
    outputs: [ws, seen]
  b:
    driver: shell
    artifact: 'echo ws=$PWD; echo seen=$(ls -A | wc -l); mkdir -p deep/er; touch deep/er/f'
    outputs: [ws, seen]
    needs: [a]
  c:
    driver: shell
    artifact: 'echo ws=$PWD; echo seen=$(ls -A | wc -l)'
    outputs: [ws, seen]
    needs: [b]
"#;
    let id = submit(&server, dag).await;
    let record = wait_end(&server, &id).await;
    assert_eq!(record["state"], "success", "{record}");
    let ws = |name: &str| node(&record, name)["outputs"]["ws"].clone();
    for name in ["a", "b", "c"] {
        assert_eq!(node(&record, name)["outputs"]["seen"], "0", "{record}");
    }
    assert_eq!(ws("a"), ws("b"), "{record}");
    assert_ne!(ws("b"), ws("c"), "{record}");
    // Stored as ended only after the run's folder is gone.
    assert!(!drover.data().join("runs").join(&id).exists());
}

#[tokio::test]
async fn invalid_dags_are_refused_with_every_problem_and_nothing_is_stored() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let bad = r#"
name: bad
nodes:
  a: {driver: noop, needs: [c]}
  b: {driver: noop, needs: [a]}
  c: {driver: noop, needs: [b]}
  d: {driver: nosuchdriver}
  e: {driver: shell, needs: [ghost]}
"#;
    let response = post(&server, "/api/v1/runs", bad).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error: Value = response.json().await.unwrap();
    let problems = error["problems"].to_string();
    assert!(problems.contains("cycle"), "{error}");
    assert!(problems.contains("nosuchdriver"), "{error}");
    assert!(problems.contains("ghost"), "{error}");
    assert!(
        problems.contains("node `e`, field `artifact`"),
        "the shell driver's own refusal: {error}"
    );

    // Not YAML at all: 400 with where.
    let response = post(&server, "/api/v1/runs", "name: x\nnodes:\n  a: [unclosed\n").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["problems"][0]["location"]
            .as_str()
            .unwrap()
            .starts_with("line "),
        "{error}"
    );
    // Malformed JSON too.
    let response = post(&server, "/api/v1/runs", "{\"name\": \"x\", \"nodes\": {").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["detail"].as_str().unwrap().contains("JSON"),
        "{error}"
    );

    // Bad options.
    let response = post(&server, "/api/v1/runs?parallelism=0", SMALL).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["detail"].as_str().unwrap().contains("parallelism"),
        "{error}"
    );
    let response = post(&server, "/api/v1/runs?timeout=soon", SMALL).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["detail"].as_str().unwrap().contains("timeout"),
        "{error}"
    );

    let (_, list) = get_json(&server, "/api/v1/runs").await;
    assert_eq!(list["runs"], json!([]), "a refused DAG stores nothing");
    let (status, error) = get_json(&server, "/api/v1/runs/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error["detail"].as_str().unwrap().contains("nope"));
}

#[tokio::test]
async fn error_answers_are_problem_details_naming_what_was_wrong() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let get = |path: &str| client().get(server.url(path)).send();

    // Query parameters that do not parse: named, with the value.
    let response = post(&server, "/api/v1/runs?parallelism=-1", SMALL).await;
    let error = problem(response, StatusCode::BAD_REQUEST, "invalid-parameter").await;
    assert!(
        detail(&error).contains("`parallelism`") && detail(&error).contains("`-1`"),
        "{error}"
    );
    assert_eq!(error["instance"], "/api/v1/runs");
    let response = get("/api/v1/runs?limit=many").await.unwrap();
    let error = problem(response, StatusCode::BAD_REQUEST, "invalid-parameter").await;
    assert!(detail(&error).contains("`limit`: `many`"), "{error}");
    // The document says 1 to 1000: the server holds to it rather than clamp.
    for limit in ["0", "1001"] {
        let response = get(&format!("/api/v1/runs?limit={limit}")).await.unwrap();
        let error = problem(response, StatusCode::BAD_REQUEST, "invalid-parameter").await;
        assert!(detail(&error).contains("between 1 and 1000"), "{error}");
    }
    let response = get("/api/v1/runs/x/nodes/y/logs?follow=please")
        .await
        .unwrap();
    let error = problem(response, StatusCode::BAD_REQUEST, "invalid-parameter").await;
    assert!(detail(&error).contains("`follow`"), "{error}");

    // Path parameters: one that is not text, one that is not a version.
    let response = get("/api/v1/runs/%FF%FE").await.unwrap();
    let error = problem(response, StatusCode::BAD_REQUEST, "invalid-parameter").await;
    assert!(detail(&error).contains("path parameter `id`"), "{error}");
    assert_eq!(error["instance"], "/api/v1/runs/%FF%FE");
    let response = client()
        .delete(server.url("/api/v1/plugins/shell/latest"))
        .send()
        .await
        .unwrap();
    let error = problem(response, StatusCode::BAD_REQUEST, "invalid-parameter").await;
    assert!(
        detail(&error).contains("path parameter `version`: `latest`"),
        "{error}"
    );

    // Bodies that are not YAML or JSON, or not text at all.
    let response = post(&server, "/api/v1/runs", "name: x\nnodes: [unclosed\n").await;
    let error = problem(response, StatusCode::BAD_REQUEST, "unreadable-body").await;
    assert!(
        error["problems"][0]["location"]
            .as_str()
            .is_some_and(|l| l.starts_with("line ")),
        "{error}"
    );
    let response = post(&server, "/api/v1/runs", vec![0xff, 0xfe, 0x00]).await;
    let error = problem(response, StatusCode::BAD_REQUEST, "unreadable-body").await;
    assert!(detail(&error).contains("not UTF-8"), "{error}");

    // A DAG with a cycle: every node of it named, in `detail` and `problems`.
    let cycle = "name: loop\nnodes:\n  a: {driver: noop, needs: [c]}\n  b: {driver: noop, needs: [a]}\n  c: {driver: noop, needs: [b]}\n";
    let response = post(&server, "/api/v1/runs", cycle).await;
    let error = problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid-dag").await;
    let problems = error["problems"].as_array().cloned().unwrap_or_default();
    let cycle_problem = problems
        .iter()
        .find(|p| p["message"].as_str().is_some_and(|m| m.contains("cycle")))
        .unwrap_or_else(|| panic!("no cycle among the problems: {error}"));
    let message = cycle_problem["message"].as_str().unwrap_or_default();
    for name in ["a", "b", "c"] {
        assert!(message.contains(name), "{message}");
    }
    assert!(detail(&error).contains(message), "{error}");

    // Endpoints and methods that do not exist.
    let response = get("/api/v1/nothing/here").await.unwrap();
    let error = problem(response, StatusCode::NOT_FOUND, "not-found").await;
    assert!(detail(&error).contains("/api/v1/nothing/here"), "{error}");
    let response = client()
        .patch(server.url("/api/v1/runs"))
        .send()
        .await
        .unwrap();
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let error = problem(response, StatusCode::METHOD_NOT_ALLOWED, "about:blank").await;
    assert!(detail(&error).contains("PATCH"), "{error}");

    // A missing run, a body type a web page could send.
    let response = get("/api/v1/runs/nope").await.unwrap();
    let error = problem(response, StatusCode::NOT_FOUND, "not-found").await;
    assert!(detail(&error).contains("nope"), "{error}");
    let response = client()
        .post(server.url("/api/v1/runs"))
        .header(reqwest::header::CONTENT_TYPE, "text/plain")
        .body(SMALL)
        .send()
        .await
        .unwrap();
    let error = problem(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    )
    .await;
    assert!(detail(&error).contains("text/plain"), "{error}");

    let (_, list) = get_json(&server, "/api/v1/runs").await;
    assert_eq!(list["runs"], json!([]), "no refused request stored a run");
}

#[tokio::test]
async fn every_error_under_v1_keeps_gorchestrators_shape() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let legacy = |status: u16, body: &Value| {
        assert_eq!(body["code"], status, "{body}");
        assert!(body["message"].is_string(), "{body}");
        assert_eq!(body.as_object().map(|o| o.len()), Some(2), "{body}");
    };
    for (method, path, status) in [
        (reqwest::Method::GET, "/v1/tasks/%FF", 400),
        (reqwest::Method::GET, "/v1/nothing", 404),
        (reqwest::Method::PUT, "/v1/tasks", 405),
    ] {
        let response = client()
            .request(method.clone(), server.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{method} {path}"
        );
        legacy(status, &response.json().await.unwrap());
    }
    let response = post(&server, "/v1/tasks", "{\"digraph\": ").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    legacy(400, &response.json().await.unwrap());
}

#[tokio::test]
async fn bodies_over_the_cap_get_413() {
    let drover = Drover::new();
    drover.write(
        "drover.toml",
        &format!(
            "{}\n[server]\nmax_body_mib = 1\n",
            std::fs::read_to_string(drover.path("drover.toml")).unwrap()
        ),
    );
    let server = Server::start(&drover, &[]);
    let big = format!(
        "name: big\n# {}\nnodes:\n  a: {{driver: noop}}\n",
        "x".repeat(1024 * 1024)
    );
    let response = post(&server, "/api/v1/runs", big).await;
    let error = problem(response, StatusCode::PAYLOAD_TOO_LARGE, "body-too-large").await;
    assert!(detail(&error).contains("max_body_mib"), "{error}");
    // A small one still goes through.
    let id = submit(&server, "name: ok\nnodes:\n  a: {driver: noop}\n").await;
    assert_eq!(wait_end(&server, &id).await["state"], "success");
}

#[tokio::test]
async fn runs_are_listed_newest_first_filtered_and_paginated() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let mut ids = Vec::new();
    for i in 0..5 {
        let fail = if i % 2 == 0 { "true" } else { "false" };
        let id = submit(
            &server,
            &format!("name: r{i}\nnodes:\n  a: {{driver: shell, artifact: '{fail}'}}\n"),
        )
        .await;
        wait_end(&server, &id).await;
        ids.push(id);
    }
    let (_, all) = get_json(&server, "/api/v1/runs").await;
    let listed: Vec<&str> = all["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let mut newest_first: Vec<&str> = ids.iter().map(String::as_str).collect();
    newest_first.reverse();
    assert_eq!(listed, newest_first);
    assert!(all["runs"][0]["finished_at"].is_string());

    let (_, failed) = get_json(&server, "/api/v1/runs?state=failure").await;
    assert_eq!(failed["runs"].as_array().unwrap().len(), 2);
    let (status, error) = get_json(&server, "/api/v1/runs?state=bogus").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["detail"].as_str().unwrap().contains("`bogus`"),
        "{error}"
    );

    let (_, page1) = get_json(&server, "/api/v1/runs?limit=2").await;
    assert_eq!(page1["runs"].as_array().unwrap().len(), 2);
    let next = page1["next"].as_str().unwrap();
    let (_, page2) = get_json(&server, &format!("/api/v1/runs?limit=2&before={next}")).await;
    assert_eq!(page2["runs"][0]["id"], newest_first[2]);
}

#[tokio::test]
async fn a_run_is_canceled_over_http() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let id = submit(
        &server,
        "name: long\nnodes:\n  nap: {driver: shell, artifact: 'sleep 30'}\n  after: {driver: noop, needs: [nap]}\n",
    )
    .await;
    wait_for(&server, &id, |r| node(r, "nap")["state"] == "running").await;
    let response = post(&server, &format!("/api/v1/runs/{id}/cancel"), "").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let started = Instant::now();
    let record = wait_end(&server, &id).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(record["state"], "canceled");
    assert_eq!(node(&record, "nap")["state"], "canceled");
    assert_eq!(node(&record, "after")["state_code"], 11);

    let response = post(&server, &format!("/api/v1/runs/{id}/cancel"), "").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let response = post(&server, "/api/v1/runs/nope/cancel", "").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn events_stream_in_order_and_resume_after_last_event_id() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let id = submit(
        &server,
        r#"
name: chatty
nodes:
  talk:
    driver: shell
    artifact: 'for i in 1 2 3 4 5; do echo "line $i"; sleep 0.05; done'
  flaky:
    driver: shell
    artifact: 'test -f .t || { touch .t; exit 1; }'
    retries: {max: 1, backoff: 10ms}
"#,
    )
    .await;
    // Watch from the start while it runs.
    let live = sse(&server.base, &id, None, usize::MAX).await;
    let seqs: Vec<u64> = live.iter().map(|e| e.0).collect();
    assert_eq!(
        seqs,
        (1..=live.len() as u64).collect::<Vec<_>>(),
        "no gaps, no repeats"
    );
    let last = live.last().unwrap();
    assert_eq!(last.1, "finished");
    assert_eq!(last.2["state"], "success");
    let logs: Vec<&str> = live
        .iter()
        .filter(|e| e.1 == "log")
        .map(|e| e.2["message"].as_str().unwrap())
        .collect();
    assert_eq!(logs, ["line 1", "line 2", "line 3", "line 4", "line 5"]);
    assert!(
        live.iter()
            .any(|e| e.1 == "retry" && e.2["node"] == "flaky")
    );
    assert!(
        live.iter()
            .any(|e| e.1 == "attempt" && e.2["attempt"]["attempt"] == 2)
    );
    for (seq, _, data) in &live {
        assert_eq!(data["seq"], *seq);
    }

    // Resume from the middle: exactly the rest.
    let middle = live.len() as u64 / 2;
    let rest = sse(&server.base, &id, Some(middle), usize::MAX).await;
    assert_eq!(rest, live[middle as usize..].to_vec());
    // `?after=` works the same; past the end gives nothing.
    let none = sse(&server.base, &id, Some(live.len() as u64), usize::MAX).await;
    assert!(none.is_empty());

    let response = client()
        .get(server.url(&format!("/api/v1/runs/{id}/events")))
        .header("Last-Event-ID", "banana")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["detail"].as_str().unwrap().contains("Last-Event-ID"),
        "{error}"
    );
}

#[tokio::test]
async fn many_watchers_see_every_event_of_a_live_run() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let id = submit(
        &server,
        "name: watched\nnodes:\n  talk: {driver: shell, artifact: 'sleep 0.3; for i in $(seq 1 50); do echo \"l$i\"; done'}\n  b: {driver: noop, needs: [talk]}\n",
    )
    .await;
    let watchers: Vec<_> = (0..100)
        .map(|_| {
            let base = server.base.clone();
            let id = id.clone();
            tokio::spawn(async move { sse(&base, &id, None, usize::MAX).await })
        })
        .collect();
    let mut seen = Vec::new();
    for watcher in watchers {
        seen.push(watcher.await.unwrap());
    }
    let first = &seen[0];
    assert_eq!(first.last().unwrap().1, "finished");
    assert_eq!(first.iter().filter(|e| e.1 == "log").count(), 50);
    for other in &seen {
        assert_eq!(other, first);
    }
}

#[tokio::test]
async fn logs_follow_a_running_node_until_it_ends() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let id = submit(
        &server,
        "name: follow\nnodes:\n  slow: {driver: shell, artifact: 'for i in 1 2 3; do echo \"tick $i\"; sleep 0.2; done'}\n",
    )
    .await;
    let text = client()
        .get(server.url(&format!("/api/v1/runs/{id}/nodes/slow/logs?follow=true")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "tick 1\ntick 2\ntick 3\n");
    let response = client()
        .get(server.url(&format!("/api/v1/runs/{id}/nodes/ghost/logs")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

fn gorchestrator_graph(sleep: &str) -> Value {
    json!({
        "name": "legacy",
        "state": 0,
        "digraph": [0, 1, 1,
                    0, 0, 0,
                    0, 0, 0],
        "nodes": [
            {"id": 0, "name": "d", "engine": "shell", "artifact": format!("sleep {sleep}; echo ip_address=10.0.0.7"),
             "args": null, "output": {"ip_address": ""}},
            {"id": 1, "name": "c", "engine": "shell", "artifact": "echo \"seen=$1\"",
             "args": ["get_attribute d:ip_address"], "output": {"seen": ""}},
            {"id": 2, "name": "e", "engine": "nil", "artifact": "", "args": null, "output": null}
        ]
    })
}

#[tokio::test]
async fn the_gorchestrator_api_keeps_its_clients_working() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let response = post(&server, "/v1/tasks", gorchestrator_graph("0").to_string()).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_end(&server, &id).await;
    let (status, graph) = get_json(&server, &format!("/v1/tasks/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(graph["state"], 3, "{graph}");
    assert_eq!(graph["digraph"], gorchestrator_graph("0")["digraph"]);
    assert_eq!(graph["nodes"][0]["state"], 3);
    assert_eq!(graph["nodes"][0]["output"]["ip_address"], "10.0.0.7");
    assert_eq!(graph["nodes"][1]["output"]["seen"], "10.0.0.7");
    assert_eq!(graph["nodes"][2]["state"], 3);

    let (_, tasks) = get_json(&server, "/v1/tasks").await;
    let task = &tasks["tasks"][0];
    assert_eq!(task["id"], id.as_str());
    assert_eq!(task["name"], "legacy");
    assert!(task["start_date"].as_str().unwrap().starts_with("20"));
    assert!(task["stop_date"].as_str().unwrap().starts_with("20"));

    // Cancel one while it runs.
    let response = post(&server, "/v1/tasks", gorchestrator_graph("30").to_string()).await;
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for(&server, &id, |r| node(r, "d")["state"] == "running").await;
    let response = client()
        .delete(server.url(&format!("/v1/tasks/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    wait_end(&server, &id).await;
    let (_, graph) = get_json(&server, &format!("/v1/tasks/{id}")).await;
    assert_eq!(graph["state"], 11);
    assert_eq!(graph["nodes"][0]["state"], 11);
    assert_eq!(graph["nodes"][1]["state"], 11);

    // Errors in gorchestrator's shape.
    let (status, error) = get_json(&server, "/v1/tasks/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["code"], 404);
    assert!(error["message"].is_string());
    let response = post(&server, "/v1/tasks", "{not json").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], 400);
    let response = post(
        &server,
        "/v1/tasks",
        "{\"name\": \"native\", \"nodes\": {}}",
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["message"].as_str().unwrap().contains("digraph"),
        "{error}"
    );
    let mut bad = gorchestrator_graph("0");
    bad["digraph"] = json!([0, 1]);
    let response = post(&server, "/v1/tasks", bad.to_string()).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["code"], 422);
    assert!(
        error["message"].as_str().unwrap().contains("digraph"),
        "{error}"
    );
}

#[tokio::test]
async fn tokens_and_roles_guard_the_api() {
    let drover = Drover::new();
    drover.write(
        "drover.toml",
        &format!(
            "{}\n[[server.tokens]]\ntoken = \"view-secret\"\nrole = \"viewer\"\n",
            std::fs::read_to_string(drover.path("drover.toml")).unwrap()
        ),
    );
    let server = Server::start_with(
        &drover,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("DROVER_TOKENS", "operator:op-secret,admin:admin-secret")],
    );
    let post = |token: Option<&str>| {
        let mut request = client().post(server.url("/api/v1/runs")).body(SMALL);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let response = post(None).await.unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let error = problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert!(detail(&error).contains("Authorization: Bearer"), "{error}");
    assert_eq!(error["instance"], "/api/v1/runs");
    let response = post(Some("wrong")).await.unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let error = problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert!(detail(&error).contains("unknown token"), "{error}");
    let response = post(Some("view-secret")).await.unwrap();
    let error = problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(
        detail(&error).contains("`operator`") && detail(&error).contains("`viewer`"),
        "{error}"
    );
    // gorchestrator's API refuses in its own shape.
    let response = client().get(server.url("/v1/tasks")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["code"], 401, "{error}");
    assert!(error["message"].is_string(), "{error}");
    let response = post(Some("op-secret")).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        post(Some("admin-secret")).await.unwrap().status(),
        StatusCode::CREATED
    );

    let read = |token: &'static str| {
        client()
            .get(server.url(&format!("/api/v1/runs/{id}")))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(read("view-secret").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        client()
            .get(server.url(&format!("/api/v1/runs/{id}")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Health and the API document are open.
    assert_eq!(
        client()
            .get(server.url("/api/v1/health"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[test]
fn a_server_on_a_public_address_without_tokens_refuses_to_start() {
    let drover = Drover::new();
    let out = drover.run(&["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = support::stderr(&out);
    assert!(
        stderr.contains("without tokens") && stderr.contains("--insecure"),
        "{stderr}"
    );
    let out = drover.run(&["serve", "--listen", "not an address"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(support::stderr(&out).contains("`not an address`"));
    let out = drover
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .env("DROVER_TOKENS", "superuser:x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(support::stderr(&out).contains("unknown role `superuser`"));
}

#[tokio::test]
async fn insecure_allows_a_public_address_without_tokens() {
    let drover = Drover::new();
    let server = Server::start_with(
        &drover,
        &["serve", "--listen", "0.0.0.0:0", "--insecure"],
        &[],
    );
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let response = client()
        .get(format!("http://127.0.0.1:{port}/api/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The dashboard, served under a public address, posts with its own
    // origin; another site's page may not.
    let host = "10.1.2.3";
    let submit = |origin: &'static str| {
        client()
            .post(format!("http://127.0.0.1:{port}/api/v1/runs"))
            .header("host", format!("{host}:{port}"))
            .header("origin", origin.replace("PORT", &port))
            .header("content-type", "application/yaml")
            .body(SMALL)
            .send()
    };
    assert_eq!(
        submit("http://10.1.2.3:PORT").await.unwrap().status(),
        StatusCode::CREATED
    );
    problem(
        submit("http://evil.example").await.unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn https_with_a_certificate_and_key() {
    let drover = Drover::new();
    let (cert, key) = certificate(&drover);
    let server = Server::start(&drover, &["--tls-cert", &cert, "--tls-key", &key]);
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let out = std::process::Command::new("curl")
        .args(["-sS", "--cacert", &cert])
        .arg(server.url("/api/v1/health"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "{}", support::stderr(&out));
    let health: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(health["status"], "ok");
    // A plain-HTTP client gets nowhere.
    let plain = server.url("/api/v1/health").replace("https://", "http://");
    assert!(client().get(plain).send().await.is_err());

    let out = drover.run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        &cert,
        "--tls-key",
        "missing.pem",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(support::stderr(&out).contains("missing.pem"));
}

/// A self-signed certificate for 127.0.0.1 in `drover`'s folder: (cert, key).
fn certificate(drover: &Drover) -> (String, String) {
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
        ])
        .arg(drover.path("key.pem"))
        .arg("-out")
        .arg(drover.path("cert.pem"))
        .output()
        .expect("openssl (tests/setup.sh installs it)");
    assert!(made.status.success(), "{}", support::stderr(&made));
    (
        drover.path("cert.pem").display().to_string(),
        drover.path("key.pem").display().to_string(),
    )
}

#[tokio::test]
async fn https_lets_the_requests_in_progress_finish_at_shutdown() {
    let drover = Drover::new();
    let (cert, key) = certificate(&drover);
    let mut server = Server::start(&drover, &["--tls-cert", &cert, "--tls-key", &key]);
    // A DAG padded to 24 KiB, sent at 8 KiB/s: its upload is under way
    // when the server is told to stop.
    let mut dag = "name: slow\nnodes: {a: {driver: noop}}\n".to_owned();
    while dag.len() < 24 * 1024 {
        dag.push_str("# padding padding padding padding padding padding padding\n");
    }
    std::fs::write(drover.path("slow.yaml"), &dag).unwrap();
    let upload = std::process::Command::new("curl")
        .args(["-sS", "--cacert", &cert, "--limit-rate", "8k"])
        .args(["-H", "Content-Type: application/yaml", "--data-binary"])
        .arg(format!("@{}", drover.path("slow.yaml").display()))
        .arg(server.url("/api/v1/runs"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("curl");
    std::thread::sleep(Duration::from_millis(800));
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    let out = upload.wait_with_output().unwrap();
    // The request was answered in full, not cut off by the process going away.
    assert!(out.status.success(), "curl: {}", support::stderr(&out));
    let run: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert!(run["id"].is_string(), "{run}");
}

#[tokio::test]
async fn https_closes_a_connection_that_never_finishes_its_handshake() {
    use std::io::Read;
    let drover = Drover::new();
    let (cert, key) = certificate(&drover);
    let server = Server::start(&drover, &["--tls-cert", &cert, "--tls-key", &key]);
    let addr = server.base.trim_start_matches("https://").to_owned();
    // Connects and says nothing, as a slow or hostile client would.
    let mut idle = std::net::TcpStream::connect(&addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let began = Instant::now();
    let mut byte = [0u8; 1];
    let read = idle.read(&mut byte);
    assert!(
        matches!(read, Ok(0)) || read.is_err() && began.elapsed() < Duration::from_secs(25),
        "the idle connection was not closed: {read:?} after {:?}",
        began.elapsed()
    );
    let waited = began.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(25),
        "closed after {waited:?}"
    );
    // Others are served meanwhile and after.
    let out = std::process::Command::new("curl")
        .args(["-sS", "--cacert", &cert])
        .arg(server.url("/healthz"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_closed_and_blocks_no_one() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let began = Instant::now();
    // Slowloris: 40 connections that each send a header a byte at a time.
    let slow: Vec<_> = (0..40)
        .map(|_| {
            let addr = addr.clone();
            tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
                let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
                for byte in request.iter().chain(std::iter::repeat(&b'a')) {
                    if stream.write_all(&[*byte]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if began.elapsed() > Duration::from_secs(40) {
                        break;
                    }
                }
                let mut rest = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
                    .await;
                began.elapsed()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Others are answered at once meanwhile.
    for _ in 0..5 {
        let asked = Instant::now();
        let answer = client().get(server.url("/healthz")).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{:?}",
            asked.elapsed()
        );
    }
    for task in slow {
        let closed_after = task.await.unwrap();
        assert!(
            closed_after >= Duration::from_secs(9) && closed_after < Duration::from_secs(20),
            "a slow client was closed after {closed_after:?}, not about 10 s"
        );
    }
}

#[tokio::test]
async fn over_the_connection_cap_a_client_is_told_so_and_let_in_once_one_closes() {
    use std::io::{Read, Write};
    let drover = Drover::new();
    drover.configure("[server]\nmax_connections = 3");
    let server = Server::start(&drover, &[]);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut held: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    // Let the server accept them before the fourth comes.
    std::thread::sleep(Duration::from_millis(300));
    let mut fourth = std::net::TcpStream::connect(&addr).unwrap();
    fourth
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    fourth.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("server.max_connections"), "{answer}");
    held.pop();
    std::thread::sleep(Duration::from_millis(300));
    let ok = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(
        server
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains("connection refused") && line.contains("max_connections")),
        "{:?}",
        server.log.lock().unwrap()
    );
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size: &str) -> Tmpfs {
        assert!(
            // SAFETY: geteuid has no preconditions.
            unsafe { libc::geteuid() } == 0,
            "this test mounts a small tmpfs as the data folder: run it as root"
        );
        std::fs::create_dir_all(at).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("mount");
        assert!(out.status.success(), "mount: {}", support::stderr(&out));
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test]
async fn a_full_disk_is_reported_and_the_store_takes_writes_again_once_space_is_freed() {
    use std::io::Write;
    let drover = Drover::new();
    let _tmpfs = Tmpfs::mount(&drover.data(), "8m");
    let server = Server::start(&drover, &[]);
    let before = submit(&server, SMALL).await;
    wait_end(&server, &before).await;

    // Fill the disk to the last byte.
    let ballast = drover.data().join("ballast");
    let mut file = std::fs::File::create(&ballast).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    while file.write_all(&chunk[..512]).is_ok() {}
    drop(file);

    let mut refused = None;
    for _ in 0..50 {
        let response = post(&server, "/api/v1/runs", SMALL).await;
        if response.status() != StatusCode::CREATED {
            refused = Some(response);
            break;
        }
    }
    let refused = problem(
        refused.expect("a submission to a full disk was accepted 50 times"),
        StatusCode::INSUFFICIENT_STORAGE,
        "about:blank",
    )
    .await;
    assert!(detail(&refused).contains("disk is full"), "{refused}");
    let ready = client().get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let why: Value = ready.json().await.unwrap();
    assert!(detail(&why).contains("disk is full"), "{why}");
    // A read answers, or says why it cannot (redb opens the database again
    // after a failed write, which a full disk may not allow yet).
    let (status, read) = get_json(&server, &format!("/api/v1/runs/{before}")).await;
    assert!(
        status == StatusCode::OK
            || status == StatusCode::SERVICE_UNAVAILABLE && detail(&read).contains("disk is full"),
        "{status}: {read}"
    );

    std::fs::remove_file(&ballast).unwrap();
    let began = Instant::now();
    loop {
        let ready = client().get(server.url("/readyz")).send().await.unwrap();
        if ready.status() == StatusCode::OK {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(15),
            "not ready 15 s after space was freed: {}",
            ready.text().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = submit(&server, SMALL).await;
    let record = wait_end(&server, &after).await;
    assert_eq!(record["state"], "success", "{record}");
    let (_, list) = get_json(&server, "/api/v1/runs?limit=1000").await;
    let ids: Vec<&str> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|run| run["id"].as_str())
        .collect();
    assert!(
        ids.contains(&before.as_str()) && ids.contains(&after.as_str()),
        "{list}"
    );
}

#[tokio::test]
async fn a_run_survives_a_server_killed_mid_run() {
    let drover = Drover::new();
    let mut server = Server::start(&drover, &[]);
    let id = submit(
        &server,
        r#"
name: survivor
nodes:
  first:
    driver: shell
    artifact: 'echo "token=abc"'
    outputs: [token]
  slow:
    driver: shell
    needs: [first]
    # Fails in a workspace an earlier attempt used: a re-run gets a fresh one.
    artifact: 'test -e .started && { echo "stale workspace"; exit 1; }; touch .started; echo "started"; sleep 3; echo "done"'
  last:
    driver: shell
    needs: [slow]
    artifact: 'echo "got $T"'
    env: {T: '${{ nodes.first.outputs.token }}'}
"#,
    )
    .await;
    wait_for(&server, &id, |r| node(r, "slow")["state"] == "running").await;
    // What a watcher saw before the crash.
    let before = sse(&server.base, &id, None, 6).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.kill();

    let server = Server::start(&drover, &[]);
    let record = wait_end(&server, &id).await;
    assert_eq!(record["state"], "success", "{record}");
    let first = node(&record, "first");
    assert_eq!(
        first["attempts"].as_array().unwrap().len(),
        1,
        "not run again"
    );
    // The attempt the crash cut short runs again, with no retry to spare.
    let slow = node(&record, "slow");
    let attempts = slow["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{slow}");
    assert_eq!(attempts[0]["state"], "interrupted");
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .contains("interrupted")
    );
    assert_eq!(attempts[1]["state"], "success");
    assert_eq!(node(&record, "last")["state"], "success");

    // Every event, before and after the crash, once and in order.
    let all = sse(&server.base, &id, None, usize::MAX).await;
    let seqs: Vec<u64> = all.iter().map(|e| e.0).collect();
    assert_eq!(seqs, (1..=all.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        all[..before.len()],
        before[..],
        "events seen before the crash are kept"
    );
    let first_runs = all
        .iter()
        .filter(|e| e.2["node"] == "first" && e.2["state"] == "running")
        .count();
    assert_eq!(first_runs, 1);
    let logs: Vec<&str> = all
        .iter()
        .filter(|e| e.1 == "log" && e.2["node"] == "slow")
        .map(|e| e.2["message"].as_str().unwrap())
        .collect();
    // The interrupted attempt may not have logged before the crash.
    assert!(logs.ends_with(&["started", "done"]), "{logs:?}");
    assert!(
        logs.len() <= 3 && !logs.contains(&"stale workspace"),
        "{logs:?}"
    );
    assert_eq!(all.last().unwrap().1, "finished");
    let log = server.log.lock().unwrap().join("\n");
    assert!(log.contains("carrying on 1 unfinished run"), "{log}");
}

#[tokio::test]
async fn probes_answer_at_the_root_without_a_token_and_each_request_is_logged() {
    let drover = Drover::new();
    let server = Server::start_with(
        &drover,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("DROVER_TOKENS", "viewer:view-secret")],
    );
    let get = |path: &str| client().get(server.url(path)).send();
    let healthz = get("/healthz").await.unwrap();
    assert_eq!(healthz.status(), StatusCode::OK);
    assert_eq!(healthz.text().await.unwrap(), "ok\n");
    let readyz = get("/readyz").await.unwrap();
    assert_eq!(readyz.status(), StatusCode::OK);
    assert_eq!(readyz.text().await.unwrap(), "ready\n");
    // Scrapers get the metrics at the root without a token; the API's
    // copy still wants one.
    let metrics = get("/metrics").await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("drover_submissions_total 0"), "{text}");
    assert_eq!(
        get("/api/v1/metrics").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // One access-log line per answer, by default, with the path (never
    // the query) and the status.
    let _ = get("/api/v1/runs?secret=hush").await.unwrap();
    let logged = || server.log.lock().unwrap().join("\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !logged().contains("status=401") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = logged();
    for (path, status) in [
        ("/healthz", 200),
        ("/readyz", 200),
        ("/metrics", 200),
        ("/api/v1/metrics", 401),
        ("/api/v1/runs", 401),
    ] {
        assert!(
            log.lines().any(|l| l.contains("drover::access")
                && l.contains(&format!("path={path} "))
                && l.contains(&format!("status={status}"))),
            "no access line for {path} ({status}) in:\n{log}"
        );
    }
    assert!(!log.contains("hush"), "the query was logged:\n{log}");
}

#[tokio::test]
async fn metrics_drivers_and_health_report_the_server() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let id = submit(&server, SMALL).await;
    wait_end(&server, &id).await;
    let text = text_of(&server, "/api/v1/metrics").await;
    assert!(
        text.contains("drover_runs_total{state=\"success\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("drover_nodes_total{state=\"success\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("drover_node_duration_seconds_count 3"),
        "{text}"
    );
    assert!(text.contains("drover_queue_depth 0"), "{text}");
    assert!(text.contains("drover_submissions_total 1"), "{text}");

    let (_, drivers) = get_json(&server, "/api/v1/drivers").await;
    let names: Vec<&str> = drivers["drivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    for name in ["noop", "shell", "sleep"] {
        assert!(names.contains(&name), "{drivers}");
    }
    let (_, health) = get_json(&server, "/api/v1/health").await;
    assert_eq!(health["status"], "ok");
    let (status, error) = get_json(&server, "/api/v2/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error["detail"].as_str().unwrap().contains("openapi.json"));
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_each_answers() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let (_, doc) = get_json(&server, "/api/v1/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = Vec::new();
    for (path, methods) in paths {
        for method in methods.as_object().unwrap().keys() {
            operations.push((method.to_uppercase(), path.clone()));
        }
    }
    let expected: Vec<(String, String)> = drover::api::ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    for route in &expected {
        assert!(
            operations.contains(route),
            "{route:?} missing from the document"
        );
    }
    assert_eq!(operations.len(), expected.len());
    for wanted in [
        ("POST", "/api/v1/runs"),
        ("GET", "/api/v1/runs/{id}/events"),
        ("GET", "/api/v1/runs/{id}/nodes/{node}/logs"),
        ("GET", "/api/v1/metrics"),
        ("DELETE", "/v1/tasks/{id}"),
    ] {
        assert!(operations.contains(&(wanted.0.to_owned(), wanted.1.to_owned())));
    }
    // Each documented operation exists on the server: never 404 for an
    // unknown route nor 405.
    for (method, path) in &operations {
        let url = server.url(&path.replace("{id}", "nope").replace("{node}", "x"));
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = client()
            .request(method.clone(), url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_ne!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        if response.status() == StatusCode::NOT_FOUND {
            let body: Value = response.json().await.unwrap();
            let message = body["detail"]
                .as_str()
                .or(body["message"].as_str())
                .unwrap_or("");
            assert!(
                !message.contains("no such endpoint"),
                "{method} {path}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn many_concurrent_submissions_all_run() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let base = server.base.clone();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let base = base.clone();
            tokio::spawn(async move {
                let response = client()
                    .post(format!("{base}/api/v1/runs"))
                    .header(reqwest::header::CONTENT_TYPE, "application/yaml")
                    .body(format!(
                        "name: load{i}\nnodes:\n  a: {{driver: noop}}\n  b: {{driver: noop, needs: [a]}}\n"
                    ))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
                response.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200, "ids are unique");
    for id in &ids {
        assert_eq!(wait_end(&server, id).await["state"], "success");
    }
    let (_, list) = get_json(&server, "/api/v1/runs?limit=1000&state=success").await;
    assert_eq!(list["runs"].as_array().unwrap().len(), 200);
}

#[tokio::test]
async fn mangled_bodies_never_crash_the_server() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let seeds = [
        SMALL.to_owned(),
        gorchestrator_graph("0").to_string(),
        serde_json::to_string_pretty(&gorchestrator_graph("0")).unwrap(),
    ];
    let tokens = [
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\"",
        "\n",
        " ",
        "-",
        "${{",
        "}}",
        "null",
        "~",
        "&a",
        "*a",
        "digraph",
        "needs",
        "driver",
        "\u{feff}",
        "\t",
        "1e999",
        "-1",
        "99999999999999999999",
    ];
    // A fixed pseudo-random sequence: the same mutations on every run.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |below: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % below as u64) as usize
    };
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..300 {
        let mut text = seeds[i % seeds.len()].clone();
        for _ in 0..1 + next(5) {
            let mut at = next(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let token = tokens[next(tokens.len())];
            if next(2) == 0 {
                text.insert_str(at, token);
            } else {
                let mut end = (at + 1 + next(8)).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.replace_range(at..end, "");
            }
        }
        let path = if i % 2 == 0 {
            "/api/v1/runs"
        } else {
            "/v1/tasks"
        };
        let response = post(&server, path, text.clone()).await;
        let status = response.status().as_u16();
        assert!(
            matches!(status, 201 | 202 | 400 | 422),
            "{status} for {path} with:\n{text}"
        );
        let body: Value = response.json().await.expect("every answer is JSON");
        if status >= 400 {
            assert!(
                body["detail"].is_string() || body["message"].is_string(),
                "{body}"
            );
        }
        *seen.entry(status).or_insert(0) += 1;
    }
    assert!(
        seen.len() > 1,
        "the mutations found several outcomes: {seen:?}"
    );
    let (status, _) = get_json(&server, "/api/v1/health").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_run_whose_driver_is_gone_after_a_restart_fails_cleanly() {
    let drover = Drover::new();
    let mut server = Server::start(&drover, &[]);
    let greet = support::test_drivers::folder().join("test_driver_greet.wasm");
    let response = post(&server, "/api/v1/plugins", std::fs::read(greet).unwrap()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let plugin: Value = response.json().await.unwrap();
    let id = submit(
        &server,
        "name: gone\nnodes:\n  nap: {driver: sleep, artifact: 30s}\n  \
         hi: {driver: greet, artifact: x, needs: [nap]}\n",
    )
    .await;
    wait_for(&server, &id, |r| node(r, "nap")["state"] == "running").await;
    server.kill();
    // The component the run was accepted with is lost while drover is down.
    let digest = plugin["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    std::fs::remove_file(drover.data().join(format!("plugins/blobs/{digest}.wasm"))).unwrap();

    let server = Server::start(&drover, &[]);
    let (status, record) = get_json(&server, &format!("/api/v1/runs/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert_eq!(record["state"], "failure");
    let (_, list) = get_json(&server, "/api/v1/runs?state=failure").await;
    assert_eq!(list["runs"][0]["id"], id.as_str());
    // Its events up to the crash are still there, and the stream ends.
    let events = sse(&server.base, &id, None, usize::MAX).await;
    assert!(
        events.iter().any(|e| e.2["state"] == "running"),
        "{events:?}"
    );
}

/// 30 KB of YAML that aliases a 6,000-item list 6,000 times: expanded, 36
/// million values.
fn alias_bomb() -> String {
    let ones = vec!["1"; 6000].join(",");
    let refs = vec!["*a"; 6000].join(",");
    format!("x: &a [{ones}]\ny: [{refs}]\nname: bomb\nnodes: {{a: {{driver: noop}}}}\n")
}

/// A memory figure of a process from /proc, in KiB: `VmRSS` (resident now) or `VmHWM` (the
/// most it has been resident).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap()
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM")
}

#[tokio::test]
async fn a_yaml_alias_bomb_is_refused_at_once_and_the_server_does_not_grow() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let (status, _) = get_json(&server, "/api/v1/health").await;
    assert_eq!(status, StatusCode::OK);
    let before = rss_kib(server.pid());
    let started = Instant::now();
    let response = post(&server, "/api/v1/runs", alias_bomb()).await;
    let took = started.elapsed();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    let problem = &body["problems"][0];
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .contains("YAML aliases (`*name`) expand"),
        "{body}"
    );
    // It answers in milliseconds; expanding the bomb took 20 s and 1 GB.
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let grown_mib = rss_kib(server.pid()).saturating_sub(before) / 1024;
    assert!(grown_mib < 64, "the server grew by {grown_mib} MiB");
    let (_, list) = get_json(&server, "/api/v1/runs").await;
    assert_eq!(list["runs"], json!([]));

    // Written out, the same text is read and validated as usual.
    let plain = "x: [1, 1]\ny: [[1, 1], [1, 1]]\nname: plain\nnodes: {a: {driver: noop}}\n";
    let response = post(&server, "/api/v1/runs", plain.to_owned()).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `x`"),
        "{body}"
    );
    let id = submit(&server, "name: plain\nnodes: {a: {driver: noop}}\n").await;
    assert_eq!(wait_end(&server, &id).await["state"], "success");
}

#[test]
fn drover_run_refuses_a_yaml_alias_bomb_at_once() {
    let drover = Drover::new();
    drover.write("bomb.yaml", &alias_bomb());
    let started = Instant::now();
    let out = drover.run(&["run", "bomb.yaml"]);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_ne!(out.status.code(), Some(0));
    let stderr = support::stderr(&out);
    assert!(
        stderr.contains("bomb.yaml") && stderr.contains("YAML aliases (`*name`) expand"),
        "{stderr}"
    );
}

const SHELL_DAG: &str = "name: csrf\nnodes:\n  pwn: {driver: shell, artifact: 'touch pwned'}\n";

#[tokio::test]
async fn without_tokens_a_web_page_cannot_submit_a_run() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let send = |content_type: Option<&'static str>, origin: Option<&'static str>| {
        let mut request = client().post(server.url("/api/v1/runs")).body(SHELL_DAG);
        if let Some(kind) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, kind);
        }
        if let Some(origin) = origin {
            request = request.header(reqwest::header::ORIGIN, origin);
        }
        request.send()
    };
    // What a page's fetch() or form may send without a CORS preflight.
    let refused = [
        (Some("text/plain"), Some("http://evil.example"), 403),
        (Some("application/yaml"), Some("http://evil.example"), 403),
        (Some("application/yaml"), Some("null"), 403),
        (Some("text/plain;charset=UTF-8"), None, 415),
        (Some("application/x-www-form-urlencoded"), None, 415),
        (Some("multipart/form-data; boundary=x"), None, 415),
        (None, None, 415),
    ];
    for (kind, origin, status) in refused {
        let response = send(kind, origin).await.unwrap();
        assert_eq!(
            response.status().as_u16(),
            status,
            "{kind:?} from {origin:?}"
        );
        let body: Value = response.json().await.unwrap();
        assert!(body["detail"].is_string(), "{body}");
    }
    let (_, list) = get_json(&server, "/api/v1/runs").await;
    assert_eq!(list["runs"], json!([]), "nothing was stored");

    // drover's own clients, and pages served from this machine, get through.
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let yaml = "name: ok\nnodes: {a: {driver: noop}}\n";
    let json = r#"{"name": "ok", "nodes": {"a": {"driver": "noop"}}}"#;
    for (kind, body, origin) in [
        ("application/yaml", yaml, None),
        ("application/json", json, None),
        (
            "text/yaml; charset=utf-8",
            yaml,
            Some(format!("http://localhost:{port}")),
        ),
    ] {
        let mut request = client()
            .post(server.url("/api/v1/runs"))
            .header(reqwest::header::CONTENT_TYPE, kind)
            .body(body);
        if let Some(origin) = origin {
            request = request.header(reqwest::header::ORIGIN, origin);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "{kind}");
    }
}

#[tokio::test]
async fn without_tokens_only_loopback_host_names_are_answered() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let get = |host: String| {
        client()
            .get(server.url("/api/v1/runs"))
            .header(reqwest::header::HOST, host)
            .send()
    };
    // DNS rebinding: a page's own name now points at 127.0.0.1.
    for host in [format!("evil.example:{port}"), "evil.example".to_owned()] {
        let response = get(host.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{host}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("not a loopback name"),
            "{body}"
        );
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "localhost".to_owned(),
    ] {
        assert_eq!(
            get(host.clone()).await.unwrap().status(),
            StatusCode::OK,
            "{host}"
        );
    }
}

/// A gauge of `/metrics`.
async fn gauge(server: &Server, name: &str) -> u64 {
    let text = text_of(server, "/api/v1/metrics").await;
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no gauge {name} in:\n{text}"))
}

async fn text_of(server: &Server, path: &str) -> String {
    let response = client().get(server.url(path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

#[tokio::test]
async fn a_yes_node_is_cut_at_its_log_limit_and_the_server_stays_small() {
    let drover = Drover::new();
    drover.configure(
        "[limits]\nmax_log_lines = 1000\nmax_log_mib = 1\n[server]\nlive_window_events = 500\n",
    );
    let server = Server::start(&drover, &[]);
    let (status, _) = get_json(&server, "/api/v1/health").await;
    assert_eq!(status, StatusCode::OK);
    let before = rss_kib(server.pid());
    let id = submit(
        &server,
        r#"
name: chatty
nodes:
  yes:
    driver: shell
    artifact: 'yes | head -n 300000; echo done >&2'
  wide:
    driver: shell
    artifact: "head -c 3000000 /dev/zero | tr '\\0' x; echo"
  after:
    driver: shell
    needs: [yes]
    artifact: 'echo still here'
"#,
    )
    .await;
    // The window stays at most its size while lines pour in.
    let mut most = 0;
    loop {
        most = most.max(gauge(&server, "drover_live_events").await);
        let (_, record) = get_json(&server, &format!("/api/v1/runs/{id}")).await;
        if record["state"] != "running" {
            assert_eq!(record["state"], "success", "{record}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(most <= 500, "the live window held {most} events");
    let grown_mib = peak_rss_kib(server.pid()).saturating_sub(before) / 1024;
    eprintln!("server RSS {before} KiB before, peak grew by {grown_mib} MiB");

    // `yes`: exactly the first 1000 lines, a marker where it was cut, and
    // the count of what was dropped when the node ended; nothing after.
    let log = text_of(&server, &format!("/api/v1/runs/{id}/nodes/yes/logs")).await;
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines.len(),
        1002,
        "{:?}",
        &lines[lines.len().saturating_sub(5)..]
    );
    assert!(lines[..1000].iter().all(|l| *l == "y"));
    assert!(
        lines[1000].starts_with("drover: log cut after 1000 lines / 1000 bytes (the limit is 1000 lines or 1 MiB per attempt)"),
        "{}",
        lines[1000]
    );
    assert_eq!(
        lines[1001],
        "drover: log cut after 1000 lines / 1000 bytes; 299001 more lines (292 KiB) dropped"
    );
    // The store has what the text showed: 1002 log events of `yes`.
    let events = sse(&server.base, &id, None, usize::MAX).await;
    let of = |node: &str| {
        events
            .iter()
            .filter(|e| e.1 == "log" && e.2["node"] == node)
            .map(|e| e.2["message"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let yes = of("yes");
    assert_eq!(yes.len(), 1002);
    assert_eq!(
        yes.iter()
            .filter(|m| m.starts_with("drover: log cut"))
            .count(),
        2
    );
    // `wide`: one 3 MB line, read in 64 KiB pieces, cut at 1 MiB of text.
    let wide = of("wide");
    let kept: usize = wide
        .iter()
        .filter(|m| !m.starts_with("drover: "))
        .map(String::len)
        .sum();
    assert!(
        kept <= 1024 * 1024 && kept > 1024 * 1024 - 64 * 1024,
        "{kept} bytes in {} lines",
        wide.len()
    );
    assert!(wide.iter().all(|m| m.len() <= 64 * 1024));
    let summary = wide.last().unwrap();
    assert!(
        summary.starts_with("drover: log cut after ") && summary.contains(" MiB) dropped"),
        "{summary}"
    );
    assert_eq!(of("after"), ["still here"]);
}

#[tokio::test]
async fn a_watcher_from_the_start_gets_every_event_after_the_window_moved() {
    let drover = Drover::new();
    drover.configure("[server]\nlive_window_events = 200\n");
    let server = Server::start(&drover, &[]);
    let id = submit(
        &server,
        "name: long\nnodes:\n  talk: {driver: shell, artifact: 'seq 1 5000; sleep 2'}\n  last: {driver: shell, needs: [talk], artifact: 'echo done'}\n",
    )
    .await;
    let numbers: Vec<String> = (1..=5000).map(|i| i.to_string()).collect();
    let expected = format!("{}\n", numbers.join("\n"));
    // While it sleeps, every line is out and the window has moved on.
    let path = format!("/api/v1/runs/{id}/nodes/talk/logs");
    let started = Instant::now();
    loop {
        if text_of(&server, &path).await == expected {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the lines never all came"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gauge(&server, "drover_live_events").await <= 200);
    let (_, record) = get_json(&server, &format!("/api/v1/runs/{id}")).await;
    assert_eq!(
        record["state"], "running",
        "the run must still be live here"
    );

    // From the start, while it runs: the store, then the window, then
    // the events as they come, to the end.
    let follow = {
        let url = server.url(&format!("{path}?follow=true"));
        tokio::spawn(async move {
            client()
                .get(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    let live = sse(&server.base, &id, None, usize::MAX).await;
    let seqs: Vec<u64> = live.iter().map(|e| e.0).collect();
    assert_eq!(
        seqs,
        (1..=live.len() as u64).collect::<Vec<_>>(),
        "no gaps, no repeats"
    );
    assert_eq!(live.last().unwrap().1, "finished");
    let logged: Vec<&str> = live
        .iter()
        .filter(|e| e.1 == "log" && e.2["node"] == "talk")
        .map(|e| e.2["message"].as_str().unwrap())
        .collect();
    assert_eq!(logged, numbers);
    assert_eq!(follow.await.unwrap(), expected);
    // Resuming from an event long gone from the window.
    let rest = sse(&server.base, &id, Some(10), usize::MAX).await;
    assert_eq!(rest, live[10..].to_vec());

    // After the end, from the store alone: the same.
    wait_end(&server, &id).await;
    assert_eq!(sse(&server.base, &id, None, usize::MAX).await, live);
    assert_eq!(text_of(&server, &path).await, expected);
}

/// The ids of the runs `GET /api/v1/runs` lists with `query`, and its `next`.
async fn listed(server: &Server, query: &[(&str, &str)]) -> (Vec<String>, Value) {
    let response = client()
        .get(server.url("/api/v1/runs"))
        .query(query)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let list: Value = response.json().await.unwrap();
    let ids = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, list["next"].clone())
}

/// Checks the run list's filters on `server`, whose store holds no run yet:
/// by name, time, state, together, through pages, and bad values refused.
pub(crate) async fn check_list_filters(server: &Server) {
    let mut ids = Vec::new();
    for name in ["Alpha-build", "beta", "alphabet"] {
        let id = submit(
            server,
            &format!("name: {name}\nnodes:\n  a: {{driver: noop}}\n"),
        )
        .await;
        let record = wait_end(server, &id).await;
        assert_eq!(record["state"], "success", "{record}");
        ids.push(id);
    }
    let [alpha, beta, alphabet] = [&ids[0], &ids[1], &ids[2]].map(String::clone);
    let (_, all) = get_json(server, "/api/v1/runs").await;
    let runs = all["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{all}");
    for run in runs {
        assert_eq!(run["api"], "native", "{run}");
        assert_eq!(run["rerun_of"], Value::Null, "{run}");
        assert!(run["duration_ms"].is_u64(), "{run}");
    }
    let submitted = |id: &str| {
        runs.iter().find(|r| r["id"] == id).unwrap()["submitted_at"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (at_beta, at_alphabet) = (submitted(&beta), submitted(&alphabet));

    // A part of the name, whatever the case; newest first.
    let (found, next) = listed(server, &[("name", "ALPHA")]).await;
    assert_eq!(found, [alphabet.as_str(), alpha.as_str()]);
    assert_eq!(next, Value::Null);
    assert_eq!(
        listed(server, &[("name", "zeta")]).await.0,
        Vec::<String>::new()
    );
    // Pages of matches only: a full page names the next.
    let (found, next) = listed(server, &[("name", "alpha"), ("limit", "1")]).await;
    assert_eq!(found, [alphabet.as_str()]);
    assert_eq!(next, alphabet.as_str());
    let (found, next) = listed(
        server,
        &[("name", "alpha"), ("limit", "1"), ("before", &alphabet)],
    )
    .await;
    assert_eq!(found, [alpha.as_str()]);
    let (found, next) = listed(
        server,
        &[
            ("name", "alpha"),
            ("limit", "1"),
            ("before", next.as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!((found, next), (Vec::<String>::new(), Value::Null));

    // `since` holds its time, `until` does not.
    let (found, _) = listed(server, &[("since", &at_beta)]).await;
    assert_eq!(found, [alphabet.as_str(), beta.as_str()]);
    let (found, _) = listed(server, &[("until", &at_beta)]).await;
    assert_eq!(found, [alpha.as_str()]);
    let (found, _) = listed(server, &[("since", &at_beta), ("until", &at_alphabet)]).await;
    assert_eq!(found, [beta.as_str()]);
    let (found, _) = listed(server, &[("until", "2000-01-01T01:00:00+01:00")]).await;
    assert_eq!(found, Vec::<String>::new());
    let (found, _) = listed(server, &[("since", "2000-01-01T00:00:00Z"), ("name", "b")]).await;
    assert_eq!(found, [alphabet.as_str(), beta.as_str(), alpha.as_str()]);
    // With the state too.
    let (found, _) = listed(server, &[("state", "success"), ("name", "BETA")]).await;
    assert_eq!(found, [beta.as_str()]);
    let (found, _) = listed(server, &[("state", "failure"), ("name", "beta")]).await;
    assert_eq!(found, Vec::<String>::new());

    for (name, value) in [("since", "yesterday"), ("until", "2026-13-01T00:00:00Z")] {
        let response = client()
            .get(server.url("/api/v1/runs"))
            .query(&[(name, value)])
            .send()
            .await
            .unwrap();
        let error = problem(response, StatusCode::BAD_REQUEST, "invalid-parameter").await;
        assert!(
            detail(&error).contains(&format!("`{name}`")) && detail(&error).contains(value),
            "{error}"
        );
    }
}

#[tokio::test]
async fn the_run_list_filters_by_name_and_time_through_pages() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    check_list_filters(&server).await;
}

#[tokio::test]
async fn a_dag_is_validated_as_a_submission_would_be_and_nothing_is_stored() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let (_, drivers) = get_json(&server, "/api/v1/drivers").await;
    let digest = |name: &str| {
        drivers["drivers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap()["digest"]
            .clone()
    };
    let expected = json!({
        "name": "small",
        "nodes": 3,
        "drivers": [{"name": "noop", "digest": digest("noop")},
                    {"name": "shell", "digest": digest("shell")}],
    });
    let response = post(&server, "/api/v1/dags/validate", SMALL).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), expected);
    // The same DAG as JSON, and gorchestrator's format.
    let as_json = serde_json::to_string(&serde_yaml_value(SMALL)).unwrap();
    let response = client()
        .post(server.url("/api/v1/dags/validate"))
        .header("content-type", "application/json")
        .body(as_json)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), expected);
    let response = client()
        .post(server.url("/api/v1/dags/validate"))
        .header("content-type", "application/json")
        .body(gorchestrator_graph("0").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let valid: Value = response.json().await.unwrap();
    assert_eq!(valid["name"], "legacy");
    assert_eq!(valid["nodes"], 3);
    assert_eq!(valid["drivers"], expected["drivers"], "{valid}");

    // Refused with the very problems a submission gets, each located.
    let bad = "name: bad\nnodes:\n  a: {driver: noop, needs: [b]}\n  \
               b: {driver: noop, needs: [a]}\n  c: {driver: nosuchdriver}\n  \
               d: {driver: shell}\n";
    let response = post(&server, "/api/v1/dags/validate", bad).await;
    let checked = problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid-dag").await;
    assert_eq!(checked["instance"], "/api/v1/dags/validate");
    let response = post(&server, "/api/v1/runs", bad).await;
    let submitted = problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid-dag").await;
    assert_eq!(checked["problems"], submitted["problems"]);
    let problems = checked["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 3, "{checked}");
    for problem in problems {
        assert!(
            problem["location"].as_str().is_some_and(|l| !l.is_empty()),
            "{checked}"
        );
        assert!(
            problem["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{checked}"
        );
    }
    let locations: Vec<&str> = problems
        .iter()
        .map(|p| p["location"].as_str().unwrap())
        .collect();
    assert!(locations.contains(&"graph"), "{checked}");
    assert!(locations.contains(&"node `c`, field `driver`"), "{checked}");
    assert!(
        locations.contains(&"node `d`, field `artifact`"),
        "{checked}"
    );
    let response = post(
        &server,
        "/api/v1/dags/validate",
        "name: x\nnodes: [unclosed\n",
    )
    .await;
    let error = problem(response, StatusCode::BAD_REQUEST, "unreadable-body").await;
    assert!(
        error["problems"][0]["location"]
            .as_str()
            .unwrap()
            .starts_with("line "),
        "{error}"
    );
    let response = post(&server, "/api/v1/dags/validate", "").await;
    problem(response, StatusCode::BAD_REQUEST, "unreadable-body").await;
    // Without tokens, a body a web page could send is refused as for a submission.
    let response = client()
        .post(server.url("/api/v1/dags/validate"))
        .header("content-type", "text/plain")
        .body(SMALL)
        .send()
        .await
        .unwrap();
    problem(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    )
    .await;

    let (_, list) = get_json(&server, "/api/v1/runs").await;
    assert_eq!(list["runs"], json!([]), "validating stores nothing");

    // Operators may validate; viewers may not.
    let drover = Drover::new();
    let server = Server::start_with(
        &drover,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("DROVER_TOKENS", "operator:op-secret,viewer:view-secret")],
    );
    let validate = |token: &'static str| {
        client()
            .post(server.url("/api/v1/dags/validate"))
            .bearer_auth(token)
            .header("content-type", "application/yaml")
            .body(SMALL)
            .send()
    };
    let response = validate("view-secret").await.unwrap();
    problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(
        validate("op-secret").await.unwrap().status(),
        StatusCode::OK
    );
}

/// YAML text as the JSON value it means.
fn serde_yaml_value(yaml: &str) -> Value {
    serde_yaml_ng::from_str(yaml).unwrap()
}
