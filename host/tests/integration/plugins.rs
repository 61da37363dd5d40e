//! The plugin registry end to end: real components pushed to a real
//! `drover serve` over HTTP (and with the `drover plugin` CLI), then used by
//! DAGs at once, without a restart.

use crate::support;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use support::server::{Server, client, get_json, post, submit, wait_end};
use support::{Drover, node, stderr, stdout};

/// A test driver component built from `tests/drivers`.
fn component(file: &str) -> PathBuf {
    support::test_drivers::folder().join(file)
}

fn greet(version: u8) -> Vec<u8> {
    let file = match version {
        1 => "test_driver_greet.wasm",
        _ => "test_driver_greet_v2.wasm",
    };
    std::fs::read(component(file)).unwrap()
}

/// Uploads a component; returns the status and the JSON answer.
async fn upload(server: &Server, query: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    let response = post(server, &format!("/api/v1/plugins{query}"), bytes).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn delete(server: &Server, path: &str) -> reqwest::Response {
    client().delete(server.url(path)).send().await.unwrap()
}

fn error_of(answer: &Value) -> &str {
    answer["detail"].as_str().unwrap_or_default()
}

async fn run_to_end(server: &Server, dag: &str) -> Value {
    let id = submit(server, dag).await;
    wait_end(server, &id).await
}

#[tokio::test]
async fn uploads_that_are_not_drover_drivers_are_refused_with_the_reason() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);

    let (status, answer) = upload(&server, "", b"#!/bin/sh\necho hi\n".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        error_of(&answer).contains("not a WebAssembly file"),
        "{answer}"
    );

    // The smallest valid core module: magic and version 1.
    let (status, answer) = upload(&server, "", b"\0asm\x01\0\0\0".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(error_of(&answer).contains("core WebAssembly module, not a component"));

    // A real component, of the wasi:cli/command world.
    let command = std::fs::read(component("test-driver-command.wasm")).unwrap();
    let (status, answer) = upload(&server, "", command).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        error_of(&answer).contains("not a drover driver")
            && error_of(&answer).contains("drover:driver/driver@0.1.0"),
        "{answer}"
    );

    // A driver whose own description disagrees with the upload.
    let (status, answer) = upload(&server, "?version=9.9.9", greet(1)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        error_of(&answer).contains("version 1.0.0, not 9.9.9"),
        "{answer}"
    );
    let (status, answer) = upload(&server, "?name=hello", greet(1)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(error_of(&answer).contains("describes itself as `greet`"));
    let (status, answer) = upload(&server, "?version=one", greet(1)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(error_of(&answer).contains("not semver"), "{answer}");

    let (status, answer) = upload(&server, "", Vec::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");

    // Nothing of all that was stored.
    let (_, list) = get_json(&server, "/api/v1/plugins").await;
    let names: Vec<&str> = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["ansible", "docker", "noop", "npm-test", "shell", "sleep"]
    );
    let blobs = drover.data().join("plugins/blobs");
    assert!(
        std::fs::read_dir(&blobs).map_or(0, |d| d.count()) == 0,
        "no component stored"
    );

    // The good one, then the very same again: not an error.
    let (status, first) = upload(&server, "?name=greet&version=1.0.0", greet(1)).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["world"]["implements"], "drover:driver/driver@0.1.0");
    assert!(
        first["world"]["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "drover:driver/types@0.1.0")
    );
    let (status, again) = upload(&server, "", greet(1)).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["digest"], first["digest"]);
}

