//! Hostile test driver `forbidden-exec`: declares only `sh` but tries to start the program its artifact names.

use drover_sdk::exec::Command;
use drover_sdk::{Capabilities, Description, Driver, Outcome, Task};

/// Tries to start a program it did not declare.
struct ForbiddenExec;

impl Driver for ForbiddenExec {
    fn describe() -> Description {
        Description::new("forbidden-exec", env!("CARGO_PKG_VERSION"))
            .with_summary("Test driver: declares `sh` but starts the program its artifact names.")
            .with_artifact("The program to try to start, e.g. `/usr/bin/id` or `curl`.")
            .with_args("The program's arguments.")
            .with_outputs("`ran=yes` if the program ran.")
            .with_capabilities(Capabilities::none().with_exec(["sh"]))
    }

    fn run(task: Task) -> Outcome {
        let status = Command::new(task.artifact.as_str())
            .args(task.args.iter().map(String::as_str))
            .run();
        match status {
            Ok(status) => {
                let code = status.code.unwrap_or(-1);
                Outcome::success()
                    .with_output("ran", "yes")
                    .with_exit_code(code)
                    .with_message(format!("`{}` ran: {status}", task.artifact))
            }
            Err(e) => Outcome::failure(e.to_string()),
        }
    }
}

drover_sdk::export_driver!(ForbiddenExec);
