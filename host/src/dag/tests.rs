//! Tests of parsing and validating whole DAG files in both formats.

use std::path::Path;
use std::time::Duration;

use super::*;

/// The drivers the tests know; a `@version` pin is accepted for any of them.
fn drivers(name: &str) -> bool {
    let base = name.split('@').next().unwrap_or(name);
    matches!(base, "shell" | "noop" | "sleep" | "toscassh")
}

fn ok(text: &str) -> Dag {
    match parse(text, None, &drivers) {
        Ok(dag) => dag,
        Err(e) => panic!("expected a valid DAG, got:\n{e}"),
    }
}

/// The problems, as displayed.
fn problems(text: &str) -> Vec<String> {
    match parse(text, None, &drivers) {
        Ok(dag) => panic!("expected problems, got a DAG: {dag:?}"),
        Err(e) => e.problems.iter().map(ToString::to_string).collect(),
    }
}

fn names(dag: &Dag, indexes: &[NodeIndex]) -> Vec<String> {
    indexes.iter().map(|&i| dag.nodes[i].name.clone()).collect()
}

const BUILD_YAML: &str = r#"
name: build
nodes:
  fetch:
    driver: shell
    artifact: ./fetch.sh
    args: [--depth, "1"]
    env: {REPO: https://x}
    outputs: [commit]
    timeout: 30s
    retries: {max: 2, backoff: 1s}
    pool: linux
  test:
    driver: shell@1
    needs: [fetch]
    artifact: 'echo testing ${{ nodes.fetch.outputs.commit }}'
"#;

const BUILD_JSON: &str = r#"{
  "name": "build",
  "nodes": {
    "fetch": {
      "driver": "shell",
      "artifact": "./fetch.sh",
      "args": ["--depth", "1"],
      "env": {"REPO": "https://x"},
      "outputs": ["commit"],
      "timeout": "30s",
      "retries": {"max": 2, "backoff": "1s"},
      "pool": "linux"
    },
    "test": {
      "driver": "shell@1",
      "needs": ["fetch"],
      "artifact": "echo testing ${{ nodes.fetch.outputs.commit }}"
    }
  }
}"#;

#[test]
fn native_yaml_reads_every_field() {
    let dag = parse(BUILD_YAML, Some(Path::new("/dags")), &drivers).unwrap();
    assert_eq!(dag.name, "build");
    assert_eq!(dag.format, SourceFormat::Native);
    assert_eq!(dag.base_dir.as_deref(), Some(Path::new("/dags")));
    let fetch = &dag.nodes[0];
    assert_eq!(fetch.name, "fetch");
    assert_eq!(fetch.driver, "shell");
    assert_eq!(fetch.artifact, "./fetch.sh");
    assert_eq!(fetch.args, ["--depth", "1"]);
    assert_eq!(fetch.env, [("REPO".to_string(), "https://x".to_string())]);
    assert_eq!(fetch.outputs, ["commit"]);
    assert_eq!(fetch.timeout, Some(Duration::from_secs(30)));
    assert_eq!(fetch.retries.max, 2);
    assert_eq!(fetch.retries.backoff, Duration::from_secs(1));
    assert_eq!(
        fetch.retries.max_backoff,
        RetryPolicy::default().max_backoff
    );
    assert_eq!(fetch.pool.as_deref(), Some("linux"));
    assert_eq!(fetch.id, None);
    let test = &dag.nodes[1];
    assert_eq!(test.driver, "shell@1", "the version pin is kept as written");
    assert_eq!(test.needs, [0]);
    assert_eq!(test.timeout, None);
    assert_eq!(test.retries, RetryPolicy::default());
    assert_eq!(dag.children, [vec![1], vec![]]);
}

#[test]
fn native_yaml_and_json_give_equal_dags() {
    assert_eq!(ok(BUILD_YAML), ok(BUILD_JSON));
}

#[test]
fn file_order_is_kept() {
    let yaml = "name: order\nnodes:\n  zeta: {driver: noop}\n  alpha: {driver: noop, needs: [mid]}\n  mid: {driver: noop, needs: [zeta]}\n";
    let dag = ok(yaml);
    let order: Vec<&str> = dag.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(order, ["zeta", "alpha", "mid"]);
    let json = r#"{"name": "order", "nodes": {"zeta": {"driver": "noop"}, "alpha": {"driver": "noop", "needs": ["mid"]}, "mid": {"driver": "noop", "needs": ["zeta"]}}}"#;
    assert_eq!(ok(json), dag);
    assert_eq!(
        names(&dag, &dag.topological_order()),
        ["zeta", "mid", "alpha"]
    );
    assert_eq!(dag.index_of("mid"), Some(2));
    assert_eq!(dag.index_of("nope"), None);
    assert_eq!(dag.node("alpha").map(|n| n.needs.clone()), Some(vec![2]));
    assert_eq!(dag.roots(), [0]);
    assert_eq!(dag.leaves(), [1]);
}

