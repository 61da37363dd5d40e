//! Renders a DAG as Graphviz DOT or as a Mermaid flowchart.

use std::fmt::Write;

use super::model::Dag;

/// Escapes text for a DOT double-quoted string.
fn dot_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => {}
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Escapes text for a Mermaid double-quoted label, with entity codes.
fn mermaid_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => escaped.push_str("#quot;"),
            '#' => escaped.push_str("#35;"),
            '<' => escaped.push_str("#lt;"),
            '>' => escaped.push_str("#gt;"),
            '&' => escaped.push_str("#amp;"),
            '\n' | '\r' => escaped.push(' '),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The DAG in Graphviz DOT: nodes `n0`, `n1`, ... labelled with name and
/// driver, edges from each node to the nodes that need it.
pub fn to_dot(dag: &Dag) -> String {
    let mut out = String::with_capacity(64 + dag.nodes.len() * 48);
    let _ = writeln!(out, "digraph {} {{", dot_quote(&dag.name));
    let _ = writeln!(out, "  node [shape=box];");
    for (i, node) in dag.nodes.iter().enumerate() {
        let label = format!("{}\n{}", node.name, node.driver);
        let _ = writeln!(out, "  n{i} [label={}];", dot_quote(&label));
    }
    for (i, children) in dag.children.iter().enumerate() {
        for child in children {
            let _ = writeln!(out, "  n{i} -> n{child};");
        }
    }
    out.push_str("}\n");
    out
}

/// The DAG as a Mermaid `flowchart TD`, same shape as [`to_dot`].
pub fn to_mermaid(dag: &Dag) -> String {
    let mut out = String::with_capacity(64 + dag.nodes.len() * 48);
    let title: String = dag.name.replace('\'', "''").replace(['\n', '\r'], " ");
    let _ = writeln!(out, "---\ntitle: '{title}'\n---");
    out.push_str("flowchart TD\n");
    for (i, node) in dag.nodes.iter().enumerate() {
        let _ = writeln!(
            out,
            "  n{i}[\"{}<br/>{}\"]",
            mermaid_escape(&node.name),
            mermaid_escape(&node.driver)
        );
    }
    for (i, children) in dag.children.iter().enumerate() {
        for child in children {
            let _ = writeln!(out, "  n{i} --> n{child}");
        }
    }
    out
}
