//! How drover's guests, wasm32-wasip2 components, are built with a nested
//! cargo. Shared (through `#[path]`, so std only) by `host/build.rs`, which
//! builds the standard drivers into the binary, and by the tests and
//! benchmarks, which build the test drivers of `tests/drivers/` when they
//! need them: both build into one folder with the same command, so they share
//! compiled dependencies and the tests' paths stay where they were.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "wasm32-wasip2";
/// Guests are built optimised even for a debug host (see the workspace's
/// `[profile.wasm]`).
pub const PROFILE: &str = "wasm";

/// Where a build into `target_dir` leaves its components.
pub fn out_dir(target_dir: &Path) -> PathBuf {
    target_dir.join(TARGET).join(PROFILE)
}

/// `cargo build` of the packages `crates` of the workspace at `workspace`,
/// for the guests' target and profile, into `target_dir`.
///
/// The nested cargo gets its own target folder (so it never waits on the
/// outer build's lock) and an environment without what cargo sets for a
/// build script or a test, or what the outer invocation's tools set for the
/// host (clippy's wrapper, `RUSTFLAGS`, `CARGO_ENCODED_RUSTFLAGS`, coverage
/// flags, `CARGO_TARGET_DIR`, …): none of it is meant for the guests.
pub fn cargo_build(cargo: &OsStr, workspace: &Path, target_dir: &Path, crates: &[&str]) -> Command {
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--locked",
            "--target",
            TARGET,
            "--profile",
            PROFILE,
        ])
        .arg("--target-dir")
        .arg(target_dir);
    for krate in crates {
        cmd.args(["-p", krate]);
    }
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let leaks = key.starts_with("CARGO_")
            && !matches!(
                key.as_ref(),
                "CARGO_HOME" | "CARGO_NET_OFFLINE" | "CARGO_REGISTRIES_CRATES_IO_PROTOCOL"
            );
        if leaks
            || matches!(
                key.as_ref(),
                "RUSTFLAGS"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "RUSTDOCFLAGS"
                    | "RUSTC"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "OPT_LEVEL"
                    | "PROFILE"
                    | "DEBUG"
                    | "NUM_JOBS"
            )
        {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd
}
