//! The parts of a TOSCA service template that an import uses, as read from its YAML tree.

use std::path::PathBuf;

use crate::dag::raw::Raw;

/// One problem with a template, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Where: a path into the template, `topology_template.node_templates.web.requirements[0]`;
    /// in an imported file, that file's path first.
    pub location: String,
    /// What is wrong there.
    pub message: String,
    pub kind: IssueKind,
}

/// How much an [`Issue`] matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueKind {
    /// The template is wrong or incomplete: nothing is imported.
    Error,
    /// A construct drover does not translate: nothing is imported unless
    /// unsupported constructs are allowed, and then it is left out.
    Unsupported,
    /// Worth knowing (a script that is not there yet); never stops an import.
    Warning,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// The problems found so far, in the order found.
#[derive(Debug, Default)]
pub(super) struct Issues(pub Vec<Issue>);

impl Issues {
    pub fn error(&mut self, location: &str, message: impl Into<String>) {
        self.push(location, message.into(), IssueKind::Error);
    }

    pub fn unsupported(&mut self, location: &str, message: impl Into<String>) {
        self.push(location, message.into(), IssueKind::Unsupported);
    }

    pub fn warning(&mut self, location: &str, message: impl Into<String>) {
        self.push(location, message.into(), IssueKind::Warning);
    }

    pub fn extend(&mut self, issues: impl IntoIterator<Item = Issue>) {
        for issue in issues {
            self.push(&issue.location, issue.message, issue.kind);
        }
    }

    /// Keeps one of each: a type's problem is met once per template of that
    /// type, a property's once per operation that reads it.
    fn push(&mut self, location: &str, message: String, kind: IssueKind) {
        let seen = self
            .0
            .iter()
            .any(|i| i.location == location && i.message == message);
        if !seen {
            self.0.push(Issue {
                location: location.to_owned(),
                message,
                kind,
            });
        }
    }

    pub fn has(&self, kind: IssueKind) -> bool {
        self.0.iter().any(|i| i.kind == kind)
    }
}

/// `base.key`, or `key` at the top.
pub(super) fn at(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_owned()
    } else {
        format!("{base}.{key}")
    }
}

/// `base[index]`.
pub(super) fn at_index(base: &str, index: usize) -> String {
    format!("{base}[{index}]")
}

/// A value as written (it may call functions), and where.
#[derive(Debug, Clone)]
pub(super) struct Assigned {
    pub name: String,
    pub at: String,
    pub value: Raw,
}

/// What every TOSCA file may define that an import needs: node types, and the files it imports.
#[derive(Debug, Default)]
pub(super) struct Definitions {
    pub node_types: Vec<NodeType>,
    pub imports: Vec<Import>,
}

/// An entry of `imports`.
#[derive(Debug)]
pub(super) struct Import {
    pub at: String,
    /// As written, relative to the importing file's folder.
    pub file: String,
}

/// A whole service template: its definitions and its topology.
#[derive(Debug, Default)]
pub(super) struct ServiceTemplate {
    pub definitions: Definitions,
    /// `metadata.template_name`, or TOSCA 1.0's top-level `template_name`.
    pub name: Option<String>,
    pub inputs: Vec<InputDef>,
    pub node_templates: Vec<NodeTemplate>,
    pub relationship_templates: Vec<RelationshipTemplate>,
}

/// A declared input of the topology.
#[derive(Debug)]
pub(super) struct InputDef {
    pub name: String,
    pub at: String,
    pub type_name: Option<String>,
    pub required: bool,
    pub default: Option<Raw>,
    pub constraints: Vec<Constraint>,
}

/// One constraint clause: `valid_values: [1, 2]`.
#[derive(Debug)]
pub(super) struct Constraint {
    pub at: String,
    pub operator: String,
    pub argument: Raw,
}

/// A node template.
#[derive(Debug)]
pub(super) struct NodeTemplate {
    pub name: String,
    pub at: String,
    pub type_name: String,
    pub properties: Vec<Assigned>,
    pub attributes: Vec<Assigned>,
    /// Capability name → its property assignments.
    pub capabilities: Vec<(String, Vec<Assigned>)>,
    pub requirements: Vec<Requirement>,
    pub interface: Interface,
    /// Artifact name → its file, relative to the template's folder.
    pub artifacts: Vec<Artifact>,
    /// The folder of the file the template is in.
    pub folder: PathBuf,
}

/// A named artifact of a node template.
#[derive(Debug)]
pub(super) struct Artifact {
    pub name: String,
    pub at: String,
    pub file: String,
}

/// A relationship template of the topology, for requirements that name one.
#[derive(Debug)]
pub(super) struct RelationshipTemplate {
    pub name: String,
    pub type_name: Option<String>,
}

/// A requirement assignment.
#[derive(Debug)]
pub(super) struct Requirement {
    pub name: String,
    pub at: String,
    /// The node template it names; `None` for an abstract requirement (reported).
    pub node: Option<String>,
    /// The relationship's type as written (or the named relationship template's).
    pub relationship: Option<String>,
}

/// The Standard lifecycle interface of a template or type, as far as drover imports it.
#[derive(Debug, Default, Clone)]
pub(super) struct Interface {
    /// Inputs given to every operation of the interface.
    pub inputs: Vec<Assigned>,
    pub operations: Vec<Operation>,
}

/// The operations drover imports, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Step {
    Create,
    Configure,
    Start,
}

impl Step {
    pub const ALL: [Step; 3] = [Step::Create, Step::Configure, Step::Start];

    pub fn name(self) -> &'static str {
        match self {
            Step::Create => "create",
            Step::Configure => "configure",
            Step::Start => "start",
        }
    }

    pub fn from_name(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// One lifecycle operation.
#[derive(Debug, Clone)]
pub(super) struct Operation {
    pub step: Step,
    pub implementation: Option<Implementation>,
    pub inputs: Vec<Assigned>,
}

/// What an operation runs.
#[derive(Debug, Clone)]
pub(super) struct Implementation {
    pub at: String,
    /// As written: a file relative to `folder`, or an artifact's name.
    pub primary: String,
    /// The folder of the file that wrote it.
    pub folder: PathBuf,
    /// TOSCA 1.3's `timeout`, in seconds.
    pub timeout: Option<u64>,
}

/// A node type defined in the template or an imported file.
#[derive(Debug)]
pub(super) struct NodeType {
    pub name: String,
    pub derived_from: Option<String>,
    pub attributes: Vec<String>,
    /// Property name → its default, if it has one.
    pub properties: Vec<(String, Option<Raw>)>,
    pub interface: Interface,
    /// What the type defines that drover does not import: reported when a
    /// template uses the type, so unused types in a library stay quiet.
    pub unsupported: Vec<Issue>,
}
