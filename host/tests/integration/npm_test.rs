//! The `npm-test` driver end to end: `drover run` on DAG files whose nodes
//! test real npm packages, made by each test with `npm pack` in a temporary
//! folder, installed and run by the real npm and node inside the sandbox.

use crate::support;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use support::{Drover, node, stderr};

/// node and npm, or a failure that says how to get them.
fn require_npm() {
    for program in ["node", "npm"] {
        let found = Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "`{program}` is not installed: the npm-test driver's tests need node and npm; \
             run `bash tests/setup.sh`"
        );
    }
}

/// Writes a package's files into `dir/src/<name>` and returns that folder.
fn package_source(dir: &Path, name: &str, manifest: &str, files: &[(&str, &str)]) -> PathBuf {
    let src = dir.join("src").join(name);
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("package.json"), manifest).unwrap();
    for (file, text) in files {
        let path = src.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    src
}

/// `npm pack`s a package source into `dir`; returns the tarball's file name.
fn pack(dir: &Path, src: &Path) -> String {
    let out = Command::new("npm")
        .arg("pack")
        .arg("--pack-destination")
        .arg(dir)
        .current_dir(src)
        .env("npm_config_cache", dir.join(".npm-cache"))
        .env("npm_config_update_notifier", "false")
        .env("npm_config_fund", "false")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "npm pack failed: {}", stderr(&out));
    let name = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();
    assert!(dir.join(&name).is_file(), "npm pack made no {name}");
    name
}

fn manifest(name: &str, test: Option<&str>) -> String {
    match test {
        Some(script) => serde_json::json!({
            "name": name, "version": "1.0.0", "scripts": {"test": script}
        }),
        None => serde_json::json!({"name": name, "version": "1.0.0", "scripts": {}}),
    }
    .to_string()
}

/// node's test runner: passing, failing, skipped, todo and nested tests.
const MIXED_TESTS: &str = r#"
const test = require('node:test');
const assert = require('node:assert');
test('adds', () => { assert.strictEqual(1 + 1, 2); });
test('fails', () => { assert.strictEqual(1 + 1, 3); });
test('skipped', { skip: 'not today' }, () => {});
test('unfinished', { todo: true }, () => {});
test('outer', async (t) => {
  await t.test('inner ok', () => {});
  await t.test('inner bad', () => { throw new Error('line one\nline two'); });
});
test.describe('suite', () => { test.it('it works', () => {}); });
"#;

const PASSING_TESTS: &str = r#"
const test = require('node:test');
test('one', () => {});
test('group', async (t) => {
  await t.test('deep', async (t) => { await t.test('deeper', () => {}); });
});
test('later', { skip: true }, () => {});
"#;

/// A runner of its own that writes plain TAP.
const PLAIN_TAP: &str = r#"
console.log('TAP version 13');
console.log('1..3');
console.log('ok 1 - alpha');
console.log('not ok 2 - beta # TODO not written yet');
console.log('ok 3 - gamma # SKIP no database');
"#;

const BAIL_OUT: &str = r#"
console.log('TAP version 13');
console.log('ok 1 - first');
console.log('Bail out! the database is down');
process.exit(1);
"#;

/// The `tests` list of a node's JSON report, by full name.
fn report_tests(report: &Value) -> Vec<(String, String)> {
    report["tests"]
        .as_array()
        .unwrap_or_else(|| panic!("no tests in {report:#}"))
        .iter()
        .map(|t| {
            let mut parts: Vec<String> = t["path"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_string())
                .collect();
            parts.push(t["name"].as_str().unwrap().to_string());
            (parts.join(" > "), t["status"].as_str().unwrap().to_string())
        })
        .collect()
}

