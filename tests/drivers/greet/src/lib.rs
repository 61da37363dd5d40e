//! A test driver for the plugin registry: greets whoever the artifact names,
//! and says which version of itself did, so tests can tell versions apart.

use drover_sdk::{Capabilities, Description, Driver, Outcome, Problem, Task};

struct Greet;

impl Driver for Greet {
    fn describe() -> Description {
        Description::new("greet", env!("CARGO_PKG_VERSION"))
            .with_summary("Greets someone; for the registry's tests.")
            .with_artifact("Who to greet.")
            .with_args("Ignored.")
            .with_outputs("`greeting`, and `version`: this driver's version.")
            .with_capabilities(Capabilities::none())
    }

    fn validate(task: &Task) -> Vec<Problem> {
        if task.artifact.is_empty() {
            vec![Problem::new("artifact", "whom to greet?")]
        } else {
            Vec::new()
        }
    }

    fn run(task: Task) -> Outcome {
        Outcome::success()
            .with_output("greeting", format!("hello, {}", task.artifact))
            .with_output("version", env!("CARGO_PKG_VERSION"))
    }
}

drover_sdk::export_driver!(Greet);
