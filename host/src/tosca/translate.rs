//! Turns a read service template into drover nodes: operations into `template:operation`
//! nodes, requirements into `needs`, operation inputs into `env`, type attributes into outputs.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use crate::dag::template::{is_valid_name, is_valid_node_name};

use super::functions::{Ctx, Part, Val};
use super::inputs::Values;
use super::model::{
    Assigned, Implementation, Issues, NodeTemplate, Operation, ServiceTemplate, at,
};
use super::output::{NativeDag, NativeNode, Ordered};
use super::types::{Inherited, Types, merge_interface};

/// The driver of the nodes that run an operation's script.
pub(super) const SCRIPT_DRIVER: &str = "shell";
/// The driver of the nodes that stand for a template without operations.
pub(super) const EMPTY_DRIVER: &str = "noop";
/// The step name of a template without operations.
pub(super) const NOOP: &str = "noop";
/// The root type's attributes, which the orchestrator keeps, not the
/// scripts: never outputs of a node.
pub(super) const ORCHESTRATOR_ATTRIBUTES: &[&str] = &["tosca_id", "tosca_name", "state"];

/// A node the template becomes.
#[derive(Debug)]
pub(super) struct PlannedNode {
    /// `template:operation`.
    pub name: String,
    pub operation: Option<Operation>,
    /// The script's path; `None` for a node that runs nothing.
    pub artifact: Option<String>,
}

/// What one template becomes, and how it relates to the others.
#[derive(Debug)]
pub(super) struct Plan {
    pub inherited: Inherited,
    /// Its nodes, in lifecycle order: one per operation, or one `noop`.
    pub nodes: Vec<PlannedNode>,
    /// The templates its requirements name, in order, each once.
    pub requires: Vec<usize>,
    /// The template its `host` requirement names.
    pub host: Option<usize>,
    /// The inputs every operation of its Standard interface gets.
    pub interface_inputs: Vec<Assigned>,
}

impl Plan {
    /// The last node before `before` (or of all) that runs a script: the
    /// one whose outputs hold the template's attributes at that point.
    pub fn setter(&self, before: Option<usize>) -> Option<usize> {
        let end = before.unwrap_or(self.nodes.len());
        (0..end).rev().find(|&i| self.nodes[i].artifact.is_some())
    }
}

/// The templates being translated, what each becomes, and what the functions found.
pub(super) struct Translator<'a> {
    pub templates: &'a [NodeTemplate],
    pub inputs: &'a Values,
    pub index: HashMap<&'a str, usize>,
    pub plans: Vec<Plan>,
    pub issues: &'a mut Issues,
    /// Outputs references need: template, node, key.
    pub wanted: Vec<(usize, usize, String)>,
    /// Whether an import could not be read (then unknown types are expected).
    pub imports_missing: bool,
    /// Scripts that are not there (yet), as written.
    pub missing_scripts: Vec<String>,
}

