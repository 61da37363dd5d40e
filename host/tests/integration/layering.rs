//! The layering of drover's modules, read from the source: `dag` and `engine` import no IO
//! crate and no module above them, and no two top-level modules depend on each other, however
//! indirectly; a `use` that breaks it fails here, naming the file. Also the one WIT contract
//! that the SDK and the host share.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Crates that do IO (Wasm, HTTP, Redis, Docker, Vault, files on disk as a store).
const IO_CRATES: &[&str] = &[
    "wasmtime",
    "wasmtime_wasi",
    "axum",
    "hyper",
    "hyper_util",
    "tower",
    "reqwest",
    "redis",
    "bollard",
    "vaultrs",
    "rustify",
    "redb",
    "notify",
    "rustls",
    "tokio_rustls",
    "landlock",
];

/// What the bottom layers may use of drover's own modules.
const ALLOWED: &[(&str, &[&str])] = &[("dag", &[]), ("engine", &["dag", "task", "rfc3339"])];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level modules, each with its source files.
fn modules() -> BTreeMap<String, Vec<PathBuf>> {
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(src()).unwrap().flatten() {
        let path = entry.path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "main" {
            continue;
        }
        let files = if path.is_dir() {
            let mut files = Vec::new();
            let mut dirs = vec![path];
            while let Some(dir) = dirs.pop() {
                for entry in std::fs::read_dir(dir).unwrap().flatten() {
                    let p = entry.path();
                    if p.is_dir() {
                        dirs.push(p);
                    } else if p.extension().is_some_and(|e| e == "rs") {
                        files.push(p);
                    }
                }
            }
            files
        } else if path.extension().is_some_and(|e| e == "rs") {
            vec![path]
        } else {
            continue;
        };
        modules.insert(name, files);
    }
    modules
}

/// The code of `file` without comments and without its unit tests (which may use anything).
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    if file.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Identifiers that follow `prefix` in `code` (`crate::dag::x` gives `dag` for `crate::`).
fn after<'a>(code: &'a str, prefix: &str) -> BTreeSet<&'a str> {
    code.match_indices(prefix)
        .filter(|(at, _)| {
            code[..*at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
        })
        .map(|(at, _)| {
            let rest = &code[at + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

/// module → (module it uses → a file that does).
fn dependencies() -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let modules = modules();
    let mut deps = BTreeMap::new();
    for (name, files) in &modules {
        let mut uses: BTreeMap<String, PathBuf> = BTreeMap::new();
        for file in files {
            let code = code(file);
            for used in after(&code, "crate::") {
                if used != name && modules.contains_key(used) {
                    uses.entry(used.to_owned()).or_insert_with(|| file.clone());
                }
            }
        }
        deps.insert(name.clone(), uses);
    }
    deps
}

#[test]
fn the_bottom_layers_import_no_io_crate_and_nothing_above_them() {
    let modules = modules();
    let deps = dependencies();
    let mut wrong = Vec::new();
    for (layer, allowed) in ALLOWED {
        for file in &modules[*layer] {
            let code = code(file);
            for io in IO_CRATES {
                // A path that starts with the crate: `redis::Cmd`, `use axum::...`, not
                // `crate::transport::redis::...`.
                let starts_path = code.match_indices(&format!("{io}::")).any(|(at, _)| {
                    code[..at]
                        .chars()
                        .next_back()
                        .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'))
                });
                if starts_path {
                    wrong.push(format!("{} uses the IO crate `{io}`", file.display()));
                }
            }
        }
        for (used, file) in &deps[*layer] {
            if !allowed.contains(&used.as_str()) {
                wrong.push(format!(
                    "{} (module `{layer}`) uses `crate::{used}`; `{layer}` may use only {allowed:?}",
                    file.display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_two_modules_depend_on_each_other() {
    let deps = dependencies();
    // A depth-first search from every module; a path back to it is a cycle.
    for start in deps.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((module, path)) = stack.pop() {
            for (used, file) in &deps[&module] {
                if used == start {
                    panic!(
                        "module cycle: {} -> {start} ({} uses `crate::{start}`)",
                        path.join(" -> "),
                        file.display()
                    );
                }
                if seen.insert(used.clone()) {
                    let mut next = path.clone();
                    next.push(used.clone());
                    stack.push((used.clone(), next));
                }
            }
        }
    }
}

/// The check sees what it must: a module known to use another is found to.
#[test]
fn the_reader_finds_known_uses() {
    let deps = dependencies();
    assert!(deps["engine"].contains_key("dag"), "{:?}", deps["engine"]);
    assert!(
        deps["runtime"].contains_key("sandbox"),
        "{:?}",
        deps["runtime"]
    );
    assert!(deps.contains_key("api") && deps.contains_key("cli"));
}

/// The SDK carries its own copy of the WIT contract (so the crate can be packaged on its own);
/// it must be the very contract the host implements.
#[test]
fn the_sdk_carries_the_contract_the_host_implements() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let host = std::fs::read_to_string(root.join("wit/driver.wit")).unwrap();
    let sdk = std::fs::read_to_string(root.join("sdk/wit/driver.wit")).unwrap();
    assert!(
        host == sdk,
        "sdk/wit/driver.wit differs from wit/driver.wit: copy wit/driver.wit over it"
    );
}
