//! Hostile test driver `greedy`: takes more of drover than a node may hold (descriptors, outcome size) and forges drover's log lines.

use drover_sdk::{Capabilities, Description, Driver, Outcome, Problem, Task};

/// A log line that ends itself and forges one of drover's own after it.
const FORGED: &str =
    "innocent\n2099-01-01T00:00:00.000000Z ERROR drover::api::auth: forged by greedy\r\x1b[2K";

/// Grabs what it can; what it grabs is chosen by `args[0]`.
struct Greedy;

impl Driver for Greedy {
    fn describe() -> Description {
        Description::new("greedy", env!("CARGO_PKG_VERSION"))
            .with_summary("Test driver: holds files open, returns huge outcomes, forges log lines.")
            .with_args(
                "`args[0]`: `files` (open files in the workspace until opening fails, holding \
                 them all), `outcome` (return an outcome of `args[1]` bytes), `message` (fail \
                 with a message of `args[1]` bytes), `forge` (log a line forging one of \
                 drover's, also while validated), `fill` (write `args[1]` files of `args[2]` \
                 bytes each into the workspace, then wait 10 s).",
            )
            .with_outputs("`opened`: how many files were open when opening failed.")
            .with_capabilities(Capabilities::none().with_workspace())
    }

    fn validate(task: &Task) -> Vec<Problem> {
        if task.args.first().map(String::as_str) == Some("forge") {
            drover_sdk::log::error(FORGED);
        }
        Vec::new()
    }

    fn run(task: Task) -> Outcome {
        let size = || {
            task.args
                .get(1)
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0)
        };
        match task.args.first().map(String::as_str) {
            Some("files") => hold_files(),
            Some("outcome") => Outcome::success().with_output("big", "x".repeat(size())),
            Some("message") => Outcome::failure("m".repeat(size())),
            Some("fill") => fill(
                size(),
                task.args
                    .get(2)
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0),
            ),
            Some("forge") => {
                drover_sdk::log::error(FORGED);
                Outcome::success()
            }
            _ => Outcome::failure("args[0] must be files, outcome, message, fill or forge"),
        }
    }
}

/// Opens files until opening fails, holds them 2 s and reports how many it
/// held; a host that traps it instead never sees the report.
fn hold_files() -> Outcome {
    if let Err(e) = std::fs::write("held", b"held\n") {
        return Outcome::failure(format!("cannot write `held`: {e}"));
    }
    let mut held = Vec::new();
    loop {
        match std::fs::File::open("held") {
            Ok(file) => held.push(file),
            Err(e) => {
                // Holds them a while, so that nodes beside it feel it.
                std::thread::sleep(std::time::Duration::from_secs(2));
                return Outcome::failure(format!("opening failed after {}: {e}", held.len()))
                    .with_output("opened", held.len().to_string());
            }
        }
    }
}

/// Writes `files` files of `bytes` bytes each through WASI, then waits: a host that keeps
/// workspaces within a quota stops it before it reports.
fn fill(files: usize, bytes: usize) -> Outcome {
    let block = vec![b'x'; bytes];
    for i in 0..files {
        if let Err(e) = std::fs::write(format!("fill-{i}"), &block) {
            return Outcome::failure(format!("writing file {i} failed: {e}"));
        }
    }
    std::thread::sleep(std::time::Duration::from_secs(10));
    Outcome::success().with_output("written", files.to_string())
}

drover_sdk::export_driver!(Greedy);