/// Translates the template; problems go to `issues`.
pub(super) fn translate(
    template: &ServiceTemplate,
    types: &Types,
    inputs: &Values,
    name: String,
    imports_missing: bool,
    issues: &mut Issues,
) -> NativeDag {
    let templates = &template.node_templates;
    if templates.is_empty() {
        issues.error(
            "topology_template.node_templates",
            "the template has no node templates: nothing to import",
        );
    }
    let mut index = HashMap::with_capacity(templates.len());
    for (i, t) in templates.iter().enumerate() {
        index.insert(t.name.as_str(), i);
        let leaves_folder = t.name == "." || t.name == ".." || t.name.contains('/');
        if !is_valid_node_name(&t.name) || leaves_folder {
            issues.error(
                &t.at,
                format!(
                    "`{}` cannot name drover nodes: a template's name must not contain whitespace, control characters, `{{`, `}}` or `/`",
                    t.name
                ),
            );
        }
    }
    let mut translator = Translator {
        templates,
        inputs,
        index,
        plans: Vec::with_capacity(templates.len()),
        issues,
        wanted: Vec::new(),
        imports_missing,
        missing_scripts: Vec::new(),
    };
    for t in templates {
        let plan = translator.plan(t, types, template);
        translator.plans.push(plan);
    }
    if !translator.missing_scripts.is_empty() {
        let scripts = &translator.missing_scripts;
        translator.issues.warning(
            "topology_template.node_templates",
            format!(
                "{} script{} not found next to the template (`{}`): {} fail when {} run",
                scripts.len(),
                if scripts.len() == 1 { " is" } else { "s are" },
                scripts.join("`, `"),
                if scripts.len() == 1 {
                    "its node will"
                } else {
                    "their nodes will"
                },
                if scripts.len() == 1 { "it" } else { "they" },
            ),
        );
    }
    if translator.report_cycles() {
        // Needs would loop, and "upstream" means nothing.
        return NativeDag {
            name,
            nodes: Ordered::default(),
        };
    }
    // Every value a template holds is checked, read by an operation or not.
    for (i, t) in templates.iter().enumerate() {
        translator.check_values(i, t);
    }
    let mut nodes: Vec<Vec<NativeNode>> = Vec::with_capacity(templates.len());
    for i in 0..templates.len() {
        nodes.push(translator.nodes_of(i));
    }
    translator.add_wanted_outputs(&mut nodes);
    let mut ordered = Vec::new();
    for (plan, made) in translator.plans.iter().zip(nodes) {
        for (step, node) in plan.nodes.iter().zip(made) {
            ordered.push((step.name.clone(), node));
        }
    }
    NativeDag {
        name,
        nodes: Ordered(ordered),
    }
}

