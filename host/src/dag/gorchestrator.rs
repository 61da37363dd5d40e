//! Reads gorchestrator's `{name, state, digraph, nodes}` JSON into a draft for validation.

use super::error::Problem;
use super::model::{Node, SourceFormat};
use super::raw::{BAD_CELLS_KEPT, Matrix, Raw, Top};
use super::validate::{Draft, field_label, node_label};

/// Reads one field that should be a string; null or absent is `None`.
fn string(at: &str, raw: Option<&Raw>, problems: &mut Vec<Problem>) -> Option<String> {
    match raw {
        None | Some(Raw::Null) => None,
        Some(Raw::Str(s)) => Some(s.clone()),
        Some(other) => {
            problems.push(Problem::new(
                at,
                format!("expected a string, found {}", other.kind()),
            ));
            None
        }
    }
}

/// The value of the first field called `key`.
fn field<'a>(fields: &'a [(String, Raw)], key: &str) -> Option<&'a Raw> {
    fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn node(index: usize, raw: &Raw, problems: &mut Vec<Problem>) -> Node {
    let fields: &[(String, Raw)] = match raw {
        Raw::Map(fields) => fields,
        other => {
            problems.push(Problem::new(
                format!("nodes[{index}]"),
                format!("expected a node object, found {}", other.kind()),
            ));
            &[]
        }
    };
    let position = format!("nodes[{index}]");
    let name = string(
        &field_label(&position, "name"),
        field(fields, "name"),
        problems,
    )
    .unwrap_or_default();
    let label = node_label(index, &name);
    let at = |f: &str| field_label(&label, f);

    let engine = string(&at("engine"), field(fields, "engine"), problems);
    let driver = match engine.as_deref() {
        Some("nil") => "noop".to_owned(),
        Some(engine) => engine.to_owned(),
        None => String::new(),
    };
    if driver.is_empty()
        && matches!(
            field(fields, "engine"),
            None | Some(Raw::Null | Raw::Str(_))
        )
    {
        problems.push(Problem::new(
            at("engine"),
            "missing engine (use `nil` for a node that does nothing)",
        ));
    }
    let artifact = string(&at("artifact"), field(fields, "artifact"), problems).unwrap_or_default();

    let mut args = Vec::new();
    match field(fields, "args") {
        None | Some(Raw::Null) => {}
        Some(Raw::Seq(items)) => {
            for (k, item) in items.iter().enumerate() {
                match item {
                    Raw::Str(s) => args.push(s.clone()),
                    other => problems.push(Problem::new(
                        at(&format!("args[{k}]")),
                        format!("expected a string, found {}", other.kind()),
                    )),
                }
            }
        }
        Some(other) => problems.push(Problem::new(
            at("args"),
            format!("expected a list of strings or null, found {}", other.kind()),
        )),
    }

    let outputs = match field(fields, "output") {
        None | Some(Raw::Null) => Vec::new(),
        Some(Raw::Map(entries)) => entries.iter().map(|(key, _)| key.clone()).collect(),
        Some(other) => {
            problems.push(Problem::new(
                at("output"),
                format!(
                    "expected an object whose keys name the outputs, or null, found {}",
                    other.kind()
                ),
            ));
            Vec::new()
        }
    };

    let pool = string(&at("target"), field(fields, "target"), problems).filter(|t| !t.is_empty());

    let id = match field(fields, "id") {
        None | Some(Raw::Null) => None,
        Some(Raw::Int(id)) => match i64::try_from(*id) {
            Ok(id) => Some(id),
            Err(_) => {
                problems.push(Problem::new(at("id"), format!("id {id} is out of range")));
                None
            }
        },
        Some(other) => {
            problems.push(Problem::new(
                at("id"),
                format!("expected an integer, found {}", other.kind()),
            ));
            None
        }
    };

    Node {
        artifact,
        args,
        outputs,
        pool,
        id,
        ..Node::new(name, driver)
    }
}

/// Checks the matrix and fills each node's `needs` from it.
fn apply_matrix(matrix: &Matrix, nodes: &mut [Node], problems: &mut Vec<Problem>) {
    if let Some(kind) = matrix.not_a_list {
        problems.push(Problem::new(
            "digraph",
            format!("expected a list of 0s and 1s, found {kind}"),
        ));
        return;
    }
    let n = nodes.len() as u64;
    let side = matrix.len.isqrt();
    let square = side * side == matrix.len;
    if !square {
        problems.push(Problem::new(
            "digraph",
            format!(
                "has {} cells, which is not a perfect square; {} nodes need {} cells ({n}×{n})",
                matrix.len,
                n,
                n.saturating_mul(n)
            ),
        ));
    } else if side != n {
        problems.push(Problem::new(
            "digraph",
            format!(
                "is a {side}×{side} matrix ({} cells) but there are {n} nodes, which need {n}×{n}",
                matrix.len
            ),
        ));
    }
    let cell = |p: u64| {
        if square && side > 0 {
            format!("digraph[{p}] (row {}, column {})", p / side, p % side)
        } else {
            format!("digraph[{p}]")
        }
    };
    for (p, what) in &matrix.bad {
        problems.push(Problem::new(
            cell(*p),
            format!("expected 0 or 1, found {what}"),
        ));
    }
    if matrix.bad_count > BAD_CELLS_KEPT as u64 {
        problems.push(Problem::new(
            "digraph",
            format!(
                "{} more cells are neither 0 nor 1",
                matrix.bad_count - BAD_CELLS_KEPT as u64
            ),
        ));
    }
    if !square || side != n {
        return;
    }
    for &p in &matrix.ones {
        // Both below n, which is a usize.
        let (from, to) = ((p / side) as usize, (p % side) as usize);
        if from == to {
            problems.push(Problem::new(
                cell(p),
                format!(
                    "self-loop: node `{}` must finish before itself",
                    nodes[from].name
                ),
            ));
        } else {
            nodes[to].needs.push(from);
        }
    }
}

/// Reads a gorchestrator DAG: nodes in array order, edges from `digraph`.
pub(super) fn convert(top: Top) -> Draft {
    let mut problems = Vec::new();
    let fields = &top.fields;
    let name = match field(fields, "name") {
        Some(Raw::Str(name)) if !name.is_empty() => name.clone(),
        Some(Raw::Str(_)) => {
            problems.push(Problem::new(
                "field `name`",
                "the DAG's name must not be empty",
            ));
            String::new()
        }
        None => {
            problems.push(Problem::new("top level", "missing field `name`"));
            String::new()
        }
        Some(other) => {
            problems.push(Problem::new(
                "field `name`",
                format!("expected a string, found {}", other.kind()),
            ));
            String::new()
        }
    };
    let mut nodes = match field(fields, "nodes") {
        Some(Raw::Seq(items)) => items
            .iter()
            .enumerate()
            .map(|(i, raw)| node(i, raw, &mut problems))
            .collect(),
        None => {
            problems.push(Problem::new("top level", "missing field `nodes`"));
            Vec::new()
        }
        Some(other) => {
            problems.push(Problem::new(
                "field `nodes`",
                format!("expected a list of nodes, found {}", other.kind()),
            ));
            Vec::new()
        }
    };
    match &top.digraph {
        Some(matrix) => apply_matrix(matrix, &mut nodes, &mut problems),
        None => problems.push(Problem::new("top level", "missing field `digraph`")),
    }
    let need_names = Vec::new();
    Draft {
        name,
        format: SourceFormat::Gorchestrator,
        nodes,
        need_names,
        problems,
    }
}