#[test]
fn graph_helpers() {
    let dag = ok("name: g
nodes:
  d: {driver: noop, needs: [b, c]}
  b: {driver: noop, needs: [a]}
  c: {driver: noop, needs: [a, a]}
  a: {driver: noop}
  e: {driver: noop}
");
    assert_eq!(dag.nodes[0].needs, [1, 2], "ascending, no duplicates");
    assert_eq!(dag.nodes[2].needs, [3]);
    assert_eq!(dag.children[3], [1, 2]);
    assert_eq!(names(&dag, &dag.roots()), ["a", "e"]);
    assert_eq!(names(&dag, &dag.leaves()), ["d", "e"]);
    let order = dag.topological_order();
    assert_eq!(order.len(), 5);
    let position = |name: &str| {
        order
            .iter()
            .position(|&i| dag.nodes[i].name == name)
            .unwrap()
    };
    for (i, node) in dag.nodes.iter().enumerate() {
        for &need in &node.needs {
            assert!(position(&dag.nodes[need].name) < position(&dag.nodes[i].name));
        }
    }
}

#[test]
fn durations_and_retries() {
    let dag = ok("name: d
nodes:
  a: {driver: noop, timeout: 250ms, retries: 3}
  b: {driver: noop, timeout: 1.5m, retries: {max: 1, max_backoff: 10s}}
  c: {driver: noop, timeout: 5, retries: {backoff: 2s}}
  d: {driver: noop, timeout: 2.5}
  e: {driver: noop, timeout: 1h}
");
    let timeouts: Vec<_> = dag.nodes.iter().map(|n| n.timeout.unwrap()).collect();
    assert_eq!(
        timeouts,
        [
            Duration::from_millis(250),
            Duration::from_secs(90),
            Duration::from_secs(5),
            Duration::from_millis(2500),
            Duration::from_secs(3600)
        ]
    );
    assert_eq!(dag.nodes[0].retries.max, 3);
    assert_eq!(dag.nodes[0].retries.backoff, Duration::from_secs(1));
    assert_eq!(dag.nodes[1].retries.max_backoff, Duration::from_secs(10));
    assert_eq!(dag.nodes[2].retries.max, 0);
    assert_eq!(dag.nodes[2].retries.backoff, Duration::from_secs(2));
}

#[test]
fn bad_durations_and_retries() {
    let found = problems(
        "name: d
nodes:
  a: {driver: noop, timeout: 3 days}
  b: {driver: noop, retries: {max: 101, backoff: soon}}
  c: {driver: noop, timeout: 0s, retries: {max: -1}}
  e: {driver: noop, timeout: -5, retries: {max: 1, jitter: 1s}}
  f: {driver: noop, timeout: [1], retries: x}
",
    );
    assert_eq!(
        found,
        [
            "node `a`, field `timeout`: invalid duration `3 days`: expected a number with a unit (`ms`, `s`, `m`, `h`), e.g. `250ms`, `30s`, `1.5m`",
            "node `b`, field `retries.backoff`: invalid duration `soon`: expected a number with a unit (`ms`, `s`, `m`, `h`), e.g. `250ms`, `30s`, `1.5m`",
            "node `c`, field `retries.max`: the number of retries must not be negative",
            "node `e`, field `timeout`: a duration must not be negative",
            "node `e`, field `retries`: unknown field `jitter`, expected one of `max`, `backoff`, `max_backoff`",
            "node `f`, field `timeout`: expected a duration such as `30s` or a number of seconds, found a list",
            "node `f`, field `retries`: expected a mapping such as `{max: 2, backoff: 1s}`, found a string",
            "node `b`, field `retries.max`: 101 retries is too many (at most 100)",
            "node `c`, field `timeout`: the timeout must be greater than zero",
        ]
    );
}

#[test]
fn secrets_are_names_to_references() {
    let dag = ok(
        "name: x\nnodes:\n  a: {driver: shell, artifact: 'true', secrets: {DB_PASS: 'vault:secret/data/app#password'}}\n",
    );
    assert_eq!(
        dag.nodes[0].secrets,
        [(
            "DB_PASS".to_owned(),
            "vault:secret/data/app#password".to_owned()
        )]
    );
    let found = problems(
        "name: x\nnodes:\n  a: {driver: shell, secrets: [x]}\n  b: {driver: shell, secrets: {A: [1], B-C: 'vault:kv/x#k'}}\n",
    );
    assert_eq!(
        found,
        [
            "node `a`, field `secrets`: expected a mapping of names to references such as `{DB_PASS: \"vault:secret/data/app#password\"}`, found a list",
            "node `b`, field `secrets.A`: expected a reference such as `vault:secret/data/app#password`, found a list",
            "node `b`, field `secrets.B-C`: invalid secret name `B-C`: use letters, digits and `_`, not starting with a digit (an environment variable name such as `DB_PASS`)",
        ]
    );
}

#[test]
fn unknown_field_names_node_and_field() {
    let found = problems("name: x\nnodes:\n  fetch:\n    driver: shell\n    timout: 30s\n");
    assert_eq!(
        found,
        [
            "node `fetch`: unknown field `timout`, expected one of `driver`, `artifact`, `args`, `env`, `needs`, `outputs`, `timeout`, `retries`, `pool`, `grants`, `secrets`, `on_interrupt`"
        ]
    );
    let found = problems(r#"{"name": "x", "nodez": {}, "nodes": {"a": {"driver": "noop"}}}"#);
    assert_eq!(
        found,
        ["top level: unknown field `nodez`, expected one of `name`, `nodes`, `on_interrupt`"]
    );
}

#[test]
fn missing_driver_and_wrong_types() {
    let found = problems(
        "name: x
nodes:
  a: {artifact: run.sh}
  b: {driver: shell, args: {k: v}, env: [A], needs: fetch, outputs: [{x: 1}]}
  c: {driver: ''}
  d: [driver]
  e: {driver: shell, env: {A: [1]}, args: [ok, [nested]]}
",
    );
    assert_eq!(
        found,
        [
            "node `a`: missing field `driver`",
            "node `b`, field `args`: expected a list of strings, found a mapping",
            "node `b`, field `env`: expected a mapping of names to values, found a list",
            "node `b`, field `needs`: expected a list of strings, found a string",
            "node `b`, field `outputs[0]`: expected a string, found a mapping",
            "node `c`, field `driver`: the driver must not be empty",
            "node `d`: expected a mapping of node fields, found a list",
            "node `e`, field `env.A`: expected a string, found a list",
            "node `e`, field `args[1]`: expected a string, found a list",
        ]
    );
}

#[test]
fn scalars_are_taken_as_strings() {
    let dag =
        ok("name: s\nnodes:\n  a: {driver: noop, args: [--depth, 1, 2.5, true], env: {N: 3}}\n");
    assert_eq!(dag.nodes[0].args, ["--depth", "1", "2.5", "true"]);
    assert_eq!(dag.nodes[0].env, [("N".to_string(), "3".to_string())]);
}

#[test]
fn top_level_problems() {
    assert_eq!(
        problems("nodes:\n  a: {driver: noop}\n"),
        ["top level: missing field `name`"]
    );
    assert_eq!(
        problems("name: x\nnodes: {}\n"),
        ["field `nodes`: the DAG has no nodes"]
    );
    assert_eq!(
        problems("name: x\nnodes: [a, b]\n"),
        [
            "field `nodes`: expected a mapping of node names to nodes, found a list",
            "field `nodes`: the DAG has no nodes"
        ]
    );
    assert_eq!(
        problems("name: ''\nnodes: {a: {driver: noop}}\n"),
        ["field `name`: the DAG's name must not be empty"]
    );
}

#[test]
fn syntax_errors_give_line_and_column() {
    let found = problems("name: x\nnodes:\n  a:\n    driver: shell\n   args: [1]\n");
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("line 5, column 4: invalid YAML: "),
        "{found:?}"
    );
    let found =
        problems("{\n  \"name\": \"x\",\n  \"nodes\": {\"a\": {\"driver\": \"shell\",}}\n}");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0], "line 3, column 37: invalid JSON: trailing comma");
    let found = problems("[1, 2]");
    assert!(found[0].starts_with("line 1, column 1: "), "{found:?}");
    assert_eq!(problems("")[0], "file: the file is empty");
}

