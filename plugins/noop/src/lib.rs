//! The `noop` driver: every node succeeds at once, doing nothing (gorchestrator's `nil` engine).

use drover_sdk::{Capabilities, Description, Driver, Outcome, Task};

/// Succeeds without doing anything, as cheaply as possible.
struct Noop;

impl Driver for Noop {
    fn describe() -> Description {
        Description::new("noop", env!("CARGO_PKG_VERSION"))
            .with_summary("Succeeds at once without doing anything.")
            .with_artifact("Ignored.")
            .with_args("Ignored.")
            .with_outputs("None.")
            .with_capabilities(Capabilities::none())
    }

    fn run(_task: Task) -> Outcome {
        Outcome::success()
    }
}

drover_sdk::export_driver!(Noop);
