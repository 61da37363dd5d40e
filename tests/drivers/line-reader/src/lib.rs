//! Test driver `line-reader`: starts `sh -c <args[0]>` with `read-stdout` and reports what `read-line` gave it.

use std::time::{Duration, Instant};

use drover_sdk::exec::{Command, Error};
use drover_sdk::{Capabilities, Description, Driver, Outcome, Task};

/// Reads a process's output line by line, in the way its artifact says.
struct LineReader;

impl Driver for LineReader {
    fn describe() -> Description {
        Description::new("line-reader", env!("CARGO_PKG_VERSION"))
            .with_summary("Test driver: reads a process's standard output with read-line.")
            .with_artifact(
                "The mode: `lines` (read every line; after the line `ping`, create the file \
                 `ack` in the workspace), `plain` (spawn without read-stdout, then read), \
                 `flood` (read one line, wait until the file `progress` stops changing, then \
                 wait for the process without reading).",
            )
            .with_args("The script for `sh -c`, then an optional timeout in milliseconds.")
            .with_outputs(
                "`lines` (read, joined with `|`), `after_end`, `timed_out`, `code`, `error`, \
                 `progress` (the file `progress` after the pause, in `flood`).",
            )
            .with_capabilities(Capabilities::none().with_exec(["sh"]).with_workspace())
    }

    fn run(task: Task) -> Outcome {
        let script = task.args.first().cloned().unwrap_or_default();
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        if let Some(ms) = task.args.get(1).and_then(|t| t.parse().ok()) {
            cmd.timeout_ms(ms);
        }
        if task.artifact != "plain" {
            cmd.read_stdout();
        }
        let process = match cmd.spawn() {
            Ok(p) => p,
            Err(e) => return Outcome::failure(format!("spawn: {e}")),
        };
        let mut outcome = Outcome::success();
        let mut lines = Vec::new();
        match task.artifact.as_str() {
            "plain" => {
                let kind = match process.read_line() {
                    Err(Error::Invalid(_)) => "invalid".to_string(),
                    other => format!("{other:?}"),
                };
                outcome = outcome.with_output("error", kind);
            }
            "flood" => {
                if let Ok(Some(line)) = process.read_line() {
                    lines.push(line);
                }
                // Until the process has stopped making progress: blocked.
                let mut progress = String::new();
                for _ in 0..40 {
                    std::thread::sleep(Duration::from_millis(500));
                    let now = match std::fs::read_to_string("progress") {
                        Ok(text) => text.trim().to_string(),
                        Err(e) => format!("cannot read progress: {e}"),
                    };
                    if !now.is_empty() && now == progress {
                        break;
                    }
                    progress = now;
                }
                outcome = outcome.with_output("progress", progress);
            }
            _ => {
                let started = Instant::now();
                loop {
                    match process.read_line() {
                        Ok(Some(line)) => {
                            if line == "ping"
                                && let Err(e) = std::fs::write("ack", "")
                            {
                                return Outcome::failure(format!("write ack: {e}"));
                            }
                            lines.push(line);
                        }
                        Ok(None) => break,
                        Err(e) => return Outcome::failure(format!("read-line: {e}")),
                    }
                }
                outcome = outcome
                    .with_output("read_ms", started.elapsed().as_millis().to_string())
                    .with_output("after_end", format!("{:?}", process.read_line()));
            }
        }
        match process.wait() {
            Ok(status) => outcome
                .with_output("lines", lines.join("|"))
                .with_output("timed_out", status.timed_out.to_string())
                .with_output(
                    "code",
                    status.code.map(|c| c.to_string()).unwrap_or_default(),
                ),
            Err(e) => Outcome::failure(format!("wait: {e}")),
        }
    }
}

drover_sdk::export_driver!(LineReader);