#[test]
fn needs_are_checked() {
    let found = problems(
        "name: x
nodes:
  fetch: {driver: shell}
  test: {driver: shell, needs: [fetsh, test]}
  other: {driver: shell, needs: [zzzzzz]}
",
    );
    assert_eq!(
        found,
        [
            "node `test`, field `needs`: no node named `fetsh` (did you mean `fetch`?)",
            "node `test`, field `needs`: node `test` needs itself",
            "node `other`, field `needs`: no node named `zzzzzz`",
        ]
    );
}

#[test]
fn unknown_drivers_get_the_whole_string() {
    let seen = std::cell::RefCell::new(Vec::new());
    let only_shell_1 = |d: &str| {
        seen.borrow_mut().push(d.to_owned());
        d == "shell@1"
    };
    let e = parse(
        "name: x\nnodes:\n  a: {driver: shell@1}\n  b: {driver: shell@2}\n  c: {driver: shell@1}\n",
        None,
        &only_shell_1,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "node `b`, field `driver`: unknown driver `shell@2`"
    );
    assert_eq!(
        *seen.borrow(),
        ["shell@1", "shell@2"],
        "asked once per driver"
    );
}

#[test]
fn names_are_checked() {
    let found = problems(
        r#"{"name": "x", "nodes": {"": {"driver": "noop"}, "a b": {"driver": "noop"}, "c{d": {"driver": "noop"}, "ok.name-1_x": {"driver": "noop"}, "web:create": {"driver": "noop"}}}"#,
    );
    assert_eq!(
        found,
        [
            "nodes[0]: the node has an empty name",
            "node `a b`: a node name must not contain whitespace, control characters, `{` or `}`",
            "node `c{d`: a node name must not contain whitespace, control characters, `{` or `}`",
        ]
    );
}

#[test]
fn names_with_colons_are_referenced_both_ways() {
    // gorchestrator's TOSCA client named nodes `template:operation`.
    let dag = ok(
        r#"{"name": "x", "digraph": [0, 1, 1, 0, 0, 0, 0, 0, 0], "nodes": [
            {"id": 0, "name": "db:start", "engine": "nil"},
            {"id": 1, "name": "web:create", "engine": "nil", "args": ["DB=get_attribute db:start:ip"]},
            {"id": 2, "name": "web:configure", "engine": "nil", "args": ["${{ nodes.db:start.outputs.ip }}"]}]}"#,
    );
    let names: Vec<&str> = dag.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["db:start", "web:create", "web:configure"]);
    let found = problems(
        r#"{"name": "x", "digraph": [0, 0, 0, 0], "nodes": [
            {"id": 0, "name": "db:start", "engine": "nil"},
            {"id": 1, "name": "web", "engine": "nil", "args": ["DB=get_attribute db:start:ip"]}]}"#,
    );
    assert_eq!(
        found,
        [
            "node `web`, field `args[0]`: `get_attribute db:start:ip` refers to `db:start`, which is not an upstream node of `web`"
        ]
    );
}

#[test]
fn names_that_would_leave_the_run_folder_are_refused() {
    let found = problems(
        r#"{"name": "x", "nodes": {"..": {"driver": "noop"}, ".": {"driver": "noop"}, "a/b": {"driver": "noop"}, "a..b": {"driver": "noop"}}}"#,
    );
    let rule =
        "a node name must not be `.` or `..` nor contain `/`: it names the node's workspace folder";
    assert_eq!(
        found,
        [
            format!("node `..`: {rule}"),
            format!("node `.`: {rule}"),
            format!("node `a/b`: {rule}"),
        ]
    );
}

