//! `drover run FILE` and `drover graph FILE` end to end: the real binary, the
//! real built-in drivers (`shell`, `noop`, `sleep`), DAG files written into a
//! temporary folder, and the run record `--output json` prints.
//!
//! Exit codes: 0 when every node succeeded, 1 when the run failed (or timed
//! out, or was canceled), 2 for invalid input, which never starts a run.

use crate::support;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use support::{Drover, node, stderr, stdout};

/// A node's state and state code.
fn state(record: &Value, name: &str) -> (String, u64) {
    let n = node(record, name);
    (
        n["state"].as_str().unwrap().to_owned(),
        n["state_code"].as_u64().unwrap(),
    )
}

fn assert_state(record: &Value, name: &str, expected: &str, code: u64) {
    assert_eq!(
        state(record, name),
        (expected.to_owned(), code),
        "node `{name}` in {record:#}"
    );
}

/// Microseconds since the epoch of `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
fn micros(value: &Value) -> i64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"));
    assert!(
        text.len() == 27 && text.ends_with('Z') && &text[10..11] == "T",
        "not RFC 3339 UTC with microseconds: {text}"
    );
    let n = |r: std::ops::Range<usize>| text[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    secs * 1_000_000 + n(20..26)
}

/// Each attempt of every node as [start, finish) in microseconds.
fn intervals(record: &Value) -> Vec<(String, i64, i64)> {
    let mut all = Vec::new();
    for n in record["nodes"].as_array().unwrap() {
        for a in n["attempts"].as_array().unwrap() {
            all.push((
                n["name"].as_str().unwrap().to_owned(),
                micros(&a["started_at"]),
                micros(&a["finished_at"]),
            ));
        }
    }
    all
}

/// The largest number of attempts running at the same instant.
fn max_concurrency(record: &Value) -> usize {
    let spans = intervals(record);
    spans
        .iter()
        .map(|(_, start, _)| {
            spans
                .iter()
                .filter(|(_, s, f)| s <= start && start < f)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// A number no other test (or earlier run) uses, for `sleep N` processes.
fn unique_seconds() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    7_000_000 + (u64::from(std::process::id()) % 1000) * 1000 + nanos % 1000
}

/// The pids of live processes whose command line is exactly `argv`.
fn processes(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"])
        .flatten()
        .copied()
        .collect();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if std::fs::read(entry.path().join("cmdline")).is_ok_and(|c| c == want) {
            found.push(pid);
        }
    }
    found
}

/// Waits up to `limit` for `condition`.
fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// Formats and outputs
// ---------------------------------------------------------------------------

#[test]
fn a_native_yaml_dag_runs_with_logs_prefixed_and_a_summary() {
    let drover = Drover::new();
    let file = drover.write(
        "demo.yaml",
        r#"
name: demo
nodes:
  fetch:
    driver: shell
    artifact: "echo commit=abc123; echo fetched"
    outputs: [commit]
  build:
    driver: shell
    artifact: 'echo "building $1"; echo oops >&2'
    args: ["${{ nodes.fetch.outputs.commit }}"]
    needs: [fetch]
  idle:
    driver: noop
    needs: [fetch]
  nap:
    driver: sleep
    artifact: 50ms
"#,
    );
    let out = drover.run(&["run", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "[fetch] commit=abc123",
        "[fetch] fetched",
        "[build] building abc123",
        "[build] stderr: oops",
        "[fetch] success",
        "[build] success",
        "[idle] success",
        "[nap] success",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        );
    }
    // Logs of a node come after it started running.
    let pos = |needle: &str| text.find(needle).unwrap();
    assert!(pos("[fetch] running") < pos("[fetch] fetched"), "{text}");
    assert!(pos("[fetch] success") < pos("[build] running"), "{text}");
    let summary = text
        .lines()
        .find(|l| l.starts_with("run ") && l.contains("`demo`"))
        .unwrap_or_else(|| panic!("no summary in:\n{text}"));
    assert!(summary.contains(": success in "), "{summary}");
    assert!(summary.contains("(4 success)"), "{summary}");
    // The run's workspaces are gone unless kept.
    assert!(drover.files_in_runs("output-1").is_empty());
}

#[test]
fn a_native_json_dag_prints_the_run_record_and_outputs_flow_everywhere() {
    let drover = Drover::new();
    let file = drover.write(
        "flow.json",
        r#"{
  "name": "flow",
  "nodes": {
    "a": {
      "driver": "shell",
      "artifact": "echo ip=10.1.2.3; echo 'port=8080' >> \"$DROVER_OUTPUT\"",
      "outputs": ["ip", "port"]
    },
    "b": {
      "driver": "shell",
      "artifact": "echo art=${{ nodes.a.outputs.ip }}; echo arg=$1; echo env=$ADDR",
      "args": ["${{nodes.a.outputs.ip}}:${{ nodes.a.outputs.port }}"],
      "env": {"ADDR": "http://${{ nodes.a.outputs.ip }}/"},
      "needs": ["a"],
      "outputs": ["art", "arg", "env"]
    },
    "c": {
      "driver": "shell",
      "artifact": "echo deep=$1",
      "args": ["${{ nodes.a.outputs.ip }}"],
      "needs": ["b"],
      "outputs": ["deep"]
    }
  }
}"#,
    );
    let (code, record) = drover.record(&["run", &file]);
    assert_eq!(code, 0, "{record:#}");
    assert_eq!(record["name"], "flow");
    assert_eq!(record["state"], "success");
    assert!(!record["id"].as_str().unwrap().is_empty());
    let keys: Vec<&str> = record
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in ["id", "name", "state", "nodes"] {
        assert!(keys.contains(&key), "{keys:?}");
    }
    // Nodes in DAG order, every field present.
    let names: Vec<&str> = record["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    for n in record["nodes"].as_array().unwrap() {
        for key in [
            "name",
            "state",
            "state_code",
            "exit_code",
            "outputs",
            "attempts",
            "started_at",
            "finished_at",
            "error",
        ] {
            assert!(n.get(key).is_some(), "no `{key}` in {n:#}");
        }
        assert_eq!(n["state"], "success");
        assert_eq!(n["state_code"], 3);
        assert_eq!(n["exit_code"], 0);
        assert!(n["error"].is_null());
        assert_eq!(n["attempts"].as_array().unwrap().len(), 1);
        assert_eq!(n["attempts"][0]["attempt"], 1);
        assert_eq!(n["attempts"][0]["state"], "success");
        assert!(micros(&n["started_at"]) <= micros(&n["finished_at"]));
    }
    assert_eq!(
        node(&record, "a")["outputs"],
        serde_json::json!({"ip": "10.1.2.3", "port": "8080"})
    );
    assert_eq!(
        node(&record, "b")["outputs"],
        serde_json::json!({
            "art": "10.1.2.3",
            "arg": "10.1.2.3:8080",
            "env": "http://10.1.2.3/",
        })
    );
    // A reference to a grandparent resolves too.
    assert_eq!(node(&record, "c")["outputs"]["deep"], "10.1.2.3");
    // Each node starts only after its need finished.
    let a = node(&record, "a");
    let b = node(&record, "b");
    let c = node(&record, "c");
    assert!(micros(&b["started_at"]) >= micros(&a["finished_at"]));
    assert!(micros(&c["started_at"]) >= micros(&b["finished_at"]));
}

