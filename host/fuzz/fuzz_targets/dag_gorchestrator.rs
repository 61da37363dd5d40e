//! gorchestrator's JSON DAG format, as `POST /api/v1/tasks` and `drover run` read it.

#![no_main]

use drover_fuzz::{DagFormat, check_dag};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_dag(text, DagFormat::Gorchestrator);
    }
});
