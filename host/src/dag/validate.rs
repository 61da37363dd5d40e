//! Checks a parsed DAG against every rule, collecting all problems, and builds the [`Dag`].

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use super::error::{DagError, Problem};
use super::graph::{children_of, kahn};
use super::model::{Dag, Node, NodeIndex, SourceFormat};
use super::template::{self, Piece, is_valid_name, is_valid_node_name};

/// The most retries a node may ask for.
pub const MAX_RETRIES: u32 = 100;

/// How many "did you mean" suggestions one validation computes at most.
const SUGGESTION_BUDGET: usize = 32;

/// A DAG as read from a file, before the checks that need the whole graph.
#[derive(Debug)]
pub(super) struct Draft {
    pub name: String,
    pub format: SourceFormat,
    /// Node `needs` are filled by index when the format gives indexes (gorchestrator).
    pub nodes: Vec<Node>,
    /// Per node, the names listed in `needs`, resolved here (native format).
    pub need_names: Vec<Vec<String>>,
    /// Problems the format reader found.
    pub problems: Vec<Problem>,
}

/// How a node is named in problem locations: "node `a`", or "nodes[3]" when
/// it has no name.
pub(super) fn node_label(index: usize, name: &str) -> String {
    if name.is_empty() {
        format!("nodes[{index}]")
    } else {
        format!("node `{name}`")
    }
}

/// "node `a`, field `f`".
pub(super) fn field_label(node: &str, field: &str) -> String {
    format!("{node}, field `{field}`")
}

/// Reads a duration: `250ms`, `2s`, `1.5m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    drover_duration::parse_duration(text).map_err(|e| e.to_string())
}

/// Suggests names close to `wanted`, while the budget lasts.
struct Suggester<'a> {
    names: &'a [Node],
    budget: usize,
}

impl Suggester<'_> {
    /// " (did you mean `x`?)", or nothing.
    fn hint(&mut self, wanted: &str) -> String {
        if self.budget == 0 || wanted.len() > 64 {
            return String::new();
        }
        self.budget -= 1;
        // Names of one or two characters get no suggestion.
        let limit = wanted.chars().count() / 3;
        if limit == 0 {
            return String::new();
        }
        let best = self
            .names
            .iter()
            .map(|node| node.name.as_str())
            .filter(|name| name.len().abs_diff(wanted.len()) <= limit && name.len() <= 64)
            .map(|name| (strsim::osa_distance(wanted, name), name))
            .filter(|&(distance, _)| distance <= limit)
            .min_by_key(|&(distance, _)| distance);
        match best {
            Some((_, name)) => format!(" (did you mean `{name}`?)"),
            None => String::new(),
        }
    }
}

/// A DAG that failed validation: every problem, and the nodes as read (for
/// checks that look at one node at a time).
#[derive(Debug, Clone)]
pub struct Rejected {
    /// Every problem found.
    pub error: DagError,
    /// The nodes as read; `needs` may be incomplete. Empty when the file
    /// could not be read at all.
    pub nodes: Vec<Node>,
    /// The text is not YAML or JSON at all (a syntax error), as opposed to
    /// a DAG that breaks the rules.
    pub unreadable: bool,
}

/// A reference found in a node, and where.
struct RefUse {
    node: NodeIndex,
    field: String,
    written: String,
    target: NodeIndex,
}

/// Checks the draft and builds the DAG, or returns every problem found.
pub(super) fn finish(
    draft: Draft,
    base_dir: Option<&Path>,
    drivers: &dyn Fn(&str) -> bool,
) -> Result<Dag, DagError> {
    finish_keeping_nodes(draft, base_dir, drivers).map_err(|rejected| rejected.error)
}