#[test]
fn a_gorchestrator_dag_runs_with_get_attribute_end_to_end() {
    let drover = Drover::new();
    // Edges: db -> app, db -> wait, app -> report, wait -> report.
    // Row i, column j = 1: node i finishes before node j.
    let file = drover.write(
        "legacy.json",
        r#"{
  "name": "legacy",
  "state": 0,
  "digraph": [
    0, 1, 1, 0,
    0, 0, 0, 1,
    0, 0, 0, 1,
    0, 0, 0, 0
  ],
  "nodes": [
    {"id": 0, "name": "db", "engine": "shell", "target": "pool-a",
     "artifact": "echo address=198.51.100.9; echo user=admin",
     "args": null, "output": {"address": "", "user": ""}},
    {"id": 1, "name": "app", "engine": "shell", "target": "pool-a",
     "artifact": "echo url=$1; echo who=$2; echo plain=$3",
     "args": ["DB_URL=get_attribute db:address", "get_attribute db:user", "get_attribute_not"],
     "output": {"url": "", "who": "", "plain": ""}},
    {"id": 2, "name": "wait", "engine": "nil", "target": "pool-a",
     "artifact": "", "args": null, "output": null},
    {"id": 3, "name": "report", "engine": "shell", "target": "pool-a",
     "artifact": "echo final=$1",
     "args": ["get_attribute app:url"], "output": {"final": ""}}
  ]
}"#,
    );
    let (code, record) = drover.record(&["run", &file]);
    assert_eq!(code, 0, "{record:#}");
    assert_eq!(record["name"], "legacy");
    assert_eq!(record["state"], "success");
    for name in ["db", "app", "wait", "report"] {
        assert_state(&record, name, "success", 3);
    }
    assert_eq!(
        node(&record, "app")["outputs"],
        serde_json::json!({
            "url": "DB_URL=198.51.100.9",
            "who": "admin",
            "plain": "get_attribute_not",
        })
    );
    assert_eq!(
        node(&record, "report")["outputs"]["final"],
        "DB_URL=198.51.100.9"
    );
    // `engine: nil` ran as noop: no process, no exit code.
    assert!(node(&record, "wait")["exit_code"].is_null());
    // The matrix's edges were respected.
    let t = |n: &str, f: &str| micros(&node(&record, n)[f]);
    assert!(t("app", "started_at") >= t("db", "finished_at"));
    assert!(t("wait", "started_at") >= t("db", "finished_at"));
    assert!(t("report", "started_at") >= t("app", "finished_at"));
    assert!(t("report", "started_at") >= t("wait", "finished_at"));
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

/// A shell node that leaves a file called `marker` in its workspace.
const MARKER_NODE: &str = r#"
  touches:
    driver: shell
    artifact: "touch marker && echo touched"
"#;

#[test]
fn the_marker_node_leaves_its_marker_when_the_dag_is_valid() {
    // The control for the tests below: a valid DAG does run the node.
    let drover = Drover::new();
    let file = drover.write("ok.yaml", &format!("name: ok\nnodes:{MARKER_NODE}"));
    let (code, record) = drover.record(&["run", &file, "--keep-workspaces"]);
    assert_eq!(code, 0, "{record:#}");
    assert_eq!(drover.files_in_runs("marker").len(), 1);
}

