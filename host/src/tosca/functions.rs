//! TOSCA's intrinsic functions: `get_input` and `get_property` become values at import time,
//! `get_attribute` and `get_operation_output` references to the outputs of upstream nodes,
//! `concat` text made of both.

use crate::dag::raw::Raw;
use crate::dag::template::is_valid_name;

use super::model::{Step, at, at_index};
use super::read::is_standard;
use super::translate::Translator;

/// The function names TOSCA defines (and `$`-prefixed ones, TOSCA 2.0's).
const FUNCTIONS: &[&str] = &[
    "get_input",
    "get_property",
    "get_attribute",
    "get_operation_output",
    "concat",
    "join",
    "token",
    "get_nodes_of_type",
    "get_artifact",
];

/// How deep `get_property` may follow properties that read properties.
const MAX_DEPTH: u8 = 16;

/// Where a value is evaluated.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ctx {
    /// The template `SELF` means.
    pub owner: usize,
    /// The node whose input is being made (template, node): references must
    /// reach nodes upstream of it. `None` when a value is only checked.
    pub consumer: Option<(usize, usize)>,
    pub depth: u8,
}

/// A value after its functions ran.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<Val>),
    Map(Vec<(String, Val)>),
    /// Text known only when the run gets there: literals and references.
    Text(Vec<Part>),
}

/// A piece of [`Val::Text`].
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Part {
    Lit(String),
    Ref { node: String, key: String },
}

impl Val {
    /// Plain data (an input's value): no functions in it.
    pub fn from_raw(raw: &Raw) -> Val {
        match raw {
            Raw::Null => Val::Null,
            Raw::Bool(b) => Val::Bool(*b),
            Raw::Int(i) => Val::Int(*i),
            Raw::Float(f) => Val::Float(*f),
            Raw::Str(s) => Val::Str(s.clone()),
            Raw::Seq(items) => Val::List(items.iter().map(Val::from_raw).collect()),
            Raw::Map(entries) => Val::Map(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), Val::from_raw(v)))
                    .collect(),
            ),
        }
    }

    /// The value as text: scalars as written, lists and mappings as JSON.
    pub fn into_parts(self) -> Vec<Part> {
        let mut parts = Vec::new();
        match self {
            Val::Null => {}
            Val::Bool(b) => parts.push(Part::Lit(b.to_string())),
            Val::Int(i) => parts.push(Part::Lit(i.to_string())),
            Val::Float(f) => parts.push(Part::Lit(f.to_string())),
            Val::Str(s) => parts.push(Part::Lit(s)),
            Val::Text(text) => parts = text,
            json @ (Val::List(_) | Val::Map(_)) => json.json(&mut parts),
        }
        merge_literals(parts)
    }

    /// Writes the value as JSON; references go inside JSON strings.
    fn json(self, out: &mut Vec<Part>) {
        let quoted = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
        match self {
            Val::Null => out.push(Part::Lit("null".into())),
            Val::Bool(b) => out.push(Part::Lit(b.to_string())),
            Val::Int(i) => out.push(Part::Lit(i.to_string())),
            Val::Float(f) => out.push(Part::Lit(serde_json::Value::from(f).to_string())),
            Val::Str(s) => out.push(Part::Lit(quoted(&s))),
            Val::Text(text) => {
                out.push(Part::Lit("\"".into()));
                for part in text {
                    match part {
                        Part::Lit(s) => {
                            let q = quoted(&s);
                            out.push(Part::Lit(q[1..q.len() - 1].to_owned()));
                        }
                        reference => out.push(reference),
                    }
                }
                out.push(Part::Lit("\"".into()));
            }
            Val::List(items) => {
                out.push(Part::Lit("[".into()));
                for (i, item) in items.into_iter().enumerate() {
                    if i > 0 {
                        out.push(Part::Lit(",".into()));
                    }
                    item.json(out);
                }
                out.push(Part::Lit("]".into()));
            }
            Val::Map(entries) => {
                out.push(Part::Lit("{".into()));
                for (i, (key, value)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(Part::Lit(",".into()));
                    }
                    out.push(Part::Lit(format!("{}:", quoted(&key))));
                    value.json(out);
                }
                out.push(Part::Lit("}".into()));
            }
        }
    }
}