#[test]
fn duplicate_native_names() {
    let found =
        problems(r#"{"name": "x", "nodes": {"a": {"driver": "noop"}, "a": {"driver": "noop"}}}"#);
    assert_eq!(
        found,
        ["nodes[1]: duplicate node name `a`, also at nodes[0]"]
    );
    let found = problems("name: x\nnodes:\n  a: {driver: noop}\n  a: {driver: shell}\n");
    assert_eq!(
        found,
        ["nodes[1]: duplicate node name `a`, also at nodes[0]"]
    );
    let found = problems("name: x\nnodes:\n  a: {driver: noop, driver: shell}\n");
    assert_eq!(found, ["node `a`: duplicate field `driver`"]);
}

#[test]
fn outputs_and_env_names_are_checked() {
    let found = problems(
        r#"{"name": "x", "nodes": {"a": {"driver": "noop", "outputs": ["ok", "o k", "ok"], "env": {"": "1", "A=B": "2"}}}}"#,
    );
    assert_eq!(
        found,
        [
            "node `a`, field `outputs[1]`: invalid output name `o k`: it must not be empty nor contain whitespace, control characters, `:`, `{` or `}`",
            "node `a`, field `outputs[2]`: duplicate output `ok`",
            "node `a`, field `env`: invalid environment variable name ``",
            "node `a`, field `env`: invalid environment variable name `A=B`",
        ]
    );
}

#[test]
fn cycle_is_printed_in_order() {
    let found = problems(
        "name: x
nodes:
  a: {driver: noop, needs: [c]}
  b: {driver: noop, needs: [a]}
  c: {driver: noop, needs: [b]}
  d: {driver: noop, needs: [c]}
",
    );
    assert_eq!(found, ["graph: cycle: a -> b -> c -> a"]);
}

#[test]
fn one_problem_per_cycle() {
    let found = problems(
        "name: x
nodes:
  start: {driver: noop}
  p: {driver: noop, needs: [start, q]}
  q: {driver: noop, needs: [p]}
  r: {driver: noop, needs: [q, t]}
  s: {driver: noop, needs: [r]}
  t: {driver: noop, needs: [s]}
",
    );
    assert_eq!(
        found,
        [
            "graph: cycle: p -> q -> p",
            "graph: cycle: r -> s -> t -> r"
        ]
    );
}

#[test]
fn a_dense_cycle_is_reported() {
    let found = problems(
        "name: x
nodes:
  a: {driver: noop, needs: [b, c, d]}
  b: {driver: noop, needs: [a, c, d]}
  c: {driver: noop, needs: [a, b, d]}
  d: {driver: noop, needs: [a, b, c]}
",
    );
    assert_eq!(found, ["graph: cycle: a -> b -> a"]);
}

#[test]
fn output_references_are_checked() {
    let found = problems(
        r#"
name: refs
nodes:
  a:
    driver: shell
    outputs: [ip]
    artifact: 'echo ${{ nodes.b.outputs.x }}'
  b:
    driver: shell
    needs: [a]
    args: ['${{ nodes.c.outputs.ip }}', '${{ nodes.a.outputs.ip }}', '--x=${{ nodes.zz.outputs.ip }}']
    env: {IP: '${{ nodes.a.outputs.nope }}', SELF: '${{ nodes.b.outputs.x }}', BAD: '${{ a.ip }}'}
  c:
    driver: shell
    outputs: [ip]
    artifact: 'echo ${{ nodes.a.outputs.ip'
"#,
    );
    assert_eq!(
        found,
        [
            "node `b`, field `args[2]`: `${{ nodes.zz.outputs.ip }}` refers to `zz`, which is not a node",
            "node `b`, field `env.IP`: `${{ nodes.a.outputs.nope }}` refers to output `nope`, which `a` does not declare (it declares `ip`)",
            "node `b`, field `env.SELF`: `${{ nodes.b.outputs.x }}` refers to node `b` itself",
            "node `b`, field `env.BAD`: malformed output reference `${{ a.ip }}`: expected `${{ nodes.NAME.outputs.KEY }}`",
            "node `c`, field `artifact`: `${{` at byte 5 has no closing `}}`",
            "node `a`, field `artifact`: `${{ nodes.b.outputs.x }}` refers to `b`, which is not an upstream node of `a`",
            "node `b`, field `args[0]`: `${{ nodes.c.outputs.ip }}` refers to `c`, which is not an upstream node of `b`",
        ]
    );
}

#[test]
fn transitive_references_are_fine() {
    let dag = ok(r#"
name: chain
nodes:
  a: {driver: shell, outputs: [v]}
  side: {driver: shell}
  b: {driver: shell, needs: [a]}
  c: {driver: shell, needs: [b, side], args: ['x=get_attribute a:v'], env: {V: '${{ nodes.a.outputs.v }}${{ nodes.side.outputs.any }}'}}
"#);
    assert_eq!(dag.nodes[3].needs, [1, 2]);
}

#[test]
fn a_file_with_three_faults_gives_three_problems() {
    let found = problems(
        "name: x
nodes:
  fetch: {driver: shell, timeout: soon}
  test: {driver: rocket, needs: [fetch]}
  deploy: {driver: shell, needs: [tset]}
",
    );
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found[0].starts_with("node `fetch`, field `timeout`: invalid duration `soon`"));
    assert_eq!(
        found[1],
        "node `deploy`, field `needs`: no node named `tset` (did you mean `test`?)"
    );
    assert_eq!(
        found[2],
        "node `test`, field `driver`: unknown driver `rocket`"
    );
}

#[test]
fn dag_error_lists_every_problem_and_serializes() {
    let e = parse(
        "name: x\nnodes:\n  a: {driver: rocket, needs: [b]}\n",
        None,
        &drivers,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "node `a`, field `needs`: no node named `b`\nnode `a`, field `driver`: unknown driver `rocket`"
    );
    let json = serde_json::to_value(&e.problems).unwrap();
    assert_eq!(
        json[1],
        serde_json::json!({"location": "node `a`, field `driver`", "message": "unknown driver `rocket`"})
    );
}

const GORCH: &str = r#"{
  "name": "Pipeline",
  "state": 0,
  "digraph": [
    0, 1, 1, 0,
    0, 0, 0, 1,
    0, 0, 0, 1,
    0, 0, 0, 0
  ],
  "nodes": [
    {"id": 0, "name": "provision", "engine": "toscassh", "target": "cloud", "artifact": "./provision.sh", "args": null,
     "output": {"ip": "", "network": ""}},
    {"id": 1, "name": "configure", "engine": "sleep", "artifact": "conf.sh",
     "args": ["address=get_attribute provision:ip", "get_attribute provision:network", "--plain"], "output": null},
    {"id": 2, "name": "wait", "state": 0, "engine": "nil", "artifact": "", "args": [], "output": null, "extra": true},
    {"id": 3, "name": "report", "engine": "toscassh", "target": "", "artifact": "report.sh", "args": null, "output": {"done": ""}}
  ]
}"#;

