//! Hostile test driver `hog`: `run` allocates and touches memory without bound; the host's memory limit must stop it.

use drover_sdk::{Capabilities, Description, Driver, Outcome, Task};

/// Size of each allocated chunk.
const CHUNK: usize = 1 << 20;

/// Eats memory in `run` until it is stopped.
struct Hog;

impl Driver for Hog {
    fn describe() -> Description {
        Description::new("hog", env!("CARGO_PKG_VERSION"))
            .with_summary("Test driver: allocates 1 MiB chunks filled with nonzero bytes forever.")
            .with_capabilities(Capabilities::none())
    }

    fn run(_task: Task) -> Outcome {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        loop {
            let fill = (chunks.len() % 255 + 1) as u8;
            chunks.push(vec![fill; CHUNK]);
            core::hint::black_box(&mut chunks);
        }
    }
}

drover_sdk::export_driver!(Hog);
