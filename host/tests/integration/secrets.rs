//! Secrets against a real OpenBao: the Vault client (KV v1 and v2, token,
//! token file, AppRole, every way a read fails), nodes that get exactly
//! their secrets, a hostile driver that tries to leak them, the checks at
//! submit time, and `drover serve` leaving no value anywhere.

use crate::support;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use drover::config::VaultSource;
use drover::secrets::{AppRoleSettings, REDACTED, SecretRef, Vault, VaultSettings};
use drover::task::{LogLine, NodeStatus, Outcome, Task};
use serde_json::{Value, json};
use support::openbao::{OpenBao, free_port};
use support::runtime::Harness;
use support::server::{Server, client, get_json, post, submit, wait_end};
use support::{Drover, node, stderr};
use tokio_util::sync::CancellationToken;

const VALUE: &str = "pa55-Wörd-7f3c9e";
const OTHER: &str = "other-secret-41d2";

fn settings(address: &str, token: &str) -> VaultSettings {
    VaultSettings {
        address: address.to_owned(),
        token: Some(token.to_owned()),
        token_file: None,
        approle: None,
        timeout: Some("5s".into()),
        ..VaultSettings::default()
    }
}

fn reference(text: &str) -> SecretRef {
    SecretRef::parse(text).unwrap()
}

/// A server with `secret/app` (v2) and `kv/app` (v1).
async fn seeded() -> OpenBao {
    let bao = OpenBao::start().await;
    bao.put_v2(
        "app",
        json!({"password": VALUE, "user": "ci", "port": 5432}),
    )
    .await;
    bao.put_v2("other", json!({"password": OTHER})).await;
    bao.put_v1("app", json!({"token": VALUE})).await;
    bao
}

#[tokio::test]
async fn the_client_reads_kv_v2_and_v1() {
    let bao = seeded().await;
    let vault = Vault::new(&settings(&bao.address, &bao.token)).unwrap();
    let v2 = vault
        .read(&reference("vault:secret/data/app#password"))
        .await;
    assert_eq!(v2.as_deref(), Ok(VALUE));
    let v1 = vault.read(&reference("vault:kv/app#token")).await;
    assert_eq!(v1.as_deref(), Ok(VALUE));
    // Non-string values come as their JSON text.
    let port = vault.read(&reference("vault:secret/data/app#port")).await;
    assert_eq!(port.as_deref(), Ok("5432"));
}