/// Like [`finish`], but a refusal keeps the nodes as read, so that checks
/// beyond the graph (a driver's own `validate`) can still report on them.
pub(super) fn finish_keeping_nodes(
    draft: Draft,
    base_dir: Option<&Path>,
    drivers: &dyn Fn(&str) -> bool,
) -> Result<Dag, Rejected> {
    let Draft {
        name,
        format,
        mut nodes,
        need_names,
        mut problems,
    } = draft;
    let labels: Vec<String> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| node_label(i, &node.name))
        .collect();
    if nodes.is_empty() {
        problems.push(Problem::new("field `nodes`", "the DAG has no nodes"));
    }

    let index = check_names_and_ids(&nodes, &labels, &mut problems);
    resolve_needs(&mut nodes, need_names, &index, &labels, &mut problems);
    check_fields(&nodes, &labels, drivers, &mut problems);
    let refs = find_references(&nodes, &index, &labels, &mut problems);

    let children = children_of(&nodes);
    let order = kahn(&nodes, &children);
    let acyclic = order.len() == nodes.len();
    if !acyclic {
        for cycle in cycles(&nodes, &children, &order) {
            let names: Vec<&str> = cycle.iter().map(|&i| nodes[i].name.as_str()).collect();
            problems.push(Problem::new(
                "graph",
                format!("cycle: {} -> {}", names.join(" -> "), names[0]),
            ));
        }
    }
    check_upstream(
        &nodes,
        &refs,
        &labels,
        acyclic.then_some(&order[..]),
        &mut problems,
    );

    if !problems.is_empty() {
        return Err(Rejected {
            error: DagError { problems },
            nodes,
            unreadable: false,
        });
    }
    Ok(Dag::from_checked(
        name,
        nodes,
        children,
        format,
        base_dir.map(Path::to_path_buf),
        index,
    ))
}

/// Names valid and unique, ids unique. Returns name → first index.
fn check_names_and_ids(
    nodes: &[Node],
    labels: &[String],
    problems: &mut Vec<Problem>,
) -> HashMap<String, NodeIndex> {
    let mut index: HashMap<String, NodeIndex> = HashMap::with_capacity(nodes.len());
    let mut ids: HashMap<i64, NodeIndex> = HashMap::new();
    for (i, node) in nodes.iter().enumerate() {
        if node.name.is_empty() {
            problems.push(Problem::new(&labels[i], "the node has an empty name"));
        } else if !is_valid_node_name(&node.name) {
            problems.push(Problem::new(
                &labels[i],
                "a node name must not contain whitespace, control characters, `{` or `}`",
            ));
        } else if node.name == "." || node.name == ".." || node.name.contains('/') {
            // The name is the node's workspace folder under the run's.
            problems.push(Problem::new(
                &labels[i],
                "a node name must not be `.` or `..` nor contain `/`: it names the node's workspace folder",
            ));
        }
        if node.name.is_empty() {
            // Reported above; not a duplicate.
        } else if let Some(&first) = index.get(node.name.as_str()) {
            problems.push(Problem::new(
                format!("nodes[{i}]"),
                format!(
                    "duplicate node name `{}`, also at nodes[{first}]",
                    node.name
                ),
            ));
        } else {
            index.insert(node.name.clone(), i);
        }
        if let Some(id) = node.id {
            if let Some(&first) = ids.get(&id) {
                problems.push(Problem::new(
                    field_label(&labels[i], "id"),
                    format!("duplicate id {id}, also at nodes[{first}]"),
                ));
            } else {
                ids.insert(id, i);
            }
        }
    }
    index
}

/// Turns `needs` names into indexes; sorts and dedups every node's `needs`.
fn resolve_needs(
    nodes: &mut [Node],
    need_names: Vec<Vec<String>>,
    index: &HashMap<String, NodeIndex>,
    labels: &[String],
    problems: &mut Vec<Problem>,
) {
    let mut suggester = Suggester {
        names: nodes,
        budget: SUGGESTION_BUDGET,
    };
    let mut resolved: Vec<Vec<NodeIndex>> = Vec::with_capacity(need_names.len());
    for (i, names) in need_names.into_iter().enumerate() {
        let mut needs = Vec::with_capacity(names.len());
        for need in names {
            match index.get(need.as_str()) {
                Some(&j) if j == i => problems.push(Problem::new(
                    field_label(&labels[i], "needs"),
                    format!("node `{need}` needs itself"),
                )),
                Some(&j) => needs.push(j),
                None => problems.push(Problem::new(
                    field_label(&labels[i], "needs"),
                    format!("no node named `{need}`{}", suggester.hint(&need)),
                )),
            }
        }
        resolved.push(needs);
    }
    for (i, node) in nodes.iter_mut().enumerate() {
        if let Some(needs) = resolved.get_mut(i) {
            node.needs.append(needs);
        }
        node.needs.sort_unstable();
        node.needs.dedup();
    }
}

