//! Unit tests of the TOSCA import: forms, requirements, each function, inputs, and every kind of
//! problem reported with where it is.

use std::path::Path;

use super::*;

/// A folder that does not exist: scripts are only named, never read.
const FOLDER: &str = "/nonexistent/tosca";

fn head(body: &str) -> String {
    format!("tosca_definitions_version: tosca_simple_yaml_1_0\n{body}")
}

fn import_with(body: &str, inputs: Option<&str>, allow: bool) -> Result<Imported, ImportError> {
    from_text(
        &head(body),
        Path::new(FOLDER),
        "test",
        inputs.map(|text| (text, "inputs.yaml")),
        allow,
    )
}

fn ok(body: &str) -> Imported {
    ok_with(body, None)
}

fn ok_with(body: &str, inputs: Option<&str>) -> Imported {
    match import_with(body, inputs, false) {
        Ok(imported) => imported,
        Err(ImportError::Refused { issues }) => panic!(
            "refused:\n{}",
            issues
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
        Err(e) => panic!("{e}"),
    }
}

/// The problems of a refused template, as `location: message`, warnings left out.
fn refused_with(body: &str, inputs: Option<&str>) -> Vec<String> {
    match import_with(body, inputs, false) {
        Ok(imported) => panic!("imported: {:#?}", imported.dag),
        Err(ImportError::Refused { issues }) => issues
            .iter()
            .filter(|i| i.kind != IssueKind::Warning)
            .map(ToString::to_string)
            .collect(),
        Err(e) => panic!("{e}"),
    }
}

fn refused(body: &str) -> Vec<String> {
    refused_with(body, None)
}

fn names(dag: &NativeDag) -> Vec<&str> {
    dag.nodes.0.iter().map(|(name, _)| name.as_str()).collect()
}

fn node<'a>(dag: &'a NativeDag, name: &str) -> &'a NativeNode {
    dag.node(name)
        .unwrap_or_else(|| panic!("no node `{name}` in {:?}", names(dag)))
}

fn needs<'a>(dag: &'a NativeDag, name: &str) -> Vec<&'a str> {
    node(dag, name).needs.iter().map(String::as_str).collect()
}

fn env<'a>(dag: &'a NativeDag, name: &str, key: &str) -> &'a str {
    node(dag, name)
        .env
        .get(key)
        .unwrap_or_else(|| panic!("no env `{key}` on `{name}`: {:?}", node(dag, name).env))
}

/// Checks the printed DAG with drover's own validation.
fn validate(imported: &Imported) -> crate::dag::Dag {
    let yaml = imported.dag.to_yaml("test.yaml").unwrap();
    crate::dag::parse_native(&yaml, None, &|d| matches!(d, "shell" | "noop"))
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

#[test]
fn operations_in_short_and_long_form_run_in_lifecycle_order() {
    let imported = ok(r#"
topology_template:
  node_templates:
    web:
      type: tosca.nodes.WebServer
      interfaces:
        Standard:
          start: scripts/start.sh
          configure:
          create:
            implementation: scripts/create.sh
            inputs:
              port: 8080
              verbose: true
"#);
    let dag = &imported.dag;
    assert_eq!(dag.name, "test");
    assert_eq!(names(dag), ["web:create", "web:configure", "web:start"]);
    let create = node(dag, "web:create");
    assert_eq!(create.driver, "shell");
    assert_eq!(create.artifact, "/nonexistent/tosca/scripts/create.sh");
    assert_eq!(env(dag, "web:create", "port"), "8080");
    assert_eq!(env(dag, "web:create", "verbose"), "true");
    // An operation without an implementation runs nothing, in its place.
    assert_eq!(node(dag, "web:configure").driver, "noop");
    assert_eq!(needs(dag, "web:configure"), ["web:create"]);
    assert_eq!(needs(dag, "web:start"), ["web:configure"]);
    assert!(needs(dag, "web:create").is_empty());
    // Not there yet: a warning, not a refusal.
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w.kind == IssueKind::Warning
                && w.message
                    .contains("scripts are not found next to the template")),
        "{:?}",
        imported.warnings
    );
    let validated = validate(&imported);
    assert_eq!(validated.nodes.len(), 3);
}

