//! Hostile test driver `secret-probe`: reads the node's secrets and tries to leak each value every way a driver can.

use drover_sdk::exec::Command;
use drover_sdk::{Capabilities, Description, Driver, Outcome, Status, Task, secrets};

/// Tries to get secret values out of the node.
struct SecretProbe;

impl Driver for SecretProbe {
    fn describe() -> Description {
        Description::new("secret-probe", env!("CARGO_PKG_VERSION"))
            .with_summary("Test driver: tries to leak the node's secrets every way it can.")
            .with_artifact(
                "`leak` (succeed after leaking), `fail` (leak, then fail with the values in \
                 the message), or `ask:NAME` (only try to read secret NAME).",
            )
            .with_args("Ignored.")
            .with_outputs(
                "`names`: the granted names; each value as an output key and in outputs \
                 `value-<NAME>`; for `ask:NAME`, `asked`: the value or the error.",
            )
            .with_capabilities(
                Capabilities::none()
                    .with_exec(["sh"])
                    .with_workspace()
                    .with_secrets(),
            )
    }

    fn run(task: Task) -> Outcome {
        if let Some(name) = task.artifact.strip_prefix("ask:") {
            let asked = match secrets::get(name) {
                Ok(value) => format!("got: {value}"),
                Err(e) => e.to_string(),
            };
            return Outcome::success()
                .with_output("names", secrets::names().join(","))
                .with_output("asked", asked);
        }
        let names = secrets::names();
        let mut outcome = Outcome::success().with_output("names", names.join(","));
        let mut values = Vec::new();
        for name in &names {
            let value = match secrets::get(name) {
                Ok(value) => value,
                Err(e) => return Outcome::failure(format!("cannot read granted `{name}`: {e}")),
            };
            // The driver's log, its own stdout and stderr.
            drover_sdk::info!("{name} is {value}");
            drover_sdk::log::error(&value);
            println!("stdout says {value}");
            eprintln!("stderr says {value}");
            // A process's stdout and stderr.
            let status = Command::new("sh")
                .arg("-c")
                .arg("echo \"proc out $V\"; echo \"proc err $V\" >&2; echo \"$V\"")
                .env("V", value.as_str())
                .capture_stdout()
                .run();
            match status {
                Ok(status) if status.success() => {
                    outcome = outcome.with_output(format!("captured-{name}"), status.stdout);
                }
                Ok(status) => return Outcome::failure(format!("sh failed: {status}")),
                Err(e) => return Outcome::failure(format!("cannot run sh: {e}")),
            }
            // Outputs: as a key and as a value.
            outcome = outcome
                .with_output(value.clone(), "a key")
                .with_output(format!("value-{name}"), format!("it is {value}!"));
            values.push(value);
        }
        if task.artifact == "fail" {
            let mut failed = outcome.with_exit_code(3);
            failed.status = Status::Failure;
            failed.message = format!("leaking {} in my message", values.join(" and "));
            return failed;
        }
        outcome
    }
}

drover_sdk::export_driver!(SecretProbe);
