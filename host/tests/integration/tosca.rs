//! `drover import tosca FILE` end to end: the real binary on gorchestrator's three TOSCA
//! fixtures (read where they are, beside the repository: `../shared/fixtures/`), checked
//! against what the templates say; the helloworld run at once and from the written DAG; and a
//! template with scripts, written by the test, run with inputs, properties and attributes
//! flowing between its nodes.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::{Drover, node, stderr, stdout};

/// gorchestrator's TOSCA fixtures. Not copied into the repository: the tests read them where
/// the team keeps them, `$DROVER_FIXTURES`, else `../shared/fixtures` beside the repository,
/// else `/work/shared/fixtures` (where a clone elsewhere still finds them).
fn fixtures() -> PathBuf {
    let beside = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures");
    let candidates: Vec<PathBuf> = match std::env::var_os("DROVER_FIXTURES") {
        Some(dir) => vec![PathBuf::from(dir)],
        None => vec![beside, PathBuf::from("/work/shared/fixtures")],
    };
    let found = candidates
        .iter()
        .map(|dir| dir.join("gorchestrator/tosca"))
        .find(|dir| dir.join("tosca_helloworld.yaml").is_file());
    let Some(dir) = found else {
        panic!(
            "the TOSCA fixtures are missing: expected gorchestrator's under gorchestrator/tosca/ in one of {candidates:?} \
             (the shared folder beside the repository; DROVER_FIXTURES overrides)"
        );
    };
    dir.canonicalize().unwrap()
}

fn fixture(name: &str) -> String {
    fixtures().join(name).to_str().unwrap().to_owned()
}

/// An import's result: exit code, the DAG (JSON), its node names in the order written, stderr.
struct Import {
    code: i32,
    dag: Value,
    order: Vec<String>,
    err: String,
}

