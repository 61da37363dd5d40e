//! What several benchmarks share: their flags, a median, noop DAG nodes, a private
//! `redis-server`, and the address a started `drover serve` prints.

// Each benchmark uses only part of this.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use drover::dag::{Node, NodeIndex};

/// The number after flag `name` on the command line, else `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether flag `name` is on the command line.
pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// The median of `values` (the mean of the middle two for an even count);
/// NaN for none.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[mid],
        _ => (values[mid - 1] + values[mid]) / 2.0,
    }
}

/// The text after flag `name` on the command line.
pub fn text_arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

/// The drover binary to measure: `--drover PATH` (to compare builds in one
/// run), else the one cargo built with the benchmark.
pub fn drover_binary() -> std::path::PathBuf {
    text_arg("--drover")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_drover").to_owned())
        .into()
}

/// Node `n<i>`, a `noop` needing `needs`.
pub fn noop_node(i: usize, needs: Vec<NodeIndex>) -> Node {
    Node {
        needs,
        ..Node::new(format!("n{i}"), "noop")
    }
}

/// `n` noop nodes in 100 layers; each needs two nodes of the layer before.
pub fn layered_nodes(n: usize) -> Vec<Node> {
    let width = (n / 100).max(1);
    (0..n)
        .map(|i| {
            let (layer, pos) = (i / width, i % width);
            let needs = if layer == 0 {
                vec![]
            } else {
                let base = (layer - 1) * width;
                let mut needs = vec![base + pos, base + (pos + 1) % width];
                needs.sort_unstable();
                needs.dedup();
                needs
            };
            noop_node(i, needs)
        })
        .collect()
}

/// A private `redis-server` on a free loopback port, killed when dropped.
pub struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Starts it with no snapshots and, if `aof`, its append-only file on
    /// (`appendfsync everysec`, as a production Redis would run).
    pub fn start(aof: bool) -> Redis {
        let binary = Path::new("/usr/bin/redis-server");
        assert!(
            binary.exists(),
            "redis-server is not installed: run `bash tests/setup.sh`"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("a temporary folder");
        let child = Command::new(binary)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .arg("--dir")
            .arg(dir.path())
            .args(["--save", "", "--daemonize", "no"])
            .args(["--appendonly", if aof { "yes" } else { "no" }])
            .args(["--appendfsync", "everysec"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Redis {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// What a process has used so far: read from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// CPU time, user and system. On a shared machine this says more about
    /// a change than wall time: other tenants slow a run down, they add no
    /// CPU time to it.
    pub cpu: Duration,
    /// Minor page faults: memory touched for the first time, or again
    /// after the allocator gave it back to the system.
    pub faults: u64,
}

impl Usage {
    /// What was used since `before`.
    pub fn since(self, before: Usage) -> Usage {
        Usage {
            cpu: self.cpu.saturating_sub(before.cpu),
            faults: self.faults.saturating_sub(before.faults),
        }
    }
}

/// What process `pid` has used so far; zero if it cannot be read.
pub fn usage(pid: u32) -> Usage {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Usage::default();
    };
    // The command name (field 2) may hold spaces: count from the last `)`,
    // after which field 3 comes first.
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .collect();
    let field = |n: usize| fields.get(n - 3).copied().unwrap_or(0);
    // SAFETY: sysconf reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = u64::try_from(per_second).unwrap_or(100).max(1);
    // Fields 10 (minflt), 14 and 15 (utime, stime).
    Usage {
        cpu: Duration::from_micros((field(14) + field(15)) * 1_000_000 / per_second),
        faults: field(10),
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the piped stderr of a starting `drover serve` until it says where
/// it listens; returns that URL and keeps draining stderr so the server
/// never blocks on it.
pub fn listening_url(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = lines
            .next()
            .and_then(Result::ok)
            .expect("drover serve exited before listening");
        if let Some(at) = line.find("listening on ") {
            break line[at + 13..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    base
}