#[test]
fn gorchestrator_format() {
    let dag = parse(GORCH, None, &drivers).unwrap();
    assert_eq!(dag.format, SourceFormat::Gorchestrator);
    assert_eq!(dag.name, "Pipeline");
    let names: Vec<&str> = dag.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["provision", "configure", "wait", "report"]);
    let p = &dag.nodes[0];
    assert_eq!(p.driver, "toscassh");
    assert_eq!(p.pool.as_deref(), Some("cloud"));
    assert_eq!(p.outputs, ["ip", "network"]);
    assert!(p.args.is_empty());
    assert_eq!(p.id, Some(0));
    assert_eq!(dag.nodes[1].args[0], "address=get_attribute provision:ip");
    assert_eq!(dag.nodes[1].outputs, Vec::<String>::new());
    assert_eq!(dag.nodes[2].driver, "noop", "engine nil is noop");
    assert_eq!(dag.nodes[3].pool, None);
    assert_eq!(dag.nodes[1].needs, [0]);
    assert_eq!(dag.nodes[2].needs, [0]);
    assert_eq!(dag.nodes[3].needs, [1, 2]);
    assert_eq!(dag.children, [vec![1, 2], vec![3], vec![3], vec![]]);
    assert_eq!(dag.nodes[3].id, Some(3));
    assert_eq!(parse_gorchestrator(GORCH, None, &drivers), Ok(dag));
}

#[test]
fn gorchestrator_get_attribute_must_be_upstream() {
    let text = GORCH.replace("--plain", "x=get_attribute report:done");
    assert_eq!(
        problems(&text),
        [
            "node `configure`, field `args[2]`: `get_attribute report:done` refers to `report`, which is not an upstream node of `configure`"
        ]
    );
    let text = GORCH.replace("--plain", "get_attribute provision");
    assert_eq!(
        problems(&text),
        [
            "node `configure`, field `args[2]`: malformed `get_attribute provision`: expected `get_attribute NAME:KEY`"
        ]
    );
}