/// Imports with `--format json`.
fn import_json(drover: &Drover, args: &[&str]) -> Import {
    let mut all = vec!["import", "tosca"];
    all.extend(args);
    all.extend(["--format", "json"]);
    let out = drover.run(&all);
    let text = stdout(&out);
    let (dag, order) = if out.status.success() {
        let dag = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        // serde_json's maps sort their keys; YAML's (JSON is YAML) keep the order written.
        let ordered: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let order = ordered["nodes"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect();
        (dag, order)
    } else {
        (Value::Null, Vec::new())
    };
    Import {
        code: out.status.code().unwrap(),
        dag,
        order,
        err: stderr(&out),
    }
}

fn needs(dag: &Value, name: &str) -> Vec<String> {
    match &dag["nodes"][name]["needs"] {
        Value::Null => Vec::new(),
        list => list
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect(),
    }
}

/// Checks every node's name, place and needs against `expected` (name, needs).
fn assert_graph(import: &Import, expected: &[(&str, &[&str])]) {
    let want: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    assert_eq!(import.order, want, "{:#}", import.dag);
    for (name, want) in expected {
        assert_eq!(
            needs(&import.dag, name),
            *want,
            "needs of `{name}` in {:#}",
            import.dag
        );
    }
}

#[test]
fn the_helloworld_becomes_one_noop_node_and_runs_end_to_end() {
    let drover = Drover::new();
    let hello = fixture("tosca_helloworld.yaml");
    // A Compute without operations: a node that runs nothing, named as gorchestrator's client did.
    let import = import_json(&drover, &[&hello]);
    assert_eq!(import.code, 0, "{}", import.err);
    let dag = &import.dag;
    assert_eq!(dag["name"], "tosca_helloworld");
    assert_graph(&import, &[("my_server:noop", &[])]);
    assert_eq!(dag["nodes"]["my_server:noop"]["driver"], "noop");
    assert_eq!(import.err, "", "nothing to warn about");

    // YAML by default, the same DAG.
    let out = drover.run(&["import", "tosca", &hello]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let yaml = stdout(&out);
    assert!(
        yaml.starts_with("# Imported from the TOSCA service template "),
        "{yaml}"
    );
    let as_yaml: Value = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(&as_yaml, dag);

    // Run at once, as `drover run` runs a file.
    let out = drover.run(&["import", "tosca", &hello, "--run", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let record: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(record["state"], "success", "{record:#}");
    let n = node(&record, "my_server:noop");
    assert_eq!(
        (n["state"].as_str(), n["state_code"].as_u64()),
        (Some("success"), Some(3))
    );

    // Or write it, and run and draw the file.
    let out = drover.run(&["import", "tosca", &hello, "-o", "hello.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "written to the file, not printed");
    let (code, record) = drover.record(&["run", "hello.yaml"]);
    assert_eq!(code, 0, "{record:#}");
    assert_eq!(node(&record, "my_server:noop")["state_code"], 3);
    let out = drover.run(&["graph", "hello.yaml", "--output", "mermaid"]);
    assert!(
        stdout(&out).contains("my_server:noop<br/>noop"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn wordpress_imports_in_the_order_its_template_says_once_given_its_password() {
    let drover = Drover::new();
    let wordpress = fixture("tosca_single_instance_wordpress.yaml");

    // Refused: one input has no default, and two constructs are not translated.
    let Import { code, err, .. } = import_json(&drover, &[&wordpress]);
    assert_eq!(code, 2, "{err}");
    for expected in [
        "cannot be imported (3 problems; the 2 marked (unsupported) are left out with --allow-unsupported, the others must be fixed)",
        "topology_template.inputs.db_root_pwd: input `db_root_pwd` is required and has no default",
        "imports[0]: cannot read `custom_types/wordpress.yaml`",
        "topology_template.outputs: outputs are not imported",
    ] {
        assert!(err.contains(expected), "no {expected:?} in:\n{err}");
    }
    drover.write("inputs.yaml", "db_root_pwd: s3cret\ncpus: 2\n");
    let Import { code, err, .. } = import_json(&drover, &[&wordpress, "--inputs", "inputs.yaml"]);
    assert_eq!(code, 2, "still unsupported constructs: {err}");
    assert!(!err.contains("db_root_pwd"), "{err}");

    let import = import_json(
        &drover,
        &[&wordpress, "--inputs", "inputs.yaml", "--allow-unsupported"],
    );
    let (code, dag, err) = (import.code, &import.dag, &import.err);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning: imports[0]: cannot read `custom_types/wordpress.yaml`")
            && err.contains("warning: topology_template.outputs: outputs are not imported"),
        "{err}"
    );
    assert!(
        err.contains("scripts are not found next to the template"),
        "{err}"
    );
    // Templates in file order; each one's operations as create, configure, start (the file
    // lists mysql_dbms's start before its configure); the first operation after what each
    // requirement names (`host`, and `database_endpoint` for wordpress); Compute `server` has no
    // operations.
    assert_graph(
        &import,
        &[
            (
                "wordpress:create",
                &["webserver:start", "mysql_database:configure"],
            ),
            ("wordpress:configure", &["wordpress:create"]),
            ("mysql_database:configure", &["mysql_dbms:start"]),
            ("mysql_dbms:create", &["server:noop"]),
            ("mysql_dbms:configure", &["mysql_dbms:create"]),
            ("mysql_dbms:start", &["mysql_dbms:configure"]),
            ("webserver:create", &["server:noop"]),
            ("webserver:start", &["webserver:create"]),
            ("server:noop", &[]),
        ],
    );
    let nodes = &dag["nodes"];
    assert_eq!(nodes["mysql_dbms:create"]["driver"], "shell");
    assert_eq!(
        nodes["mysql_dbms:create"]["artifact"],
        fixture("mysql/mysql_dbms_install.sh")
    );
    assert_eq!(
        nodes["mysql_dbms:create"]["env"],
        serde_json::json!({"db_root_password": "passw0rd"})
    );
    assert_eq!(nodes["mysql_dbms:configure"]["env"]["db_port"], "3366");
    assert_eq!(
        nodes["wordpress:configure"]["env"],
        serde_json::json!({"wp_db_name": "wordpress", "wp_db_user": "wp_user", "wp_db_password": "wp_pass"})
    );
    assert_eq!(nodes["server:noop"]["driver"], "noop");

    // Values the template does not take are refused, each named.
    drover.write("bad.yaml", "db_root_pwd: x\ncpus: 3\ndb_nmae: typo\n");
    let Import { code, err, .. } = import_json(
        &drover,
        &[&wordpress, "--inputs", "bad.yaml", "--allow-unsupported"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.yaml, db_nmae: the template has no input `db_nmae`"),
        "{err}"
    );
    assert!(
        err.contains("topology_template.inputs.cpus.constraints[0].valid_values: input `cpus` is 3: it must be one of 1, 2, 4, 8"),
        "{err}"
    );
}

#[test]
fn elk_imports_with_a_need_for_every_requirement() {
    let drover = Drover::new();
    let elk = fixture("tosca_elk.yaml");
    let Import { code, err, .. } = import_json(&drover, &[&elk]);
    assert_eq!(code, 2, "{err}");
    let at = "topology_template.node_templates";
    for expected in [
        "16 problems; all are unsupported constructs, which --allow-unsupported leaves out"
            .to_owned(),
        format!(
            "{at}.logstash.requirements[1].search_endpoint.relationship.interfaces: relationship operations"
        ),
        format!(
            "{at}.app_collectd.interfaces.Standard.configure.implementation: `collectd/config.py` is not a shell script"
        ),
        format!(
            "{at}.kibana.interfaces.Standard.configure.inputs.kibana_ip: `get_attribute`: `kibana_server` has no operation that runs, so nothing sets its attribute `private_address`"
        ),
        "imports[5]: cannot read `custom_types/rsyslog.yaml`".to_owned(),
    ] {
        assert!(err.contains(&expected), "no {expected:?} in:\n{err}");
    }

    let import = import_json(&drover, &[&elk, "--allow-unsupported"]);
    let (code, dag, err) = (import.code, &import.dag, &import.err);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.matches("(unsupported)").count(), 16, "{err}");
    // Custom requirement names (`database_connection`, `search_endpoint`, `log_endpoint`) order
    // as `host` does.
    assert_graph(
        &import,
        &[
            (
                "paypal_pizzastore:configure",
                &["nodejs:create", "mongo_db:create"],
            ),
            ("paypal_pizzastore:start", &["paypal_pizzastore:configure"]),
            ("nodejs:create", &["app_server:noop"]),
            ("mongo_db:create", &["mongo_dbms:start"]),
            ("mongo_dbms:create", &["mongo_server:noop"]),
            ("mongo_dbms:configure", &["mongo_dbms:create"]),
            ("mongo_dbms:start", &["mongo_dbms:configure"]),
            ("elasticsearch:create", &["elasticsearch_server:noop"]),
            ("elasticsearch:start", &["elasticsearch:create"]),
            (
                "logstash:create",
                &["logstash_server:noop", "elasticsearch:start"],
            ),
            ("logstash:start", &["logstash:create"]),
            (
                "kibana:create",
                &["kibana_server:noop", "elasticsearch:start"],
            ),
            ("kibana:configure", &["kibana:create"]),
            ("kibana:start", &["kibana:configure"]),
            (
                "app_collectd:create",
                &["app_server:noop", "logstash:start"],
            ),
            ("app_collectd:configure", &["app_collectd:create"]),
            ("app_collectd:start", &["app_collectd:configure"]),
            ("app_rsyslog:create", &["app_server:noop", "logstash:start"]),
            ("app_rsyslog:configure", &["app_rsyslog:create"]),
            ("app_rsyslog:start", &["app_rsyslog:configure"]),
            ("app_server:noop", &[]),
            ("mongo_server:noop", &[]),
            ("elasticsearch_server:noop", &[]),
            ("logstash_server:noop", &[]),
            ("kibana_server:noop", &[]),
        ],
    );
    let nodes = &dag["nodes"];
    // get_attribute became a reference to the Compute's node (nothing sets it: reported above).
    assert_eq!(
        nodes["kibana:configure"]["env"]["elasticsearch_ip"],
        "${{ nodes.elasticsearch_server:noop.outputs.private_address }}"
    );
    assert_eq!(
        nodes["paypal_pizzastore:configure"]["env"]["github_url"],
        "http://github.com/paypal/rest-api-sample-app-nodejs.git"
    );
    // The Python script `sh` would misread is left out.
    assert_eq!(nodes["app_collectd:configure"]["driver"], "noop");
    assert_eq!(nodes["app_rsyslog:configure"]["driver"], "shell");
}

/// A template in the shape of the fixtures, with the scripts they lack.
const SHOP: &str = r#"tosca_definitions_version: tosca_simple_yaml_1_3
metadata:
  template_name: shop
node_types:
  shop.nodes.Shop:
    derived_from: tosca.nodes.WebApplication
    properties:
      port: {type: integer, default: 8080}
    attributes:
      url: {type: string}
topology_template:
  inputs:
    greeting: {type: string, default: hello}
    workers: {type: integer, constraints: [{in_range: [1, 8]}]}
  node_templates:
    shop:
      type: shop.nodes.Shop
      properties:
        owner: {get_input: greeting}
      requirements:
        - host: box
        - database_endpoint: db
      interfaces:
        Standard:
          create:
            implementation: scripts/create.sh
            inputs:
              WORKERS: {get_input: workers}
          configure:
            implementation: scripts/configure.sh
            inputs:
              OWNER: {get_property: [SELF, owner]}
              CPUS: {get_property: [HOST, host, num_cpus]}
              TOKEN: {get_operation_output: [SELF, Standard, create, token]}
              URL: {concat: ["http://", {get_attribute: [db, private_address]}, ":", {get_property: [SELF, port]}, "/", {get_attribute: [SELF, tosca_name]}]}
          start:
            implementation: scripts/start.sh
            inputs:
              URL: {get_attribute: [SELF, url]}
    db:
      type: tosca.nodes.Compute
      interfaces:
        Standard:
          start: scripts/db.sh
    box:
      type: tosca.nodes.Compute
      capabilities:
        host:
          properties: {num_cpus: 4}
"#;

#[test]
fn a_template_with_scripts_runs_with_values_flowing_between_its_nodes() {
    let drover = Drover::new();
    std::fs::create_dir(drover.path("scripts")).unwrap();
    drover.write("shop.yaml", SHOP);
    drover.write(
        "scripts/create.sh",
        "echo \"creating for $WORKERS workers\"\necho token=t0k3n\n",
    );
    drover.write(
        "scripts/configure.sh",
        "echo \"owner=$OWNER cpus=$CPUS token=$TOKEN\"\necho \"url=$URL\"\n",
    );
    drover.write("scripts/start.sh", "echo \"serving $URL\"\necho url=$URL\n");
    drover.write(
        "scripts/db.sh",
        "echo private_address=10.1.2.3\necho public_address=192.0.2.3\necho networks=none\necho ports=none\necho ip_address=10.1.2.3\n",
    );
    drover.write("inputs.yaml", "workers: 3\n");

    // Without the required input, nothing runs.
    let out = drover.run(&["import", "tosca", "shop.yaml", "--run"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("input `workers` is required and has no default"),
        "{}",
        stderr(&out)
    );

    let out = drover.run(&[
        "import",
        "tosca",
        "shop.yaml",
        "--inputs",
        "inputs.yaml",
        "--run",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let record: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(record["state"], "success", "{record:#}");
    assert_eq!(record["name"], "shop");
    let log = stderr(&out);
    for line in [
        "[shop:create] creating for 3 workers",
        "[shop:configure] owner=hello cpus=4 token=t0k3n",
        "[shop:start] serving http://10.1.2.3:8080/shop",
    ] {
        assert!(log.lines().any(|l| l == line), "no {line:?} in:\n{log}");
    }
    assert_eq!(node(&record, "shop:create")["outputs"]["token"], "t0k3n");
    assert_eq!(
        node(&record, "shop:configure")["outputs"]["url"],
        "http://10.1.2.3:8080/shop"
    );
    assert_eq!(
        node(&record, "shop:start")["outputs"]["url"],
        "http://10.1.2.3:8080/shop"
    );
    assert_eq!(
        node(&record, "db:start")["outputs"]["ip_address"],
        "10.1.2.3"
    );
    for name in [
        "shop:create",
        "shop:configure",
        "shop:start",
        "db:start",
        "box:noop",
    ] {
        assert_eq!(node(&record, name)["state_code"], 3, "{name}: {record:#}");
    }
    // The order the requirements make.
    let started = |name: &str| {
        node(&record, name)["started_at"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let finished = |name: &str| {
        node(&record, name)["finished_at"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(finished("db:start") <= started("shop:create"));
    assert!(finished("box:noop") <= started("shop:create"));
    assert!(finished("shop:configure") <= started("shop:start"));

    // A script that fails fails its node, and what comes after it does not run.
    drover.write("scripts/db.sh", "echo broken >&2\nexit 3\n");
    let (code, record) = drover.record(&[
        "import",
        "tosca",
        "shop.yaml",
        "--inputs",
        "inputs.yaml",
        "--run",
    ]);
    assert_eq!(code, 1, "{record:#}");
    assert_eq!(node(&record, "db:start")["state"], "failure");
    assert_eq!(node(&record, "db:start")["exit_code"], 3);
    assert_eq!(node(&record, "shop:create")["state"], "not-runnable");
}

#[test]
fn bad_invocations_are_refused() {
    let drover = Drover::new();
    let out = drover.run(&["import", "tosca", "missing.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read missing.yaml"),
        "{}",
        stderr(&out)
    );
    // Run options without --run.
    let out = drover.run(&[
        "import",
        "tosca",
        &fixture("tosca_helloworld.yaml"),
        "-j",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--run"), "{}", stderr(&out));
    // Not TOSCA.
    drover.write("dag.yaml", "name: x\nnodes: {a: {driver: noop}}\n");
    let out = drover.run(&["import", "tosca", "dag.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("top level: missing `tosca_definitions_version`: not a TOSCA file"),
        "{}",
        stderr(&out)
    );
}
