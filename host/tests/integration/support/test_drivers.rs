//! The test drivers of `tests/drivers/`: components that misbehave on purpose, and small
//! helpers. `host/build.rs` leaves them out so that no ordinary build spends time on them;
//! the first test of a process that asks for one builds them all, into the folder where
//! build.rs builds the standard drivers (so the two share compiled dependencies).
//!
//! `tests/rootless.sh` runs the integration binary as a user who may have no cargo; the
//! modules it runs there (`sandbox::`, `hostile::`) use no test driver.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

#[path = "../../../build/guests.rs"]
mod guests;

/// The packages of `tests/drivers/`.
const TEST_DRIVERS: &[&str] = &[
    "test-driver-trap",
    "test-driver-spin",
    "test-driver-hog",
    "test-driver-forbidden-exec",
    "test-driver-escape",
    "test-driver-greet",
    "test-driver-greet-v2",
    "test-driver-command",
    "test-driver-container",
    "test-driver-line-reader",
    "test-driver-secret-probe",
    "test-driver-greedy",
];

/// The folder of the built test drivers (`test_driver_greet.wasm`, …), once this process
/// has built them.
pub fn folder() -> &'static Path {
    static FOLDER: OnceLock<PathBuf> = OnceLock::new();
    FOLDER.get_or_init(build)
}

/// Runs cargo over the test drivers; it rebuilds only what changed, so after the first
/// process this takes a moment.
fn build() -> PathBuf {
    let target_dir = Path::new(env!("DROVER_GUEST_TARGET_DIR"));
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ lives in the workspace");
    std::fs::create_dir_all(target_dir)
        .unwrap_or_else(|e| panic!("cannot make {}: {e}", target_dir.display()));
    // Held until the build is done. Cargo would serialise two builds in one folder too, but
    // this way a second test process (another test binary, a benchmark) waits quietly,
    // then finds everything built.
    let lock_path = target_dir.join("test-drivers.lock");
    let lock = File::create(&lock_path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
    // Straight to stderr: the test harness would hold back `eprintln!` of a test that passes.
    let _ = writeln!(std::io::stderr(), "building test drivers…");
    // The cargo running the tests, else the one that built them.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let out = guests::cargo_build(&cargo, workspace, target_dir, TEST_DRIVERS)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", cargo.to_string_lossy()));
    assert!(
        out.status.success(),
        "building the test drivers failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    guests::out_dir(target_dir)
}