/// Joins neighbouring literals.
fn merge_literals(parts: Vec<Part>) -> Vec<Part> {
    let mut merged: Vec<Part> = Vec::with_capacity(parts.len());
    for part in parts {
        match (merged.last_mut(), part) {
            (Some(Part::Lit(previous)), Part::Lit(next)) => previous.push_str(&next),
            (_, part) => merged.push(part),
        }
    }
    merged
}

/// If `raw` calls a function, its name and arguments.
fn call(raw: &Raw) -> Option<(&str, &Raw)> {
    match raw {
        Raw::Map(entries) if entries.len() == 1 => {
            let (name, args) = &entries[0];
            (FUNCTIONS.contains(&name.as_str()) || name.starts_with('$'))
                .then_some((name.as_str(), args))
        }
        _ => None,
    }
}

/// The template named by an entity keyword or name.
enum Entity {
    One(usize),
    Hosts(Vec<usize>),
}

impl Translator<'_> {
    /// Evaluates `raw` where `ctx` says; `None` when a problem was reported.
    pub(super) fn eval(&mut self, ctx: Ctx, location: &str, raw: &Raw) -> Option<Val> {
        if let Some((name, args)) = call(raw) {
            return match name {
                "get_input" => self.get_input(location, args),
                "get_property" => self.get_property(ctx, location, args),
                "get_attribute" => self.get_attribute(ctx, location, args),
                "get_operation_output" => self.get_operation_output(ctx, location, args),
                "concat" => self.concat(ctx, location, args),
                _ => {
                    self.issues
                        .unsupported(location, format!("function `{name}` is not supported"));
                    None
                }
            };
        }
        match raw {
            Raw::Seq(items) => {
                let mut values = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match self.eval(ctx, &at_index(location, i), item) {
                        Some(value) => values.push(value),
                        None => ok = false,
                    }
                }
                ok.then_some(Val::List(values))
            }
            Raw::Map(entries) => {
                let mut values = Vec::with_capacity(entries.len());
                let mut ok = true;
                for (key, item) in entries {
                    match self.eval(ctx, &at(location, key), item) {
                        Some(value) => values.push((key.clone(), value)),
                        None => ok = false,
                    }
                }
                ok.then_some(Val::Map(values))
            }
            scalar => Some(Val::from_raw(scalar)),
        }
    }

    /// A function's arguments as names (and indexes, as text).
    fn names(&mut self, location: &str, function: &str, args: &Raw) -> Option<Vec<String>> {
        let items = match args {
            Raw::Seq(items) => items.as_slice(),
            other => std::slice::from_ref(other),
        };
        let mut names = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Raw::Str(s) => names.push(s.clone()),
                Raw::Int(i) if !names.is_empty() => names.push(i.to_string()),
                _ => {
                    self.issues.error(
                        location,
                        format!("`{function}` takes a list of names, found {}", item.kind()),
                    );
                    return None;
                }
            }
        }
        Some(names)
    }

    fn get_input(&mut self, location: &str, args: &Raw) -> Option<Val> {
        let names = self.names(location, "get_input", args)?;
        let Some((name, path)) = names.split_first() else {
            self.issues
                .error(location, "`get_input` needs the input's name");
            return None;
        };
        let Some((_, value)) = self.inputs.iter().find(|(n, _)| n == name) else {
            let declared: Vec<&str> = self.inputs.iter().map(|(n, _)| n.as_str()).collect();
            self.issues.error(
                location,
                format!(
                    "`get_input`: the template declares no input `{name}`{}",
                    if declared.is_empty() {
                        String::new()
                    } else {
                        format!(" (it declares `{}`)", declared.join("`, `"))
                    }
                ),
            );
            return None;
        };
        // A required input without a value is reported where it is declared.
        let value = value.as_ref().map_or(Val::Null, Val::from_raw);
        self.navigate(location, "get_input", value, path)
    }

    /// Follows nested names or indexes into a value.
    fn navigate(
        &mut self,
        location: &str,
        function: &str,
        mut value: Val,
        path: &[String],
    ) -> Option<Val> {
        for (depth, key) in path.iter().enumerate() {
            let next = match value {
                Val::Map(entries) => entries.into_iter().find(|(k, _)| k == key).map(|(_, v)| v),
                Val::List(items) => key
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.into_iter().nth(i)),
                _ => None,
            };
            match next {
                Some(next) => value = next,
                None => {
                    self.issues.error(
                        location,
                        format!(
                            "`{function}`: nothing at `{}` in the value",
                            path[..=depth].join(".")
                        ),
                    );
                    return None;
                }
            }
        }
        Some(value)
    }

    /// The template `SELF`, `HOST` or a name stands for.
    fn entity(&mut self, ctx: Ctx, location: &str, function: &str, name: &str) -> Option<Entity> {
        match name {
            "SELF" => Some(Entity::One(ctx.owner)),
            "HOST" => {
                let hosts = self.hosts(ctx.owner);
                if hosts.is_empty() {
                    self.issues.error(
                        location,
                        format!(
                            "`{function}`: `{}` has no host (no `host` requirement)",
                            self.templates[ctx.owner].name
                        ),
                    );
                    return None;
                }
                Some(Entity::Hosts(hosts))
            }
            "SOURCE" | "TARGET" => {
                self.issues.unsupported(
                    location,
                    format!(
                        "`{function}` of `{name}`: `{name}` means something in relationship operations only, which drover does not import"
                    ),
                );
                None
            }
            _ => match self.find(name) {
                Some(t) => Some(Entity::One(t)),
                None => {
                    self.issues
                        .error(location, format!("`{function}`: no node template `{name}`"));
                    None
                }
            },
        }
    }

    fn get_property(&mut self, ctx: Ctx, location: &str, args: &Raw) -> Option<Val> {
        let names = self.names(location, "get_property", args)?;
        if names.len() < 2 {
            self.issues.error(
                location,
                "`get_property` takes [template, property] (then nested names)",
            );
            return None;
        }
        if ctx.depth >= MAX_DEPTH {
            self.issues.error(
                location,
                "`get_property` goes too deep: does a property read itself?",
            );
            return None;
        }
        let candidates = match self.entity(ctx, location, "get_property", &names[0])? {
            Entity::One(t) => vec![t],
            Entity::Hosts(hosts) => hosts,
        };
        for &t in &candidates {
            if let Some(found) = self.property(ctx, location, t, &names[1..]) {
                return found;
            }
        }
        let owner = &self.templates[candidates[0]].name;
        self.issues.error(
            location,
            if names[0] == "HOST" {
                format!(
                    "`get_property`: no host of `{}` has property or capability `{}`",
                    self.templates[ctx.owner].name, names[1]
                )
            } else {
                format!(
                    "`get_property`: `{owner}` has no property or capability `{}`",
                    names[1]
                )
            },
        );
        None
    }

    /// Property `path[0]` of template `t` (or a property of its capability
    /// `path[0]`), then nested names. `None` when `t` has no such thing;
    /// `Some(None)` when its value has a problem.
    fn property(
        &mut self,
        ctx: Ctx,
        location: &str,
        t: usize,
        path: &[String],
    ) -> Option<Option<Val>> {
        let template = &self.templates[t];
        let inner = Ctx {
            owner: t,
            consumer: ctx.consumer,
            depth: ctx.depth + 1,
        };
        let name = &path[0];
        let assigned = template
            .properties
            .iter()
            .find(|p| &p.name == name)
            .map(|p| (p.at.clone(), p.value.clone()))
            .or_else(|| {
                self.plans[t]
                    .inherited
                    .defaults
                    .iter()
                    .find(|(p, _)| p == name)
                    .map(|(_, d)| {
                        (
                            format!("{}, default of `{name}`", template.type_name),
                            d.clone(),
                        )
                    })
            });
        if let Some((at, raw)) = assigned {
            let value = self.eval(inner, &at, &raw);
            return Some(
                value.and_then(|v| self.navigate(location, "get_property", v, &path[1..])),
            );
        }
        if self.plans[t].inherited.properties.contains(name) {
            self.issues.error(
                location,
                format!(
                    "`get_property`: property `{name}` of `{}` has no value",
                    template.name
                ),
            );
            return Some(None);
        }
        let capability = template.capabilities.iter().find(|(c, _)| c == name)?;
        let Some(property) = path.get(1) else {
            self.issues.error(
                location,
                format!(
                    "`get_property`: `{name}` is a capability of `{}`: name one of its properties",
                    template.name
                ),
            );
            return Some(None);
        };
        let Some(assigned) = capability.1.iter().find(|p| &p.name == property) else {
            self.issues.error(
                location,
                format!(
                    "`get_property`: capability `{name}` of `{}` has no property `{property}`",
                    template.name
                ),
            );
            return Some(None);
        };
        let (at, raw) = (assigned.at.clone(), assigned.value.clone());
        let value = self.eval(inner, &at, &raw);
        Some(value.and_then(|v| self.navigate(location, "get_property", v, &path[2..])))
    }

    fn get_attribute(&mut self, ctx: Ctx, location: &str, args: &Raw) -> Option<Val> {
        let names = self.names(location, "get_attribute", args)?;
        match names.len() {
            0 | 1 => {
                self.issues
                    .error(location, "`get_attribute` takes [template, attribute]");
                return None;
            }
            2 => {}
            _ => {
                self.issues.unsupported(
                    location,
                    "`get_attribute` with more than [template, attribute] (a capability's attribute, nested names) is not supported",
                );
                return None;
            }
        }
        let attribute = &names[1];
        let t = match self.entity(ctx, location, "get_attribute", &names[0])? {
            Entity::One(t) => t,
            Entity::Hosts(hosts) => {
                let has = |t: &usize| {
                    let inherited = &self.plans[*t].inherited;
                    self.templates[*t]
                        .attributes
                        .iter()
                        .any(|a| &a.name == attribute)
                        || !inherited.known
                        || inherited.attributes.contains(attribute)
                };
                match hosts.iter().find(|h| has(h)) {
                    Some(&h) => h,
                    None => {
                        self.issues.error(
                            location,
                            format!(
                                "`get_attribute`: no host of `{}` has attribute `{attribute}`",
                                self.templates[ctx.owner].name
                            ),
                        );
                        return None;
                    }
                }
            }
        };
        let template = &self.templates[t];
        match attribute.as_str() {
            "tosca_name" => return Some(Val::Str(template.name.clone())),
            "tosca_id" | "state" => {
                self.issues.unsupported(
                    location,
                    format!(
                        "`get_attribute`: `{attribute}` is kept by the orchestrator, and drover has no value for it here (a node's state is in the run record)"
                    ),
                );
                return None;
            }
            _ => {}
        }
        // A value the template gives the attribute is known now.
        if let Some(assigned) = template.attributes.iter().find(|a| &a.name == attribute) {
            let inner = Ctx {
                owner: t,
                consumer: ctx.consumer,
                depth: ctx.depth + 1,
            };
            let (at, raw) = (assigned.at.clone(), assigned.value.clone());
            return self.eval(inner, &at, &raw);
        }
        let inherited = &self.plans[t].inherited;
        if inherited.known && !inherited.attributes.contains(attribute) {
            self.issues.error(
                location,
                format!(
                    "`get_attribute`: type `{}` of `{}` has no attribute `{attribute}` (it has `{}`)",
                    template.type_name,
                    template.name,
                    inherited.attributes.join("`, `")
                ),
            );
            return None;
        }
        if !is_valid_name(attribute) {
            self.issues.error(
                location,
                format!("`get_attribute`: `{attribute}` cannot name a drover output (no whitespace, `:`, `{{` or `}}`)"),
            );
            return None;
        }
        let node = match ctx.consumer {
            // Only checked: any node of the template does.
            None => self.plans[t].nodes.len() - 1,
            Some((c, k)) if c == t => match self.plans[t].setter(Some(k)) {
                Some(node) => node,
                None => {
                    self.issues.error(
                        location,
                        format!(
                            "`get_attribute` of `{}` in `{}`: no operation of it runs before this one, so nothing can have set `{attribute}` yet",
                            names[0], self.plans[c].nodes[k].name
                        ),
                    );
                    return None;
                }
            },
            Some((c, k)) => {
                if !self.upstream(location, "get_attribute", t, c, k) {
                    return None;
                }
                match self.plans[t].setter(None) {
                    Some(node) => node,
                    None => {
                        self.issues.unsupported(
                            location,
                            format!(
                                "`get_attribute`: `{}` has no operation that runs, so nothing sets its attribute `{attribute}` (give the template `attributes: {{{attribute}: ...}}`, or an operation that prints `{attribute}=...`)",
                                template.name
                            ),
                        );
                        self.plans[t].nodes.len() - 1
                    }
                }
            }
        };
        if ctx.consumer.is_some() {
            self.wanted.push((t, node, attribute.clone()));
        }
        Some(Val::Text(vec![Part::Ref {
            node: self.plans[t].nodes[node].name.clone(),
            key: attribute.clone(),
        }]))
    }

    /// Whether template `t` is upstream of node `k` of template `c`; reports it if not.
    fn upstream(&mut self, location: &str, function: &str, t: usize, c: usize, k: usize) -> bool {
        if self.requires(c, t) {
            return true;
        }
        let (target, consumer) = (&self.templates[t].name, &self.templates[c].name);
        self.issues.error(
            location,
            format!(
                "`{function}` reads `{target}`, which `{consumer}` does not require (directly or through the templates it requires), so `{}` may run before `{target}` is done: add a requirement such as `dependency: {target}`",
                self.plans[c].nodes[k].name
            ),
        );
        false
    }

    fn get_operation_output(&mut self, ctx: Ctx, location: &str, args: &Raw) -> Option<Val> {
        let names = self.names(location, "get_operation_output", args)?;
        let [entity, interface, operation, output] = names.as_slice() else {
            self.issues.error(
                location,
                "`get_operation_output` takes [template, interface, operation, output]",
            );
            return None;
        };
        let t = match self.entity(ctx, location, "get_operation_output", entity)? {
            Entity::One(t) => t,
            Entity::Hosts(hosts) => hosts[0],
        };
        if !is_standard(interface) {
            self.issues.unsupported(
                location,
                format!("`get_operation_output`: only the Standard interface's operations are imported, not `{interface}`'s"),
            );
            return None;
        }
        let name = format!("{}:{operation}", self.templates[t].name);
        let found = Step::from_name(operation).and_then(|_| {
            self.plans[t]
                .nodes
                .iter()
                .position(|n| n.name == name && n.artifact.is_some())
        });
        let Some(node) = found else {
            self.issues.error(
                location,
                format!(
                    "`get_operation_output`: `{}` has no `{operation}` operation that runs a script",
                    self.templates[t].name
                ),
            );
            return None;
        };
        if !is_valid_name(output) {
            self.issues.error(
                location,
                format!("`get_operation_output`: `{output}` cannot name a drover output (no whitespace, `:`, `{{` or `}}`)"),
            );
            return None;
        }
        match ctx.consumer {
            Some((c, k)) if c == t && node >= k => {
                self.issues.error(
                    location,
                    format!(
                        "`get_operation_output`: `{name}` does not run before `{}`",
                        self.plans[c].nodes[k].name
                    ),
                );
                return None;
            }
            Some((c, k)) if c != t && !self.upstream(location, "get_operation_output", t, c, k) => {
                return None;
            }
            _ => {}
        }
        if ctx.consumer.is_some() {
            self.wanted.push((t, node, output.clone()));
        }
        Some(Val::Text(vec![Part::Ref {
            node: name,
            key: output.clone(),
        }]))
    }

    fn concat(&mut self, ctx: Ctx, location: &str, args: &Raw) -> Option<Val> {
        let Raw::Seq(items) = args else {
            self.issues
                .error(location, "`concat` takes a list of values");
            return None;
        };
        let mut parts = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.eval(ctx, &at_index(location, i), item) {
                Some(value) => parts.extend(value.into_parts()),
                None => ok = false,
            }
        }
        ok.then(|| Val::Text(merge_literals(parts)))
    }
}