#[test]
fn requirements_in_every_form_order_first_after_last() {
    let dag = ok(r#"
topology_template:
  node_templates:
    app:
      type: tosca.nodes.WebApplication
      requirements:
        - host: web
        - dependency: {node: db, relationship: tosca.relationships.DependsOn}
        - database_endpoint: db
        - connects_to:
            node: cache
            relationship: {type: tosca.relationships.ConnectsTo}
      interfaces:
        Standard:
          create: a.sh
          start: b.sh
    web:
      type: tosca.nodes.WebServer
      requirements:
        - host: {node: server}
      interfaces:
        Standard:
          create: web.sh
          start: web-start.sh
    db:
      type: tosca.nodes.Database
      interfaces: {Standard: {configure: db.sh}}
    cache:
      type: tosca.nodes.SoftwareComponent
      requirements: [{host: server}]
    server:
      type: Compute
"#)
    .dag;
    assert_eq!(
        names(&dag),
        [
            "app:create",
            "app:start",
            "web:create",
            "web:start",
            "db:configure",
            "cache:noop",
            "server:noop"
        ]
    );
    assert_eq!(
        needs(&dag, "app:create"),
        ["web:start", "db:configure", "cache:noop"]
    );
    assert_eq!(needs(&dag, "app:start"), ["app:create"]);
    assert_eq!(needs(&dag, "web:create"), ["server:noop"]);
    // A template without operations passes the order on.
    assert_eq!(node(&dag, "cache:noop").driver, "noop");
    assert_eq!(needs(&dag, "cache:noop"), ["server:noop"]);
    assert!(needs(&dag, "server:noop").is_empty());
}

#[test]
fn a_type_gives_operations_attributes_and_defaults_that_the_template_overrides() {
    let dag = ok(r#"
node_types:
  my.Base:
    derived_from: tosca.nodes.SoftwareComponent
    properties:
      port: {type: integer, default: 80}
    attributes:
      url: {type: string}
    interfaces:
      Standard:
        inputs:
          MODE: base
        create:
          implementation: base-create.sh
          inputs:
            A: from-type
            B: {type: string, default: type-default}
            C: {type: string}
        configure: base-configure.sh
  my.App:
    derived_from: my.Base
    properties:
      port: {type: integer, default: 8080}
topology_template:
  node_templates:
    app:
      type: my.App
      interfaces:
        Standard:
          create:
            inputs:
              A: from-template
              PORT: {get_property: [SELF, port]}
          configure: mine.sh
"#)
    .dag;
    assert_eq!(names(&dag), ["app:create", "app:configure"]);
    let create = node(&dag, "app:create");
    assert_eq!(create.artifact, "/nonexistent/tosca/base-create.sh");
    let env: Vec<(&str, &str)> = create
        .env
        .0
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // A definition without a value gives nothing.
    assert_eq!(
        env,
        [
            ("MODE", "base"),
            ("A", "from-template"),
            ("B", "type-default"),
            ("PORT", "8080")
        ]
    );
    assert_eq!(
        node(&dag, "app:configure").artifact,
        "/nonexistent/tosca/mine.sh"
    );
    // The type's attributes are the last script's outputs; the root's are the orchestrator's.
    assert_eq!(node(&dag, "app:configure").outputs, ["url"]);
    assert!(create.outputs.is_empty());
}

#[test]
fn inputs_come_from_the_file_or_the_defaults_and_are_checked() {
    let body = r#"
topology_template:
  inputs:
    cpus:
      type: integer
      default: 1
      constraints:
        - valid_values: [1, 2, 4]
    name: {type: string}
    port: {type: PortDef, default: 3306}
    settings: {type: map, required: false}
    optional: {type: string, required: false}
  node_templates:
    db:
      type: tosca.nodes.DBMS
      interfaces:
        Standard:
          create:
            implementation: db.sh
            inputs:
              CPUS: {get_input: cpus}
              NAME: {get_input: [name]}
              PORT: {get_input: port}
              LEVEL: {get_input: [settings, log, level]}
              OPTIONAL: {get_input: optional}
"#;
    let dag = ok_with(
        body,
        Some("name: shop\nsettings: {log: {level: debug}}\ncpus: 4\n"),
    )
    .dag;
    assert_eq!(env(&dag, "db:create", "CPUS"), "4");
    assert_eq!(env(&dag, "db:create", "NAME"), "shop");
    assert_eq!(env(&dag, "db:create", "PORT"), "3306");
    assert_eq!(env(&dag, "db:create", "LEVEL"), "debug");
    assert_eq!(env(&dag, "db:create", "OPTIONAL"), "");

    assert_eq!(
        refused_with(body, Some("settings: {log: {level: x}}")),
        [
            "topology_template.inputs.name: input `name` is required and has no default: give it in the file of `--inputs`"
        ]
    );
    assert_eq!(
        refused_with(
            body,
            Some("name: 7\ncpus: 3\nport: 70000\nnmae: typo\nsettings: {log: {level: x}}")
        ),
        [
            "inputs.yaml, nmae: the template has no input `nmae` (it declares `cpus`, `name`, `port`, `settings`, `optional`)",
            "topology_template.inputs.cpus.constraints[0].valid_values: input `cpus` is 3: it must be one of 1, 2, 4",
            "topology_template.inputs.name: input `name`: expected a string, found an integer",
            "topology_template.inputs.port: input `port`: expected a port number (1 to 65535), found 70000",
        ]
    );
    // A nested name that is not there.
    assert_eq!(
        refused_with(body, Some("name: x\nsettings: {}")),
        [
            "topology_template.node_templates.db.interfaces.Standard.create.inputs.LEVEL: `get_input`: nothing at `log` in the value"
        ]
    );
    assert_eq!(
        refused_with(body, Some("- a\n- b")),
        [
            "inputs.yaml: expected a mapping of input names to values, found a list",
            "topology_template.inputs.name: input `name` is required and has no default: give it in the file of `--inputs`",
            // An optional input not given is null: nothing in it.
            "topology_template.node_templates.db.interfaces.Standard.create.inputs.LEVEL: `get_input`: nothing at `log` in the value",
        ]
    );
}

#[test]
fn get_input_of_an_undeclared_input_is_an_error() {
    assert_eq!(
        refused(
            r#"
topology_template:
  inputs: {a: {type: string, default: x}}
  node_templates:
    n:
      type: tosca.nodes.Root
      properties:
        p: {get_input: b}
"#
        ),
        [
            "topology_template.node_templates.n.properties.p: `get_input`: the template declares no input `b` (it declares `a`)"
        ]
    );
}

const PROPERTIES: &str = r#"
topology_template:
  node_templates:
    app:
      type: tosca.nodes.WebApplication
      properties:
        context_root: /shop
        limits: {memory: [256, 512]}
      requirements:
        - host: web
      interfaces:
        Standard:
          create:
            implementation: app.sh
            inputs:
              ROOT: {get_property: [SELF, context_root]}
              MEMORY: {get_property: [SELF, limits, memory, 1]}
              LIMITS: {get_property: [SELF, limits]}
              CPUS: {get_property: [HOST, host, num_cpus]}
              OS: {get_property: [HOST, os, distribution]}
              WEB_PORT: {get_property: [web, port]}
    web:
      type: tosca.nodes.WebServer
      properties:
        port: 8080
      requirements: [{host: server}]
    server:
      type: tosca.nodes.Compute
      capabilities:
        host:
          properties: {num_cpus: 2}
        os:
          properties: {distribution: debian}
"#;

#[test]
fn get_property_reads_self_a_host_up_the_chain_and_other_templates() {
    let dag = ok(PROPERTIES).dag;
    assert_eq!(env(&dag, "app:create", "ROOT"), "/shop");
    assert_eq!(env(&dag, "app:create", "MEMORY"), "512");
    assert_eq!(env(&dag, "app:create", "LIMITS"), r#"{"memory":[256,512]}"#);
    // HOST is searched up the hosting chain: web has no `host` capability, server has.
    assert_eq!(env(&dag, "app:create", "CPUS"), "2");
    assert_eq!(env(&dag, "app:create", "OS"), "debian");
    assert_eq!(env(&dag, "app:create", "WEB_PORT"), "8080");
}

#[test]
fn get_property_problems_name_what_is_missing() {
    let body = PROPERTIES
        .replace("[SELF, context_root]", "[SELF, nope]")
        .replace("[HOST, os, distribution]", "[HOST, os, version]")
        .replace("[web, port]", "[webb, port]");
    let at = "topology_template.node_templates.app.interfaces.Standard.create.inputs";
    assert_eq!(
        refused(&body),
        [
            format!("{at}.ROOT: `get_property`: `app` has no property or capability `nope`"),
            format!(
                "{at}.OS: `get_property`: capability `os` of `server` has no property `version`"
            ),
            format!("{at}.WEB_PORT: `get_property`: no node template `webb`"),
        ]
    );
    assert_eq!(
        refused(
            r#"
topology_template:
  node_templates:
    lone:
      type: tosca.nodes.Root
      properties:
        p: {get_property: [HOST, x]}
        q: {get_property: [SELF, q]}
"#
        ),
        [
            "topology_template.node_templates.lone.properties.p: `get_property`: `lone` has no host (no `host` requirement)",
            "topology_template.node_templates.lone.properties.q: `get_property` goes too deep: does a property read itself?",
        ]
    );
}

const ATTRIBUTES: &str = r#"
topology_template:
  node_templates:
    app:
      type: tosca.nodes.SoftwareComponent
      requirements:
        - host: server
        - dependency: db
      interfaces:
        Standard:
          create: app-create.sh
          configure:
            implementation: app-configure.sh
            inputs:
              DB_IP: {get_attribute: [db, private_address]}
              HOST_IP: {get_attribute: [HOST, public_address]}
              NAME: {get_attribute: [SELF, tosca_name]}
              MINE: {get_attribute: [SELF, port]}
              TOKEN: {get_operation_output: [SELF, Standard, create, token]}
              URL: {concat: ["http://", {get_attribute: [db, private_address]}, ":", 5432, "/x"]}
    db:
      type: tosca.nodes.Compute
      interfaces:
        Standard:
          create: db-create.sh
          start: db-start.sh
    server:
      type: tosca.nodes.Compute
      attributes:
        public_address: 192.0.2.1
"#;

#[test]
fn get_attribute_and_get_operation_output_become_references_and_outputs() {
    let body = ATTRIBUTES.replace(
        "type: tosca.nodes.SoftwareComponent",
        "type: my.Unknown\n      metadata: {note: types come from an import}",
    );
    // An unknown type is reported; allowed, any attribute of it may be read.
    let imported = import_with(&body, None, true).unwrap();
    assert!(
        imported.warnings.iter().any(
            |w| w.location == "topology_template.node_templates.app.type"
                && w.kind == IssueKind::Unsupported
        ),
        "{:?}",
        imported.warnings
    );
    let dag = &imported.dag;
    // The last script of db holds the attributes other templates read.
    assert_eq!(
        env(dag, "app:configure", "DB_IP"),
        "${{ nodes.db:start.outputs.private_address }}"
    );
    // A value the template gives is known now.
    assert_eq!(env(dag, "app:configure", "HOST_IP"), "192.0.2.1");
    assert_eq!(env(dag, "app:configure", "NAME"), "app");
    // SELF in a later operation: the operation before it.
    assert_eq!(
        env(dag, "app:configure", "MINE"),
        "${{ nodes.app:create.outputs.port }}"
    );
    assert_eq!(
        env(dag, "app:configure", "TOKEN"),
        "${{ nodes.app:create.outputs.token }}"
    );
    assert_eq!(
        env(dag, "app:configure", "URL"),
        "http://${{ nodes.db:start.outputs.private_address }}:5432/x"
    );
    assert_eq!(node(dag, "app:create").outputs, ["port", "token"]);
    assert_eq!(
        node(dag, "db:start").outputs,
        [
            "private_address",
            "public_address",
            "networks",
            "ports",
            "ip_address"
        ]
    );
    assert!(node(dag, "db:create").outputs.is_empty());
    validate(&imported);
}

#[test]
fn get_attribute_problems_are_reported_where_they_are() {
    let body = r#"
node_types:
  my.App:
    derived_from: tosca.nodes.SoftwareComponent
    attributes:
      port: {type: integer}
topology_template:
  node_templates:
    app:
      type: my.App
      requirements: [{host: server}]
      interfaces:
        Standard:
          create:
            implementation: app-create.sh
            inputs:
              EARLY: {get_attribute: [SELF, port]}
              STATE: {get_attribute: [server, state]}
              COLOUR: {get_attribute: [server, colour]}
              ENDPOINT: {get_attribute: [server, endpoint, ip_address]}
              PEER: {get_attribute: [SOURCE, port]}
              LATER: {get_operation_output: [SELF, Standard, configure, x]}
              STOP: {get_operation_output: [server, Standard, stop, x]}
              OTHER: {get_operation_output: [SELF, Configure, pre_configure_source, x]}
          configure:
            implementation: app-configure.sh
            inputs:
              DB: {get_attribute: [db, private_address]}
              PORT: {get_attribute: [SELF, port]}
    server:
      type: tosca.nodes.Compute
    db:
      type: tosca.nodes.Compute
      interfaces: {Standard: {start: db.sh}}
"#;
    let at = "topology_template.node_templates.app.interfaces.Standard";
    assert_eq!(
        refused(body),
        [
            format!(
                "{at}.create.inputs.EARLY: `get_attribute` of `SELF` in `app:create`: no operation of it runs before this one, so nothing can have set `port` yet"
            ),
            format!(
                "{at}.create.inputs.STATE: `get_attribute`: `state` is kept by the orchestrator, and drover has no value for it here (a node's state is in the run record)"
            ),
            format!(
                "{at}.create.inputs.COLOUR: `get_attribute`: type `tosca.nodes.Compute` of `server` has no attribute `colour` (it has `private_address`, `public_address`, `networks`, `ports`, `ip_address`, `tosca_id`, `tosca_name`, `state`)"
            ),
            format!(
                "{at}.create.inputs.ENDPOINT: `get_attribute` with more than [template, attribute] (a capability's attribute, nested names) is not supported"
            ),
            format!(
                "{at}.create.inputs.PEER: `get_attribute` of `SOURCE`: `SOURCE` means something in relationship operations only, which drover does not import"
            ),
            format!(
                "{at}.create.inputs.LATER: `get_operation_output`: `app:configure` does not run before `app:create`"
            ),
            format!(
                "{at}.create.inputs.STOP: `get_operation_output`: `server` has no `stop` operation that runs a script"
            ),
            format!(
                "{at}.create.inputs.OTHER: `get_operation_output`: only the Standard interface's operations are imported, not `Configure`'s"
            ),
            format!(
                "{at}.configure.inputs.DB: `get_attribute` reads `db`, which `app` does not require (directly or through the templates it requires), so `app:configure` may run before `db` is done: add a requirement such as `dependency: db`"
            ),
        ]
    );
}

#[test]
fn an_attribute_of_a_template_without_operations_is_unsupported() {
    let body = r#"
topology_template:
  node_templates:
    app:
      type: tosca.nodes.SoftwareComponent
      requirements: [{host: server}]
      interfaces:
        Standard:
          create:
            implementation: app.sh
            inputs:
              IP: {get_attribute: [HOST, private_address]}
    server:
      type: tosca.nodes.Compute
"#;
    assert_eq!(
        refused(body),
        [
            "topology_template.node_templates.app.interfaces.Standard.create.inputs.IP: `get_attribute`: `server` has no operation that runs, so nothing sets its attribute `private_address` (give the template `attributes: {private_address: ...}`, or an operation that prints `private_address=...`)"
        ]
    );
    // Allowed, the reference stays, and fails at run time if nothing sets it.
    let imported = import_with(body, None, true).unwrap();
    assert_eq!(
        env(&imported.dag, "app:create", "IP"),
        "${{ nodes.server:noop.outputs.private_address }}"
    );
    validate(&imported);
}

#[test]
fn unsupported_constructs_are_reported_where_they_are_and_left_out_when_allowed() {
    let body = r#"
imports:
  - http://example.org/types.yaml
topology_template:
  node_templates:
    web:
      type: tosca.nodes.WebServer
      artifacts:
        image: {file: web.img, type: tosca.artifacts.Deployment.Image.VM}
      requirements:
        - host:
            node: server
            relationship:
              type: tosca.relationships.HostedOn
              interfaces:
                Configure:
                  pre_configure_source: pre.sh
        - dependency:
            node_filter: {properties: [{num_cpus: {in_range: [1, 4]}}]}
      interfaces:
        Standard:
          create:
            implementation: create.sh
            inputs:
              x: {get_artifact: [SELF, image]}
              y: kept
          configure: configure.py
          stop: stop.sh
        Custom:
          backup: backup.sh
    server:
      type: tosca.nodes.Compute
  outputs:
    url: {value: {get_attribute: [server, public_address]}}
  groups:
    g: {type: tosca.groups.Root, members: [web]}
  policies:
    - scale: {type: tosca.policies.Scaling}
  workflows: {}
"#;
    let at = "topology_template.node_templates.web";
    let expected = [
        "imports[0]: `http://example.org/types.yaml` is a URL: drover imports files next to the template".to_owned(),
        format!("{at}.requirements[0].host.relationship.interfaces: relationship operations (the Configure interface: pre_configure_source, add_target, ...) are not imported: the requirement still orders the nodes"),
        format!("{at}.requirements[1].dependency.node_filter: node filters are not supported: name the node template"),
        format!("{at}.requirements[1].dependency: a requirement without `node` is not supported: drover does not pick a node for it, name the node template"),
        format!("{at}.interfaces.Standard.stop: operation `stop` is not imported: drover imports the deploy order (create, configure, start)"),
        format!("{at}.interfaces.Custom: interface `Custom` is not imported: drover imports the Standard lifecycle's create, configure and start"),
        "topology_template.outputs: outputs are not imported: a drover DAG has no outputs of its own (each node's outputs are in the run record)".to_owned(),
        "topology_template.groups: groups are not imported".to_owned(),
        "topology_template.policies: policies are not imported: drover does not scale, place or monitor nodes".to_owned(),
        "topology_template.workflows: imperative workflows are not supported: drover imports the declarative order (create, configure, start)".to_owned(),
        format!("{at}.interfaces.Standard.configure: `configure.py` is not a shell script: drover runs `configure` with the `shell` driver (`sh FILE`)"),
        format!("{at}.artifacts.image: artifacts are not deployed: drover gives an operation only its own script"),
        format!("{at}.interfaces.Standard.create.inputs.x: function `get_artifact` is not supported"),
    ];
    assert_eq!(refused(body), expected);
    let imported = import_with(body, None, true).unwrap();
    let unsupported: Vec<String> = imported
        .warnings
        .iter()
        .filter(|w| w.kind == IssueKind::Unsupported)
        .map(ToString::to_string)
        .collect();
    assert_eq!(unsupported, expected);
    let dag = &imported.dag;
    assert_eq!(names(dag), ["web:create", "web:configure", "server:noop"]);
    // A script `sh` would misread is left out: its node runs nothing.
    assert_eq!(node(dag, "web:configure").driver, "noop");
    assert_eq!(needs(dag, "web:create"), ["server:noop"]);
    // The unsupported input is left out; the others stay.
    let create = node(dag, "web:create");
    assert_eq!(create.env.get("x"), None);
    assert_eq!(create.env.get("y").map(String::as_str), Some("kept"));
    validate(&imported);
}

#[test]
fn broken_templates_are_errors_with_their_location() {
    assert_eq!(
        refused(
            r#"
topology_template:
  node_templates:
    a:
      type: tosca.nodes.Root
      requirements:
        - dependency: b
        - dependency: nowhere
        - host: tosca.nodes.Compute
        - dependency: a
        - {one: x, two: y}
      interfaces:
        Standard:
          create: [not, a, script]
    b:
      requirements: [{dependency: c}]
    c:
      type: tosca.nodes.Root
      requirements: [{dependency: b}]
    "bad name":
      type: tosca.nodes.Root
"#
        ),
        [
            "topology_template.node_templates.a.requirements[4]: a requirement is one `name: node` pair",
            "topology_template.node_templates.a.interfaces.Standard.create: expected a script or a mapping, found a list",
            "topology_template.node_templates.b: missing `type`",
            "topology_template.node_templates.bad name: `bad name` cannot name drover nodes: a template's name must not contain whitespace, control characters, `{`, `}` or `/`",
            "topology_template.node_templates.a.requirements[1].dependency: no node template `nowhere`",
            "topology_template.node_templates.a.requirements[2].host: `tosca.nodes.Compute` is a node type: drover does not pick a node of a type, name the node template",
            "topology_template.node_templates.a.requirements[3].dependency: a template cannot require itself",
            "topology_template.node_templates.c.requirements: requirements form a cycle: b → c → b",
        ]
    );
    let no_version = from_text(
        "topology_template: {node_templates: {}}",
        Path::new(FOLDER),
        "t",
        None,
        false,
    );
    let Err(ImportError::Refused { issues }) = no_version else {
        panic!("{no_version:?}");
    };
    let found: Vec<String> = issues.iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        [
            "top level: missing `tosca_definitions_version`: not a TOSCA file",
            "topology_template.node_templates: the template has no node templates: nothing to import",
        ]
    );
    let syntax = from_text("a: [", Path::new(FOLDER), "t", None, false);
    let Err(ImportError::Refused { issues }) = syntax else {
        panic!("{syntax:?}");
    };
    assert!(issues[0].location.starts_with("line "), "{issues:?}");
}

#[test]
fn imports_bring_types_whose_scripts_are_beside_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("types/scripts")).unwrap();
    std::fs::write(dir.path().join("types/scripts/install.sh"), "echo hi\n").unwrap();
    std::fs::write(
        dir.path().join("types/shop.yaml"),
        r#"
tosca_definitions_version: tosca_simple_yaml_1_0
imports: [more.yaml]
node_types:
  shop.nodes.Shop:
    derived_from: shop.nodes.Base
    attributes:
      url: {type: string}
    interfaces:
      Standard:
        create: scripts/install.sh
        delete: scripts/remove.sh
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("types/more.yaml"),
        r#"
tosca_definitions_version: tosca_simple_yaml_1_0
node_types:
  shop.nodes.Base:
    derived_from: tosca.nodes.WebApplication
    properties:
      port: {type: integer, default: 81}
"#,
    )
    .unwrap();
    let template = head(
        r#"
imports:
  - types/shop.yaml
  - shop: {file: types/shop.yaml}
topology_template:
  node_templates:
    shop:
      type: shop.nodes.Shop
      interfaces:
        Standard:
          configure:
            implementation: configure.sh
            inputs:
              PORT: {get_property: [SELF, port]}
"#,
    );
    let folder = dir.path().canonicalize().unwrap();
    let result = from_text(&template, &folder, "t", None, false);
    let Err(ImportError::Refused { issues }) = result else {
        panic!("{result:?}");
    };
    // A type's unsupported operation is reported where the type is, once.
    let found: Vec<String> = issues
        .iter()
        .filter(|i| i.kind != IssueKind::Warning)
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        found,
        [
            "types/shop.yaml, node_types.shop.nodes.Shop.interfaces.Standard.delete: operation `delete` is not imported: drover imports the deploy order (create, configure, start)"
        ]
    );
    let imported = from_text(&template, &folder, "t", None, true).unwrap();
    let dag = &imported.dag;
    assert_eq!(names(dag), ["shop:create", "shop:configure"]);
    assert_eq!(
        node(dag, "shop:create").artifact,
        folder.join("types/scripts/install.sh").to_str().unwrap()
    );
    assert_eq!(env(dag, "shop:configure", "PORT"), "81");
    assert_eq!(node(dag, "shop:configure").outputs, ["url"]);
    // Only the template's own script is missing.
    let missing: Vec<&Issue> = imported
        .warnings
        .iter()
        .filter(|w| w.kind == IssueKind::Warning)
        .collect();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(missing[0].message.contains("`configure.sh`"), "{missing:?}");

    let gone = from_text(
        &head("imports: [nowhere.yaml]\ntopology_template: {node_templates: {a: {type: x.Y}}}"),
        &folder,
        "t",
        None,
        false,
    );
    let Err(ImportError::Refused { issues }) = gone else {
        panic!("{gone:?}");
    };
    // The missing file is the problem; its types being unknown follows from it.
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].location, "imports[0]");
    assert_eq!(issues[0].kind, IssueKind::Unsupported);
    assert!(issues[0].message.starts_with("cannot read `nowhere.yaml`"));
}

