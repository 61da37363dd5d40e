//! Reads drover's native DAG format (YAML or JSON) into a draft for validation.

use std::collections::HashSet;
use std::time::Duration;

use super::error::Problem;
use super::model::{Node, NodeGrants, OnInterrupt, RetryPolicy, SourceFormat};
use super::raw::{Raw, Top};
use super::validate::{Draft, field_label, node_label, parse_duration};

const TOP_FIELDS: &[&str] = &["name", "nodes", "on_interrupt"];
const NODE_FIELDS: &[&str] = &[
    "driver",
    "artifact",
    "args",
    "env",
    "needs",
    "outputs",
    "timeout",
    "retries",
    "pool",
    "grants",
    "secrets",
    "on_interrupt",
];
const GRANT_FIELDS: &[&str] = &["exec", "network", "container", "memory_mib", "processes"];
const RETRY_FIELDS: &[&str] = &["max", "backoff", "max_backoff"];

/// "expected one of `a`, `b`".
fn one_of(fields: &[&str]) -> String {
    format!("expected one of `{}`", fields.join("`, `"))
}

/// Collects problems at one place.
struct Reader<'a> {
    problems: &'a mut Vec<Problem>,
}

impl Reader<'_> {
    fn problem(&mut self, at: &str, message: impl Into<String>) {
        self.problems.push(Problem::new(at, message));
    }

    fn wrong_type(&mut self, at: &str, expected: &str, found: &Raw) {
        self.problem(at, format!("expected {expected}, found {}", found.kind()));
    }

    /// A scalar as text.
    fn text(&mut self, at: &str, raw: &Raw) -> Option<String> {
        let text = raw.scalar_text();
        if text.is_none() {
            self.wrong_type(at, "a string", raw);
        }
        text
    }

    /// A list of scalars as text; null is an empty list.
    fn texts(&mut self, label: &str, field: &str, raw: &Raw) -> Vec<String> {
        match raw {
            Raw::Null => Vec::new(),
            Raw::Seq(items) => items
                .iter()
                .enumerate()
                .filter_map(|(k, item)| {
                    let text = item.scalar_text();
                    if text.is_none() {
                        let at = field_label(label, &format!("{field}[{k}]"));
                        self.wrong_type(&at, "a string", item);
                    }
                    text
                })
                .collect(),
            other => {
                self.wrong_type(&field_label(label, field), "a list of strings", other);
                Vec::new()
            }
        }
    }

    fn duration(&mut self, at: &str, raw: &Raw) -> Option<Duration> {
        let parsed = match raw {
            Raw::Str(text) => parse_duration(text),
            Raw::Int(seconds) if *seconds >= 0 => parse_duration(&seconds.to_string()),
            Raw::Float(seconds) if *seconds >= 0.0 => parse_duration(&seconds.to_string()),
            Raw::Int(_) | Raw::Float(_) => Err("a duration must not be negative".to_owned()),
            other => {
                self.wrong_type(at, "a duration such as `30s` or a number of seconds", other);
                return None;
            }
        };
        parsed.map_err(|message| self.problem(at, message)).ok()
    }

    fn retry_count(&mut self, at: &str, raw: &Raw) -> Option<u32> {
        match raw {
            Raw::Int(n) if *n < 0 => {
                self.problem(at, "the number of retries must not be negative");
                None
            }
            // Too large counts saturate; validation refuses them.
            Raw::Int(n) => Some(u32::try_from(*n).unwrap_or(u32::MAX)),
            other => {
                self.wrong_type(at, "a whole number", other);
                None
            }
        }
    }

    /// A limit a node sets itself: a whole number above zero.
    fn limit(&mut self, at: &str, raw: &Raw) -> Option<u64> {
        match raw {
            Raw::Int(n) if *n > 0 => u64::try_from(*n).ok(),
            Raw::Int(_) => {
                self.problem(at, "a limit must be above 0");
                None
            }
            other => {
                self.wrong_type(at, "a whole number", other);
                None
            }
        }
    }

    fn retries(&mut self, label: &str, raw: &Raw) -> RetryPolicy {
        let mut policy = RetryPolicy::default();
        let at = field_label(label, "retries");
        match raw {
            Raw::Null => {}
            Raw::Int(_) => policy.max = self.retry_count(&at, raw).unwrap_or(0),
            Raw::Map(fields) => {
                let mut seen: HashSet<&str> = HashSet::new();
                for (key, value) in fields {
                    let field_at = field_label(label, &format!("retries.{key}"));
                    if !seen.insert(key.as_str()) {
                        self.problem(&at, format!("duplicate field `{key}`"));
                        continue;
                    }
                    match key.as_str() {
                        "max" => {
                            if let Some(max) = self.retry_count(&field_at, value) {
                                policy.max = max;
                            }
                        }
                        "backoff" => {
                            if let Some(backoff) = self.duration(&field_at, value) {
                                policy.backoff = backoff;
                            }
                        }
                        "max_backoff" => {
                            if let Some(max_backoff) = self.duration(&field_at, value) {
                                policy.max_backoff = max_backoff;
                            }
                        }
                        _ => self.problem(
                            &at,
                            format!("unknown field `{key}`, {}", one_of(RETRY_FIELDS)),
                        ),
                    }
                }
            }
            other => self.wrong_type(&at, "a mapping such as `{max: 2, backoff: 1s}`", other),
        }
        policy
    }

    fn grants(&mut self, label: &str, raw: &Raw) -> Option<NodeGrants> {
        let at = field_label(label, "grants");
        let fields = match raw {
            Raw::Null => return None,
            Raw::Map(fields) => fields,
            other => {
                self.wrong_type(
                    &at,
                    "a mapping such as `{exec: [curl], network: false}`",
                    other,
                );
                return None;
            }
        };
        let mut grants = NodeGrants::default();
        let mut seen: HashSet<&str> = HashSet::new();
        for (key, value) in fields {
            if !seen.insert(key.as_str()) {
                self.problem(&at, format!("duplicate field `{key}`"));
                continue;
            }
            match (key.as_str(), value) {
                ("exec", _) => grants.exec = Some(self.texts(label, "grants.exec", value)),
                ("network", Raw::Bool(network)) => grants.network = Some(*network),
                ("network", other) => {
                    self.wrong_type(&field_label(label, "grants.network"), "a boolean", other)
                }
                ("container", Raw::Bool(container)) => grants.container = Some(*container),
                ("container", other) => {
                    self.wrong_type(&field_label(label, "grants.container"), "a boolean", other)
                }
                ("memory_mib", _) => {
                    grants.memory_mib = self.limit(&field_label(label, "grants.memory_mib"), value)
                }
                ("processes", _) => {
                    grants.processes = self.limit(&field_label(label, "grants.processes"), value)
                }
                _ => self.problem(
                    &at,
                    format!("unknown field `{key}`, {}", one_of(GRANT_FIELDS)),
                ),
            }
        }
        Some(grants)
    }

    /// `secrets: {NAME: "vault:PATH#KEY"}`: names to references, as text.
    fn secrets(&mut self, label: &str, raw: &Raw) -> Vec<(String, String)> {
        match raw {
            Raw::Null => Vec::new(),
            Raw::Map(entries) => entries
                .iter()
                .filter_map(|(name, value)| {
                    let text = value.scalar_text();
                    if text.is_none() {
                        let at = field_label(label, &format!("secrets.{name}"));
                        self.wrong_type(
                            &at,
                            "a reference such as `vault:secret/data/app#password`",
                            value,
                        );
                    }
                    Some((name.clone(), text?))
                })
                .collect(),
            other => {
                let at = field_label(label, "secrets");
                self.wrong_type(
                    &at,
                    "a mapping of names to references such as `{DB_PASS: \"vault:secret/data/app#password\"}`",
                    other,
                );
                Vec::new()
            }
        }
    }

    fn env(&mut self, label: &str, raw: &Raw) -> Vec<(String, String)> {
        match raw {
            Raw::Null => Vec::new(),
            Raw::Map(entries) => entries
                .iter()
                .filter_map(|(key, value)| {
                    let text = value.scalar_text();
                    if text.is_none() {
                        let at = field_label(label, &format!("env.{key}"));
                        self.wrong_type(&at, "a string", value);
                    }
                    Some((key.clone(), text?))
                })
                .collect(),
            other => {
                let at = field_label(label, "env");
                self.wrong_type(&at, "a mapping of names to values", other);
                Vec::new()
            }
        }
    }

    /// `rerun` or `fail`.
    fn on_interrupt(&mut self, at: &str, raw: &Raw) -> Option<OnInterrupt> {
        match self.text(at, raw)?.as_str() {
            "rerun" => Some(OnInterrupt::Rerun),
            "fail" => Some(OnInterrupt::Fail),
            other => {
                self.problem(
                    at,
                    format!("`{other}` is not a choice here: expected `rerun` or `fail`"),
                );
                None
            }
        }
    }

    /// One node; also returns the names it needs.
    fn node(&mut self, index: usize, name: &str, raw: &Raw) -> (Node, Vec<String>) {
        let label = node_label(index, name);
        let mut node = Node::new(name, String::new());
        let mut needs = Vec::new();
        let fields: &[(String, Raw)] = match raw {
            Raw::Map(fields) => fields,
            Raw::Null => &[],
            other => {
                self.wrong_type(&label, "a mapping of node fields", other);
                return (node, needs);
            }
        };
        let mut seen: HashSet<&str> = HashSet::with_capacity(fields.len());
        let mut driver_reported = false;
        for (key, value) in fields {
            if !seen.insert(key.as_str()) {
                self.problem(&label, format!("duplicate field `{key}`"));
                continue;
            }
            let at = field_label(&label, key);
            match key.as_str() {
                "driver" => match self.text(&at, value) {
                    Some(driver) => node.driver = driver,
                    None => driver_reported = true,
                },
                "artifact" => {
                    if !matches!(value, Raw::Null) {
                        node.artifact = self.text(&at, value).unwrap_or_default();
                    }
                }
                "args" => node.args = self.texts(&label, key, value),
                "env" => node.env = self.env(&label, value),
                "needs" => needs = self.texts(&label, key, value),
                "outputs" => node.outputs = self.texts(&label, key, value),
                "timeout" => {
                    if !matches!(value, Raw::Null) {
                        node.timeout = self.duration(&at, value);
                    }
                }
                "retries" => node.retries = self.retries(&label, value),
                "grants" => node.grants = self.grants(&label, value),
                "secrets" => node.secrets = self.secrets(&label, value),
                "on_interrupt" => {
                    if let Some(choice) = self.on_interrupt(&at, value) {
                        node.on_interrupt = choice;
                    }
                }
                "pool" => {
                    if !matches!(value, Raw::Null) {
                        node.pool = self.text(&at, value);
                    }
                }
                _ => self.problem(
                    &label,
                    format!("unknown field `{key}`, {}", one_of(NODE_FIELDS)),
                ),
            }
        }
        if node.driver.is_empty() && !driver_reported {
            if seen.contains(&"driver") {
                self.problem(
                    &field_label(&label, "driver"),
                    "the driver must not be empty",
                );
            } else {
                self.problem(&label, "missing field `driver`");
            }
        }
        (node, needs)
    }
}