/// Per-node checks: driver, outputs, env names, timeout, retries.
fn check_fields(
    nodes: &[Node],
    labels: &[String],
    drivers: &dyn Fn(&str) -> bool,
    problems: &mut Vec<Problem>,
) {
    let mut known: HashMap<&str, bool> = HashMap::new();
    for (i, node) in nodes.iter().enumerate() {
        let label = &labels[i];
        // An empty driver is reported by the format reader.
        if !node.driver.is_empty()
            && !*known
                .entry(&node.driver)
                .or_insert_with(|| drivers(&node.driver))
        {
            problems.push(Problem::new(
                field_label(label, "driver"),
                format!("unknown driver `{}`", node.driver),
            ));
        }
        let mut outputs = HashSet::new();
        for (k, output) in node.outputs.iter().enumerate() {
            if !is_valid_name(output) {
                problems.push(Problem::new(
                    field_label(label, &format!("outputs[{k}]")),
                    format!("invalid output name `{output}`: it must not be empty nor contain whitespace, control characters, `:`, `{{` or `}}`"),
                ));
            } else if !outputs.insert(output.as_str()) {
                problems.push(Problem::new(
                    field_label(label, &format!("outputs[{k}]")),
                    format!("duplicate output `{output}`"),
                ));
            }
        }
        let mut env_names = HashSet::new();
        for (key, _) in &node.env {
            if key.is_empty() || key.contains(['=', '\0']) {
                problems.push(Problem::new(
                    field_label(label, "env"),
                    format!("invalid environment variable name `{key}`"),
                ));
            } else if !env_names.insert(key.as_str()) {
                problems.push(Problem::new(
                    field_label(label, "env"),
                    format!("duplicate environment variable `{key}`"),
                ));
            }
        }
        for (field, message) in super::secret_ref::syntax_problems(&node.secrets) {
            problems.push(Problem::new(field_label(label, &field), message));
        }
        if node.timeout == Some(Duration::ZERO) {
            problems.push(Problem::new(
                field_label(label, "timeout"),
                "the timeout must be greater than zero",
            ));
        }
        if node.retries.max > MAX_RETRIES {
            problems.push(Problem::new(
                field_label(label, "retries.max"),
                format!(
                    "{} retries is too many (at most {MAX_RETRIES})",
                    node.retries.max
                ),
            ));
        }
    }
}