fn gorch(digraph: &str, nodes: &[(&str, i64)]) -> String {
    let nodes: Vec<String> = nodes
        .iter()
        .map(|(name, id)| format!(r#"{{"id": {id}, "name": "{name}", "engine": "nil", "artifact": "", "args": null, "output": null}}"#))
        .collect();
    format!(
        r#"{{"name": "g", "state": 0, "digraph": [{digraph}], "nodes": [{}]}}"#,
        nodes.join(", ")
    )
}

#[test]
fn gorchestrator_matrix_size() {
    assert_eq!(
        problems(&gorch("0, 1, 0, 0, 0", &[("a", 0), ("b", 1)])),
        ["digraph: has 5 cells, which is not a perfect square; 2 nodes need 4 cells (2×2)"]
    );
    assert_eq!(
        problems(&gorch("0, 1, 0, 0, 0, 0, 0, 0, 0", &[("a", 0), ("b", 1)])),
        ["digraph: is a 3×3 matrix (9 cells) but there are 2 nodes, which need 2×2"]
    );
    assert_eq!(
        problems(r#"{"name": "g", "digraph": null, "nodes": [{"name": "a", "engine": "nil"}]}"#),
        ["digraph: expected a list of 0s and 1s, found null"]
    );
}

#[test]
fn gorchestrator_cells_and_self_loops() {
    assert_eq!(
        problems(&gorch("0, 2, \"1\", 1", &[("a", 0), ("b", 1)])),
        [
            "digraph[1] (row 0, column 1): expected 0 or 1, found 2",
            "digraph[2] (row 1, column 0): expected 0 or 1, found \"1\"",
            "digraph[3] (row 1, column 1): self-loop: node `b` must finish before itself",
        ]
    );
}

#[test]
fn gorchestrator_duplicates() {
    assert_eq!(
        problems(&gorch(
            "0,0,0, 0,0,0, 0,0,0",
            &[("a", 0), ("b", 0), ("a", 2)]
        )),
        [
            "node `b`, field `id`: duplicate id 0, also at nodes[0]",
            "nodes[2]: duplicate node name `a`, also at nodes[0]",
        ]
    );
}

#[test]
fn gorchestrator_cycle() {
    // a -> b -> c -> a, c -> d.
    let digraph = "0,1,0,0, 0,0,1,0, 1,0,0,1, 0,0,0,0";
    assert_eq!(
        problems(&gorch(digraph, &[("a", 0), ("b", 1), ("c", 2), ("d", 3)])),
        ["graph: cycle: a -> b -> c -> a"]
    );
}

#[test]
fn gorchestrator_node_problems() {
    let text = r#"{"name": "g", "digraph": [0,0,0,0], "nodes": [
        {"id": "zero", "name": "a", "artifact": 3, "args": "x", "output": ["k"]},
        {"id": 1, "name": "", "engine": "ansible", "target": 5}]}"#;
    assert_eq!(
        problems(text),
        [
            "node `a`, field `engine`: missing engine (use `nil` for a node that does nothing)",
            "node `a`, field `artifact`: expected a string, found an integer",
            "node `a`, field `args`: expected a list of strings or null, found a string",
            "node `a`, field `output`: expected an object whose keys name the outputs, or null, found a list",
            "node `a`, field `id`: expected an integer, found a string",
            "nodes[1], field `target`: expected a string, found an integer",
            "nodes[1]: the node has an empty name",
            "nodes[1], field `driver`: unknown driver `ansible`",
        ]
    );
}

#[test]
fn format_specific_entry_points() {
    assert!(parse_gorchestrator(BUILD_JSON, None, &drivers).is_err());
    let e = parse_native(GORCH, None, &drivers).unwrap_err();
    assert!(
        e.problems[0].message.starts_with("unknown field `digraph`"),
        "{e}"
    );
    assert_eq!(parse_native(BUILD_YAML, None, &drivers), Ok(ok(BUILD_JSON)));
}

#[test]
fn rendering() {
    let dag = ok(r#"{"name": "it's \"q\"", "nodes": {
        "say\"hi\"": {"driver": "shell"},
        "a<b>#&": {"driver": "noop", "needs": ["say\"hi\""]},
        "back\\slash": {"driver": "shell@1", "needs": ["say\"hi\"", "a<b>#&"]}}}"#);
    let dot = to_dot(&dag);
    assert_eq!(
        dot,
        r#"digraph "it's \"q\"" {
  node [shape=box];
  n0 [label="say\"hi\"\nshell"];
  n1 [label="a<b>#&\nnoop"];
  n2 [label="back\\slash\nshell@1"];
  n0 -> n1;
  n0 -> n2;
  n1 -> n2;
}
"#
    );
    let mermaid = to_mermaid(&dag);
    assert_eq!(
        mermaid,
        r#"---
title: 'it''s "q"'
---
flowchart TD
  n0["say#quot;hi#quot;<br/>shell"]
  n1["a#lt;b#gt;#35;#amp;<br/>noop"]
  n2["back\slash<br/>shell@1"]
  n0 --> n1
  n0 --> n2
  n1 --> n2
"#
    );
}

/// A native JSON DAG of `layers` × `width` nodes, each needing two nodes of
/// the layer before, every 97th referencing an output two layers up.
pub(crate) fn layered_native_json(layers: usize, width: usize) -> String {
    let mut text = String::with_capacity(layers * width * 120);
    text.push_str("{\"name\": \"layered\", \"nodes\": {");
    for layer in 0..layers {
        for i in 0..width {
            let n = layer * width + i;
            if n > 0 {
                text.push(',');
            }
            text.push_str(&format!(
                "\n\"n{n}\": {{\"driver\": \"shell\", \"outputs\": [\"o\"]"
            ));
            if layer > 0 {
                let a = (layer - 1) * width + i;
                let b = (layer - 1) * width + (i + 1) % width;
                text.push_str(&format!(", \"needs\": [\"n{a}\", \"n{b}\"]"));
            }
            if layer > 1 && n.is_multiple_of(97) {
                let up = (layer - 2) * width + (i + 1) % width;
                text.push_str(&format!(
                    ", \"args\": [\"${{{{ nodes.n{up}.outputs.o }}}}\"]"
                ));
            }
            text.push('}');
        }
    }
    text.push_str("\n}}");
    text
}

/// gorchestrator JSON with the same shape as [`layered_native_json`].
pub(crate) fn layered_gorchestrator_json(layers: usize, width: usize) -> String {
    let n = layers * width;
    let mut text = String::with_capacity(n * n * 2 + n * 120);
    text.push_str("{\"name\": \"layered\", \"state\": 0, \"digraph\": [");
    for row in 0..n {
        let (layer, i) = (row / width, row % width);
        for col in 0..n {
            let edge = layer + 1 < layers
                && col / width == layer + 1
                && (col % width == i || (col % width + 1) % width == i);
            if row + col > 0 {
                text.push(',');
            }
            text.push(if edge { '1' } else { '0' });
        }
        text.push('\n');
    }
    text.push_str("], \"nodes\": [");
    for k in 0..n {
        if k > 0 {
            text.push(',');
        }
        text.push_str(&format!(
            "\n{{\"id\": {k}, \"name\": \"n{k}\", \"engine\": \"shell\", \"artifact\": \"run.sh\", \"args\": null, \"output\": {{\"o\": \"\"}}}}"
        ));
    }
    text.push_str("]}");
    text
}

