//! Hostile test driver `spin`: `run` loops forever without calling the host; the host must stop it at the node's deadline.

use drover_sdk::{Capabilities, Description, Driver, Outcome, Task};

/// Burns CPU forever in `run`.
struct Spin;

impl Driver for Spin {
    fn describe() -> Description {
        Description::new("spin", env!("CARGO_PKG_VERSION"))
            .with_summary("Test driver: loops forever in `run`, never calling the host.")
            .with_capabilities(Capabilities::none())
    }

    fn run(_task: Task) -> Outcome {
        let mut counter: u64 = 0;
        loop {
            counter = core::hint::black_box(counter.wrapping_add(1));
        }
    }
}

drover_sdk::export_driver!(Spin);
