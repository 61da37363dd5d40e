//! A running `drover serve` for the end-to-end tests, and the HTTP calls
//! they make to it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;

use super::Drover;

/// A running `drover serve` on a free loopback port.
pub struct Server {
    child: Child,
    pub base: String,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `drover serve` in `drover`'s folder with `extra` arguments and
    /// waits until it listens.
    pub fn start(drover: &Drover, extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend(extra);
        Server::start_with(drover, &args, &[])
    }

    pub fn start_with(drover: &Drover, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = drover.command(args);
        cmd.stderr(Stdio::piped()).stdout(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start drover serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = log.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(at) = line.find("listening on ") {
                    let url = line[at + 13..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_owned();
                    let _ = tx.send(url);
                    sent = true;
                }
                keep.lock().unwrap().push(line);
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("drover serve did not start: {:?}", log.lock().unwrap()));
        Server { child, base, log }
    }

    /// The server process's id, to read its /proc entries.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops it as an operator would (SIGTERM) and waits until it exits.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().expect("wait for drover serve")
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// The Content-Type drover's clients send to `path`: a server without
/// tokens refuses a body without one.
pub fn content_type(path: &str) -> &'static str {
    if path.starts_with("/api/v1/plugins") {
        "application/wasm"
    } else if path.starts_with("/v1/") {
        "application/json"
    } else {
        "application/yaml"
    }
}

/// POSTs `body` to `path`, typed as [`content_type`] says.
pub async fn post(
    server: &Server,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    client()
        .post(server.url(path))
        .header(reqwest::header::CONTENT_TYPE, content_type(path))
        .body(body)
        .send()
        .await
        .unwrap()
}

pub async fn submit(server: &Server, body: &str) -> String {
    let response = post(server, "/api/v1/runs", body.to_owned()).await;
    let status = response.status();
    let json: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{json}");
    json["id"].as_str().unwrap().to_owned()
}

pub async fn get_json(server: &Server, path: &str) -> (StatusCode, Value) {
    let response = client().get(server.url(path)).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The body of an error answer of drover's API, after checking what every
/// RFC 9457 problem has: `status` (also the answer's), the media type, the
/// `type` (`slug` under https://drover.dev/problems/, or `about:blank`), its
/// `title`, and a `detail`.
pub async fn problem(response: reqwest::Response, status: StatusCode, slug: &str) -> Value {
    let answered = response.status();
    let media_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(answered, status, "{body}");
    assert_eq!(media_type, "application/problem+json", "{body}");
    assert_eq!(body["status"], status.as_u16(), "{body}");
    let title = if slug == "about:blank" {
        assert_eq!(body["type"], "about:blank", "{body}");
        status.canonical_reason().unwrap_or_default().to_owned()
    } else {
        let uri = format!("https://drover.dev/problems/{slug}");
        assert_eq!(body["type"], uri.as_str(), "{body}");
        let kind = drover::api::problem::Kind::TYPED
            .into_iter()
            .find(|kind| kind.uri() == uri)
            .unwrap_or_else(|| panic!("{uri} is not a documented type"));
        assert_eq!(kind.status(), status, "{body}");
        kind.title().to_owned()
    };
    assert_eq!(body["title"], title.as_str(), "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}

/// The `detail` of a problem.
pub fn detail(problem: &Value) -> &str {
    problem["detail"].as_str().unwrap_or_default()
}

/// Polls the run until `done` holds of its record.
pub async fn wait_for(server: &Server, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, record) = get_json(server, &format!("/api/v1/runs/{id}")).await;
        if status == StatusCode::OK && done(&record) {
            return record;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "run {id} never got there: {record}\nthe server's log:\n{}",
            server.log.lock().unwrap().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn wait_end(server: &Server, id: &str) -> Value {
    wait_for(server, id, |r| r["state"] != "running").await
}

/// Reads an SSE stream to its end (or `limit` events): (id, event, data).
pub async fn sse(
    base: &str,
    id: &str,
    last_event_id: Option<u64>,
    limit: usize,
) -> Vec<(u64, String, Value)> {
    let mut request = client().get(format!("{base}/api/v1/runs/{id}/events"));
    if let Some(last) = last_event_id {
        request = request.header("Last-Event-ID", last.to_string());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    while let Some(chunk) = stream.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut seq, mut kind, mut data) = (None, String::new(), Value::Null);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    seq = v.parse().ok();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    kind = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(v).unwrap();
                }
            }
            if let Some(seq) = seq {
                events.push((seq, kind, data));
                if events.len() >= limit {
                    return events;
                }
            }
        }
    }
    events
}
