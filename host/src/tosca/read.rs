//! Reads a TOSCA file's YAML tree into the model, reporting every problem with its path.
//!
//! By hand rather than with serde's derive, as drover reads its own DAGs:
//! a template with several problems gets them all in one answer, each
//! with where it is, and the short and long forms TOSCA allows for the
//! same thing (`create: x.sh` or `create: {implementation: x.sh}`) are
//! told apart without guessing.

use std::path::Path;

use crate::dag::raw::Raw;

use super::model::{
    Artifact, Assigned, Constraint, Definitions, Implementation, Import, InputDef, Interface,
    Issue, IssueKind, Issues, NodeTemplate, NodeType, Operation, RelationshipTemplate, Requirement,
    ServiceTemplate, Step, at, at_index,
};

/// The `tosca_definitions_version`s drover reads.
const VERSIONS: &[&str] = &[
    "tosca_simple_yaml_1_0",
    "tosca_simple_yaml_1_1",
    "tosca_simple_yaml_1_2",
    "tosca_simple_yaml_1_3",
];

/// Type definitions other than node types: they describe data, capabilities
/// and relationships, none of which makes work for a node of the DAG.
const OTHER_TYPES: &[&str] = &[
    "repositories",
    "artifact_types",
    "data_types",
    "capability_types",
    "interface_types",
    "relationship_types",
    "group_types",
    "policy_types",
];

/// Informational keys, and `dsl_definitions`, which only holds YAML anchors.
const INFORMATIONAL: &[&str] = &[
    "description",
    "metadata",
    "dsl_definitions",
    "template_name",
    "template_author",
    "template_version",
];

/// The names of TOSCA's Standard lifecycle interface.
pub(super) fn is_standard(name: &str) -> bool {
    matches!(
        name,
        "Standard" | "tosca.interfaces.node.lifecycle.Standard" | "tosca:Standard"
    )
}

/// Reads a file's tree, collecting problems.
pub(super) struct Reader<'a> {
    pub issues: &'a mut Issues,
    /// The folder of the file read, for the relative paths it holds.
    pub folder: &'a Path,
    /// Put before every location: empty for the template, `FILE, ` for an import.
    pub prefix: String,
}

/// A mapping's entries, `<<` merge keys applied (explicit keys win).
type Entries<'r> = Vec<(&'r str, &'r Raw)>;

impl<'a> Reader<'a> {
    fn loc(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }

    fn error(&mut self, path: &str, message: impl Into<String>) {
        let location = self.loc(path);
        self.issues.error(&location, message);
    }

    fn unsupported(&mut self, path: &str, message: impl Into<String>) {
        let location = self.loc(path);
        self.issues.unsupported(&location, message);
    }

    /// An issue for later (a type's), at its full location.
    fn pending(&self, path: &str, message: impl Into<String>) -> Issue {
        Issue {
            location: self.loc(path),
            message: message.into(),
            kind: IssueKind::Unsupported,
        }
    }

    fn wrong_kind(&mut self, path: &str, expected: &str, found: &Raw) {
        self.error(path, format!("expected {expected}, found {}", found.kind()));
    }

