//! The `shell` driver: runs the node's artifact, a script file or inline script, with `sh`.

use std::io::ErrorKind;
use std::time::Instant;

use drover_sdk::exec::{self, Command};
use drover_sdk::outputs::parse_key_values;
use drover_sdk::{Capabilities, Description, Driver, Outcome, Problem, Task, secrets};

/// The environment variable naming the file a script may write outputs to.
const OUTPUT_VAR: &str = "DROVER_OUTPUT";
/// The environment variable holding the attempt number (1, 2, ...).
const ATTEMPT_VAR: &str = "DROVER_ATTEMPT";

/// Runs shell scripts.
struct Shell;

impl Driver for Shell {
    fn describe() -> Description {
        Description::new("shell", env!("CARGO_PKG_VERSION"))
            .with_summary("Runs a shell script with `sh`.")
            .with_artifact(
                "A script file, relative to the DAG file's folder, run as `sh <file> <args...>`; \
                 otherwise an inline script, run as `sh -c <artifact> shell <args...>`.",
            )
            .with_args("The script's positional parameters, `$1`, `$2`, ...")
            .with_outputs(
                "Lines `key=value` on standard output, for the node's declared outputs, \
                 and every `key=value` line the script writes to the file named by \
                 `$DROVER_OUTPUT` (which wins on conflict). The node succeeds iff `sh` \
                 exits with code 0. `$DROVER_ATTEMPT` is the attempt number (1, then \
                 2 for the first retry, ...). The node's secrets are in the script's environment \
                 under their names (over `env` of the same name), hidden from its log.",
            )
            .with_capabilities(
                Capabilities::none()
                    .with_exec(["sh"])
                    .with_workspace()
                    .with_secrets(),
            )
    }

    fn validate(task: &Task) -> Vec<Problem> {
        if task.artifact.trim().is_empty() {
            vec![Problem::new(
                "artifact",
                "a script is required: a script file or an inline script",
            )]
        } else {
            Vec::new()
        }
    }

    fn run(task: Task) -> Outcome {
        if task.artifact.trim().is_empty() {
            return Outcome::failure("no script: the artifact is empty");
        }

        // A plain file at the workspace's top: a folder for it would cost
        // an extra inode per node, which shows on short nodes.
        let output_file = format!(".drover-output-{}", task.attempt);
        if let Err(e) = std::fs::remove_file(&output_file)
            && e.kind() != ErrorKind::NotFound
        {
            return Outcome::failure(format!("cannot remove stale {output_file}: {e}"));
        }
        let workspace = exec::workspace_path();
        let output_path = format!("{}/{output_file}", workspace.trim_end_matches('/'));

        let mut cmd = Command::new("sh");
        match &task.artifact_file {
            Some(file) => cmd.arg(file.as_str()),
            None => cmd.arg("-c").arg(task.artifact.as_str()).arg("shell"),
        };
        cmd.args(task.args.iter().map(String::as_str));
        // Each granted secret under its name (drover hides the values from
        // the log and the outcome), over a variable of `env` of that name.
        let mut granted = Vec::new();
        for name in secrets::names() {
            match secrets::get(&name) {
                Ok(value) => granted.push((name, value)),
                Err(e) => return Outcome::failure(format!("cannot read secret `{name}`: {e}")),
            }
        }
        cmd.envs(
            task.env
                .iter()
                .filter(|(k, _)| {
                    k != OUTPUT_VAR
                        && k != ATTEMPT_VAR
                        && !granted.iter().any(|(name, _)| name == k)
                })
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        cmd.envs(granted);
        cmd.env(OUTPUT_VAR, output_path);
        cmd.env(ATTEMPT_VAR, task.attempt.to_string());
        if !task.outputs.is_empty() {
            cmd.capture_stdout();
        }

        let started = Instant::now();
        let status = match cmd.run() {
            Ok(status) => status,
            Err(e) => return Outcome::failure(format!("cannot run sh: {e}")),
        };

        let mut outcome = if status.success() {
            Outcome::success()
        } else if status.timed_out {
            Outcome::failure(format!(
                "timed out after {:.1}s",
                started.elapsed().as_secs_f64()
            ))
        } else {
            Outcome::failure(status.to_string())
        };
        outcome = outcome.with_exit_code(status.exit_code());

        if !task.outputs.is_empty() {
            if status.stdout_truncated {
                drover_sdk::warn!(
                    "standard output was cut at the host's limit; outputs printed after it are lost"
                );
            }
            outcome = outcome.with_outputs(parse_key_values(&status.stdout, Some(&task.outputs)));
        }
        match std::fs::read(&output_file) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                outcome = outcome.with_outputs(parse_key_values(&text, None));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => drover_sdk::warn!("cannot read ${OUTPUT_VAR} ({output_file}): {e}"),
        }

        for name in &task.outputs {
            if outcome.output(name).is_none() {
                drover_sdk::warn!(
                    "declared output `{name}` was not produced: print `{name}=<value>` \
                     or append it to ${OUTPUT_VAR}"
                );
            }
        }
        outcome
    }
}

drover_sdk::export_driver!(Shell);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_needs_a_script() {
        assert_eq!(Shell::validate(&Task::new("n", "")).len(), 1);
        assert_eq!(Shell::validate(&Task::new("n", "  \n")).len(), 1);
        assert!(Shell::validate(&Task::new("n", "echo hi")).is_empty());
    }
}