#[test]
fn a_100k_node_layered_dag_validates() {
    let text = layered_native_json(1000, 100);
    let dag = ok(&text);
    assert_eq!(dag.nodes.len(), 100_000);
    let edges: usize = dag.children.iter().map(Vec::len).sum();
    assert_eq!(edges, 999 * 100 * 2);
    assert_eq!(dag.roots().len(), 100);
    assert_eq!(dag.topological_order().len(), 100_000);
    assert_eq!(dag.index_of("n99999"), Some(99_999));
}

#[test]
fn a_large_cyclic_dag_reports_the_cycle() {
    // A long chain closed into a cycle: deep enough to overflow a recursive walk.
    let n = 50_000;
    let mut text = String::from("name: ring\nnodes:\n");
    for i in 0..n {
        text.push_str(&format!(
            "  n{i}: {{driver: noop, needs: [n{}]}}\n",
            (i + n - 1) % n
        ));
    }
    let found = problems(&text);
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("graph: cycle: n0 -> n1 -> n2 -> "));
    assert!(found[0].ends_with(" -> n49999 -> n0"));
}

#[test]
fn layered_gorchestrator_matches_native() {
    let g = ok(&layered_gorchestrator_json(4, 5));
    let n = ok(&layered_native_json(4, 5));
    assert_eq!(g.children, n.children);
    for (a, b) in g.nodes.iter().zip(&n.nodes) {
        assert_eq!(a.needs, b.needs);
    }
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn seeds() -> Vec<String> {
        vec![
            BUILD_YAML.to_owned(),
            BUILD_JSON.to_owned(),
            GORCH.to_owned(),
            gorch("0,1,0,0", &[("a", 0), ("b", 1)]),
        ]
    }

    const TOKENS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\"",
        "'",
        "\n",
        " ",
        "-",
        "${{",
        "}}",
        "nodes.",
        ".outputs.",
        "get_attribute ",
        "=",
        "1",
        "0",
        "-1",
        "1e999",
        "null",
        "~",
        "&a",
        "*a",
        "!tag",
        "<<: ",
        "digraph",
        "needs",
        "driver",
        "\u{feff}",
        "é",
        "\t",
        "#",
        "99999999999999999999999",
    ];

    /// A random DAG (needs point to earlier nodes, so it is acyclic), where
    /// every node references one output of a random other node.
    fn random_dag() -> impl Strategy<Value = (Vec<Vec<usize>>, Vec<usize>)> {
        (2usize..14).prop_flat_map(|n| {
            let needs = (0..n)
                .map(|i| proptest::collection::vec(0..i.max(1), 0..3.min(i + 1)))
                .collect::<Vec<_>>();
            let refs = proptest::collection::vec(0..n, n);
            (needs, refs)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        /// The pruned upstream search agrees with a brute-force closure.
        #[test]
        fn upstream_checks_match_brute_force((needs, refs) in random_dag()) {
            let n = needs.len();
            // Names in reverse so that file order and need order differ.
            let name = |i: usize| format!("n{}", n - i);
            let mut text = String::from("name: r\nnodes:\n");
            for i in 0..n {
                let needs: Vec<String> = needs[i].iter().filter(|&&j| j < i).map(|&j| name(j)).collect();
                text.push_str(&format!(
                    "  {}: {{driver: noop, needs: [{}], args: ['${{{{ nodes.{}.outputs.o }}}}']}}\n",
                    name(i), needs.join(", "), name(refs[i])
                ));
            }
            let mut upstream = vec![vec![false; n]; n];
            for i in 0..n {
                for &j in needs[i].iter().filter(|&&j| j < i) {
                    upstream[i][j] = true;
                    let above = upstream[j].clone();
                    for (k, is_upstream) in above.into_iter().enumerate() {
                        upstream[i][k] |= is_upstream;
                    }
                }
            }
            let expected: Vec<String> = (0..n)
                .filter(|&i| refs[i] != i && !upstream[i][refs[i]])
                .map(|i| format!(
                    "node `{0}`, field `args[0]`: `${{{{ nodes.{1}.outputs.o }}}}` refers to `{1}`, which is not an upstream node of `{0}`",
                    name(i), name(refs[i])
                ))
                .collect();
            let found: Vec<String> = match parse(&text, None, &drivers) {
                Ok(_) => Vec::new(),
                Err(e) => e.problems.iter().map(ToString::to_string).filter(|p| !p.contains("itself")).collect(),
            };
            prop_assert_eq!(found, expected);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn parse_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse(&text, None, &drivers);
        }

        #[test]
        fn parse_never_panics_on_mutated_files(
            seed in 0usize..4,
            edits in proptest::collection::vec((any::<proptest::sample::Index>(), 0usize..4, 0usize..TOKENS.len()), 1..6),
        ) {
            let mut text = seeds()[seed].clone();
            for (at, kind, token) in edits {
                let mut at = at.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                match kind {
                    0 => text.insert_str(at, TOKENS[token]),
                    1 => {
                        let mut end = (at + token + 1).min(text.len());
                        while !text.is_char_boundary(end) {
                            end -= 1;
                        }
                        text.replace_range(at..end, "");
                    }
                    2 => {
                        let mut end = (at + 1).min(text.len());
                        while !text.is_char_boundary(end) {
                            end += 1;
                        }
                        text.replace_range(at..end, TOKENS[token]);
                    }
                    _ => text = text.replacen(TOKENS[token], TOKENS[(token + 1) % TOKENS.len()], 1),
                }
            }
            if let Err(e) = parse(&text, None, &drivers) {
                prop_assert!(!e.problems.is_empty());
            }
        }
    }
}

#[test]
fn grants_narrow_a_node_and_bad_grants_are_named() {
    let dag = ok(
        "name: x\nnodes:\n  a: {driver: shell, artifact: 'true', grants: {exec: [sh], network: false, container: false, memory_mib: 512, processes: 32}}\n",
    );
    let grants = dag.nodes[0].grants.as_ref().expect("grants");
    assert_eq!(grants.exec.as_deref(), Some(&["sh".to_string()][..]));
    assert_eq!(grants.network, Some(false));
    assert_eq!(grants.container, Some(false));
    assert_eq!(grants.memory_mib, Some(512));
    assert_eq!(grants.processes, Some(32));
    let found = problems(
        "name: x\nnodes:\n  a: {driver: shell, grants: {network: yes please, container: no thanks, disk: 1, memory_mib: 0, processes: lots}}\n",
    );
    assert_eq!(
        found,
        [
            "node `a`, field `grants.network`: expected a boolean, found a string",
            "node `a`, field `grants.container`: expected a boolean, found a string",
            "node `a`, field `grants`: unknown field `disk`, expected one of `exec`, `network`, `container`, `memory_mib`, `processes`",
            "node `a`, field `grants.memory_mib`: a limit must be above 0",
            "node `a`, field `grants.processes`: expected a whole number, found a string",
        ]
    );
}

/// The "billion laughs" of YAML: 6,000 aliases to a list of 6,000 items.
fn alias_bomb() -> String {
    let ones = vec!["1"; 6000].join(",");
    let refs = vec!["*a"; 6000].join(",");
    format!("x: &a [{ones}]\ny: [{refs}]\nname: bomb\nnodes: {{a: {{driver: noop}}}}\n")
}

#[test]
fn yaml_aliases_are_refused_before_they_expand() {
    let text = alias_bomb();
    assert!(text.len() < 40_000);
    let started = std::time::Instant::now();
    let found = problems(&text);
    // Expanded, the tree has 36 million nodes: seconds and a gigabyte.
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("YAML aliases (`*name`) expand"),
        "{found:?}"
    );
}