#[tokio::test]
async fn each_failed_read_says_what_failed_and_never_the_value() {
    let bao = seeded().await;
    let vault = Vault::new(&settings(&bao.address, &bao.token)).unwrap();

    let missing = vault
        .read(&reference("vault:secret/data/nothing#password"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("has no secret at `secret/data/nothing`"),
        "{missing}"
    );

    let no_key = vault
        .read(&reference("vault:secret/data/app#pasword"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        no_key.contains("has no key `pasword` (its keys: password, port, user)"),
        "{no_key}"
    );
    assert!(!no_key.contains(VALUE), "{no_key}");

    let missing_v1 = vault
        .read(&reference("vault:kv/nothing#token"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        missing_v1.contains("has no secret at `kv/nothing`"),
        "{missing_v1}"
    );

    let wrong = Vault::new(&settings(&bao.address, "not-a-token")).unwrap();
    let denied = wrong
        .read(&reference("vault:secret/data/app#password"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        denied.contains("refused to read `secret/data/app`"),
        "{denied}"
    );
    assert!(denied.contains("403"), "{denied}");

    let down = format!("http://127.0.0.1:{}", free_port());
    let unreachable = Vault::new(&settings(&down, &bao.token))
        .unwrap()
        .read(&reference("vault:secret/data/app#password"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        unreachable.contains(&format!("cannot reach Vault at {down}")),
        "{unreachable}"
    );
}

#[tokio::test]
async fn a_token_file_and_approle_log_in() {
    let bao = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{}\n", bao.token)).unwrap();
    let from_file = Vault::new(&VaultSettings {
        token: None,
        token_file: Some(token_file.clone()),
        ..settings(&bao.address, "")
    })
    .unwrap();
    assert_eq!(
        from_file
            .read(&reference("vault:secret/data/app#password"))
            .await
            .as_deref(),
        Ok(VALUE)
    );
    // The file is read again each time: a rotated token is picked up.
    std::fs::write(&token_file, "revoked").unwrap();
    let err = from_file
        .read(&reference("vault:secret/data/app#password"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    std::fs::remove_file(&token_file).unwrap();
    let err = from_file
        .read(&reference("vault:secret/data/app#password"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot read vault.token_file"),
        "{err}"
    );

    let (role_id, secret_id) = bao.approle().await;
    let secret_id_file = dir.path().join("secret-id");
    std::fs::write(&secret_id_file, &secret_id).unwrap();
    for approle in [
        AppRoleSettings {
            role_id: role_id.clone(),
            secret_id: Some(secret_id.clone()),
            secret_id_file: None,
            mount: None,
        },
        AppRoleSettings {
            role_id: role_id.clone(),
            secret_id: None,
            secret_id_file: Some(secret_id_file.clone()),
            mount: Some("approle".into()),
        },
    ] {
        let vault = Vault::new(&VaultSettings {
            token: None,
            approle: Some(approle),
            ..settings(&bao.address, "")
        })
        .unwrap();
        for _ in 0..2 {
            assert_eq!(
                vault
                    .read(&reference("vault:kv/app#token"))
                    .await
                    .as_deref(),
                Ok(VALUE)
            );
        }
    }
    let bad = Vault::new(&VaultSettings {
        token: None,
        approle: Some(AppRoleSettings {
            role_id,
            secret_id: Some("wrong".into()),
            secret_id_file: None,
            mount: None,
        }),
        ..settings(&bao.address, "")
    })
    .unwrap();
    let err = bad
        .read(&reference("vault:kv/app#token"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("AppRole login (auth/approle)"), "{err}");
}

#[test]
fn vault_settings_are_checked() {
    let base = settings("http://127.0.0.1:8200", "t");
    let not_pem = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_pem.path(), "not a certificate\n").unwrap();
    for (bad, says) in [
        (
            VaultSettings {
                address: "127.0.0.1:8200".into(),
                ..base.clone()
            },
            "is not a URL",
        ),
        (
            VaultSettings {
                token_file: Some("/x".into()),
                ..base.clone()
            },
            "exactly one of `token`, `token_file` or `approle`",
        ),
        (
            VaultSettings {
                token: None,
                ..base.clone()
            },
            "exactly one of",
        ),
        (
            VaultSettings {
                timeout: Some("soon".into()),
                ..base.clone()
            },
            "timeout",
        ),
        (
            VaultSettings {
                ca_cert: Some("/nonexistent/ca.pem".into()),
                ..base.clone()
            },
            "cannot read the CA certificate file /nonexistent/ca.pem",
        ),
        (
            VaultSettings {
                ca_cert: Some(not_pem.path().to_path_buf()),
                ..base.clone()
            },
            "holds no certificate",
        ),
        (
            VaultSettings {
                address: "vault:8200".into(),
                source: VaultSource::Environment {
                    token: "VAULT_TOKEN",
                },
                ..base.clone()
            },
            "from the environment (VAULT_ADDR, VAULT_TOKEN): address `vault:8200`",
        ),
    ] {
        let err = Vault::new(&bad).err().expect("refused").to_string();
        assert!(err.contains(says), "{err}");
    }
}

// ---- nodes ----

fn probe() -> Arc<[u8]> {
    let path = support::test_drivers::folder().join("test_driver_secret_probe.wasm");
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into()
}

/// A runtime reading secrets from `vault`.
fn harness(vault: Option<VaultSettings>) -> Harness {
    Harness::with_config(|c| c.vault = vault)
}

fn task(artifact: &str, secrets: &[(&str, &str)]) -> Task {
    Task {
        run_id: "test".into(),
        node: "probe".into(),
        attempt: 1,
        artifact: artifact.into(),
        secrets: secrets
            .iter()
            .map(|(n, r)| ((*n).to_owned(), (*r).to_owned()))
            .collect(),
        ..Task::default()
    }
}

/// Everything a node left: its outcome and every log line, as one text.
fn everything(outcome: &Outcome, logs: &[LogLine]) -> String {
    format!(
        "{}\n{}",
        serde_json::to_string(outcome).unwrap(),
        logs.iter()
            .map(|l| l.message.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    )
}

#[tokio::test]
async fn a_hostile_driver_leaks_no_value_anywhere() {
    let bao = seeded().await;
    let h = harness(Some(settings(&bao.address, &bao.token)));
    let driver = h.runtime.load(probe()).await.unwrap();
    let secrets = [
        ("DB_PASS", "vault:secret/data/app#password"),
        ("TOKEN", "vault:kv/app#token"),
    ];
    for artifact in ["leak", "fail"] {
        let (outcome, logs) = h.run(&driver, task(artifact, &secrets)).await;
        let all = everything(&outcome, &logs);
        assert!(!all.contains(VALUE), "the value leaked ({artifact}): {all}");
        // It did try: every way shows the redaction instead.
        assert_eq!(
            outcome.outputs.get("names").map(String::as_str),
            Some("DB_PASS,TOKEN")
        );
        assert_eq!(
            outcome.outputs.get("value-DB_PASS").map(String::as_str),
            Some("it is [redacted]!")
        );
        assert!(outcome.outputs.contains_key("[redacted]"), "{outcome:?}");
        for said in [
            "DB_PASS is [redacted]",
            "stdout says [redacted]",
            "stderr says [redacted]",
            "proc out [redacted]",
            "proc err [redacted]",
        ] {
            assert!(
                logs.iter().any(|l| l.message == said),
                "no `{said}` in {all}"
            );
        }
        if artifact == "fail" {
            assert_eq!(outcome.status, NodeStatus::Failure);
            assert_eq!(
                outcome.message,
                "leaking [redacted] and [redacted] in my message"
            );
        } else {
            assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
        }
    }
}

#[tokio::test]
async fn a_driver_gets_exactly_the_nodes_secrets() {
    let bao = seeded().await;
    let h = harness(Some(settings(&bao.address, &bao.token)));
    let driver = h.runtime.load(probe()).await.unwrap();
    let (outcome, _) = h
        .run(
            &driver,
            task(
                "ask:OTHER",
                &[("DB_PASS", "vault:secret/data/app#password")],
            ),
        )
        .await;
    assert_eq!(outcome.outputs["names"], "DB_PASS");
    let asked = &outcome.outputs["asked"];
    assert!(
        asked.starts_with(
            "not granted: the node was not granted a secret `OTHER` (it has: DB_PASS)"
        ),
        "{asked}"
    );
    // A node without secrets has none at all.
    let (outcome, _) = h.run(&driver, task("ask:DB_PASS", &[])).await;
    assert_eq!(outcome.outputs["names"], "");
    assert!(
        outcome.outputs["asked"].contains("(it has: none)"),
        "{outcome:?}"
    );
    assert!(!everything(&outcome, &[]).contains(OTHER));
}

#[tokio::test]
async fn a_node_whose_secret_cannot_be_read_fails_naming_it() {
    let bao = seeded().await;
    let h = harness(Some(settings(&bao.address, &bao.token)));
    let driver = h.runtime.load(probe()).await.unwrap();
    let (outcome, logs) = h
        .run(
            &driver,
            task(
                "leak",
                &[
                    ("DB_PASS", "vault:secret/data/app#password"),
                    ("GONE", "vault:secret/data/app#nope"),
                ],
            ),
        )
        .await;
    assert_eq!(outcome.status, NodeStatus::Failure);
    assert!(
        outcome
            .message
            .starts_with("secret `GONE` (vault:secret/data/app#nope): the secret at"),
        "{}",
        outcome.message
    );
    assert!(logs.is_empty(), "the driver must not run: {logs:?}");
    assert!(!outcome.message.contains(VALUE));

    // Vault down.
    let down = harness(Some(settings(
        &format!("http://127.0.0.1:{}", free_port()),
        &bao.token,
    )));
    let driver = down.runtime.load(probe()).await.unwrap();
    let (outcome, _) = down
        .run(
            &driver,
            task("leak", &[("DB_PASS", "vault:secret/data/app#password")]),
        )
        .await;
    assert_eq!(outcome.status, NodeStatus::Failure);
    assert!(
        outcome.message.starts_with(
            "secret `DB_PASS` (vault:secret/data/app#password): cannot reach Vault at"
        ),
        "{}",
        outcome.message
    );

    // The node's deadline bounds the read: an address that never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", silent.local_addr().unwrap());
    let h = harness(Some(VaultSettings {
        timeout: Some("60s".into()),
        ..settings(&address, "t")
    }));
    let driver = h.runtime.load(probe()).await.unwrap();
    let mut slow = task("leak", &[("DB_PASS", "vault:secret/data/app#password")]);
    slow.deadline = Some(std::time::SystemTime::now() + Duration::from_millis(300));
    let started = std::time::Instant::now();
    let (outcome, _) = h.run(&driver, slow).await;
    assert_eq!(outcome.status, NodeStatus::Timeout, "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // So does its cancel.
    let cancel = CancellationToken::new();
    let later = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        later.cancel();
    });
    let started = std::time::Instant::now();
    let (outcome, _) = h
        .run_with(
            &driver,
            task("leak", &[("DB_PASS", "vault:secret/data/app#password")]),
            cancel,
        )
        .await;
    assert_eq!(outcome.status, NodeStatus::Canceled, "{outcome:?}");
    assert_eq!(outcome.message, "canceled while reading the node's secrets");
    assert!(started.elapsed() < Duration::from_secs(10));
}

// ---- submit time and end to end ----

fn config_with_vault(drover: &Drover, bao: &OpenBao, extra: &str) {
    let config = std::fs::read_to_string(drover.path("drover.toml")).unwrap();
    std::fs::write(
        drover.path("drover.toml"),
        format!(
            "{config}{extra}\n[vault]\naddress = {:?}\ntoken = {:?}\n",
            bao.address, bao.token
        ),
    )
    .unwrap();
}

/// A DAG whose shell node prints its secret every way; it checks the value
/// by its sha256, so that the DAG text does not hold it.
fn shell_dag() -> String {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(VALUE.as_bytes()));
    SHELL_DAG.replace("DIGEST", &digest)
}

const SHELL_DAG: &str = r#"
name: with-secrets
nodes:
  deploy:
    driver: shell
    secrets: {DB_PASS: "vault:secret/data/app#password"}
    outputs: [seen]
    artifact: |
      echo "the password is $DB_PASS"
      echo "on stderr $DB_PASS" >&2
      echo "seen=$DB_PASS"
      echo "$DB_PASS=as a key" >> "$DROVER_OUTPUT"
      test "$(printf %s "$DB_PASS" | sha256sum | cut -d' ' -f1)" = DIGEST
"#;

#[tokio::test]
async fn drover_run_refuses_bad_secrets_at_submit_naming_node_and_field() {
    let drover = Drover::new();
    drover.write(
        "bad.yaml",
        r#"
name: bad
nodes:
  a:
    driver: shell
    artifact: 'true'
    secrets: {"2FA": "vault:secret/data/app#x", OK: "secret/data/app#x", DROVER_X: "vault:s#k"}
  b:
    driver: noop
    secrets: {TOKEN: "vault:kv/app#token"}
"#,
    );
    let out = drover.run(&["run", "bad.yaml"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    for says in [
        "node `a`, field `secrets.2FA`: invalid secret name `2FA`",
        "node `a`, field `secrets.OK`: `secret/data/app#x` is not a secret reference",
        "node `a`, field `secrets.DROVER_X`: invalid secret name `DROVER_X`",
        "node `a`, field `secrets.DROVER_X`: `vault:s#k` names only a mount",
    ] {
        assert!(text.contains(says), "no `{says}` in {text}");
    }

    // Syntax right: the driver, the policy and the missing [vault].
    drover.write(
        "grants.yaml",
        r#"
name: grants
nodes:
  a: {driver: shell, artifact: 'true', secrets: {TOKEN: "vault:kv/app#token"}}
  b: {driver: noop, secrets: {TOKEN: "vault:kv/app#token"}}
"#,
    );
    let out = drover.run(&["run", "grants.yaml"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    for says in [
        "node `a`, field `secrets`: no Vault is configured",
        "node `b`, field `secrets`: driver `noop` does not read secrets",
    ] {
        assert!(text.contains(says), "no `{says}` in {text}");
    }

    let bao = OpenBao::start().await;
    config_with_vault(&drover, &bao, "[drivers.shell]\nsecrets = false\n");
    let out = drover.run(&["run", "grants.yaml"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(
            "node `a`, field `secrets`: the operator's policy does not allow secrets for driver `shell`"
        ),
        "{text}"
    );
    assert!(!text.contains("no Vault is configured"), "{text}");
}

#[tokio::test]
async fn drover_run_gives_the_shell_its_secret_and_shows_it_nowhere() {
    let bao = seeded().await;
    let drover = Drover::new();
    config_with_vault(&drover, &bao, "");
    drover.write("dag.yaml", &shell_dag());
    let out = drover.run(&["run", "dag.yaml", "--output", "json"]);
    let (stdout, text) = (support::stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{text}");
    let record: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(node(&record, "deploy")["outputs"]["seen"], "[redacted]");
    assert!(text.contains("the password is [redacted]"), "{text}");
    assert!(
        !stdout.contains(VALUE) && !text.contains(VALUE),
        "{stdout}\n{text}"
    );
}

/// With no `[vault]` section, the `VAULT_*` variables configure Vault as they do the `vault`
/// and `bao` CLIs: `VAULT_TOKEN`, else `VAULT_TOKEN_FILE`, else `~/.vault-token`.
#[tokio::test]
async fn drover_run_takes_vault_addr_and_vault_token_from_the_environment() {
    let bao = seeded().await;
    let drover = Drover::new();
    drover.write("dag.yaml", &shell_dag());
    let run = |env: &[(&str, &str)]| {
        let mut cmd = drover.command(&["run", "dag.yaml", "--output", "json"]);
        cmd.envs(env.iter().copied());
        let out = cmd.output().unwrap();
        let (stdout, text) = (support::stdout(&out), stderr(&out));
        assert!(
            !stdout.contains(VALUE) && !text.contains(VALUE),
            "{stdout}\n{text}"
        );
        (out.status.code(), stdout, text)
    };
    let (code, stdout, text) = run(&[("VAULT_ADDR", &bao.address), ("VAULT_TOKEN", &bao.token)]);
    assert_eq!(code, Some(0), "{stdout}\n{text}");
    let record: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(node(&record, "deploy")["outputs"]["seen"], "[redacted]");

    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{}\n", bao.token)).unwrap();
    let token_file = token_file.display().to_string();
    let (code, stdout, text) = run(&[
        ("VAULT_ADDR", &bao.address),
        ("VAULT_TOKEN_FILE", &token_file),
    ]);
    assert_eq!(code, Some(0), "{stdout}\n{text}");

    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join(".vault-token"), &bao.token).unwrap();
    let home = home.path().display().to_string();
    let (code, stdout, text) = run(&[("VAULT_ADDR", &bao.address), ("HOME", &home)]);
    assert_eq!(code, Some(0), "{stdout}\n{text}");

    // A token the server refuses fails the node, naming the Vault it asked.
    let (code, stdout, text) = run(&[("VAULT_ADDR", &bao.address), ("VAULT_TOKEN", "wrong")]);
    assert_eq!(code, Some(1), "{stdout}\n{text}");
    assert!(
        stdout.contains(&format!("Vault at {}", bao.address)) && stdout.contains("403"),
        "{stdout}"
    );
}

/// A `[vault]` section wins over the environment: here the variables name a server that is
/// not there, and the node still gets its secret from the configured one.
#[tokio::test]
async fn a_vault_section_wins_over_the_environment() {
    let bao = seeded().await;
    let drover = Drover::new();
    config_with_vault(&drover, &bao, "");
    drover.write("dag.yaml", &shell_dag());
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let out = drover
        .command(&["run", "dag.yaml", "--output", "json"])
        .env("VAULT_ADDR", &nowhere)
        .env("VAULT_TOKEN", "not-the-token")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        support::stdout(&out),
        stderr(&out)
    );
}

#[tokio::test]
async fn drover_serve_leaves_no_value_in_any_answer_log_or_file() {
    let bao = seeded().await;
    let drover = Drover::new();
    config_with_vault(&drover, &bao, "");
    let server = debug_server(&drover);
    let id = submit(&server, &shell_dag()).await;
    let record = wait_end(&server, &id).await;
    assert_eq!(record["state"], "success", "{record}");
    assert_eq!(node(&record, "deploy")["outputs"]["seen"], "[redacted]");

    let logs = shows_no_value(&drover, server, &id, "deploy").await;
    assert!(logs.contains("the password is [redacted]"), "{logs}");
    assert!(logs.contains("on stderr [redacted]"), "{logs}");
}

/// Checks that no answer of the server about run `id` (record, runs list,
/// events, the node's log, gorchestrator's views), nor the server's own log,
/// nor any file in its data folder holds the value; stops the server.
/// Returns the node's log.
async fn shows_no_value(drover: &Drover, server: Server, id: &str, node: &str) -> String {
    let mut seen = Vec::new();
    for path in [
        format!("/api/v1/runs/{id}"),
        "/api/v1/runs".to_owned(),
        format!("/api/v1/runs/{id}/nodes/{node}/logs"),
        format!("/api/v1/runs/{id}/events"),
        format!("/v1/tasks/{id}"),
        "/v1/tasks".to_owned(),
        "/api/v1/metrics".to_owned(),
    ] {
        let text = client()
            .get(server.url(&path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!text.contains(VALUE), "{path} holds the value: {text}");
        seen.push(text);
    }
    // The server's own log, at debug level.
    let server_log = server.log.lock().unwrap().join("\n");
    assert!(server_log.contains("listening on"), "{server_log}");
    assert!(
        !server_log.contains(VALUE),
        "the server's log holds the value: {server_log}"
    );
    drop(server);

    // Every file it stored.
    let mut files = Vec::new();
    walk(&drover.data(), &mut files);
    assert!(!files.is_empty());
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()),
            "{} holds the value",
            file.display()
        );
    }
    seen.swap_remove(2)
}

fn debug_server(drover: &Drover) -> Server {
    Server::start_with(
        drover,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("DROVER_LOG", "debug")],
    )
}

async fn publish_probe(server: &Server) -> (reqwest::StatusCode, Value) {
    let response = post(
        server,
        "/api/v1/plugins?name=secret-probe&version=0.1.0",
        probe().to_vec(),
    )
    .await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

const PROBE_DAG: &str = r#"
name: hostile
nodes:
  probe:
    driver: secret-probe
    artifact: leak
    secrets: {DB_PASS: "vault:secret/data/app#password", TOKEN: "vault:kv/app#token"}
  failing:
    driver: secret-probe
    artifact: fail
    secrets: {DB_PASS: "vault:secret/data/app#password", TOKEN: "vault:kv/app#token"}
"#;

#[tokio::test]
async fn a_published_hostile_driver_leaks_nothing_through_the_server() {
    let bao = seeded().await;
    let drover = Drover::new();
    config_with_vault(
        &drover,
        &bao,
        "[drivers.secret-probe]\nexec = [\"sh\"]\nsecrets = true\n",
    );
    let server = debug_server(&drover);
    let (status, answer) = publish_probe(&server).await;
    assert!(status.is_success(), "{status} {answer}");
    let id = submit(&server, PROBE_DAG).await;
    let record = wait_end(&server, &id).await;
    assert_eq!(record["state"], "failure", "{record}");
    let probe = node(&record, "probe");
    assert_eq!(probe["outputs"]["names"], "DB_PASS,TOKEN", "{record}");
    assert_eq!(probe["outputs"]["value-TOKEN"], "it is [redacted]!");
    assert_eq!(
        node(&record, "failing")["error"],
        "leaking [redacted] and [redacted] in my message",
        "{record}"
    );
    let logs = shows_no_value(&drover, server, &id, "probe").await;
    for said in [
        "TOKEN is [redacted]",
        "stderr says [redacted]",
        "proc err [redacted]",
    ] {
        assert!(logs.contains(said), "no `{said}` in {logs}");
    }
}

#[tokio::test]
async fn the_server_refuses_secrets_without_policy_or_vault_and_stores_nothing() {
    // The policy does not let the plugin read secrets: it cannot be published.
    let drover = Drover::new();
    drover.configure("[drivers.secret-probe]\nexec = [\"sh\"]");
    let server = Server::start(&drover, &[]);
    let (status, answer) = publish_probe(&server).await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "{answer}");
    assert!(answer.to_string().contains("secrets"), "{answer}");
    drop(server);

    // Allowed, but no [vault]: a DAG asking for secrets gets 422.
    let drover = Drover::new();
    drover.configure("[drivers.secret-probe]\nexec = [\"sh\"]\nsecrets = true");
    let server = Server::start(&drover, &[]);
    let (status, answer) = publish_probe(&server).await;
    assert!(status.is_success(), "{status} {answer}");
    let response = post(&server, "/api/v1/runs", PROBE_DAG).await;
    assert_eq!(response.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    let answer: Value = response.json().await.unwrap();
    let problems = answer["problems"].to_string();
    assert!(
        problems.contains("node `probe`, field `secrets`")
            && problems.contains("no Vault is configured"),
        "{answer}"
    );
    let (_, runs) = get_json(&server, "/api/v1/runs").await;
    assert_eq!(runs["runs"], json!([]), "{runs}");
}

fn walk(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, found);
        } else {
            found.push(path);
        }
    }
}

#[tokio::test]
async fn drover_driver_run_takes_secrets_and_hides_them() {
    let bao = seeded().await;
    let drover = Drover::new();
    config_with_vault(&drover, &bao, "");
    let out = drover.run(&[
        "driver",
        "run",
        "shell",
        "--secret",
        "DB_PASS=vault:secret/data/app#password",
        "--artifact",
        "echo \"pass: $DB_PASS\"",
    ]);
    let all = format!("{}{}", support::stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("pass: [redacted]"), "{all}");
    assert!(!all.contains(VALUE), "{all}");

    let out = drover.run(&[
        "driver",
        "run",
        "noop",
        "--secret",
        "db-pass=vault:kv/app#token",
    ]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("invalid secret name `db-pass`"), "{text}");
    assert!(
        text.contains("driver `noop` does not read secrets"),
        "{text}"
    );
}

// ---- which paths, and redaction of split and encoded values ----

/// Appends `paths = …` to the `[vault]` section (the config file's last).
fn allow_paths(drover: &Drover, patterns: &[&str]) {
    drover.configure(&format!("paths = {patterns:?}"));
}

#[tokio::test]
async fn vaults_own_paths_are_refused_at_submit_naming_the_node() {
    let bao = seeded().await;
    let drover = Drover::new();
    config_with_vault(&drover, &bao, "");
    // Even an allowlist that matches everything does not open them.
    allow_paths(&drover, &["*"]);
    drover.write(
        "own.yaml",
        r#"
name: own
nodes:
  steal:
    driver: shell
    artifact: 'echo "$TOKEN" | rev'
    secrets: {TOKEN: "vault:auth/token/lookup-self#id"}
  mounts:
    driver: shell
    artifact: 'true'
    secrets: {M: "vault:sys/mounts/secret#type", C: "vault:cubbyhole/x#k"}
"#,
    );
    let out = drover.run(&["run", "own.yaml"]);
    let text = format!("{}{}", support::stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(2), "{text}");
    for says in [
        "node `steal`, field `secrets.TOKEN`: `vault:auth/token/lookup-self#id` is refused: \
         paths under `auth/` are Vault's own",
        "node `mounts`, field `secrets.M`: `vault:sys/mounts/secret#type` is refused",
        "node `mounts`, field `secrets.C`: `vault:cubbyhole/x#k` is refused",
    ] {
        assert!(text.contains(says), "no `{says}` in {text}");
    }
    assert!(!text.contains(&bao.token), "{text}");

    // The server refuses it the same way and stores nothing.
    let server = Server::start(&drover, &[]);
    let response = post(
        &server,
        "/api/v1/runs",
        std::fs::read_to_string(drover.path("own.yaml")).unwrap(),
    )
    .await;
    assert_eq!(response.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    let answer: Value = response.json().await.unwrap();
    let problems = answer["problems"].to_string();
    assert!(
        problems.contains("node `steal`, field `secrets.TOKEN`")
            && problems.contains("lookup-self#id` is refused"),
        "{answer}"
    );
    let (_, runs) = get_json(&server, "/api/v1/runs").await;
    assert_eq!(runs["runs"], json!([]), "{runs}");
}

#[tokio::test]
async fn the_vault_client_refuses_vaults_own_paths_and_non_kv_mounts() {
    let bao = seeded().await;
    bao.api(
        reqwest::Method::POST,
        "sys/mounts/transit",
        json!({"type": "transit"}),
    )
    .await;
    bao.api(reqwest::Method::POST, "transit/keys/k1", json!({}))
        .await;
    let vault = Vault::new(&settings(&bao.address, &bao.token)).unwrap();
    // A reference that slipped past submit (a run carried on, a drone).
    let own = vault
        .read(&reference("vault:auth/token/lookup-self#id"))
        .await
        .unwrap_err()
        .to_string();
    assert!(own.contains("never given to nodes"), "{own}");
    assert!(!own.contains(&bao.token), "{own}");
    // Not Vault's own, but not KV: refused before it is read.
    let transit = vault
        .read(&reference("vault:transit/keys/k1#type"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        transit.contains("its mount is a `transit` engine, not KV"),
        "{transit}"
    );
    // KV still reads, twice (the second from the mount check's memory).
    for _ in 0..2 {
        assert_eq!(
            vault
                .read(&reference("vault:secret/data/app#password"))
                .await
                .as_deref(),
            Ok(VALUE)
        );
    }
}

#[tokio::test]
async fn the_paths_allowlist_admits_only_what_it_matches() {
    let bao = seeded().await;
    let drover = Drover::new();
    config_with_vault(&drover, &bao, "");
    allow_paths(&drover, &["secret/data/a*", "kv/ci/*"]);
    drover.write("dag.yaml", &shell_dag());
    let out = drover.run(&["run", "dag.yaml", "--output", "json"]);
    let (stdout, text) = (support::stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{text}");
    assert!(text.contains("the password is [redacted]"), "{text}");

    drover.write(
        "other.yaml",
        r#"
name: other
nodes:
  fine: {driver: shell, artifact: 'true', secrets: {P: "vault:secret/data/app#password"}}
  elsewhere: {driver: shell, artifact: 'true', secrets: {P: "vault:secret/data/other#password"}}
  v1: {driver: shell, artifact: 'true', secrets: {T: "vault:kv/app#token"}}
"#,
    );
    let out = drover.run(&["run", "other.yaml"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    for says in [
        "node `elsewhere`, field `secrets.P`: `vault:secret/data/other#password` is refused: \
         `secret/data/other` is not allowed by drover's [vault] paths (secret/data/a*, kv/ci/*)",
        "node `v1`, field `secrets.T`: `vault:kv/app#token` is refused",
    ] {
        assert!(text.contains(says), "no `{says}` in {text}");
    }
    assert!(!text.contains("node `fine`"), "{text}");
    assert!(!text.contains(OTHER), "{text}");
}

/// A script that prints its secret across the 64 KiB split of a long line
/// and in encoded forms, each line labelled `L:<form>`.
const ENCODED_DAG: &str = r#"
name: encoded
nodes:
  leak:
    driver: shell
    secrets: {DB_PASS: "vault:secret/data/app#password", PIN: "vault:secret/data/app#pin"}
    artifact: |
      printf 'long%65527s' '' | tr ' ' x; printf '%s after\n' "$DB_PASS"
      echo "L:b64 $(printf %s "$DB_PASS" | base64 -w0)"
      echo "L:b64url $(printf %s "$DB_PASS" | base64 -w0 | tr '+/' '-_' | tr -d =)"
      for pre in '' x xy; do
        echo "L:b64in[$pre] $(printf '%s%s tail' "$pre" "$DB_PASS" | base64 -w0)"
      done
      echo "L:hex $(printf %s "$DB_PASS" | od -An -tx1 | tr -d ' \n')"
      echo "L:HEX $(printf %s "$DB_PASS" | od -An -tx1 | tr -d ' \n' | tr a-f A-F)"
      echo "L:url $(printf %s "$DB_PASS" | sed 's/ö/%C3%B6/')"
      echo "L:allurl $(printf %s "$DB_PASS" | od -An -tx1 | tr -d ' \n' | sed 's/../%&/g')"
      echo "L:pin is $PIN"
"#;

#[tokio::test]
async fn a_value_split_across_a_long_line_or_encoded_is_redacted() {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let bao = OpenBao::start().await;
    bao.put_v2("app", json!({"password": VALUE, "pin": "4821"}))
        .await;
    let drover = Drover::new();
    config_with_vault(&drover, &bao, "");
    drover.write("dag.yaml", ENCODED_DAG);
    let out = drover.run(&["run", "dag.yaml", "--output", "json"]);
    let (stdout, text) = (support::stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{text}");

    // The split falls 5 bytes into the value: neither piece shows a part.
    assert!(text.contains("[redacted] after"), "{text}");
    assert!(!text.contains(&VALUE[5..]), "the value's tail leaked");
    assert!(
        !text.contains(&format!("x{}", &VALUE[..5])),
        "its head leaked"
    );

    let shown = |label: &str| -> String {
        text.lines()
            .find(|l| l.contains(&format!("L:{label} ")))
            .unwrap_or_else(|| panic!("no `{label}` line in {text}"))
            .to_owned()
    };
    let bytes = VALUE.as_bytes();
    let percent: String = bytes.iter().map(|b| format!("%{b:02x}")).collect();
    for (label, encoded) in [
        ("b64", STANDARD.encode(bytes)),
        ("b64url", URL_SAFE_NO_PAD.encode(bytes)),
        ("b64in[]", STANDARD.encode(format!("{VALUE} tail"))),
        ("b64in[x]", STANDARD.encode(format!("x{VALUE} tail"))),
        ("b64in[xy]", STANDARD.encode(format!("xy{VALUE} tail"))),
        ("hex", hex::encode(bytes)),
        ("HEX", hex::encode_upper(bytes)),
        ("url", VALUE.replace('ö', "%C3%B6")),
        ("allurl", percent),
    ] {
        let line = shown(label);
        assert!(line.contains(REDACTED), "{label} not redacted: {line}");
        assert!(!line.contains(&encoded), "{label} leaked: {line}");
    }

    // A 4-byte secret: hidden, with a warning naming it (not its value).
    assert!(shown("pin is").contains("pin is [redacted]"), "{text}");
    assert!(
        text.contains("secret `PIN` is only 4 bytes long"),
        "no warning in {text}"
    );
    assert!(!stdout.contains(VALUE) && !text.contains(VALUE));
}