    /// A mapping's entries; null is empty.
    fn entries<'r>(&mut self, path: &str, raw: &'r Raw) -> Option<Entries<'r>> {
        match raw {
            Raw::Null => Some(Vec::new()),
            Raw::Map(fields) => {
                let mut out: Entries<'r> = Vec::with_capacity(fields.len());
                let mut merged: Entries<'r> = Vec::new();
                for (key, value) in fields {
                    if key == "<<" {
                        let sources: Vec<&Raw> = match value {
                            Raw::Seq(items) => items.iter().collect(),
                            other => vec![other],
                        };
                        for source in sources {
                            merged.extend(self.entries(path, source).unwrap_or_default());
                        }
                    } else if out.iter().any(|(k, _)| k == key) {
                        self.error(path, format!("duplicate key `{key}`"));
                    } else {
                        out.push((key.as_str(), value));
                    }
                }
                for (key, value) in merged {
                    if !out.iter().any(|(k, _)| *k == key) {
                        out.push((key, value));
                    }
                }
                Some(out)
            }
            other => {
                self.wrong_kind(path, "a mapping", other);
                None
            }
        }
    }

    /// A string (a name, a path).
    fn string(&mut self, path: &str, raw: &Raw) -> Option<String> {
        match raw {
            Raw::Str(s) if !s.is_empty() => Some(s.clone()),
            Raw::Str(_) => {
                self.error(path, "must not be empty");
                None
            }
            other => {
                self.wrong_kind(path, "a string", other);
                None
            }
        }
    }

    /// `name: value` assignments (properties, inputs), values kept as written.
    fn assignments(&mut self, path: &str, raw: &Raw) -> Vec<Assigned> {
        self.entries(path, raw)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| Assigned {
                name: name.to_owned(),
                at: self.loc(&at(path, name)),
                value: value.clone(),
            })
            .collect()
    }

    /// A service template: the file `drover import tosca` was given.
    pub fn service_template(&mut self, raw: &Raw) -> ServiceTemplate {
        let mut template = ServiceTemplate::default();
        let Some(entries) = self.entries("top level", raw) else {
            return template;
        };
        self.version(&entries);
        for (key, value) in entries {
            match key {
                "tosca_definitions_version" => {}
                "metadata" => {
                    for (k, v) in self.entries(key, value).unwrap_or_default() {
                        if k == "template_name" {
                            template.name = v.scalar_text().filter(|s| !s.is_empty());
                        }
                    }
                }
                "template_name" => {
                    if template.name.is_none() {
                        template.name = value.scalar_text().filter(|s| !s.is_empty());
                    }
                }
                "imports" => template.definitions.imports = self.imports(value),
                "node_types" => template.definitions.node_types = self.node_types(value),
                "topology_template" => self.topology(value, &mut template),
                _ if INFORMATIONAL.contains(&key) || OTHER_TYPES.contains(&key) => {}
                _ => self.unsupported(key, format!("unknown key `{key}`")),
            }
        }
        template
    }

    /// An imported file: its node types and its own imports.
    pub fn definitions(&mut self, raw: &Raw) -> Definitions {
        let mut definitions = Definitions::default();
        let Some(entries) = self.entries("top level", raw) else {
            return definitions;
        };
        self.version(&entries);
        for (key, value) in entries {
            match key {
                "tosca_definitions_version" => {}
                "imports" => definitions.imports = self.imports(value),
                "node_types" => definitions.node_types = self.node_types(value),
                "topology_template" => self.unsupported(
                    key,
                    "a topology in an imported file is not imported: only its node types are",
                ),
                _ if INFORMATIONAL.contains(&key) || OTHER_TYPES.contains(&key) => {}
                _ => self.unsupported(key, format!("unknown key `{key}`")),
            }
        }
        definitions
    }

    fn version(&mut self, entries: &Entries<'_>) {
        match entries
            .iter()
            .find(|(k, _)| *k == "tosca_definitions_version")
        {
            None => self.error(
                "top level",
                "missing `tosca_definitions_version`: not a TOSCA file",
            ),
            Some((_, Raw::Str(v))) if VERSIONS.contains(&v.as_str()) => {}
            Some((_, value)) => {
                let written = value.scalar_text().unwrap_or_else(|| value.kind().into());
                self.unsupported(
                    "tosca_definitions_version",
                    format!(
                        "`{written}` is not a version drover reads (it reads `{}`)",
                        VERSIONS.join("`, `")
                    ),
                );
            }
        }
    }

    fn imports(&mut self, raw: &Raw) -> Vec<Import> {
        let items = match raw {
            Raw::Null => return Vec::new(),
            Raw::Seq(items) => items,
            other => {
                self.wrong_kind("imports", "a list", other);
                return Vec::new();
            }
        };
        let mut imports = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = at_index("imports", i);
            let file = match item {
                Raw::Str(file) => Some(file.clone()),
                Raw::Map(_) => self.import_entry(&path, item),
                other => {
                    self.wrong_kind(&path, "a file name or a mapping", other);
                    None
                }
            };
            if let Some(file) = file {
                if file.contains("://") {
                    self.unsupported(
                        &path,
                        format!("`{file}` is a URL: drover imports files next to the template"),
                    );
                } else {
                    imports.push(Import {
                        at: self.loc(&path),
                        file,
                    });
                }
            }
        }
        imports
    }

    /// `{file: x, repository: r, ...}`, or TOSCA 1.0's `name: x` / `name: {file: x}`.
    fn import_entry(&mut self, path: &str, raw: &Raw) -> Option<String> {
        let entries = self.entries(path, raw)?;
        let long = entries.iter().any(|(k, _)| *k == "file");
        if !long && entries.len() == 1 {
            let (name, value) = entries[0];
            let path = at(path, name);
            return match value {
                Raw::Str(file) => Some(file.clone()),
                Raw::Map(_) => self.import_entry(&path, value),
                other => {
                    self.wrong_kind(&path, "a file name", other);
                    None
                }
            };
        }
        let mut file = None;
        for (key, value) in entries {
            match key {
                "file" => file = self.string(&at(path, key), value),
                "repository" => self.unsupported(
                    &at(path, key),
                    "imports from repositories are not supported: drover imports files next to the template",
                ),
                "namespace_uri" | "namespace_prefix" | "description" => {}
                _ => self.unsupported(&at(path, key), format!("unknown key `{key}`")),
            }
        }
        if file.is_none() {
            self.error(path, "missing `file`");
        }
        file
    }

    fn topology(&mut self, raw: &Raw, template: &mut ServiceTemplate) {
        let base = "topology_template";
        for (key, value) in self.entries(base, raw).unwrap_or_default() {
            let path = at(base, key);
            match key {
                "description" => {}
                "inputs" => template.inputs = self.inputs(&path, value),
                "node_templates" => template.node_templates = self.node_templates(&path, value),
                "relationship_templates" => {
                    template.relationship_templates = self.relationship_templates(&path, value)
                }
                "outputs" => self.unsupported(
                    &path,
                    "outputs are not imported: a drover DAG has no outputs of its own (each node's outputs are in the run record)",
                ),
                "groups" => self.unsupported(&path, "groups are not imported"),
                "policies" => self.unsupported(
                    &path,
                    "policies are not imported: drover does not scale, place or monitor nodes",
                ),
                "substitution_mappings" => {
                    self.unsupported(&path, "substitution mappings are not supported")
                }
                "workflows" => self.unsupported(
                    &path,
                    "imperative workflows are not supported: drover imports the declarative order (create, configure, start)",
                ),
                _ => self.unsupported(&path, format!("unknown key `{key}`")),
            }
        }
    }

    fn inputs(&mut self, base: &str, raw: &Raw) -> Vec<InputDef> {
        let mut inputs = Vec::new();
        for (name, value) in self.entries(base, raw).unwrap_or_default() {
            let path = at(base, name);
            let mut input = InputDef {
                name: name.to_owned(),
                at: self.loc(&path),
                type_name: None,
                required: true,
                default: None,
                constraints: Vec::new(),
            };
            for (key, v) in self.entries(&path, value).unwrap_or_default() {
                let field = at(&path, key);
                match key {
                    "type" => input.type_name = self.string(&field, v),
                    "required" => match v {
                        Raw::Bool(b) => input.required = *b,
                        other => self.wrong_kind(&field, "true or false", other),
                    },
                    // TOSCA 1.3 lets an input definition carry its value.
                    "default" | "value" => input.default = Some(v.clone()),
                    "constraints" => input.constraints = self.constraints(&field, v),
                    "description" | "status" | "entry_schema" | "key_schema" | "metadata" => {}
                    _ => self.unsupported(&field, format!("unknown key `{key}`")),
                }
            }
            inputs.push(input);
        }
        inputs
    }

    fn constraints(&mut self, base: &str, raw: &Raw) -> Vec<Constraint> {
        let items = match raw {
            Raw::Null => return Vec::new(),
            Raw::Seq(items) => items,
            other => {
                self.wrong_kind(base, "a list of constraints", other);
                return Vec::new();
            }
        };
        let mut constraints = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = at_index(base, i);
            match self.entries(&path, item).as_deref() {
                Some([(operator, argument)]) => constraints.push(Constraint {
                    at: self.loc(&at(&path, operator)),
                    operator: (*operator).to_owned(),
                    argument: (*argument).clone(),
                }),
                Some(_) => self.error(&path, "a constraint is one `operator: argument` pair"),
                None => {}
            }
        }
        constraints
    }

    fn relationship_templates(&mut self, base: &str, raw: &Raw) -> Vec<RelationshipTemplate> {
        let mut templates = Vec::new();
        for (name, value) in self.entries(base, raw).unwrap_or_default() {
            let path = at(base, name);
            let mut template = RelationshipTemplate {
                name: name.to_owned(),
                type_name: None,
            };
            for (key, v) in self.entries(&path, value).unwrap_or_default() {
                let field = at(&path, key);
                match key {
                    "type" => template.type_name = self.string(&field, v),
                    "interfaces" => self.unsupported(&field, RELATIONSHIP_OPERATIONS),
                    "description" | "metadata" | "properties" | "attributes" | "copy" => {}
                    _ => self.unsupported(&field, format!("unknown key `{key}`")),
                }
            }
            templates.push(template);
        }
        templates
    }

    fn node_templates(&mut self, base: &str, raw: &Raw) -> Vec<NodeTemplate> {
        let mut templates = Vec::new();
        for (name, value) in self.entries(base, raw).unwrap_or_default() {
            let path = at(base, name);
            let mut template = NodeTemplate {
                name: name.to_owned(),
                at: self.loc(&path),
                type_name: String::new(),
                properties: Vec::new(),
                attributes: Vec::new(),
                capabilities: Vec::new(),
                requirements: Vec::new(),
                interface: Interface::default(),
                artifacts: Vec::new(),
                folder: self.folder.to_path_buf(),
            };
            let Some(entries) = self.entries(&path, value) else {
                continue;
            };
            for (key, v) in &entries {
                let field = at(&path, key);
                match *key {
                    "type" => {
                        template.type_name = self.string(&field, v).unwrap_or_default();
                    }
                    "properties" => template.properties = self.assignments(&field, v),
                    "attributes" => template.attributes = self.assignments(&field, v),
                    "capabilities" => template.capabilities = self.capabilities(&field, v),
                    "requirements" => template.requirements = self.requirements(&field, v),
                    "interfaces" => template.interface = self.interfaces(&field, v, None),
                    "artifacts" => template.artifacts = self.artifacts(&field, v),
                    "description" | "metadata" => {}
                    "directives" => match v {
                        Raw::Null => {}
                        Raw::Seq(items) if items.is_empty() => {}
                        Raw::Seq(_) => self.unsupported(
                            &field,
                            "directives (`select`, `substitute`) are not supported: drover imports concrete templates",
                        ),
                        other => self.wrong_kind(&field, "a list", other),
                    },
                    "node_filter" => self.unsupported(
                        &field,
                        "node filters are not supported: drover imports concrete templates",
                    ),
                    "copy" => self.unsupported(&field, "`copy` is not supported"),
                    _ => self.unsupported(&field, format!("unknown key `{key}`")),
                }
            }
            if !entries.iter().any(|(k, _)| *k == "type") {
                self.error(&path, "missing `type`");
            }
            templates.push(template);
        }
        templates
    }

    fn capabilities(&mut self, base: &str, raw: &Raw) -> Vec<(String, Vec<Assigned>)> {
        let mut capabilities = Vec::new();
        for (name, value) in self.entries(base, raw).unwrap_or_default() {
            let path = at(base, name);
            let mut properties = Vec::new();
            for (key, v) in self.entries(&path, value).unwrap_or_default() {
                match key {
                    "properties" => properties = self.assignments(&at(&path, key), v),
                    // Set by whoever provides the capability, never read here.
                    "attributes" | "occurrences" | "description" => {}
                    _ => self.unsupported(&at(&path, key), format!("unknown key `{key}`")),
                }
            }
            capabilities.push((name.to_owned(), properties));
        }
        capabilities
    }

    fn requirements(&mut self, base: &str, raw: &Raw) -> Vec<Requirement> {
        let items = match raw {
            Raw::Null => return Vec::new(),
            Raw::Seq(items) => items,
            other => {
                self.wrong_kind(base, "a list of requirements", other);
                return Vec::new();
            }
        };
        let mut requirements = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = at_index(base, i);
            let entries = match self.entries(&path, item) {
                Some(entries) if entries.len() == 1 => entries,
                Some(_) => {
                    self.error(&path, "a requirement is one `name: node` pair");
                    continue;
                }
                None => continue,
            };
            let (name, value) = entries[0];
            let path = at(&path, name);
            let mut requirement = Requirement {
                name: name.to_owned(),
                at: self.loc(&path),
                node: None,
                relationship: None,
            };
            match value {
                Raw::Str(node) => requirement.node = Some(node.clone()),
                Raw::Map(_) => {
                    for (key, v) in self.entries(&path, value).unwrap_or_default() {
                        let field = at(&path, key);
                        match key {
                            "node" => requirement.node = self.string(&field, v),
                            "relationship" => {
                                requirement.relationship = self.relationship(&field, v)
                            }
                            "node_filter" => self.unsupported(
                                &field,
                                "node filters are not supported: name the node template",
                            ),
                            // Which capability of the node it uses, and how many: no
                            // bearing on the order.
                            "capability" | "occurrences" | "description" => {}
                            _ => self.unsupported(&field, format!("unknown key `{key}`")),
                        }
                    }
                    if requirement.node.is_none() {
                        self.unsupported(
                            &path,
                            "a requirement without `node` is not supported: drover does not pick a node for it, name the node template",
                        );
                    }
                }
                other => self.wrong_kind(&path, "a node template's name or a mapping", other),
            }
            requirements.push(requirement);
        }
        requirements
    }

    /// A requirement's `relationship`: a type or relationship template's
    /// name, or `{type, properties, interfaces}`.
    fn relationship(&mut self, path: &str, raw: &Raw) -> Option<String> {
        match raw {
            Raw::Str(name) => Some(name.clone()),
            Raw::Map(_) => {
                let mut type_name = None;
                for (key, v) in self.entries(path, raw).unwrap_or_default() {
                    let field = at(path, key);
                    match key {
                        "type" => type_name = self.string(&field, v),
                        "interfaces" => self.unsupported(&field, RELATIONSHIP_OPERATIONS),
                        "properties" | "description" => {}
                        _ => self.unsupported(&field, format!("unknown key `{key}`")),
                    }
                }
                type_name
            }
            other => {
                self.wrong_kind(path, "a relationship type or a mapping", other);
                None
            }
        }
    }

    fn artifacts(&mut self, base: &str, raw: &Raw) -> Vec<Artifact> {
        let mut artifacts = Vec::new();
        for (name, value) in self.entries(base, raw).unwrap_or_default() {
            let path = at(base, name);
            let file = match value {
                Raw::Str(file) => Some(file.clone()),
                Raw::Map(_) => {
                    let mut file = None;
                    for (key, v) in self.entries(&path, value).unwrap_or_default() {
                        let field = at(&path, key);
                        match key {
                            "file" => file = self.string(&field, v),
                            "repository" => self.unsupported(
                                &field,
                                "artifacts from repositories are not supported: drover runs files next to the template",
                            ),
                            "type" | "description" | "deploy_path" | "version" | "checksum"
                            | "checksum_algorithm" | "properties" => {}
                            _ => self.unsupported(&field, format!("unknown key `{key}`")),
                        }
                    }
                    if file.is_none() {
                        self.error(&path, "missing `file`");
                    }
                    file
                }
                other => {
                    self.wrong_kind(&path, "a file or a mapping", other);
                    None
                }
            };
            if let Some(file) = file {
                artifacts.push(Artifact {
                    name: name.to_owned(),
                    at: self.loc(&path),
                    file,
                });
            }
        }
        artifacts
    }

    /// `interfaces` of a template, or of a type (then `pending` gets what a
    /// template of the type will report).
    fn interfaces(
        &mut self,
        base: &str,
        raw: &Raw,
        mut pending: Option<&mut Vec<Issue>>,
    ) -> Interface {
        let mut interface = Interface::default();
        let in_type = pending.is_some();
        for (name, body) in self.entries(base, raw).unwrap_or_default() {
            let path = at(base, name);
            if !is_standard(name) {
                // A type may declare interfaces it never implements.
                let has_operations = matches!(body, Raw::Map(fields) if fields.iter().any(|(k, _)| !matches!(k.as_str(), "type" | "description" | "inputs")));
                let message = format!(
                    "interface `{name}` is not imported: drover imports the Standard lifecycle's create, configure and start"
                );
                match pending.as_deref_mut() {
                    Some(pending) if has_operations => pending.push(self.pending(&path, message)),
                    Some(_) => {}
                    None => self.unsupported(&path, message),
                }
                continue;
            }
            self.standard(&path, body, in_type, &mut pending, &mut interface);
        }
        interface
    }

    fn standard(
        &mut self,
        base: &str,
        raw: &Raw,
        in_type: bool,
        pending: &mut Option<&mut Vec<Issue>>,
        interface: &mut Interface,
    ) {
        for (key, value) in self.entries(base, raw).unwrap_or_default() {
            let path = at(base, key);
            match key {
                "type" | "description" => {}
                "inputs" => interface.inputs = self.operation_inputs(&path, value, in_type),
                // TOSCA 1.3 groups a type's operations under `operations`.
                "operations" => self.standard(&path, value, in_type, pending, interface),
                _ => match Step::from_name(key) {
                    Some(step) => {
                        if let Some(operation) = self.operation(&path, step, value, in_type) {
                            interface.operations.retain(|o| o.step != step);
                            interface.operations.push(operation);
                        }
                    }
                    None => {
                        let message = match key {
                            "stop" | "delete" => format!(
                                "operation `{key}` is not imported: drover imports the deploy order (create, configure, start)"
                            ),
                            "notifications" => "notifications are not supported".to_owned(),
                            _ => format!(
                                "unknown operation `{key}` of the Standard interface (it has create, configure, start, stop, delete)"
                            ),
                        };
                        match pending.as_deref_mut() {
                            Some(pending) => pending.push(self.pending(&path, message)),
                            None => self.unsupported(&path, message),
                        }
                    }
                },
            }
        }
    }

    fn operation(&mut self, path: &str, step: Step, raw: &Raw, in_type: bool) -> Option<Operation> {
        let mut operation = Operation {
            step,
            implementation: None,
            inputs: Vec::new(),
        };
        match raw {
            Raw::Null => {}
            Raw::Str(_) => operation.implementation = self.implementation(path, raw),
            Raw::Map(_) => {
                for (key, value) in self.entries(path, raw).unwrap_or_default() {
                    let field = at(path, key);
                    match key {
                        "implementation" => {
                            operation.implementation = self.implementation(&field, value)
                        }
                        "inputs" => operation.inputs = self.operation_inputs(&field, value, in_type),
                        "description" => {}
                        "outputs" => self.unsupported(
                            &field,
                            "operation outputs mapped to attributes are not supported: print `attribute=value` instead",
                        ),
                        _ => self.unsupported(&field, format!("unknown key `{key}`")),
                    }
                }
            }
            other => {
                self.wrong_kind(path, "a script or a mapping", other);
                return None;
            }
        }
        Some(operation)
    }

    fn implementation(&mut self, path: &str, raw: &Raw) -> Option<Implementation> {
        let mut implementation = Implementation {
            at: self.loc(path),
            primary: String::new(),
            folder: self.folder.to_path_buf(),
            timeout: None,
        };
        match raw {
            Raw::Str(_) => implementation.primary = self.string(path, raw)?,
            Raw::Map(_) => {
                for (key, value) in self.entries(path, raw).unwrap_or_default() {
                    let field = at(path, key);
                    match key {
                        "primary" => implementation.primary = self.string(&field, value)?,
                        "timeout" => match value {
                            Raw::Int(seconds) if *seconds > 0 => {
                                implementation.timeout = u64::try_from(*seconds).ok()
                            }
                            other => self.wrong_kind(&field, "a number of seconds above 0", other),
                        },
                        "dependencies" => {
                            if !matches!(value, Raw::Null) && !matches!(value, Raw::Seq(items) if items.is_empty())
                            {
                                self.unsupported(
                                    &field,
                                    "dependencies are not supported: an operation's script is the one file it can read",
                                );
                            }
                        }
                        "operation_host" => self.unsupported(
                            &field,
                            "`operation_host` is not supported: operations run where drover runs the node",
                        ),
                        "description" => {}
                        _ => self.unsupported(&field, format!("unknown key `{key}`")),
                    }
                }
                if implementation.primary.is_empty() {
                    self.error(path, "missing `primary`");
                    return None;
                }
            }
            other => {
                self.wrong_kind(path, "a script or a mapping", other);
                return None;
            }
        }
        Some(implementation)
    }

    /// An operation's (or interface's) inputs. In a type they may be
    /// definitions (`{type: string, default: x}`): their default is the value.
    fn operation_inputs(&mut self, path: &str, raw: &Raw, in_type: bool) -> Vec<Assigned> {
        let mut inputs = self.assignments(path, raw);
        if in_type {
            inputs.retain_mut(|input| {
                let Raw::Map(fields) = &input.value else {
                    return true;
                };
                if !fields.iter().any(|(k, _)| k == "type") {
                    return true;
                }
                match fields.iter().find(|(k, _)| k == "default" || k == "value") {
                    Some((_, value)) => {
                        input.value = value.clone();
                        true
                    }
                    // A definition without a value gives the operation nothing.
                    None => false,
                }
            });
        }
        inputs
    }

    fn node_types(&mut self, raw: &Raw) -> Vec<NodeType> {
        let base = "node_types";
        let mut types = Vec::new();
        for (name, value) in self.entries(base, raw).unwrap_or_default() {
            let path = at(base, name);
            let mut node_type = NodeType {
                name: name.to_owned(),
                derived_from: None,
                attributes: Vec::new(),
                properties: Vec::new(),
                interface: Interface::default(),
                unsupported: Vec::new(),
            };
            for (key, v) in self.entries(&path, value).unwrap_or_default() {
                let field = at(&path, key);
                match key {
                    "derived_from" => node_type.derived_from = self.string(&field, v),
                    "attributes" => {
                        node_type.attributes = self
                            .entries(&field, v)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, _)| k.to_owned())
                            .collect()
                    }
                    "properties" => {
                        for (property, definition) in self.entries(&field, v).unwrap_or_default() {
                            let default = match definition {
                                Raw::Map(fields) => fields
                                    .iter()
                                    .find(|(k, _)| k == "default" || k == "value")
                                    .map(|(_, d)| d.clone()),
                                _ => None,
                            };
                            node_type.properties.push((property.to_owned(), default));
                        }
                    }
                    "interfaces" => {
                        let mut pending = Vec::new();
                        node_type.interface = self.interfaces(&field, v, Some(&mut pending));
                        node_type.unsupported = pending;
                    }
                    // Definitions for templates to fill in, and information.
                    _ => {}
                }
            }
            types.push(node_type);
        }
        types
    }
}

/// Why a relationship's interfaces are reported.
const RELATIONSHIP_OPERATIONS: &str = "relationship operations (the Configure interface: \
     pre_configure_source, add_target, ...) are not imported: the requirement still orders the nodes";