impl Translator<'_> {
    /// The node template named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    fn plan(&mut self, t: &NodeTemplate, types: &Types, template: &ServiceTemplate) -> Plan {
        let inherited = types.inherit(&t.type_name);
        self.issues.extend(inherited.unsupported.iter().cloned());
        if !inherited.known && !t.type_name.is_empty() && !self.imports_missing {
            self.issues.unsupported(
                &at(&t.at, "type"),
                format!(
                    "type `{}` is not defined in the template, its imports or TOSCA's normative types: its attributes and operations are unknown",
                    inherited.chain.last().map_or(t.type_name.as_str(), String::as_str)
                ),
            );
        }
        let mut interface = inherited.interface.clone();
        merge_interface(&mut interface, &t.interface);

        let mut requires = Vec::new();
        let mut host = None;
        for requirement in &t.requirements {
            let Some(node) = &requirement.node else {
                continue;
            };
            let Some(target) = self.find(node) else {
                if types.is_type(node) {
                    self.issues.unsupported(
                        &requirement.at,
                        format!(
                            "`{node}` is a node type: drover does not pick a node of a type, name the node template"
                        ),
                    );
                } else {
                    self.issues
                        .error(&requirement.at, format!("no node template `{node}`"));
                }
                continue;
            };
            if target == self.plans.len() {
                self.issues
                    .error(&requirement.at, "a template cannot require itself");
                continue;
            }
            let relationship = requirement.relationship.as_deref().map(|r| {
                template
                    .relationship_templates
                    .iter()
                    .find(|rt| rt.name == r)
                    .and_then(|rt| rt.type_name.as_deref())
                    .unwrap_or(r)
            });
            let hosted =
                requirement.name == "host" || relationship.is_some_and(|r| r.ends_with("HostedOn"));
            if hosted && host.is_none() {
                host = Some(target);
            }
            if !requires.contains(&target) {
                requires.push(target);
            }
        }

        let mut used_artifacts = Vec::new();
        let mut nodes: Vec<PlannedNode> = Vec::new();
        for operation in &interface.operations {
            let artifact = operation
                .implementation
                .as_ref()
                .and_then(|implementation| {
                    self.artifact(t, operation, implementation, &mut used_artifacts)
                });
            nodes.push(PlannedNode {
                name: format!("{}:{}", t.name, operation.step.name()),
                operation: Some(operation.clone()),
                artifact,
            });
        }
        if nodes.is_empty() {
            nodes.push(PlannedNode {
                name: format!("{}:{NOOP}", t.name),
                operation: None,
                artifact: None,
            });
        }
        for artifact in &t.artifacts {
            if !used_artifacts.contains(&artifact.name) {
                self.issues.unsupported(
                    &artifact.at,
                    "artifacts are not deployed: drover gives an operation only its own script",
                );
            }
        }
        Plan {
            inherited,
            nodes,
            requires,
            host,
            interface_inputs: interface.inputs,
        }
    }

    /// The script an operation runs, as an absolute path.
    fn artifact(
        &mut self,
        t: &NodeTemplate,
        operation: &Operation,
        implementation: &Implementation,
        used: &mut Vec<String>,
    ) -> Option<String> {
        let (file, folder) = match t
            .artifacts
            .iter()
            .find(|a| a.name == implementation.primary)
        {
            Some(artifact) => {
                used.push(artifact.name.clone());
                (artifact.file.as_str(), t.folder.as_path())
            }
            None => (
                implementation.primary.as_str(),
                implementation.folder.as_path(),
            ),
        };
        let location = &implementation.at;
        if file.contains("://") {
            self.issues.unsupported(
                location,
                format!("`{file}` is a URL: drover runs scripts next to the template"),
            );
            return None;
        }
        let path = normalize(&folder.join(file));
        let Some(text) = path.to_str() else {
            self.issues
                .error(location, format!("the path of `{file}` is not UTF-8"));
            return None;
        };
        if text.contains(['\n', '\r']) || text.contains("${{") {
            self.issues.error(
                location,
                format!("`{file}`: a script's path must not hold a line break or `${{{{`"),
            );
            return None;
        }
        let extension = path.extension().and_then(|e| e.to_str());
        if !matches!(extension, None | Some("sh" | "bash")) {
            // Left out (the node runs nothing): `sh` would misread it.
            self.issues.unsupported(
                location,
                format!(
                    "`{file}` is not a shell script: drover runs `{}` with the `shell` driver (`sh FILE`)",
                    operation.step.name()
                ),
            );
            return None;
        }
        if !path.is_file() {
            self.missing_scripts.push(file.to_owned());
        }
        Some(text.to_owned())
    }

    /// Reports requirement cycles; true if there is one.
    fn report_cycles(&mut self) -> bool {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let n = self.plans.len();
        let mut marks = vec![Mark::New; n];
        let mut found = false;
        for start in 0..n {
            if marks[start] != Mark::New {
                continue;
            }
            // Depth first, with the path kept to name the cycle.
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            marks[start] = Mark::Open;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if let Some(&target) = self.plans[node].requires.get(*next) {
                    *next += 1;
                    match marks[target] {
                        Mark::New => {
                            marks[target] = Mark::Open;
                            stack.push((target, 0));
                        }
                        Mark::Open => {
                            let from = stack.iter().position(|(n, _)| *n == target).unwrap_or(0);
                            let mut names: Vec<&str> = stack[from..]
                                .iter()
                                .map(|(n, _)| self.templates[*n].name.as_str())
                                .collect();
                            names.push(&self.templates[target].name);
                            let location = format!("{}.requirements", self.templates[node].at);
                            self.issues.error(
                                &location,
                                format!("requirements form a cycle: {}", names.join(" → ")),
                            );
                            found = true;
                        }
                        Mark::Done => {}
                    }
                } else {
                    marks[node] = Mark::Done;
                    stack.pop();
                }
            }
        }
        found
    }

    /// Whether `ancestor` is required by `t`, directly or through the
    /// templates it requires.
    pub fn requires(&self, t: usize, ancestor: usize) -> bool {
        let mut seen = vec![false; self.plans.len()];
        let mut stack = vec![t];
        while let Some(current) = stack.pop() {
            for &next in &self.plans[current].requires {
                if next == ancestor {
                    return true;
                }
                if !seen[next] {
                    seen[next] = true;
                    stack.push(next);
                }
            }
        }
        false
    }

    /// The hosts of `t`: its host, that one's host, and so on.
    pub fn hosts(&self, t: usize) -> Vec<usize> {
        let mut chain = Vec::new();
        let mut current = self.plans[t].host;
        while let Some(host) = current {
            if host == t || chain.contains(&host) {
                break;
            }
            chain.push(host);
            current = self.plans[host].host;
        }
        chain
    }

    /// Evaluates the template's properties, capability properties and
    /// attributes for their problems alone.
    fn check_values(&mut self, i: usize, t: &NodeTemplate) {
        let ctx = Ctx {
            owner: i,
            consumer: None,
            depth: 0,
        };
        let values = t
            .properties
            .iter()
            .chain(t.attributes.iter())
            .chain(t.capabilities.iter().flat_map(|(_, p)| p.iter()));
        for value in values {
            let _ = self.eval(ctx, &value.at, &value.value);
        }
    }

    /// The nodes of template `i`, outputs from its type only (references
    /// add theirs later).
    fn nodes_of(&mut self, i: usize) -> Vec<NativeNode> {
        let count = self.plans[i].nodes.len();
        let mut nodes = Vec::with_capacity(count);
        for k in 0..count {
            let mut needs = Vec::new();
            if k > 0 {
                needs.push(self.plans[i].nodes[k - 1].name.clone());
            } else {
                for &r in &self.plans[i].requires {
                    if let Some(last) = self.plans[r].nodes.last() {
                        needs.push(last.name.clone());
                    }
                }
            }
            let step = &self.plans[i].nodes[k];
            let Some(artifact) = step.artifact.clone() else {
                nodes.push(NativeNode {
                    driver: EMPTY_DRIVER.to_owned(),
                    needs,
                    artifact: String::new(),
                    env: Ordered::default(),
                    outputs: Vec::new(),
                    timeout: None,
                });
                continue;
            };
            let operation = step.operation.clone();
            let mut inputs = self.plans[i].interface_inputs.clone();
            if let Some(operation) = &operation {
                for input in &operation.inputs {
                    match inputs.iter_mut().find(|x| x.name == input.name) {
                        Some(existing) => *existing = input.clone(),
                        None => inputs.push(input.clone()),
                    }
                }
            }
            let ctx = Ctx {
                owner: i,
                consumer: Some((i, k)),
                depth: 0,
            };
            let mut env = Vec::with_capacity(inputs.len());
            for input in &inputs {
                if input.name.is_empty() || input.name.contains(['=', '\0']) {
                    self.issues.error(
                        &input.at,
                        format!("`{}` cannot be an environment variable's name", input.name),
                    );
                    continue;
                }
                if let Some(value) = self.eval(ctx, &input.at, &input.value)
                    && let Some(text) = self.env_text(&input.at, value)
                {
                    env.push((input.name.clone(), text));
                }
            }
            // Other templates read the attributes from the last script, so
            // that is where they are declared; earlier nodes declare what
            // references read from them (added later).
            let outputs: Vec<String> = if self.plans[i].setter(None) == Some(k) {
                self.plans[i]
                    .inherited
                    .attributes
                    .iter()
                    .filter(|a| is_valid_name(a) && !ORCHESTRATOR_ATTRIBUTES.contains(&a.as_str()))
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            let timeout = operation
                .as_ref()
                .and_then(|o| o.implementation.as_ref())
                .and_then(|imp| imp.timeout)
                .map(|s| format!("{s}s"));
            nodes.push(NativeNode {
                driver: SCRIPT_DRIVER.to_owned(),
                needs,
                artifact,
                env: Ordered(env),
                outputs,
                timeout,
            });
        }
        nodes
    }

    /// Declares the outputs that references read, where the type did not.
    fn add_wanted_outputs(&mut self, nodes: &mut [Vec<NativeNode>]) {
        for (t, k, key) in std::mem::take(&mut self.wanted) {
            if let Some(node) = nodes.get_mut(t).and_then(|n| n.get_mut(k))
                && node.driver == SCRIPT_DRIVER
                && !node.outputs.contains(&key)
            {
                node.outputs.push(key);
            }
        }
    }

    /// A value as an environment variable's text, references written as
    /// drover's `${{ nodes.N.outputs.K }}`.
    fn env_text(&mut self, location: &str, value: Val) -> Option<String> {
        let mut text = String::new();
        for part in value.into_parts() {
            match part {
                Part::Lit(literal) => {
                    if literal.contains("${{") {
                        self.issues.unsupported(
                            location,
                            "the value holds `${{`, which drover would read as an output reference",
                        );
                        return None;
                    }
                    text.push_str(&literal);
                }
                Part::Ref { node, key } => {
                    text.push_str(&format!("${{{{ nodes.{node}.outputs.{key} }}}}"));
                }
            }
        }
        Some(text)
    }
}

/// `path` without `.` components and with `..` applied where it can be,
/// without touching the disk (the script may not exist yet).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