/// Finds every output reference; reports malformed ones and ones to
/// unknown nodes, to the node itself, or to undeclared outputs.
fn find_references(
    nodes: &[Node],
    index: &HashMap<String, NodeIndex>,
    labels: &[String],
    problems: &mut Vec<Problem>,
) -> Vec<RefUse> {
    let mut uses = Vec::new();
    let mut suggester = Suggester {
        names: nodes,
        budget: SUGGESTION_BUDGET,
    };
    for (i, node) in nodes.iter().enumerate() {
        let mut texts: Vec<(String, &str, bool)> = Vec::new();
        if node.artifact.contains("${{") {
            texts.push(("artifact".to_owned(), &node.artifact, false));
        }
        for (k, arg) in node.args.iter().enumerate() {
            if arg.contains("${{") || arg.contains("get_attribute") {
                texts.push((format!("args[{k}]"), arg, true));
            }
        }
        for (key, value) in &node.env {
            if value.contains("${{") {
                texts.push((format!("env.{key}"), value, false));
            }
        }
        for (field, text, is_arg) in texts {
            let at = field_label(&labels[i], &field);
            let mut found = Vec::new();
            let mut collect = |piece: Piece<'_>| {
                if let Piece::Ref { node, key, written } = piece {
                    found.push((node.to_owned(), key.to_owned(), written.to_owned()));
                }
            };
            let scanned = if is_arg {
                template::scan_arg(text, true, &mut collect)
            } else {
                template::scan(text, true, &mut collect)
            };
            if let Err(e) = scanned {
                problems.push(Problem::new(&at, e.to_string()));
                continue;
            }
            for (target, key, written) in found {
                let Some(&t) = index.get(target.as_str()) else {
                    problems.push(Problem::new(
                        &at,
                        format!(
                            "`{written}` refers to `{target}`, which is not a node{}",
                            suggester.hint(&target)
                        ),
                    ));
                    continue;
                };
                if t == i {
                    problems.push(Problem::new(
                        &at,
                        format!("`{written}` refers to node `{target}` itself"),
                    ));
                    continue;
                }
                let declared = &nodes[t].outputs;
                if !declared.is_empty() && !declared.contains(&key) {
                    problems.push(Problem::new(
                        &at,
                        format!(
                            "`{written}` refers to output `{key}`, which `{target}` does not declare (it declares `{}`)",
                            declared.join("`, `")
                        ),
                    ));
                }
                uses.push(RefUse {
                    node: i,
                    field: field.clone(),
                    written,
                    target: t,
                });
            }
        }
    }
    uses
}

/// Reports references to nodes that are not upstream of the referencing
/// node. With a topological order, walks up from the node pruning parents
/// placed before every target still sought.
fn check_upstream(
    nodes: &[Node],
    uses: &[RefUse],
    labels: &[String],
    order: Option<&[NodeIndex]>,
    problems: &mut Vec<Problem>,
) {
    if uses.is_empty() {
        return;
    }
    let position: Option<Vec<usize>> = order.map(|order| {
        let mut position = vec![0; nodes.len()];
        for (p, &i) in order.iter().enumerate() {
            position[i] = p;
        }
        position
    });
    let mut seen = vec![0u32; nodes.len()];
    let mut round = 0u32;
    let mut stack = Vec::new();
    for group in uses.chunk_by(|a, b| a.node == b.node) {
        let v = group[0].node;
        let mut targets: Vec<NodeIndex> = group.iter().map(|u| u.target).collect();
        targets.sort_unstable();
        targets.dedup();
        round += 1;
        let missing = not_upstream(
            nodes,
            v,
            targets,
            position.as_deref(),
            &mut seen,
            round,
            &mut stack,
        );
        for u in group.iter().filter(|u| missing.contains(&u.target)) {
            problems.push(Problem::new(
                field_label(&labels[v], &u.field),
                format!(
                    "`{}` refers to `{}`, which is not an upstream node of `{}`",
                    u.written, nodes[u.target].name, nodes[v].name
                ),
            ));
        }
    }
}

/// The `targets` that are not ancestors of `v`.
fn not_upstream(
    nodes: &[Node],
    v: NodeIndex,
    mut wanted: Vec<NodeIndex>,
    position: Option<&[usize]>,
    seen: &mut [u32],
    round: u32,
    stack: &mut Vec<NodeIndex>,
) -> Vec<NodeIndex> {
    let mut missing = Vec::new();
    if let Some(position) = position {
        wanted.retain(|&t| {
            let before = position[t] < position[v];
            if !before {
                missing.push(t);
            }
            before
        });
    }
    wanted.retain(|t| nodes[v].needs.binary_search(t).is_err());
    let floor = |wanted: &[NodeIndex]| match position {
        Some(position) => wanted.iter().map(|&t| position[t]).min().unwrap_or(0),
        None => 0,
    };
    let mut lowest = floor(&wanted);
    stack.clear();
    stack.push(v);
    seen[v] = round;
    while !wanted.is_empty() {
        let Some(u) = stack.pop() else { break };
        for &p in &nodes[u].needs {
            if seen[p] == round || position.is_some_and(|position| position[p] < lowest) {
                continue;
            }
            seen[p] = round;
            if let Some(k) = wanted.iter().position(|&t| t == p) {
                wanted.swap_remove(k);
                lowest = floor(&wanted);
            }
            stack.push(p);
        }
    }
    missing.extend(wanted);
    missing
}