#[test]
fn aliases_in_a_digraph_or_its_cells_are_budgeted_too() {
    let ones = vec!["1"; 6000].join(",");
    let refs = vec!["*a"; 6000].join(",");
    for text in [
        format!("x: &a [{ones}]\ndigraph: [{refs}]\n"),
        format!("x: &a [{ones}]\ndigraph: {{a: [{refs}]}}\n"),
    ] {
        let started = std::time::Instant::now();
        let found = problems(&text);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(
            found[0].contains("YAML aliases (`*name`) expand"),
            "{found:?}"
        );
    }
}

#[test]
fn anchor_free_yaml_with_stars_still_reads() {
    let dag = ok("name: globs\nnodes:\n  a:\n    driver: noop\n    args: ['*.txt', ls *]\n");
    assert_eq!(dag.nodes.len(), 1);
}

#[test]
fn an_alias_to_a_long_string_is_charged_its_length() {
    // Few items but each alias copies 20 KB: 200 MB expanded.
    let long = "x".repeat(20_000);
    let refs = vec!["*a"; 10_000].join(",");
    let text = format!("x: &a {long}\ny: [{refs}]\nname: bomb\nnodes: {{a: {{driver: noop}}}}\n");
    let found = problems(&text);
    assert!(
        found[0].contains("YAML aliases (`*name`) expand"),
        "{found:?}"
    );
}

/// Duplicate checks are set lookups: a node with 50,000 outputs, secrets and unknown fields is
/// read in linear time (with a search per entry, fuzzing measured 55 s for 20,000 outputs).
#[test]
fn many_outputs_secrets_and_fields_take_linear_time() {
    let n = 50_000;
    let list = |f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<Vec<_>>().join(", ");
    // Each list ends with a duplicate, so that every check is seen to run.
    let text = format!(
        "{{\"name\": \"big\", \"nodes\": {{\"a\": {{\"driver\": \"shell\", \"outputs\": [{}, \"o0\"], \
         \"secrets\": {{{}, \"S0\": \"vault:secret/data/x#k\"}}, {}}}}}}}",
        list(&|i| format!("\"o{i}\"")),
        list(&|i| format!("\"S{i}\": \"vault:secret/data/x#k\"")),
        list(&|i| format!("\"x{i}\": 1")),
    );
    let began = std::time::Instant::now();
    let found = problems(&text);
    assert_eq!(
        found.len(),
        n + 2,
        "an unknown field each, and the two duplicates"
    );
    assert!(
        found.iter().any(|p| p.contains("duplicate output `o0`"))
            && found.iter().any(|p| p.contains("duplicate secret `S0`")),
        "{:?}",
        &found[found.len() - 2..]
    );
    assert!(
        began.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        began.elapsed()
    );
}

#[test]
fn on_interrupt_is_a_nodes_own_or_else_the_dags() {
    let dag = ok(
        "name: x\non_interrupt: fail\nnodes:\n  a: {driver: noop}\n  b: {driver: noop, on_interrupt: rerun}\n",
    );
    assert_eq!(dag.nodes[0].on_interrupt, OnInterrupt::Fail);
    assert_eq!(dag.nodes[1].on_interrupt, OnInterrupt::Rerun);
    let dag = ok("name: x\nnodes:\n  a: {driver: noop}\n");
    assert_eq!(dag.nodes[0].on_interrupt, OnInterrupt::Rerun);
    let found = problems("name: x\nnodes:\n  a: {driver: noop, on_interrupt: retry}\n");
    assert_eq!(
        found,
        [
            "node `a`, field `on_interrupt`: `retry` is not a choice here: expected `rerun` or `fail`"
        ],
        "{found:?}"
    );
}
