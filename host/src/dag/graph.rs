//! Graph queries on a validated [`Dag`]: roots, lookups, topological order.

use std::collections::HashMap;

use super::model::{Dag, Node, NodeIndex};

impl Dag {
    /// The index of the node called `name`.
    pub fn index_of(&self, name: &str) -> Option<NodeIndex> {
        self.index.get(name).copied()
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.index_of(name).map(|i| &self.nodes[i])
    }

    /// The nodes that need nothing, ascending.
    pub fn roots(&self) -> Vec<NodeIndex> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].needs.is_empty())
            .collect()
    }

    /// The nodes that need none other, ascending: the ones that end the DAG.
    pub fn leaves(&self) -> Vec<NodeIndex> {
        (0..self.nodes.len())
            .filter(|&i| self.children[i].is_empty())
            .collect()
    }

    /// Every node once, each after all the nodes it needs. Ties keep file
    /// order level by level (Kahn's algorithm with a FIFO queue).
    pub fn topological_order(&self) -> Vec<NodeIndex> {
        kahn(&self.nodes, &self.children)
    }

    /// Builds a DAG from checked parts: `nodes` valid and acyclic, `index`
    /// every node's name to its index.
    pub(super) fn from_checked(
        name: String,
        nodes: Vec<Node>,
        children: Vec<Vec<NodeIndex>>,
        format: super::model::SourceFormat,
        base_dir: Option<std::path::PathBuf>,
        index: HashMap<String, NodeIndex>,
    ) -> Dag {
        Dag {
            name,
            nodes,
            children,
            format,
            base_dir,
            index,
        }
    }
}

impl AsRef<[Node]> for Dag {
    fn as_ref(&self) -> &[Node] {
        &self.nodes
    }
}

/// For each node, the nodes that need it, ascending.
pub(super) fn children_of(nodes: &[Node]) -> Vec<Vec<NodeIndex>> {
    let mut children = vec![Vec::new(); nodes.len()];
    for (child, node) in nodes.iter().enumerate() {
        for &parent in &node.needs {
            children[parent].push(child);
        }
    }
    children
}

/// Kahn's algorithm: the nodes in a topological order. When the graph has a
/// cycle, the nodes on or after it are missing from the result.
pub(super) fn kahn(nodes: &[Node], children: &[Vec<NodeIndex>]) -> Vec<NodeIndex> {
    let mut waiting: Vec<usize> = nodes.iter().map(|node| node.needs.len()).collect();
    let mut order: Vec<NodeIndex> = (0..nodes.len()).filter(|&i| waiting[i] == 0).collect();
    order.reserve(nodes.len() - order.len());
    let mut next = 0;
    while next < order.len() {
        let done = order[next];
        next += 1;
        for &child in &children[done] {
            waiting[child] -= 1;
            if waiting[child] == 0 {
                order.push(child);
            }
        }
    }
    order
}