#[test]
fn an_invalid_native_dag_reports_every_problem_and_never_runs() {
    let drover = Drover::new();
    let file = drover.write(
        "bad.yaml",
        &format!(
            r#"name: bad
nodes:{MARKER_NODE}
  first:
    driver: noop
    needs: [third]
  second:
    driver: noop
    needs: [first]
  third:
    driver: noop
    needs: [second]
  lost:
    driver: noop
    needs: [touches, ghost]
  strange:
    driver: frobnicate
  side:
    driver: shell
    artifact: "echo x=1"
    outputs: [x]
  reader:
    driver: shell
    artifact: "echo ${{{{ nodes.side.outputs.x }}}}"
    needs: [touches]
"#
        ),
    );
    for extra in [&[][..], &["--output", "json"][..]] {
        let mut args = vec!["run", file.as_str(), "--keep-workspaces"];
        args.extend(extra);
        let out = drover.run(&args);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("bad.yaml"), "{err}");
        assert!(err.contains("4 problems"), "{err}");
        assert!(
            err.contains("node `lost`, field `needs`: no node named `ghost`"),
            "{err}"
        );
        assert!(
            err.contains("node `strange`, field `driver`: unknown driver `frobnicate`"),
            "{err}"
        );
        assert!(
            err.contains("node `reader`, field `artifact`")
                && err.contains("`side`, which is not an upstream node of `reader`"),
            "{err}"
        );
        // The cycle, its nodes in order (first before second before third),
        // starting wherever the validator likes.
        let cycle = err
            .lines()
            .find_map(|l| l.split_once("cycle: ").map(|(_, c)| c.to_owned()))
            .unwrap_or_else(|| panic!("no cycle in {err}"));
        let names: Vec<&str> = cycle.split(" -> ").collect();
        assert_eq!(names.len(), 4, "{cycle}");
        assert_eq!(names[0], names[3], "{cycle}");
        let start = names.iter().position(|n| *n == "first").unwrap();
        let rotated: Vec<&str> = (0..3).map(|k| names[(start + k) % 3]).collect();
        assert_eq!(rotated, ["first", "second", "third"], "{cycle}");
        // No run started: nothing on stdout, no workspace, no marker.
        assert!(stdout(&out).trim().is_empty(), "{}", stdout(&out));
        assert!(!drover.data().join("runs").exists());
        assert!(drover.files_in_runs("marker").is_empty());
    }
}

#[test]
fn duplicate_names_are_refused_in_yaml_and_json() {
    let drover = Drover::new();
    let yaml = drover.write(
        "dup.yaml",
        &format!(
            "name: dup\nnodes:{MARKER_NODE}  twin: {{driver: noop}}\n  twin: {{driver: noop}}\n"
        ),
    );
    let json = drover.write(
        "dup.json",
        r#"{"name": "dup", "nodes": {"twin": {"driver": "noop"}, "twin": {"driver": "noop"}}}"#,
    );
    for file in [yaml, json] {
        let out = drover.run(&["run", &file, "--keep-workspaces"]);
        assert_eq!(out.status.code(), Some(2), "{file}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("duplicate node name `twin`"),
            "{file}: {}",
            stderr(&out)
        );
        assert!(drover.files_in_runs("marker").is_empty());
    }
}

