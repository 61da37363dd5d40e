//! Builds the standard drivers as wasm32-wasip2 components with a nested
//! cargo (see `build/guests.rs`), so that a plain `cargo build` does all, and
//! embeds them into the binary.
//!
//! The test drivers of `tests/drivers/` are not built here, so that no
//! `cargo build`, `cargo run` or release build spends time on them: the tests
//! build them on first use (`host/tests/integration/support/test_drivers.rs`)
//! into the same folder, which is exported to them as
//! `DROVER_GUEST_TARGET_DIR`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "build/guests.rs"]
mod guests;

use guests::TARGET;

/// The standard drivers: (registry name, crate name).
const PLUGINS: &[(&str, &str)] = &[
    ("noop", "drover-plugin-noop"),
    ("sleep", "drover-plugin-sleep"),
    ("shell", "drover-plugin-shell"),
    ("docker", "drover-plugin-docker"),
    ("npm-test", "drover-plugin-npm-test"),
    ("ansible", "drover-plugin-ansible"),
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ lives in the workspace")
        .to_path_buf();
    for dir in ["wit", "sdk", "plugins"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );
    println!("cargo:rerun-if-env-changed=DROVER_WASM_TARGET_DIR");

    // Set but empty means unset: an empty path would build into the current
    // folder, inside the source tree.
    let target_dir = env::var_os("DROVER_WASM_TARGET_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| outer_target_dir(&workspace).join("wasm"));

    ensure_wasm_target();
    build_guests(&workspace, &target_dir);

    let out_dir = guests::out_dir(&target_dir);
    let mut embedded = String::from(
        "/// The standard drivers built into this binary: (name, version, component bytes).\n",
    );
    embedded.push_str("pub const BUILTIN_DRIVERS: &[(&str, &str, &[u8])] = &[\n");
    for (name, krate) in PLUGINS {
        let file = out_dir.join(format!("{}.wasm", krate.replace('-', "_")));
        if !file.exists() {
            panic!("plugin {krate} was built but {} is missing", file.display());
        }
        let version = plugin_version(&workspace, name);
        embedded.push_str(&format!(
            "    ({name:?}, {version:?}, include_bytes!({:?})),\n",
            file
        ));
    }
    embedded.push_str("];\n");
    let generated =
        PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("builtin_drivers.rs");
    std::fs::write(&generated, embedded).expect("write builtin_drivers.rs");
    println!(
        "cargo:rustc-env=DROVER_GUEST_TARGET_DIR={}",
        target_dir.display()
    );
}

/// The outer build's target directory, found from `OUT_DIR`
/// (`<target>/<profile>/build/<pkg>/out`, or `<target>/<triple>/<profile>/...`
/// with `--target`), so that `CARGO_TARGET_DIR` is honoured without parsing
/// cargo's configuration. The triple is recognised by name: on a fresh clone
/// nothing else in `<target>` exists yet to tell the two layouts apart.
fn outer_target_dir(workspace: &Path) -> PathBuf {
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            workspace.join(dir)
        };
    }
    let triple = env::var_os("TARGET");
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    out.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(|build| build.parent()) // <target>/<profile>
        .and_then(|profile| profile.parent()) // <target> (or <target>/<triple>)
        .map(|p| match (p.file_name(), p.parent()) {
            (Some(name), Some(parent)) if Some(name) == triple.as_deref() => parent.to_path_buf(),
            _ => p.to_path_buf(),
        })
        .unwrap_or_else(|| workspace.join("target"))
}

/// The version in `plugins/<name>/Cargo.toml`, or the workspace's when the
/// crate inherits it: the registry lists built-in drivers by version without
/// loading them.
fn plugin_version(workspace: &Path, name: &str) -> String {
    let manifest = workspace.join("plugins").join(name).join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("read {}: {e}", manifest.display()));
    match package_version(&text) {
        Some(version) => version,
        None => {
            let root = std::fs::read_to_string(workspace.join("Cargo.toml"))
                .expect("read the workspace Cargo.toml");
            package_version(&root).expect("[workspace.package] has a version")
        }
    }
}

/// The literal `version = "..."` of the first package-like section, if any
/// (`version.workspace = true` has none).
fn package_version(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]" || line == "[workspace.package]";
            continue;
        }
        if in_package
            && let Some(value) = line.strip_prefix("version")
            && let Some(value) = value.trim_start().strip_prefix('=')
        {
            return Some(value.trim().trim_matches('"').to_string());
        }
    }
    None
}

/// rust-toolchain.toml lists the target, but a toolchain that was installed
/// before the file existed lacks it: add it, so no manual step is needed.
fn ensure_wasm_target() {
    let sysroot = Command::new(env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "sysroot"])
        .output();
    if let Ok(out) = sysroot {
        let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if sysroot.join("lib/rustlib").join(TARGET).exists() {
            return;
        }
    }
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status();
    match status {
        Ok(s) if s.success() => {}
        _ => panic!("the {TARGET} target is missing and `rustup target add {TARGET}` failed"),
    }
}

fn build_guests(workspace: &Path, target_dir: &Path) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let crates: Vec<&str> = PLUGINS.iter().map(|(_, krate)| *krate).collect();
    let status = guests::cargo_build(&cargo, workspace, target_dir, &crates)
        .status()
        .expect("run cargo to build the wasm drivers");
    if !status.success() {
        panic!("building the wasm drivers failed (see the cargo output above)");
    }
}
