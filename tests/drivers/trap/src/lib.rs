//! Hostile test driver `trap`: `run` panics, which traps the component; the host must fail the node and carry on.

use drover_sdk::{Capabilities, Description, Driver, Outcome, Task};

/// Panics in `run`.
struct Trap;

impl Driver for Trap {
    fn describe() -> Description {
        Description::new("trap", env!("CARGO_PKG_VERSION"))
            .with_summary("Test driver: panics (traps) in `run`.")
            .with_artifact(
                "With `abort`, aborts (a bare wasm `unreachable` trap) instead of panicking.",
            )
            .with_capabilities(Capabilities::none())
    }

    fn run(task: Task) -> Outcome {
        if task.artifact == "abort" {
            std::process::abort();
        }
        panic!("test driver `trap` panics on purpose in node {}", task.node);
    }
}

drover_sdk::export_driver!(Trap);