#[test]
fn every_refusal_of_the_drivers_own_validate_is_reported() {
    let drover = Drover::new();
    let file = drover.write(
        "refused.yaml",
        &format!(
            r#"name: refused
nodes:{MARKER_NODE}
  nap:
    driver: sleep
    artifact: soon
  fine_nap:
    driver: sleep
    artifact: 10ms
  doze:
    driver: sleep
    artifact: "forever and ever"
  empty:
    driver: shell
    artifact: "  "
"#
        ),
    );
    let out = drover.run(&["run", &file, "--keep-workspaces"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("3 problems"), "{err}");
    assert!(
        err.contains("node `nap`, field `artifact`: invalid duration `soon`"),
        "{err}"
    );
    assert!(err.contains("node `doze`, field `artifact`"), "{err}");
    assert!(err.contains("node `empty`, field `artifact`"), "{err}");
    assert!(!err.contains("fine_nap"), "{err}");
    assert!(!drover.data().join("runs").exists());
    assert!(drover.files_in_runs("marker").is_empty());
}

#[test]
fn graph_problems_and_driver_refusals_are_reported_together() {
    let drover = Drover::new();
    let file = drover.write(
        "both.yaml",
        &format!(
            r#"name: both
nodes:{MARKER_NODE}
  a: {{driver: shell, artifact: "echo a", needs: [c]}}
  b: {{driver: shell, artifact: "echo b", needs: [a]}}
  c: {{driver: shell, artifact: "echo c", needs: [b]}}
  nap: {{driver: sleep, artifact: soon}}
  ghost: {{driver: nosuch}}
"#
        ),
    );
    let out = drover.run(&["run", &file, "--keep-workspaces"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("3 problems"), "{err}");
    assert!(err.contains("cycle: "), "{err}");
    assert!(
        err.contains("node `ghost`, field `driver`: unknown driver `nosuch`"),
        "{err}"
    );
    assert!(
        err.contains("node `nap`, field `artifact`: invalid duration `soon`"),
        "{err}"
    );
    assert!(drover.files_in_runs("marker").is_empty());
}

/// A gorchestrator DAG whose first node leaves a marker.
fn gorchestrator(digraph: &str, nodes: &[(i64, &str, &str)]) -> String {
    let nodes: Vec<String> = nodes
        .iter()
        .map(|(id, name, args)| {
            let (engine, artifact) = if *id == 0 {
                ("shell", "touch marker")
            } else {
                ("nil", "")
            };
            format!(
                r#"{{"id": {id}, "name": "{name}", "engine": "{engine}", "artifact": "{artifact}", "args": {args}, "output": null, "target": ""}}"#
            )
        })
        .collect();
    format!(
        r#"{{"name": "g", "state": 0, "digraph": [{digraph}], "nodes": [{}]}}"#,
        nodes.join(",\n")
    )
}

#[test]
fn an_invalid_gorchestrator_dag_is_refused_with_where_and_why() {
    let drover = Drover::new();
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            // 5 cells for 2 nodes.
            gorchestrator("0,1,0,0,0", &[(0, "x", "null"), (1, "y", "null")]),
            vec!["digraph: has 5 cells, which is not a perfect square"],
        ),
        (
            // Square, but 3×3 for 2 nodes.
            gorchestrator("0,1,0, 0,0,0, 0,0,0", &[(0, "x", "null"), (1, "y", "null")]),
            vec!["digraph: is a 3×3 matrix (9 cells) but there are 2 nodes"],
        ),
        (
            // x -> y -> z -> x.
            gorchestrator(
                "0,1,0, 0,0,1, 1,0,0",
                &[(0, "x", "null"), (1, "y", "null"), (2, "z", "null")],
            ),
            vec!["cycle: x -> y -> z -> x"],
        ),
        (
            gorchestrator(
                "0,1,0, 0,0,0, 0,0,0",
                &[(0, "x", "null"), (1, "y", "null"), (1, "x", "null")],
            ),
            vec![
                "nodes[2]: duplicate node name `x`, also at nodes[0]",
                "duplicate id 1, also at nodes[1]",
            ],
        ),
        (
            // z reads y's output, but y is not upstream of z.
            gorchestrator(
                "0,1,1, 0,0,0, 0,0,0",
                &[
                    (0, "x", "null"),
                    (1, "y", "null"),
                    (2, "z", r#"["V=get_attribute y:value"]"#),
                ],
            ),
            vec!["node `z`, field `args[0]`", "not an upstream node of `z`"],
        ),
        (
            gorchestrator(
                "0,0, 0,0",
                &[(0, "x", "null"), (1, "y", r#"["get_attribute y:"]"#)],
            ),
            vec!["node `y`, field `args[0]`", "get_attribute"],
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let file = drover.write(&format!("g{i}.json"), text);
        let out = drover.run(&["run", &file, "--keep-workspaces"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "case {i}: {err}");
        for needle in expected {
            assert!(err.contains(needle), "case {i}: no {needle:?} in {err}");
        }
        assert!(drover.files_in_runs("marker").is_empty(), "case {i}");
        // `drover graph` validates the same way.
        let out = drover.run(&["graph", &file]);
        assert_eq!(out.status.code(), Some(2), "case {i}: {}", stderr(&out));
    }
    assert!(!drover.data().join("runs").exists());
}

#[test]
fn bad_flags_and_missing_files_exit_2() {
    let drover = Drover::new();
    let file = drover.write("one.yaml", "name: one\nnodes:\n  a: {driver: noop}\n");
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "one.yaml", "--timeout", "soon"],
            "invalid duration `soon`",
        ),
        (
            &["run", "one.yaml", "-j", "0"],
            "--parallelism must be at least 1",
        ),
        (&["run", "missing.yaml"], "cannot read missing.yaml"),
        (&["graph", "missing.yaml"], "cannot read missing.yaml"),
    ];
    for (args, expected) in cases {
        let out = drover.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // The same file with good flags runs.
    let (code, record) = drover.record(&["run", &file, "-j", "1", "--timeout", "1m"]);
    assert_eq!(code, 0, "{record:#}");
}

// ---------------------------------------------------------------------------
// States, failure and fail-fast
// ---------------------------------------------------------------------------

const FAILING: &str = r#"
name: failing
nodes:
  bad:
    driver: shell
    artifact: "echo before; exit 3"
  child:
    driver: noop
    needs: [bad]
  grandchild:
    driver: shell
    artifact: "echo never"
    needs: [child, slow]
  slow:
    driver: shell
    artifact: "sleep 1; echo done=yes"
    outputs: [done]
  after_slow:
    driver: noop
    needs: [slow]
"#;

#[test]
fn a_failure_makes_descendants_not_runnable_while_other_branches_finish() {
    let drover = Drover::new();
    let file = drover.write("failing.yaml", FAILING);
    let (code, record) = drover.record(&["run", &file, "-j", "4"]);
    assert_eq!(code, 1, "{record:#}");
    assert_eq!(record["state"], "failure");
    assert_state(&record, "bad", "failure", 4);
    assert_eq!(node(&record, "bad")["exit_code"], 3);
    assert!(
        node(&record, "bad")["error"]
            .as_str()
            .unwrap()
            .contains("exit code 3"),
        "{record:#}"
    );
    for name in ["child", "grandchild"] {
        assert_state(&record, name, "not-runnable", 5);
        let n = node(&record, name);
        assert!(n["attempts"].as_array().unwrap().is_empty(), "{n:#}");
        assert!(n["started_at"].is_null(), "{n:#}");
        assert!(n["error"].as_str().unwrap().contains("`bad`"), "{n:#}");
    }
    // The independent branch kept running after `bad` failed.
    assert_state(&record, "slow", "success", 3);
    assert_state(&record, "after_slow", "success", 3);
    assert_eq!(node(&record, "slow")["outputs"]["done"], "yes");
    assert!(
        micros(&node(&record, "after_slow")["started_at"])
            > micros(&node(&record, "bad")["finished_at"])
    );

    // Text mode: the same states, and a summary naming the failure.
    let out = drover.run(&["run", &file, "-j", "4"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "[bad] before",
        "[bad] failure",
        "[child] not-runnable",
        "[grandchild] not-runnable",
        "[after_slow] success",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    assert!(text.contains("`failing`: failure in "), "{text}");
    assert!(
        text.contains("(1 failure, 2 not-runnable, 2 success)"),
        "{text}"
    );
    assert!(text.contains("  failure bad: exit code 3"), "{text}");
    assert!(!text.contains("never"), "{text}");
}

#[test]
fn fail_fast_cancels_running_and_waiting_nodes() {
    let drover = Drover::new();
    // `slow` sleeps long enough that only the cancel can end it early.
    let file = drover.write("failing.yaml", &FAILING.replace("sleep 1;", "sleep 30;"));
    let started = Instant::now();
    let (code, record) = drover.record(&["run", &file, "-j", "4", "--fail-fast"]);
    let took = started.elapsed();
    assert_eq!(code, 1, "{record:#}");
    assert_eq!(record["state"], "failure");
    assert_state(&record, "bad", "failure", 4);
    assert_state(&record, "child", "not-runnable", 5);
    // `slow` was running: canceled, its process stopped early.
    assert_state(&record, "slow", "canceled", 11);
    let slow = node(&record, "slow");
    assert_eq!(slow["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(slow["attempts"][0]["state"], "canceled");
    assert!(
        micros(&slow["finished_at"]) - micros(&slow["started_at"]) < 15_000_000,
        "{slow:#}"
    );
    assert!(
        slow["error"].as_str().unwrap().contains("fails fast"),
        "{slow:#}"
    );
    // `after_slow` never started: canceled too.
    assert_state(&record, "after_slow", "canceled", 11);
    assert!(
        node(&record, "after_slow")["attempts"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // `grandchild` depends on the failure: not-runnable (or canceled, if the
    // cancel reached it first); never success.
    let (g, _) = state(&record, "grandchild");
    assert!(g == "not-runnable" || g == "canceled", "{record:#}");
    assert!(took < Duration::from_secs(25), "{took:?}");
}

// ---------------------------------------------------------------------------
// Timeouts, retries, cancellation
// ---------------------------------------------------------------------------

#[test]
fn a_node_timeout_stops_the_process_and_timed_out_attempts_are_retried() {
    let drover = Drover::new();
    let n = unique_seconds().to_string();
    let file = drover.write(
        "slowpoke.yaml",
        &format!(
            r#"
name: slowpoke
nodes:
  stuck:
    driver: shell
    artifact: "sleep {n}"
    timeout: 400ms
    retries: {{max: 1, backoff: 50ms}}
  nap:
    driver: sleep
    artifact: 30s
    timeout: 0.3
  after:
    driver: noop
    needs: [stuck]
  fine:
    driver: shell
    artifact: "echo fine"
    timeout: 1m
"#
        ),
    );
    let started = Instant::now();
    let (code, record) = drover.record(&["run", &file, "-j", "4"]);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(code, 1, "{record:#}");
    assert_eq!(record["state"], "failure");
    assert_state(&record, "stuck", "timeout", 10);
    assert_state(&record, "nap", "timeout", 10);
    assert_state(&record, "after", "not-runnable", 5);
    assert_state(&record, "fine", "success", 3);
    let attempts = node(&record, "stuck")["attempts"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(attempts.len(), 2, "{record:#}");
    for (k, a) in attempts.iter().enumerate() {
        assert_eq!(a["attempt"], k + 1);
        assert_eq!(a["state"], "timeout");
        let took = micros(&a["finished_at"]) - micros(&a["started_at"]);
        assert!((350_000..10_000_000).contains(&took), "{a:#}");
    }
    assert_eq!(
        node(&record, "nap")["attempts"].as_array().unwrap().len(),
        1
    );
    // The timed-out process is gone.
    assert!(
        eventually(Duration::from_secs(2), || processes(&["sleep", &n])
            .is_empty()),
        "sleep {n} still runs: {:?}",
        processes(&["sleep", &n])
    );
}

#[test]
fn workspaces_go_when_their_nodes_end_and_never_anything_outside_the_run() {
    // Each node's workspace is removed as soon as the node is final (on a
    // cleanup thread); a retried node keeps its workspace between attempts;
    // a node whose name would climb out of the run's folder is refused.
    let drover = Drover::new();
    let file = drover.write(
        "cleanup.yaml",
        r#"
name: cleanup
nodes:
  a:
    driver: shell
    artifact: "touch left-behind"
  b:
    driver: shell
    artifact: "if [ -f tried ]; then touch left-behind; else touch tried; exit 7; fi"
    retries: {max: 1, backoff: 10ms}
    needs: [a]
"#,
    );
    let (code, record) = drover.record(&["run", &file]);
    assert_eq!(code, 0, "{record:#}");
    assert_eq!(
        record["nodes"][1]["attempts"].as_array().unwrap().len(),
        2,
        "{record:#}"
    );
    assert!(drover.files_in_runs("left-behind").is_empty());
    assert!(drover.files_in_runs("tried").is_empty());
    let climber = drover.write(
        "climber.yaml",
        "name: climber\nnodes:\n  \"..\": {driver: shell, artifact: \"touch escaped\"}\n",
    );
    let out = drover.run(&["run", &climber]);
    assert_eq!(out.status.code(), Some(2), "{}", support::stderr(&out));
    assert!(
        support::stderr(&out).contains("node `..`: a node name must not be `.` or `..`"),
        "{}",
        support::stderr(&out)
    );
    assert!(!drover.data().join("escaped").exists());
    assert!(!drover.data().join("runs").join("escaped").exists());
}

#[test]
fn a_workspace_left_empty_goes_to_the_next_node_and_one_left_used_never_does() {
    // A chain, so each node is final before the next starts: `a` leaves its
    // folder empty, so `b` gets it; `b` leaves a file and `c` a changed
    // mode, so neither folder is handed out again, and every node starts in
    // an empty folder.
    let drover = Drover::new();
    let file = drover.write(
        "recycle.yaml",
        r#"
name: recycle
nodes:
  a:
    driver: shell
    artifact: 'echo ws=$PWD; echo seen=$(ls -A | wc -l)'
    outputs: [ws, seen]
  b:
    driver: shell
    artifact: 'echo ws=$PWD; echo seen=$(ls -A | wc -l); touch left-behind'
    outputs: [ws, seen]
    needs: [a]
  c:
    driver: shell
    artifact: 'echo ws=$PWD; echo seen=$(ls -A | wc -l); chmod 700 .'
    outputs: [ws, seen]
    needs: [b]
  d:
    driver: shell
    artifact: 'echo ws=$PWD; echo seen=$(ls -A | wc -l)'
    outputs: [ws, seen]
    needs: [c]
"#,
    );
    let (code, record) = drover.record(&["run", &file, "-j", "1"]);
    assert_eq!(code, 0, "{record:#}");
    let ws = |name: &str| {
        node(&record, name)["outputs"]["ws"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for name in ["a", "b", "c", "d"] {
        assert_eq!(node(&record, name)["outputs"]["seen"], "0", "{record:#}");
    }
    assert_eq!(ws("a"), ws("b"), "{record:#}");
    assert_ne!(ws("b"), ws("c"), "{record:#}");
    // As root the sandbox gives each folder to the node's own uid and takes
    // it back, mode and all, when it is empty: a chmod'ed folder is reused.
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        assert_ne!(ws("c"), ws("d"), "{record:#}");
    }
    assert_ne!(ws("b"), ws("d"), "{record:#}");
    assert!(
        !drover
            .data()
            .join("runs")
            .join(record["id"].as_str().unwrap())
            .exists()
    );
}

#[test]
fn retries_record_every_attempt_with_exponential_backoff() {
    let drover = Drover::new();
    let file = drover.write(
        "flaky.yaml",
        r#"
name: flaky
nodes:
  flaky:
    driver: shell
    # The workspace survives between attempts of a node.
    artifact: "if [ -f tried ]; then echo ok=second; else touch tried; exit 7; fi"
    outputs: [ok]
    retries: {max: 3, backoff: 50ms}
  hopeless:
    driver: shell
    artifact: "exit 9"
    retries: {max: 2, backoff: 150ms}
  once:
    driver: shell
    artifact: "exit 1"
"#,
    );
    let (code, record) = drover.record(&["run", &file, "-j", "3"]);
    assert_eq!(code, 1, "{record:#}");
    // Succeeds on the second attempt; its record keeps both.
    assert_state(&record, "flaky", "success", 3);
    let flaky = node(&record, "flaky");
    assert_eq!(flaky["outputs"]["ok"], "second");
    assert_eq!(flaky["exit_code"], 0);
    assert!(flaky["error"].is_null());
    let attempts = flaky["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{flaky:#}");
    assert_eq!(
        (
            &attempts[0]["attempt"],
            &attempts[0]["state"],
            &attempts[0]["exit_code"]
        ),
        (&Value::from(1), &Value::from("failure"), &Value::from(7))
    );
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .contains("exit code 7")
    );
    assert_eq!(
        (
            &attempts[1]["attempt"],
            &attempts[1]["state"],
            &attempts[1]["exit_code"]
        ),
        (&Value::from(2), &Value::from("success"), &Value::from(0))
    );
    assert_eq!(flaky["started_at"], attempts[0]["started_at"]);
    assert_eq!(flaky["finished_at"], attempts[1]["finished_at"]);

    // Fails every time: 1 + max attempts, waiting backoff, then twice as long.
    assert_state(&record, "hopeless", "failure", 4);
    let hopeless = node(&record, "hopeless");
    assert_eq!(hopeless["exit_code"], 9);
    let attempts = hopeless["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{hopeless:#}");
    for (k, a) in attempts.iter().enumerate() {
        assert_eq!(a["attempt"], k + 1);
        assert_eq!(a["state"], "failure");
        assert_eq!(a["exit_code"], 9);
    }
    let gap =
        |k: usize| micros(&attempts[k + 1]["started_at"]) - micros(&attempts[k]["finished_at"]);
    assert!(gap(0) >= 150_000, "first wait {}µs", gap(0));
    assert!(gap(1) >= 300_000, "second wait {}µs", gap(1));

    // No retries: one attempt.
    assert_state(&record, "once", "failure", 4);
    assert_eq!(
        node(&record, "once")["attempts"].as_array().unwrap().len(),
        1
    );

    // Text mode announces the retries.
    let out = drover.run(&["run", &file, "-j", "3"]);
    assert_eq!(out.status.code(), Some(1));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(all.contains("[flaky] running (attempt 2)"), "{all}");
    assert!(
        all.contains("[hopeless] attempt 1 failed (exit code 9); retrying in 150ms"),
        "{all}"
    );
    assert!(
        all.contains("[hopeless] attempt 2 failed (exit code 9); retrying in 300ms"),
        "{all}"
    );
}

#[test]
fn the_run_timeout_stops_running_nodes_and_cancels_the_rest() {
    let drover = Drover::new();
    let n = unique_seconds().to_string();
    let file = drover.write(
        "long.yaml",
        &format!(
            r#"
name: long
nodes:
  quick:
    driver: shell
    artifact: "echo v=1"
    outputs: [v]
  long:
    driver: shell
    artifact: "sleep {n}"
  after:
    driver: noop
    needs: [long]
"#
        ),
    );
    let started = Instant::now();
    let (code, record) = drover.record(&["run", &file, "--timeout", "1s"]);
    let took = started.elapsed();
    assert_eq!(code, 1, "{record:#}");
    assert_eq!(record["state"], "timeout");
    assert_state(&record, "quick", "success", 3);
    assert_state(&record, "long", "timeout", 10);
    assert_state(&record, "after", "canceled", 11);
    assert!(
        node(&record, "long")["error"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{record:#}"
    );
    assert!(
        node(&record, "after")["attempts"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(
        eventually(Duration::from_secs(2), || processes(&["sleep", &n])
            .is_empty()),
        "sleep {n} still runs"
    );
}

#[test]
fn ctrl_c_kills_running_processes_and_cancels_unfinished_nodes() {
    let drover = Drover::new();
    let n = unique_seconds().to_string();
    let file = drover.write(
        "cancel.yaml",
        &format!(
            r#"
name: cancel
nodes:
  done_first:
    driver: noop
  long:
    driver: shell
    artifact: "echo started; sleep {n}"
    needs: [done_first]
  after:
    driver: noop
    needs: [long]
"#
        ),
    );
    let mut child = drover.spawn(&["run", &file, "--output", "json"]);
    // Logs go to stderr in JSON mode; wait for the node to start its process.
    child.wait_for_log("[long] started");
    assert!(
        eventually(Duration::from_secs(10), || !processes(&["sleep", &n])
            .is_empty()),
        "sleep {n} never appeared"
    );
    child.interrupt();
    let ended = child.finish();
    let (out, rest) = (ended.stdout, ended.rest);
    assert_eq!(ended.code, Some(1), "{rest}");
    assert!(rest.contains("canceling the run"), "{rest}");
    let record: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(record["state"], "canceled");
    assert_state(&record, "done_first", "success", 3);
    assert_state(&record, "long", "canceled", 11);
    assert_eq!(node(&record, "long")["attempts"][0]["state"], "canceled");
    assert_state(&record, "after", "canceled", 11);
    assert!(
        node(&record, "after")["attempts"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // The process is gone once drover has exited.
    assert!(
        eventually(Duration::from_secs(1), || processes(&["sleep", &n])
            .is_empty()),
        "sleep {n} survived the cancel: {:?}",
        processes(&["sleep", &n])
    );
}

// ---------------------------------------------------------------------------
// Parallelism
// ---------------------------------------------------------------------------

#[test]
fn parallelism_limits_how_many_nodes_run_at_once() {
    let drover = Drover::new();
    let file = drover.write(
        "wide.yaml",
        r#"
name: wide
nodes:
  w1: {driver: shell, artifact: "sleep 0.3"}
  w2: {driver: shell, artifact: "sleep 0.3"}
  w3: {driver: shell, artifact: "sleep 0.3"}
  w4: {driver: shell, artifact: "sleep 0.3"}
"#,
    );
    let span = |record: &Value| {
        let spans = intervals(record);
        spans.iter().map(|s| s.2).max().unwrap() - spans.iter().map(|s| s.1).min().unwrap()
    };

    // -j 1: no two attempts overlap.
    let (code, one) = drover.record(&["run", &file, "-j", "1"]);
    assert_eq!(code, 0, "{one:#}");
    let spans = intervals(&one);
    assert_eq!(spans.len(), 4);
    for a in &spans {
        for b in &spans {
            if a.0 != b.0 {
                assert!(a.2 <= b.1 || b.2 <= a.1, "{a:?} overlaps {b:?}");
            }
        }
    }
    assert_eq!(max_concurrency(&one), 1);
    assert!(span(&one) >= 1_200_000, "{}µs", span(&one));

    // -j 2: two at a time, so at least two rounds of 0.3 s.
    let (code, two) = drover.record(&["run", &file, "-j", "2"]);
    assert_eq!(code, 0, "{two:#}");
    assert_eq!(max_concurrency(&two), 2, "{two:#}");
    assert!(span(&two) >= 600_000, "{}µs", span(&two));

    // -j 4: all four at once.
    let (code, four) = drover.record(&["run", &file, "-j", "4"]);
    assert_eq!(code, 0, "{four:#}");
    assert_eq!(max_concurrency(&four), 4, "{four:#}");
}

// ---------------------------------------------------------------------------
// drover graph
// ---------------------------------------------------------------------------

#[test]
fn graph_prints_dot_and_mermaid_for_both_formats() {
    let drover = Drover::new();
    let native = drover.write(
        "g.yaml",
        r#"
name: shapes
nodes:
  fetch: {driver: shell, artifact: "echo"}
  build: {driver: shell, artifact: "echo", needs: [fetch]}
  lint: {driver: noop, needs: [fetch]}
  ship: {driver: sleep, artifact: 1s, needs: [build, lint]}
"#,
    );
    let legacy = drover.write(
        "g.json",
        &gorchestrator(
            "0,1,1,0, 0,0,0,1, 0,0,0,1, 0,0,0,0",
            &[
                (0, "fetch", "null"),
                (1, "build", "null"),
                (2, "lint", "null"),
                (3, "ship", "null"),
            ],
        ),
    );
    for file in [&native, &legacy] {
        let dot = drover.run(&["graph", file, "--output", "dot"]);
        assert_eq!(dot.status.code(), Some(0), "{}", stderr(&dot));
        let dot = stdout(&dot);
        assert!(dot.trim_start().starts_with("digraph"), "{dot}");
        assert_eq!(
            dot,
            stdout(&drover.run(&["graph", file])),
            "dot is the default"
        );
        let mermaid = drover.run(&["graph", file, "--format", "mermaid"]);
        assert_eq!(mermaid.status.code(), Some(0), "{}", stderr(&mermaid));
        let mermaid = stdout(&mermaid);
        assert!(mermaid.contains("flowchart"), "{mermaid}");

        // Node ids as each format declares them: `nX [label="NAME…` and `nX["NAME…`.
        let id_of = |text: &str, open: &str, name: &str| -> String {
            text.lines()
                .map(str::trim)
                .find_map(|l| {
                    let (id, rest) = l.split_once(open)?;
                    rest.trim_start_matches('"')
                        .starts_with(&format!("{name}\\n"))
                        .then(|| id.trim().to_owned())
                        .or_else(|| {
                            rest.trim_start_matches('"')
                                .starts_with(&format!("{name}<br/>"))
                                .then(|| id.trim().to_owned())
                        })
                })
                .unwrap_or_else(|| panic!("no node `{name}` in:\n{text}"))
        };
        let edges = [
            ("fetch", "build"),
            ("fetch", "lint"),
            ("build", "ship"),
            ("lint", "ship"),
        ];
        let dot_id = |name| id_of(&dot, "[label=", name);
        let mer_id = |name| id_of(&mermaid, "[", name);
        for (from, to) in edges {
            let edge = format!("{} -> {}", dot_id(from), dot_id(to));
            assert!(
                dot.lines().any(|l| l.trim() == format!("{edge};")),
                "no {edge} in:\n{dot}"
            );
            let edge = format!("{} --> {}", mer_id(from), mer_id(to));
            assert!(
                mermaid.lines().any(|l| l.trim() == edge),
                "no {edge} in:\n{mermaid}"
            );
        }
        assert_eq!(dot.matches("->").count(), edges.len(), "{dot}");
        assert_eq!(mermaid.matches("-->").count(), edges.len(), "{mermaid}");
    }
}

// ---------------------------------------------------------------------------
// Scale
// ---------------------------------------------------------------------------

/// A layered noop DAG in native JSON: layers of 1,000 nodes, each node
/// needing two nodes of the layer before.
fn layered(total: usize) -> String {
    const WIDTH: usize = 1000;
    let mut text = String::with_capacity(total * 64);
    text.push_str(r#"{"name": "big", "nodes": {"#);
    for i in 0..total {
        if i > 0 {
            text.push(',');
        }
        let layer = i / WIDTH;
        if layer == 0 {
            text.push_str(&format!(r#""n{i}": {{"driver": "noop"}}"#));
        } else {
            let base = (layer - 1) * WIDTH;
            let k = i % WIDTH;
            let (a, b) = (base + k, base + (k + 1) % WIDTH);
            text.push_str(&format!(
                r#""n{i}": {{"driver": "noop", "needs": ["n{a}", "n{b}"]}}"#
            ));
        }
    }
    text.push_str("}}");
    text
}

/// 20,000 nodes by default (a debug build runs about 1,000 noop nodes a
/// second); `DROVER_BIG_DAG_NODES=100000` for the full size.
#[test]
fn a_large_layered_noop_dag_validates_and_runs() {
    let total: usize = std::env::var("DROVER_BIG_DAG_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let drover = Drover::new();
    let file = drover.write("big.json", &layered(total));
    let started = Instant::now();
    let (code, record) = drover.record(&["run", &file]);
    let took = started.elapsed();
    eprintln!("{total} noop nodes: {took:.1?}");
    assert_eq!(code, 0);
    assert_eq!(record["state"], "success");
    let nodes = record["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), total);
    assert!(
        nodes
            .iter()
            .all(|n| n["state"] == "success" && n["state_code"] == 3)
    );
    // Spot-check the layering: a node of the last layer started after both
    // of its needs finished.
    let last = &nodes[total - 1];
    let k = (total - 1) % 1000;
    let base = total - 1 - k - 1000;
    for need in [base + k, base + (k + 1) % 1000] {
        assert_eq!(nodes[need]["name"], format!("n{need}"));
        assert!(micros(&last["started_at"]) >= micros(&nodes[need]["finished_at"]));
    }
}