/// One cycle per strongly connected component of the nodes Kahn's
/// algorithm could not order; each starts at its first node in file order
/// and follows dependency → dependent edges.
fn cycles(nodes: &[Node], children: &[Vec<NodeIndex>], order: &[NodeIndex]) -> Vec<Vec<NodeIndex>> {
    let n = nodes.len();
    let mut stuck = vec![true; n];
    for &i in order {
        stuck[i] = false;
    }
    let components = strongly_connected(children, &stuck);
    let mut component_of = vec![usize::MAX; n];
    for (c, members) in components.iter().enumerate() {
        for &m in members {
            component_of[m] = c;
        }
    }
    let mut previous = vec![usize::MAX; n];
    let mut result = Vec::new();
    for (c, members) in components.iter().enumerate() {
        let Some(&start) = members.iter().min() else {
            continue;
        };
        // Breadth-first from `start` inside the component, back to `start`.
        let mut queue = vec![start];
        let mut head = 0;
        let mut end = None;
        previous[start] = start;
        'search: while head < queue.len() {
            let u = queue[head];
            head += 1;
            for &w in &children[u] {
                if w == start {
                    end = Some(u);
                    break 'search;
                }
                if component_of[w] == c && previous[w] == usize::MAX {
                    previous[w] = u;
                    queue.push(w);
                }
            }
        }
        if let Some(mut u) = end {
            let mut cycle = vec![u];
            while u != start {
                u = previous[u];
                cycle.push(u);
            }
            cycle.reverse();
            result.push(cycle);
        }
        for &u in &queue {
            previous[u] = usize::MAX;
        }
    }
    result.sort_by_key(|cycle| cycle[0]);
    result
}

/// Tarjan's algorithm, iterative, over the `alive` nodes: the components
/// of two nodes or more.
fn strongly_connected(children: &[Vec<NodeIndex>], alive: &[bool]) -> Vec<Vec<NodeIndex>> {
    const UNSEEN: usize = usize::MAX;
    let n = children.len();
    let mut number = vec![UNSEEN; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut calls: Vec<(NodeIndex, usize)> = Vec::new();
    let mut next = 0;
    let mut components = Vec::new();
    for root in (0..n).filter(|&i| alive[i]) {
        if number[root] != UNSEEN {
            continue;
        }
        number[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        calls.push((root, 0));
        while let Some(&(v, edge)) = calls.last() {
            if let Some(&w) = children[v].get(edge) {
                if let Some(call) = calls.last_mut() {
                    call.1 += 1;
                }
                if !alive[w] {
                    continue;
                }
                if number[w] == UNSEEN {
                    number[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(number[w]);
                }
            } else {
                calls.pop();
                if let Some(&(parent, _)) = calls.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == number[v] {
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if component.len() > 1 {
                        components.push(component);
                    }
                }
            }
        }
    }
    components
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("250ms", Duration::from_millis(250)),
            ("2s", Duration::from_secs(2)),
            ("1.5m", Duration::from_secs(90)),
            ("1h", Duration::from_secs(3600)),
            ("30", Duration::from_secs(30)),
            ("0.1", Duration::from_millis(100)),
            (" 3s ", Duration::from_secs(3)),
            ("1.000000001s", Duration::from_nanos(1_000_000_001)),
            ("0s", Duration::ZERO),
        ];
        for (text, want) in ok {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        for bad in [
            "",
            "s",
            "1.s",
            ".5s",
            "-1s",
            "1d",
            "1e3",
            "inf",
            "1 s",
            "1.2.3s",
            "+1s",
            "99999999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("1x").unwrap_err().contains("`1x`"));
    }
}
