//! The `drover` binary as a user runs it, for the end-to-end tests: a
//! temporary folder with a config whose compile cache is shared by every
//! test (drivers compile once), a data folder, and the files a test writes.

// Each test binary uses only part of this harness.
#![allow(dead_code)]

pub mod docker;
pub mod drone;
pub mod openbao;
pub mod redis;
pub mod runtime;
pub mod sandbox;
pub mod server;
pub mod test_drivers;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};

use serde_json::Value;

/// The environment variables drover reads for Vault when its config has no `[vault]`.
pub const VAULT_VARS: [&str; 5] = [
    "VAULT_ADDR",
    "VAULT_TOKEN",
    "VAULT_TOKEN_FILE",
    "VAULT_NAMESPACE",
    "VAULT_CACERT",
];

/// The drover binary: cargo's, or `DROVER_TEST_BIN` where the tests run from a copy (as an
/// unprivileged user, who may not reach cargo's target folder: `tests/rootless.sh`).
pub fn drover_bin() -> PathBuf {
    std::env::var_os("DROVER_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_drover")))
}

/// Where compiled drivers are kept between tests: cargo's temporary folder, or
/// `DROVER_TEST_CACHE` (see [`drover_bin`]).
pub fn compiled_cache() -> PathBuf {
    std::env::var_os("DROVER_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("drover-compiled"))
}

pub struct Drover {
    pub dir: tempfile::TempDir,
}

impl Drover {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cache = compiled_cache();
        std::fs::write(
            dir.path().join("drover.toml"),
            format!("cache_dir = {:?}\n", cache.display().to_string()),
        )
        .unwrap();
        Drover { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Adds `toml` (and a newline) to the end of the folder's config file.
    pub fn configure(&self, toml: &str) {
        let path = self.path("drover.toml");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(toml);
        text.push('\n');
        std::fs::write(&path, text).unwrap();
    }

    /// Writes a file into the folder; returns its name (relative, as a user
    /// would type it from the folder).
    pub fn write(&self, name: &str, text: &str) -> String {
        std::fs::write(self.path(name), text).unwrap();
        name.to_owned()
    }

    pub fn data(&self) -> PathBuf {
        self.path("data")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(drover_bin());
        cmd.args(args)
            .arg("--config")
            .arg(self.path("drover.toml"))
            .arg("--data")
            .arg(self.data())
            .current_dir(self.dir.path())
            .env_remove("DROVER_LOG")
            .stdin(Stdio::null());
        // Without a [vault] section drover reads these: a developer's own must not count.
        for var in VAULT_VARS {
            cmd.env_remove(var);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs `args` as given; returns the exit code and stdout as one JSON value.
    pub fn json(&self, args: &[&str]) -> (i32, Value) {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON object ({e}): {stdout}\nstderr: {}",
                stderr(&out)
            )
        });
        (out.status.code().unwrap(), value)
    }

    /// Runs with `--output json` added; returns the exit code and the record.
    pub fn record(&self, args: &[&str]) -> (i32, Value) {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        self.json(&all)
    }

    /// Starts `args` with stdout and stderr piped, to watch its log while it
    /// runs (in `--output json` mode the log is on stderr).
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let logs = BufReader::new(child.stderr.take().unwrap());
        Running {
            child,
            logs,
            seen: String::new(),
        }
    }

    /// Every file called `name` under the data folder's `runs/`.
    pub fn files_in_runs(&self, name: &str) -> Vec<PathBuf> {
        fn walk(dir: &Path, name: &str, found: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, name, found);
                } else if path.file_name().is_some_and(|n| n == name) {
                    found.push(path);
                }
            }
        }
        let mut found = Vec::new();
        walk(&self.data().join("runs"), name, &mut found);
        found
    }
}

/// A `drover` process started by [`Drover::spawn`].
pub struct Running {
    child: Child,
    logs: BufReader<ChildStderr>,
    /// Every log line read so far.
    pub seen: String,
}

impl Running {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Reads the log until a line contains `text`; fails the test if drover
    /// ends first.
    pub fn wait_for_log(&mut self, text: &str) {
        let mut line = String::new();
        while !line.contains(text) {
            line.clear();
            assert!(
                self.logs.read_line(&mut line).unwrap() > 0,
                "drover ended before logging {text:?}: {}",
                self.seen
            );
            self.seen.push_str(&line);
        }
    }

    /// Sends SIGINT, as Ctrl-C on a terminal does.
    pub fn interrupt(&self) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
    }

    /// Waits for drover to end. Both pipes are drained at once, so neither
    /// can fill up and stall drover.
    pub fn finish(self) -> Ended {
        let mut logs = self.logs;
        let rest = std::thread::spawn(move || {
            let mut rest = String::new();
            logs.read_to_string(&mut rest).unwrap();
            rest
        });
        let mut child = self.child;
        let mut stdout = String::new();
        if let Some(mut pipe) = child.stdout.take() {
            pipe.read_to_string(&mut stdout).unwrap();
        }
        let rest = rest.join().unwrap();
        let code = child.wait().unwrap().code();
        Ended {
            code,
            stdout,
            log: self.seen + &rest,
            rest,
        }
    }
}

/// How a [`Running`] drover ended.
pub struct Ended {
    pub code: Option<i32>,
    pub stdout: String,
    /// The log after the last line [`Running::wait_for_log`] read.
    pub rest: String,
    /// The whole log.
    pub log: String,
}

/// The record of the node called `name` in a run record (JSON).
pub fn node<'a>(record: &'a Value, name: &str) -> &'a Value {
    record["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no node `{name}` in {record:#}"))
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
