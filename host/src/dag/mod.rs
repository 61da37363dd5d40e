//! DAG files: parsing both formats into one model, validating, output references, rendering.

mod budget;
mod error;
mod gorchestrator;
mod graph;
pub mod model;
mod native;
pub(crate) mod raw;
pub mod render;
pub mod schema;
pub mod secret_ref;
pub mod template;
mod validate;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use error::{DagError, Problem};
pub use model::{
    Dag, Node, NodeGrants, NodeIndex, NodeState, OnInterrupt, OutputRef, RetryPolicy, SourceFormat,
};
pub use render::{to_dot, to_mermaid};
pub use template::{
    MissingOutput, TemplateError, arg_references, references, substitute, substitute_arg,
};
pub use validate::{MAX_RETRIES, Rejected, parse_duration};

/// Parses and validates a DAG file in either format: JSON with a `digraph`
/// key is gorchestrator's, anything else drover's native YAML or JSON.
/// `drivers` tells whether a driver (as written, with any `@version`) exists.
pub fn parse(
    text: &str,
    base_dir: Option<&Path>,
    drivers: &dyn Fn(&str) -> bool,
) -> Result<Dag, DagError> {
    let top = raw::read(text)?;
    let draft = if top.digraph.is_some() {
        gorchestrator::convert(top)
    } else {
        native::convert(top)
    };
    validate::finish(draft, base_dir, drivers)
}

/// Like [`parse`], but a refused DAG comes back with its nodes as read, so
/// that per-node checks (each driver's own `validate`) can be reported in
/// the same answer as the graph's problems.
pub fn parse_keeping_nodes(
    text: &str,
    base_dir: Option<&Path>,
    drivers: &dyn Fn(&str) -> bool,
) -> Result<Dag, Rejected> {
    let top = raw::read(text).map_err(|problem| Rejected {
        error: problem.into(),
        nodes: Vec::new(),
        unreadable: true,
    })?;
    let draft = if top.digraph.is_some() {
        gorchestrator::convert(top)
    } else {
        native::convert(top)
    };
    validate::finish_keeping_nodes(draft, base_dir, drivers)
}

/// Parses and validates a DAG in drover's native format, YAML or JSON.
pub fn parse_native(
    text: &str,
    base_dir: Option<&Path>,
    drivers: &dyn Fn(&str) -> bool,
) -> Result<Dag, DagError> {
    let top = raw::read(text)?;
    validate::finish(native::convert(top), base_dir, drivers)
}

/// Parses and validates a DAG in gorchestrator's JSON format.
pub fn parse_gorchestrator(
    text: &str,
    base_dir: Option<&Path>,
    drivers: &dyn Fn(&str) -> bool,
) -> Result<Dag, DagError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let top = raw::read_json(text)?;
    validate::finish(gorchestrator::convert(top), base_dir, drivers)
}

/// Builds and validates a DAG from nodes made in code, with `needs` given by
/// index (benchmarks, tests, generated graphs). Checks the same rules as the
/// parsers.
pub fn from_nodes(
    name: impl Into<String>,
    nodes: Vec<Node>,
    drivers: &dyn Fn(&str) -> bool,
) -> Result<Dag, DagError> {
    let mut problems = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        for &need in &node.needs {
            if need >= nodes.len() {
                problems.push(Problem::new(
                    validate::field_label(&validate::node_label(i, &node.name), "needs"),
                    format!("no node at index {need} (the DAG has {})", nodes.len()),
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(DagError { problems });
    }
    let draft = validate::Draft {
        name: name.into(),
        format: SourceFormat::Native,
        nodes,
        need_names: Vec::new(),
        problems,
    };
    validate::finish(draft, None, drivers)
}
