//! Real `drover drone` processes and leaders (`drover serve --redis`) for
//! the distributed tests, and the wait for drones to report in.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use super::Drover;
use super::redis::Redis;
use super::server::{Server, get_json};

/// A `drover drone` process; killed when dropped.
pub struct Drone {
    child: Child,
    _home: Drover,
}

impl Drone {
    pub fn start(redis: &Redis, extra: &[&str]) -> Drone {
        let home = Drover::new();
        let url = redis.url();
        let mut args = vec!["drone", "--redis", url.as_str()];
        args.extend(extra);
        let log = std::fs::File::create(home.path("drone.log")).unwrap();
        let child = home
            .command(&args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start drover drone");
        Drone { child, _home: home }
    }

    /// What it wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._home.path("drone.log")).unwrap_or_default()
    }

    /// kill -9.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Drone {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A leader in its own folder.
pub fn leader(redis: &Redis, home: &Drover) -> Server {
    Server::start(home, &["--redis", &redis.url()])
}

/// Waits until the leader lists `count` live drones; returns the list.
pub async fn wait_drones(server: &Server, count: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let (status, body) = get_json(server, "/api/v1/drones").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let alive: Vec<Value> = body["drones"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|d| d["alive"] == true)
            .collect();
        if alive.len() >= count {
            return alive;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{count} drones never came up: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