#[tokio::test]
async fn a_pushed_plugin_is_usable_at_once_and_runs_keep_the_digest_they_were_accepted_with() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);

    let started = Instant::now();
    let out = drover.run(&[
        "plugin",
        "push",
        component("test_driver_greet.wasm").to_str().unwrap(),
        "--name",
        "greet",
        "--version",
        "1.0.0",
        "--server",
        &server.base,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("published greet 1.0.0 (sha256:"));
    let record = run_to_end(
        &server,
        "name: hi\nnodes:\n  a: {driver: greet, artifact: ann}\n",
    )
    .await;
    eprintln!("push to first run finished: {:?}", started.elapsed());
    let a = node(&record, "a");
    assert_eq!(a["outputs"]["version"], "1.0.0", "{record}");
    let (_, v1) = get_json(&server, "/api/v1/plugins/greet").await;
    let v1_digest = v1["versions"][0]["digest"].as_str().unwrap().to_owned();
    assert_eq!(a["driver_digest"], v1_digest.as_str());

    // A run accepted now, whose greet node starts later.
    let slow = submit(
        &server,
        "name: slow\nnodes:\n  wait: {driver: sleep, artifact: 5s}\n  \
         g: {driver: greet, artifact: bob, needs: [wait]}\n",
    )
    .await;
    let (status, v2) = upload(&server, "", greet(2)).await;
    assert_eq!(status, StatusCode::CREATED, "{v2}");
    // Withdrawing 1.0.0 now neither stops the run nor takes its component.
    let response = delete(&server, "/api/v1/plugins/greet/1.0.0").await;
    assert_eq!(response.status(), StatusCode::OK);
    let removed: Value = response.json().await.unwrap();
    assert_eq!(removed["in_use"], true, "{removed}");
    let record = wait_end(&server, &slow).await;
    assert_eq!(record["state"], "success", "{record}");
    assert_eq!(node(&record, "g")["outputs"]["version"], "1.0.0");
    assert_eq!(node(&record, "g")["driver_digest"], v1_digest.as_str());
    // Once the run ended, the withdrawn component went.
    let blob = drover.data().join(format!(
        "plugins/blobs/{}.wasm",
        v1_digest.trim_start_matches("sha256:")
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while blob.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!blob.exists(), "the withdrawn component was deleted");

    // New runs get 2.0.0; requirements and digests choose.
    upload(&server, "", greet(1)).await;
    let record = run_to_end(
        &server,
        &format!(
            "name: pick\nnodes:\n  latest: {{driver: greet, artifact: x}}\n  \
             one: {{driver: 'greet@1', artifact: x}}\n  \
             exact: {{driver: 'greet@=2.0.0', artifact: x}}\n  \
             digest: {{driver: 'greet@{v1_digest}', artifact: x}}\n"
        ),
    )
    .await;
    assert_eq!(record["state"], "success", "{record}");
    for (name, version) in [
        ("latest", "2.0.0"),
        ("one", "1.0.0"),
        ("exact", "2.0.0"),
        ("digest", "1.0.0"),
    ] {
        assert_eq!(node(&record, name)["outputs"]["version"], version, "{name}");
    }

    // Names, requirements and digests that match nothing are refused by node.
    // Nor may a DAG posted to the server load a file from the server's disk.
    let response = post(
        &server,
        "/api/v1/runs",
        format!(
            "name: bad\nnodes:\n  a: {{driver: 'greet@^3', artifact: x}}\n  \
             b: {{driver: 'greet@banana', artifact: x}}\n  c: {{driver: nope, artifact: x}}\n  \
             d: {{driver: {:?}, artifact: x}}\n",
            component("test_driver_greet.wasm").display().to_string()
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let answer: Value = response.json().await.unwrap();
    let problems = answer["problems"].to_string();
    assert!(
        problems.contains("no version of `greet` matches"),
        "{problems}"
    );
    assert!(
        problems.contains("`@banana` is neither a semver requirement"),
        "{problems}"
    );
    assert!(problems.contains("unknown driver `nope`"), "{problems}");
    assert!(
        problems.contains("node `d`, field `driver`")
            && problems.contains("is a file path; a DAG submitted to the server names published"),
        "{problems}"
    );

    // Built-in drivers cannot be removed; unknown versions are 404.
    assert_eq!(
        delete(&server, "/api/v1/plugins/shell/0.1.0")
            .await
            .status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        delete(&server, "/api/v1/plugins/greet/7.0.0")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn published_plugins_survive_a_restart_and_the_cli_lists_and_inspects_them() {
    let drover = Drover::new();
    let mut server = Server::start(&drover, &[]);
    let (status, _) = upload(&server, "", greet(2)).await;
    assert_eq!(status, StatusCode::CREATED);
    server.kill();
    let server = Server::start(&drover, &[]);
    let record = run_to_end(
        &server,
        "name: hi\nnodes:\n  a: {driver: greet, artifact: ann}\n",
    )
    .await;
    assert_eq!(
        node(&record, "a")["outputs"]["version"],
        "2.0.0",
        "{record}"
    );

    let out = drover.run(&["plugin", "ls", "--server", &server.base]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = stdout(&out);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("greet") && l.contains("2.0.0"))
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("shell") && l.contains("built-in"))
    );

    let out = drover.run(&["plugin", "inspect", "greet@2.0.0", "--server", &server.base]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    for expected in [
        "digest:       sha256:",
        "implements:   drover:driver/driver@0.1.0",
        "drover:driver/types@0.1.0",
        "capabilities: exec [none]",
    ] {
        assert!(shown.contains(expected), "{expected} in {shown}");
    }
    let out = drover.run(&["plugin", "inspect", "greet@5.0.0", "--server", &server.base]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no version 5.0.0"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn plugins_may_ask_for_no_more_than_the_policy_allows_and_nodes_narrow_further() {
    let forbidden = || std::fs::read(component("test_driver_forbidden_exec.wasm")).unwrap();
    let strict = Drover::new();
    let server = Server::start(&strict, &[]);
    let (status, answer) = upload(&server, "", forbidden()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(
        error_of(&answer).contains("asks for exec of `sh`")
            && error_of(&answer).contains("[drivers.forbidden-exec]"),
        "{answer}"
    );
    drop(server);

    let allowing = Drover::new();
    allowing.configure("[drivers.forbidden-exec]\nexec = [\"sh\"]\n");
    let server = Server::start(&allowing, &[]);
    let (status, answer) = upload(&server, "", forbidden()).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");

    // A node can take programs away from its driver, never add any.
    let record = run_to_end(
        &server,
        "name: narrow\nnodes:\n  a: {driver: shell, artifact: 'echo hi', grants: {exec: []}}\n",
    )
    .await;
    assert_eq!(record["state"], "failure", "{record}");
    assert!(
        node(&record, "a")["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not on the allowlist"),
        "{record}"
    );
    let response = post(
        &server,
        "/api/v1/runs",
        "name: widen\nnodes:\n  a: {driver: shell, artifact: 'echo hi', grants: {exec: [sh, curl]}}\n",
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let answer: Value = response.json().await.unwrap();
    assert!(
        answer["problems"]
            .to_string()
            .contains("is not granted `curl`"),
        "{answer}"
    );
}

#[tokio::test]
async fn with_signatures_required_only_plugins_signed_by_a_trusted_key_are_accepted() {
    let drover = Drover::new();
    let key = drover.path("signing.key");
    let out = drover.run(&["plugin", "keygen", "--out", key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let public = stdout(&out).trim().to_owned();
    let other = drover.path("other.key");
    assert!(
        drover
            .run(&["plugin", "keygen", "--out", other.to_str().unwrap()])
            .status
            .success()
    );
    drover.configure(&format!(
        "[plugins]\nrequire_signatures = true\ntrusted_keys = [\"{public}\"]\n"
    ));
    let server = Server::start(&drover, &[]);

    let (status, answer) = upload(&server, "", greet(1)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(
        error_of(&answer).contains("requires signed plugins"),
        "{answer}"
    );

    // Signed by a key the server does not trust.
    let file = drover.path("greet.wasm");
    std::fs::write(&file, greet(1)).unwrap();
    let out = drover.run(&[
        "plugin",
        "sign",
        file.to_str().unwrap(),
        "--key",
        other.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let push = |drover: &Drover| {
        drover.run(&[
            "plugin",
            "push",
            file.to_str().unwrap(),
            "--server",
            &server.base,
        ])
    };
    let out = push(&drover);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("does not verify against any trusted key"),
        "{}",
        stderr(&out)
    );

    // A signature that is not one.
    std::fs::write(drover.path("greet.wasm.sig"), "bm90IGEgc2lnbmF0dXJl\n").unwrap();
    let out = push(&drover);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad signature"), "{}", stderr(&out));

    let out = drover.run(&[
        "plugin",
        "sign",
        file.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = push(&drover);
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, shown) = get_json(&server, "/api/v1/plugins/greet").await;
    assert_eq!(shown["versions"][0]["signed_by"], public.as_str());
}

#[tokio::test]
async fn the_plugins_folder_is_loaded_at_start_and_watched() {
    let drover = Drover::new();
    let folder = drover.path("plugins");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("greet-1.wasm"), greet(1)).unwrap();
    std::fs::write(folder.join("broken.wasm"), b"not wasm").unwrap();
    drover.configure(&format!(
        "[plugins]\ndir = {:?}\n",
        folder.display().to_string()
    ));
    let server = Server::start(&drover, &[]);
    let versions = |server: &Server| {
        let server_url = server.url("/api/v1/plugins");
        async move {
            let list: Value = client()
                .get(server_url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            list["plugins"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "greet")
                .map(|p| p["versions"].clone())
                .unwrap_or(Value::Null)
        }
    };
    assert_eq!(versions(&server).await, serde_json::json!(["1.0.0"]));
    assert!(
        server
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("broken.wasm") && l.contains("not a WebAssembly file")),
        "the broken file is reported: {:?}",
        server.log.lock().unwrap()
    );

    // Dropped into the folder while the server runs: usable without a restart.
    std::fs::write(folder.join("greet-2.wasm.tmp"), greet(2)).unwrap();
    std::fs::rename(folder.join("greet-2.wasm.tmp"), folder.join("greet-2.wasm")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while versions(&server).await != serde_json::json!(["1.0.0", "2.0.0"]) {
        assert!(Instant::now() < deadline, "greet 2.0.0 never appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let record = run_to_end(
        &server,
        "name: hi\nnodes:\n  a: {driver: greet, artifact: x}\n",
    )
    .await;
    assert_eq!(
        node(&record, "a")["outputs"]["version"],
        "2.0.0",
        "{record}"
    );

    // Removed from the folder: withdrawn.
    std::fs::remove_file(folder.join("greet-1.wasm")).unwrap();
    while versions(&server).await != serde_json::json!(["2.0.0"]) {
        assert!(Instant::now() < deadline, "greet 1.0.0 was never withdrawn");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A folder plugin is removed through the folder, not the API.
    assert_eq!(
        delete(&server, "/api/v1/plugins/greet/2.0.0")
            .await
            .status(),
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn only_admins_publish_and_remove_plugins() {
    let drover = Drover::new();
    let server = Server::start_with(
        &drover,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("DROVER_TOKENS", "admin:root-token,operator:op-token")],
    );
    let push = |token: &'static str| {
        client()
            .post(server.url("/api/v1/plugins"))
            .bearer_auth(token)
            .body(greet(1))
            .send()
    };
    assert_eq!(
        push("op-token").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        push("root-token").await.unwrap().status(),
        StatusCode::CREATED
    );
    let response = client()
        .delete(server.url("/api/v1/plugins/greet/1.0.0"))
        .bearer_auth("op-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn uploads_over_the_plugin_cap_get_413() {
    let drover = Drover::new();
    drover.configure("[plugins]\nmax_upload_mib = 1\n");
    let server = Server::start(&drover, &[]);
    let mut big = b"\0asm\x0d\0\x01\0".to_vec();
    big.resize(2 * 1024 * 1024, 0);
    let (status, _) = upload(&server, "", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Under the cap, the plugin cap and not the (smaller) DAG cap applies.
    let (status, answer) = upload(&server, "", greet(1)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

#[tokio::test]
async fn a_run_carried_on_after_a_crash_keeps_the_components_it_was_accepted_with() {
    let drover = Drover::new();
    let mut server = Server::start(&drover, &[]);
    let (status, v1) = upload(&server, "", greet(1)).await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    let id = submit(
        &server,
        // The interrupted attempt of `wait` runs again after the crash.
        "name: slow\nnodes:\n  wait: {driver: sleep, artifact: 3s}\n  \
         g: {driver: greet, artifact: bob, needs: [wait]}\n",
    )
    .await;
    let (status, _) = upload(&server, "", greet(2)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        delete(&server, "/api/v1/plugins/greet/1.0.0")
            .await
            .status(),
        StatusCode::OK
    );
    server.kill();

    let server = Server::start(&drover, &[]);
    let record = wait_end(&server, &id).await;
    assert_eq!(record["state"], "success", "{record}");
    let g = node(&record, "g");
    assert_eq!(g["outputs"]["version"], "1.0.0", "{record}");
    assert_eq!(g["driver_digest"], v1["digest"]);
}

#[test]
fn a_server_with_a_malformed_trusted_key_refuses_to_start() {
    let drover = Drover::new();
    drover.configure("[plugins]\ntrusted_keys = [\"not-a-key\"]\n");
    let out = drover.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("plugins.trusted_keys[0]: a trusted key is not base64"),
        "{}",
        stderr(&out)
    );
}