fn report(record: &Value, name: &str) -> Value {
    let text = node(record, name)["outputs"]["report"]
        .as_str()
        .unwrap_or_else(|| panic!("node `{name}` has no report in {record:#}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("report of `{name}`: {e}: {text}"))
}

fn counts(record: &Value, name: &str) -> [String; 5] {
    let outputs = &node(record, name)["outputs"];
    ["passed", "failed", "skipped", "todo", "total"].map(|k| {
        outputs[k]
            .as_str()
            .unwrap_or_else(|| panic!("node `{name}` has no output `{k}`: {outputs}"))
            .to_string()
    })
}

fn strings<const N: usize>(values: [&str; N]) -> [String; N] {
    values.map(str::to_string)
}

#[test]
fn packages_are_installed_and_tested_with_a_report_per_node() {
    require_npm();
    let drover = Drover::new();
    let dir = drover.dir.path();
    let mixed = pack(
        dir,
        &package_source(
            dir,
            "mixed",
            &manifest("mixed-tests", Some("node --test")),
            &[("test/mixed.test.js", MIXED_TESTS)],
        ),
    );
    let passing_src = package_source(
        dir,
        "passing",
        &manifest("passing-tests", Some("node --test")),
        &[("test.js", PASSING_TESTS)],
    );
    let passing = pack(dir, &passing_src);
    let plain = pack(
        dir,
        &package_source(
            dir,
            "plain",
            &manifest("@acme/plain-tap", Some("node tap.js")),
            &[("tap.js", PLAIN_TAP)],
        ),
    );
    let bail = pack(
        dir,
        &package_source(
            dir,
            "bail",
            &manifest("bail-tests", Some("node bail.js")),
            &[("bail.js", BAIL_OUT)],
        ),
    );
    let untested = pack(
        dir,
        &package_source(dir, "untested", &manifest("untested", None), &[]),
    );
    let file = drover.write(
        "tests.yaml",
        &format!(
            r#"
name: npm
nodes:
  mixed: {{driver: npm-test, artifact: {mixed}}}
  passing: {{driver: npm-test, artifact: {passing}}}
  folder: {{driver: npm-test, artifact: src/passing}}
  plain: {{driver: npm-test, artifact: {plain}}}
  bail: {{driver: npm-test, artifact: {bail}}}
  untested: {{driver: npm-test, artifact: {untested}}}
  after-mixed: {{driver: noop, needs: [mixed]}}
"#
        ),
    );
    let out = drover.run(&["run", &file, "-j", "3", "--output", "json"]);
    let log = stderr(&out);
    let record: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no record ({e}); stderr:\n{log}"));
    assert_eq!(out.status.code(), Some(1), "{log}");

    // Failing and nested tests: the node fails, its outputs are kept.
    let n = node(&record, "mixed");
    assert_eq!(n["state"], "failure", "{log}");
    assert_eq!(n["error"], "2 of 7 tests failed: fails, outer > inner bad");
    assert_eq!(counts(&record, "mixed"), strings(["3", "2", "1", "1", "7"]));
    assert_eq!(n["outputs"]["package"], "mixed-tests@1.0.0");
    let r = report(&record, "mixed");
    assert_eq!(r["package"], "mixed-tests@1.0.0");
    assert_eq!(
        (r["total"].as_u64(), r["failed"].as_u64()),
        (Some(7), Some(2))
    );
    assert_eq!(
        report_tests(&r),
        [
            ("adds", "passed"),
            ("fails", "failed"),
            ("skipped", "skipped"),
            ("unfinished", "todo"),
            ("outer > inner ok", "passed"),
            ("outer > inner bad", "failed"),
            ("suite > it works", "passed"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let tests = r["tests"].as_array().unwrap();
    assert!(
        tests[1]["message"]
            .as_str()
            .unwrap()
            .contains("Expected values to be strictly equal"),
        "{r:#}"
    );
    assert_eq!(tests[5]["message"], "line one\nline two");
    assert_eq!(tests[2]["message"], "not today");
    assert!(
        tests.iter().all(|t| t["duration_ms"].as_f64().is_some()),
        "{r:#}"
    );
    // Each test is logged as it ends, failures with their reason.
    for line in [
        "[mixed] driver: pass adds",
        "[mixed] driver: FAIL fails",
        "[mixed] driver: skip skipped: not today",
        "[mixed] driver: FAIL outer > inner bad",
    ] {
        assert!(
            log.lines().any(|l| l.starts_with(line)),
            "no {line:?} in:\n{log}"
        );
    }
    assert!(
        log.contains("[mixed] driver: FAIL outer > inner bad (") && log.contains("): line one")
    );
    // Its children never run.
    assert_eq!(node(&record, "after-mixed")["state"], "not-runnable");

    // A passing package with deeper nesting, from a tarball and from a folder.
    for name in ["passing", "folder"] {
        let n = node(&record, name);
        assert_eq!(n["state"], "success", "{name}: {n:#}\n{log}");
        assert_eq!(counts(&record, name), strings(["2", "0", "1", "0", "3"]));
        assert_eq!(
            report_tests(&report(&record, name)),
            [
                ("one", "passed"),
                ("group > deep > deeper", "passed"),
                ("later", "skipped")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }
    // The folder is read, never written.
    assert!(!passing_src.join("node_modules").exists());
    assert_eq!(
        std::fs::read_dir(&passing_src).unwrap().count(),
        2,
        "the folder artifact changed"
    );

    // Plain TAP from a runner of the package's own, with directives.
    let n = node(&record, "plain");
    assert_eq!(n["state"], "success", "{n:#}\n{log}");
    assert_eq!(counts(&record, "plain"), strings(["1", "0", "1", "1", "3"]));
    assert_eq!(n["outputs"]["package"], "@acme/plain-tap@1.0.0");

    // Bail out.
    let n = node(&record, "bail");
    assert_eq!(n["state"], "failure");
    assert_eq!(n["error"], "the tests bailed out: the database is down");
    assert_eq!(report(&record, "bail")["bail_out"], "the database is down");

    // No scripts.test.
    let n = node(&record, "untested");
    assert_eq!(n["state"], "failure");
    let error = n["error"].as_str().unwrap();
    assert!(
        error.contains("package `untested@1.0.0` has no `scripts.test`"),
        "{error}"
    );
}

#[test]
fn a_registry_package_without_the_network_grant_fails_fast_saying_why() {
    require_npm();
    let drover = Drover::new();
    let file = drover.write(
        "registry.yaml",
        "name: registry\nnodes:\n  fetch: {driver: npm-test, artifact: left-pad@1.3.0}\n",
    );
    let started = Instant::now();
    let (code, record) = drover.record(&["run", &file]);
    assert_eq!(code, 1, "{record:#}");
    let n = node(&record, "fetch");
    assert_eq!(n["state"], "failure");
    let error = n["error"].as_str().unwrap();
    assert!(error.contains("could not reach the registry"), "{error}");
    assert!(
        error.contains("[drivers.npm-test] network = true"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

/// A registry on loopback that serves one package: its metadata at
/// `/<name>` and its tarball at `/<name>/-/<file>`. Returns the registry's
/// URL and the paths it was asked for.
fn serve_registry(
    name: &str,
    tarball: Vec<u8>,
    file: &str,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let metadata = serde_json::json!({
        "name": name,
        "dist-tags": {"latest": "1.0.0"},
        "versions": {"1.0.0": {
            "name": name, "version": "1.0.0", "scripts": {"test": "node --test"},
            "dist": {"tarball": format!("{url}{name}/-/{file}")}
        }}
    })
    .to_string();
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = asked.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request);
            let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (kind, body) = if path.ends_with(".tgz") {
                ("application/octet-stream", tarball.clone())
            } else {
                ("application/json", metadata.clone().into_bytes())
            };
            log.lock().unwrap().push(path);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (url, asked)
}

#[test]
fn a_registry_package_is_fetched_with_the_network_grant() {
    require_npm();
    let drover = Drover::new();
    drover.configure("\n[drivers.npm-test]\nnetwork = true");
    let dir = drover.dir.path();
    let tarball = pack(
        dir,
        &package_source(
            dir,
            "registry",
            &manifest("registry-tests", Some("node --test")),
            &[("test.js", "require('node:test')('fetched', () => {});")],
        ),
    );
    let bytes = std::fs::read(dir.join(&tarball)).unwrap();
    std::fs::remove_file(dir.join(&tarball)).unwrap();
    let (url, asked) = serve_registry("registry-tests", bytes, &tarball);
    let file = drover.write(
        "fetch.yaml",
        &format!(
            "name: fetch\nnodes:\n  fetch:\n    driver: npm-test\n    artifact: registry-tests@1.0.0\n    \
             env: {{npm_config_registry: \"{url}\"}}\n"
        ),
    );
    let (code, record) = drover.record(&["run", &file]);
    assert_eq!(code, 0, "{record:#}");
    let n = node(&record, "fetch");
    assert_eq!(n["outputs"]["package"], "registry-tests@1.0.0");
    assert_eq!(counts(&record, "fetch"), strings(["1", "0", "0", "0", "1"]));
    let asked = asked.lock().unwrap().clone();
    assert!(asked.iter().any(|p| p == "/registry-tests"), "{asked:?}");
    assert!(asked.iter().any(|p| p.ends_with(".tgz")), "{asked:?}");
}

#[test]
fn a_missing_package_file_is_refused_before_anything_runs() {
    let drover = Drover::new();
    let file = drover.write(
        "missing.yaml",
        "name: missing\nnodes:\n  t: {driver: npm-test, artifact: ./nowhere-1.0.0.tgz}\n",
    );
    let out = drover.run(&["run", &file]);
    assert_eq!(out.status.code(), Some(2));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(
        text.contains("`./nowhere-1.0.0.tgz` does not exist relative to the DAG file's folder"),
        "{text}"
    );
}

#[test]
fn each_test_is_logged_while_slower_ones_still_run() {
    require_npm();
    let drover = Drover::new();
    let dir = drover.dir.path();
    // `slow` ends only once `gate` exists in its folder, which this test
    // makes when it has seen `quick` in the log: a report written at the end
    // would never come, and `slow` would fail after 20 s.
    let tests = r#"
const test = require('node:test');
const fs = require('node:fs');
test('quick', () => {});
test('slow', async () => {
  const started = Date.now();
  while (!fs.existsSync('gate')) {
    if (Date.now() - started > 20000) throw new Error('no gate after 20 s');
    await new Promise((r) => setTimeout(r, 20));
  }
});
"#;
    let tarball = pack(
        dir,
        &package_source(
            dir,
            "live",
            &manifest("live-tests", Some("node --test")),
            &[("test.js", tests)],
        ),
    );
    let file = drover.write(
        "live.yaml",
        &format!("name: live\nnodes:\n  live: {{driver: npm-test, artifact: {tarball}}}\n"),
    );
    let mut child = drover
        .command(&["run", &file, "--output", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    let mut gated = None;
    for line in lines.lines() {
        let line = line.unwrap();
        if line.starts_with("[live] driver: pass quick") && gated.is_none() {
            // The package was moved here by the driver: its workspace.
            let package = find_dir(&drover.data().join("runs"), "package")
                .unwrap_or_else(|| panic!("no package folder under the data folder"));
            std::fs::write(package.join("gate"), "").unwrap();
            gated = Some(Instant::now());
        }
        seen.push(line);
    }
    let out = child.wait_with_output().unwrap();
    let log = seen.join("\n");
    assert!(
        gated.is_some(),
        "`quick` was not logged while `slow` ran:\n{log}"
    );
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(node(&record, "live")["state"], "success", "{log}");
    assert_eq!(counts(&record, "live"), strings(["2", "0", "0", "0", "2"]));
    let quick = seen
        .iter()
        .position(|l| l.starts_with("[live] driver: pass quick"));
    let slow = seen
        .iter()
        .position(|l| l.starts_with("[live] driver: pass slow"));
    assert!(quick < slow, "{log}");
}

/// The first folder called `name` under `dir`.
fn find_dir(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if !path.is_dir() || path.is_symlink() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
        if path.file_name().is_some_and(|n| n == "node_modules") {
            continue;
        }
        if let Some(found) = find_dir(&path, name) {
            return Some(found);
        }
    }
    None
}