#[test]
fn values_that_drover_would_misread_are_refused() {
    let found = refused_with(
        r#"
topology_template:
  inputs: {x: {type: string}}
  node_templates:
    a:
      type: tosca.nodes.Root
      interfaces:
        Standard:
          create:
            implementation: a.sh
            inputs:
              X: {get_input: x}
"#,
        Some("x: '${{ nodes.b.outputs.secret }}'"),
    );
    assert_eq!(
        found,
        [
            "topology_template.node_templates.a.interfaces.Standard.create.inputs.X: the value holds `${{`, which drover would read as an output reference"
        ]
    );
}

#[test]
fn the_dag_is_named_by_the_template_and_written_as_yaml_and_json() {
    let imported = ok(r#"
metadata:
  template_name: shop
topology_template:
  node_templates:
    a:
      type: tosca.nodes.Root
      interfaces:
        Standard:
          create:
            implementation: {primary: a.sh, timeout: 90}
"#);
    assert_eq!(imported.dag.name, "shop");
    let yaml = imported.dag.to_yaml("shop.yaml").unwrap();
    assert!(yaml.starts_with("# Imported from the TOSCA service template shop.yaml"));
    let dag = validate(&imported);
    assert_eq!(dag.nodes[0].name, "a:create");
    assert_eq!(
        dag.nodes[0].timeout,
        Some(std::time::Duration::from_secs(90))
    );
    let json: serde_json::Value = serde_json::from_str(&imported.dag.to_json().unwrap()).unwrap();
    assert_eq!(json["nodes"]["a:create"]["timeout"], "90s");
    assert_eq!(json["nodes"]["a:create"]["driver"], "shell");
}

#[test]
fn yaml_aliases_are_followed_but_cannot_blow_up() {
    // Anchors are common in TOSCA (`dsl_definitions`), and merge keys too.
    let dag = ok(r#"
dsl_definitions:
  defaults: &defaults
    type: tosca.nodes.SoftwareComponent
  ops: &ops
    Standard: {create: a.sh}
topology_template:
  node_templates:
    a:
      <<: *defaults
      interfaces: *ops
    b:
      <<: *defaults
      interfaces: *ops
      requirements: [{dependency: a}]
"#)
    .dag;
    assert_eq!(names(&dag), ["a:create", "b:create"]);
    assert_eq!(needs(&dag, "b:create"), ["a:create"]);

    let mut bomb = String::from(
        "tosca_definitions_version: tosca_simple_yaml_1_0\nl0: &l0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for level in 1..12 {
        let previous = level - 1;
        bomb.push_str(&format!(
            "l{level}: &l{level} [*l{previous}, *l{previous}, *l{previous}, *l{previous}, *l{previous}, *l{previous}, *l{previous}, *l{previous}, *l{previous}, *l{previous}]\n"
        ));
    }
    let started = std::time::Instant::now();
    let result = from_text(&bomb, Path::new(FOLDER), "t", None, false);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let Err(ImportError::Refused { issues }) = result else {
        panic!("{result:?}");
    };
    assert!(issues[0].message.contains("YAML aliases"), "{issues:?}");
}
