//! drover's native DAG format, YAML or JSON, as `drover run` and `POST /api/v1/runs` read it.

#![no_main]

use drover_fuzz::{DagFormat, check_dag};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The API and the CLI refuse a body that is not UTF-8 before parsing.
    if let Ok(text) = std::str::from_utf8(data) {
        check_dag(text, DagFormat::Native);
    }
});