/// Reads a native DAG's top level and nodes, in file order.
pub(super) fn convert(top: Top) -> Draft {
    let mut problems = Vec::new();
    let mut reader = Reader {
        problems: &mut problems,
    };
    if top.digraph.is_some() {
        reader.problem(
            "top level",
            format!("unknown field `digraph`, {}", one_of(TOP_FIELDS)),
        );
    }
    let mut name = None;
    let mut node_fields: Option<&Raw> = None;
    let mut on_interrupt = None;
    for (key, value) in &top.fields {
        match key.as_str() {
            "name" if name.is_some() => reader.problem("top level", "duplicate field `name`"),
            "on_interrupt" => on_interrupt = reader.on_interrupt("field `on_interrupt`", value),
            "nodes" if node_fields.is_some() => {
                reader.problem("top level", "duplicate field `nodes`")
            }
            "name" => name = Some(reader.text("field `name`", value).unwrap_or_default()),
            "nodes" => node_fields = Some(value),
            _ => reader.problem(
                "top level",
                format!("unknown field `{key}`, {}", one_of(TOP_FIELDS)),
            ),
        }
    }
    let name = match name {
        Some(name) => name,
        None => {
            reader.problem("top level", "missing field `name`");
            String::new()
        }
    };
    if name.is_empty() && top.fields.iter().any(|(k, _)| k == "name") {
        reader.problem("field `name`", "the DAG's name must not be empty");
    }
    let mut nodes = Vec::new();
    let mut need_names = Vec::new();
    match node_fields {
        None => reader.problem("top level", "missing field `nodes`"),
        Some(Raw::Map(entries)) => {
            nodes.reserve(entries.len());
            need_names.reserve(entries.len());
            for (i, (node_name, raw)) in entries.iter().enumerate() {
                let (mut node, needs) = reader.node(i, node_name, raw);
                // The DAG's choice is each node's unless it makes its own.
                let own = matches!(raw, Raw::Map(fields) if fields.iter().any(|(k, _)| k == "on_interrupt"));
                if let (Some(choice), false) = (on_interrupt, own) {
                    node.on_interrupt = choice;
                }
                nodes.push(node);
                need_names.push(needs);
            }
        }
        Some(other) => {
            reader.wrong_type("field `nodes`", "a mapping of node names to nodes", other)
        }
    }
    Draft {
        name,
        format: SourceFormat::Native,
        nodes,
        need_names,
        problems,
    }
}

#[cfg(test)]
mod schema_tests {
    use super::*;

    #[test]
    fn the_documented_schema_names_the_fields_the_reader_takes() {
        for (what, mut documented) in super::super::schema::native_fields() {
            let taken = match what {
                "top" => TOP_FIELDS,
                "node" => NODE_FIELDS,
                "retries" => RETRY_FIELDS,
                _ => GRANT_FIELDS,
            };
            let mut taken: Vec<String> = taken.iter().map(|f| (*f).to_owned()).collect();
            documented.sort();
            taken.sort();
            assert_eq!(documented, taken, "{what}");
        }
    }
}
