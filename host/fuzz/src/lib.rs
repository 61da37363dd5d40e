//! Properties the fuzz targets check on what drover's parsers return, shared by the targets in `fuzz_targets/`.
//!
//! A target that only calls a parser finds panics, hangs and runaway memory;
//! these checks also catch a parser that accepts something it should not,
//! answers an error that names nothing, or loses data on a round trip. A
//! failed check panics, which libFuzzer reports as a crash with its input.

use std::collections::HashSet;

use drover::dag::{self, Dag, DagError};

/// Drivers the DAG targets treat as installed, so that accepted DAGs reach
/// every later check; any `@version` is accepted.
const DRIVERS: &[&str] = &["noop", "sleep", "shell", "docker", "npm-test", "ansible"];

fn driver_exists(written: &str) -> bool {
    let name = written.split_once('@').map_or(written, |(name, _)| name);
    DRIVERS.contains(&name)
}

/// Which of drover's DAG readers a target drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DagFormat {
    /// `dag::parse_native`: drover's YAML or JSON.
    Native,
    /// `dag::parse_gorchestrator`: gorchestrator's JSON.
    Gorchestrator,
}

/// Parses `text` with the reader of `format` and with the format-detecting
/// readers, and checks that they agree and that what they return holds up.
pub fn check_dag(text: &str, format: DagFormat) {
    let direct = match format {
        DagFormat::Native => dag::parse_native(text, None, &driver_exists),
        DagFormat::Gorchestrator => dag::parse_gorchestrator(text, None, &driver_exists),
    };
    let detected = dag::parse(text, None, &driver_exists);
    let keeping = dag::parse_keeping_nodes(text, None, &driver_exists);

    // `parse` and `parse_keeping_nodes` differ only in what a refusal carries.
    match (&detected, &keeping) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "parse and parse_keeping_nodes disagree"),
        (Err(a), Err(b)) => assert_eq!(a, &b.error, "parse and parse_keeping_nodes disagree"),
        _ => panic!(
            "parse and parse_keeping_nodes disagree: {:?} vs {:?}",
            detected.is_ok(),
            keeping.is_ok()
        ),
    }
    // A text one reader accepts is in that reader's format, so detecting the
    // format must pick the same reader.
    if let Ok(dag) = &direct {
        assert_eq!(
            detected.as_ref(),
            Ok(dag),
            "the format-detecting parse disagrees"
        );
    }
    for result in [&direct, &detected] {
        match result {
            Ok(dag) => check_accepted(dag),
            Err(error) => check_refusal(error),
        }
    }
}

/// A refusal says where and what, every time.
fn check_refusal(error: &DagError) {
    assert!(!error.problems.is_empty(), "a refusal with no problem");
    for problem in &error.problems {
        assert!(
            !problem.location.trim().is_empty(),
            "a problem with no location: {problem:?}"
        );
        assert!(
            !problem.message.trim().is_empty(),
            "a problem with no message: {problem:?}"
        );
    }
}

/// An accepted DAG is what the engine assumes: unique names, needs and
/// children that mirror each other, no cycle, references only to declared
/// outputs of upstream nodes, and renderings with one line per node and edge.
fn check_accepted(dag: &Dag) {
    let n = dag.nodes.len();
    assert_eq!(dag.children.len(), n, "one children list per node");
    for (i, node) in dag.nodes.iter().enumerate() {
        assert!(!node.name.is_empty(), "node {i} has no name");
        assert_eq!(dag.index_of(&node.name), Some(i), "node `{}`", node.name);
        assert!(driver_exists(&node.driver), "unknown driver accepted");
        for &need in &node.needs {
            assert!(need < n && need != i, "node {i} needs {need}");
            assert!(dag.children[need].contains(&i), "children miss {i}");
        }
    }
    for (i, children) in dag.children.iter().enumerate() {
        assert!(children.is_sorted(), "children of {i} not ascending");
        for &child in children {
            assert!(
                dag.nodes[child].needs.contains(&i),
                "{child} does not need {i}"
            );
        }
    }
    let order = dag.topological_order();
    assert_eq!(order.len(), n, "a cycle was accepted");
    let mut position = vec![usize::MAX; n];
    for (at, &i) in order.iter().enumerate() {
        assert_eq!(position[i], usize::MAX, "node {i} twice in the order");
        position[i] = at;
    }
    for (i, node) in dag.nodes.iter().enumerate() {
        for &need in &node.needs {
            assert!(position[need] < position[i], "{need} not before {i}");
        }
    }
    for (i, node) in dag.nodes.iter().enumerate() {
        check_references(dag, i, node);
    }
    let edges: usize = dag.children.iter().map(Vec::len).sum();
    assert_eq!(
        dag::to_dot(dag).lines().count(),
        n + edges + 3,
        "a DOT label broke its line"
    );
    assert_eq!(
        dag::to_mermaid(dag).lines().count(),
        n + edges + 4,
        "a Mermaid label broke its line"
    );
}

/// Every output reference of node `i` parses, names a declared output (when
/// the target declares any) of a node upstream of `i`, and substitutes.
fn check_references(dag: &Dag, i: usize, node: &dag::Node) {
    let upstream = ancestors(dag, i);
    let mut refs = Vec::new();
    refs.extend(dag::references(&node.artifact).expect("artifact reference"));
    for arg in &node.args {
        refs.extend(dag::arg_references(arg).expect("arg reference"));
        dag::substitute_arg(arg, &|_, _| Some("v".into())).expect("arg substitutes");
    }
    for (_, value) in &node.env {
        refs.extend(dag::references(value).expect("env reference"));
        dag::substitute(value, &|_, _| Some("v".into())).expect("env substitutes");
    }
    for reference in refs {
        let target = dag
            .index_of(&reference.node)
            .unwrap_or_else(|| panic!("reference to unknown node {reference:?}"));
        assert!(
            upstream.contains(&target),
            "{reference:?} is not upstream of {i}"
        );
        let declared = &dag.nodes[target].outputs;
        assert!(
            declared.is_empty() || declared.contains(&reference.key),
            "{reference:?} names an undeclared output"
        );
    }
}

/// The nodes `i` needs, directly or not.
fn ancestors(dag: &Dag, i: usize) -> HashSet<usize> {
    let mut seen = HashSet::new();
    let mut stack = dag.nodes[i].needs.clone();
    while let Some(j) = stack.pop() {
        if seen.insert(j) {
            stack.extend(&dag.nodes[j].needs);
        }
    }
    seen
}
