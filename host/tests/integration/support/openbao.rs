//! A real OpenBao (Vault-compatible) server in dev mode on a free loopback
//! port, for the secrets tests, with the HTTP calls that set it up.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A running `bao server -dev`; killed when dropped.
pub struct OpenBao {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The root token.
    pub token: String,
    dir: tempfile::TempDir,
}

/// The `bao` binary that `tests/setup.sh` installs.
pub fn bao_binary() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    let bao = PathBuf::from(home).join(".cache/drover/tools/openbao-venv/bin/bao");
    assert!(
        bao.exists(),
        "OpenBao is not installed ({} is missing): run `bash tests/setup.sh`",
        bao.display()
    );
    bao
}

/// A loopback port nothing listens on (just now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl OpenBao {
    /// Starts a dev server (KV v2 at `secret/`) and waits until it is healthy.
    pub async fn start() -> OpenBao {
        let bao = bao_binary();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let token = format!("root-{}", std::process::id());
        let log = std::fs::File::create(dir.path().join("bao.log")).unwrap();
        let child = Command::new(bao)
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={token}"),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            // The dev server writes a token helper file to $HOME.
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start bao server -dev");
        let bao = OpenBao {
            child,
            address: format!("http://127.0.0.1:{port}"),
            token,
            dir,
        };
        bao.wait_healthy().await;
        bao
    }

    async fn wait_healthy(&self) {
        let start = Instant::now();
        loop {
            let healthy = reqwest::Client::new()
                .get(format!("{}/v1/sys/health", self.address))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if healthy {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "OpenBao did not become healthy: {}",
                std::fs::read_to_string(self.dir.path().join("bao.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One API call with the root token; panics unless it succeeds.
    pub async fn api(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = reqwest::Client::new()
            .request(method.clone(), format!("{}/v1/{path}", self.address))
            .header("X-Vault-Token", &self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Writes a KV v2 secret at `secret/<path>`.
    pub async fn put_v2(&self, path: &str, data: Value) {
        self.api(
            reqwest::Method::POST,
            &format!("secret/data/{path}"),
            json!({ "data": data }),
        )
        .await;
    }

    /// Mounts KV v1 at `kv/` (once) and writes `kv/<path>`.
    pub async fn put_v1(&self, path: &str, data: Value) {
        let mounts = self
            .api(reqwest::Method::GET, "sys/mounts", Value::Null)
            .await;
        if mounts.get("kv/").is_none() {
            self.api(
                reqwest::Method::POST,
                "sys/mounts/kv",
                json!({"type": "kv", "options": {"version": "1"}}),
            )
            .await;
        }
        self.api(reqwest::Method::POST, &format!("kv/{path}"), data)
            .await;
    }

    /// Enables AppRole with a role that may read both KV mounts; returns
    /// (role_id, secret_id).
    pub async fn approle(&self) -> (String, String) {
        use reqwest::Method;
        self.api(Method::POST, "sys/auth/approle", json!({"type": "approle"}))
            .await;
        self.api(
            Method::PUT,
            "sys/policies/acl/drover-read",
            json!({"policy": "path \"secret/data/*\" { capabilities = [\"read\"] }\npath \"kv/*\" { capabilities = [\"read\"] }"}),
        )
        .await;
        self.api(
            Method::POST,
            "auth/approle/role/drover",
            json!({"token_policies": ["drover-read"], "token_ttl": "1h"}),
        )
        .await;
        let role = self
            .api(Method::GET, "auth/approle/role/drover/role-id", Value::Null)
            .await;
        let secret = self
            .api(
                Method::POST,
                "auth/approle/role/drover/secret-id",
                json!({}),
            )
            .await;
        (
            role["data"]["role_id"].as_str().unwrap().to_owned(),
            secret["data"]["secret_id"].as_str().unwrap().to_owned(),
        )
    }

    /// Stops the server (a later request finds nothing listening).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.stop();
    }
}
