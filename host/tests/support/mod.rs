//! The `drover` binary as a user runs it, for the end-to-end tests: a
//! temporary folder with a config whose compile cache is shared by every
//! test (drivers compile once), a data folder, and the files a test writes.

// Each test binary uses only part of this harness.
#![allow(dead_code)]

pub mod docker;
pub mod openbao;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub struct Drover {
    pub dir: tempfile::TempDir,
}

impl Drover {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("drover-compiled");
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
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_drover"));
        cmd.args(args)
            .arg("--config")
            .arg(self.path("drover.toml"))
            .arg("--data")
            .arg(self.data())
            .current_dir(self.dir.path())
            .env_remove("DROVER_LOG")
            .stdin(Stdio::null());
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
