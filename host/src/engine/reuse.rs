//! Re-running a run from its failures: which nodes keep the outputs they had, as the events that say so.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use super::{Event, NodeRecord, RunRecord};
use crate::dag::{Dag, NodeState};

/// The events that start a re-run of `dag` from the failures of `old`, the
/// record of an earlier run of the same DAG: for each node reused, in DAG
/// order, a `success` state event at `at` with the outputs the node had in
/// `old` and `old`'s id as `reused_from`.
///
/// A node is reused when it succeeded in `old` and every node it needs is
/// reused too; the others (failed, timed out, canceled, not runnable, never
/// started, or missing from `old`) run again, and so does everything that
/// needs them. Nodes are matched by name. Folded onto [`RunRecord::new`],
/// the events make the record that [`super::resume`] carries the re-run on
/// from: reused nodes are never dispatched, and their outputs feed their
/// children as if they had just run.
pub fn reused(dag: &Dag, old: &RunRecord, at: SystemTime) -> Vec<Event> {
    let before: HashMap<&str, &NodeRecord> = old
        .nodes
        .iter()
        .map(|record| (record.name.as_str(), record))
        .collect();
    let succeeded = |name: &str| {
        before
            .get(name)
            .filter(|record| record.state == NodeState::Success)
    };
    let mut reused = vec![false; dag.nodes.len()];
    // Needs first, so that a node sees whether its needs are reused.
    for index in dag.topological_order() {
        let node = &dag.nodes[index];
        reused[index] =
            succeeded(&node.name).is_some() && node.needs.iter().all(|&need| reused[need]);
    }
    dag.nodes
        .iter()
        .enumerate()
        .filter(|&(index, _)| reused[index])
        .filter_map(|(index, node)| {
            let record = succeeded(&node.name)?;
            Some(Event::NodeState {
                node: index,
                state: NodeState::Success,
                attempt: 0,
                at,
                error: None,
                outputs: Some(Arc::clone(&record.outputs)),
                reused_from: Some(old.id.clone()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::dag;

    const DAG: &str = "name: d\nnodes:\n  \
        late: {driver: noop, needs: [b]}\n  \
        a: {driver: noop}\n  \
        b: {driver: noop, needs: [a]}\n  \
        c: {driver: noop, needs: [a]}\n  \
        lone: {driver: noop}\n";

    /// An ended record of [`DAG`] with each node in the state given.
    fn old(states: &[(&str, NodeState)]) -> (dag::Dag, RunRecord) {
        let dag = dag::parse(DAG, None, &|_| true).unwrap();
        let mut record = RunRecord::new(&dag, "old".to_owned());
        for (name, state) in states {
            let node = &mut record.nodes[dag.index_of(name).unwrap()];
            node.set_state(*state);
            node.outputs = Arc::new(BTreeMap::from([("from".to_owned(), (*name).to_owned())]));
        }
        (dag, record)
    }

    fn reused_names(dag: &dag::Dag, events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|event| match event {
                Event::NodeState {
                    node,
                    state: NodeState::Success,
                    reused_from: Some(from),
                    outputs: Some(outputs),
                    attempt: 0,
                    error: None,
                    ..
                } if from == "old" => {
                    assert_eq!(outputs["from"], dag.nodes[*node].name);
                    dag.nodes[*node].name.clone()
                }
                other => panic!("not a reuse: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn succeeded_nodes_are_reused_and_the_rest_run_again() {
        use NodeState::*;
        let (dag, old) = old(&[
            ("a", Success),
            ("b", Failure),
            ("late", NotRunnable),
            ("c", Success),
            ("lone", Canceled),
        ]);
        let events = reused(&dag, &old, SystemTime::UNIX_EPOCH);
        assert_eq!(reused_names(&dag, &events), ["a", "c"]);

        // Folded onto a fresh record, they make the record a re-run starts from.
        let mut record = RunRecord::new(&dag, "new".to_owned());
        for event in &events {
            record.apply(event);
        }
        let a = &record.nodes[dag.index_of("a").unwrap()];
        assert_eq!(a.state, Success);
        assert_eq!(a.reused_from.as_deref(), Some("old"));
        assert!(a.attempts.is_empty());
        assert_eq!(a.finished_at, Some(SystemTime::UNIX_EPOCH));
        let b = &record.nodes[dag.index_of("b").unwrap()];
        assert_eq!((b.state, b.reused_from.as_deref()), (Initial, None));
    }

    #[test]
    fn a_node_whose_needs_are_not_reused_is_not_reused_either() {
        use NodeState::*;
        // Only a record carried on from another one could say this: `b`
        // succeeded though `a` did not. Its outputs may rest on what `a`
        // gave it then, so it runs again, and `late` with it.
        let (dag, old) = old(&[
            ("a", Failure),
            ("b", Success),
            ("late", Success),
            ("lone", Success),
        ]);
        let events = reused(&dag, &old, SystemTime::UNIX_EPOCH);
        assert_eq!(reused_names(&dag, &events), ["lone"]);
    }

    #[test]
    fn nodes_an_old_record_does_not_have_run() {
        let dag = dag::parse(DAG, None, &|_| true).unwrap();
        let empty = RunRecord {
            id: "old".to_owned(),
            name: "d".to_owned(),
            state: crate::engine::RunState::Failure,
            rerun_of: None,
            nodes: Vec::new(),
        };
        assert!(reused(&dag, &empty, SystemTime::UNIX_EPOCH).is_empty());
    }
}
