//! The store against a real database file.

use std::time::SystemTime;

use super::*;
use crate::engine::RunState;

fn meta(id: &str, state: RunState) -> RunMeta {
    RunMeta {
        id: id.to_owned(),
        name: format!("dag-{id}"),
        state,
        nodes: 2,
        api: Api::Native,
        options: RunOptions {
            parallelism: 2,
            fail_fast: false,
            timeout_ms: None,
        },
        submitted_at: SystemTime::UNIX_EPOCH,
        finished_at: (state != RunState::Running).then(SystemTime::now),
        cancel_requested: false,
        drivers: Default::default(),
        rerun_of: None,
    }
}

#[tokio::test]
async fn writes_are_read_back_after_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("drover.redb");
    {
        let store = Store::open(&path).expect("open");
        store
            .write(vec![
                Write::submit(&meta("a1", RunState::Running), "name: a"),
                Write::Event {
                    run: "a1".into(),
                    seq: 1,
                    event: b"{\"n\":1}".to_vec(),
                },
                Write::Event {
                    run: "a1".into(),
                    seq: 2,
                    event: b"{\"n\":2}".to_vec(),
                },
            ])
            .await
            .expect("write");
        store
            .write(vec![Write::submit(
                &meta("a2", RunState::Success),
                "name: b",
            )])
            .await
            .expect("write");
    }
    // The writer thread holds the database until its queue is dropped.
    let store = loop {
        match Store::open(&path) {
            Ok(store) => break store,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    };
    assert_eq!(
        store.run("a1").expect("read"),
        Some(meta("a1", RunState::Running))
    );
    assert_eq!(
        store.source("a1").expect("read").as_deref(),
        Some("name: a")
    );
    let events = store.events("a1", 0, 10).expect("events");
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].0, 2);
    assert_eq!(store.events("a1", 1, 10).expect("events").len(), 1);
    // A later commit starts a new row; reads cross rows and start mid-row.
    store
        .write(vec![Write::Event {
            run: "a1".into(),
            seq: 3,
            event: b"{\"n\":3}".to_vec(),
        }])
        .await
        .expect("write");
    let seqs = |after, limit| -> Vec<u64> {
        store
            .events("a1", after, limit)
            .expect("events")
            .into_iter()
            .map(|(seq, _)| seq)
            .collect()
    };
    assert_eq!(seqs(0, 10), [1, 2, 3]);
    assert_eq!(seqs(1, 10), [2, 3]);
    assert_eq!(seqs(2, 10), [3]);
    assert_eq!(seqs(0, 2), [1, 2]);
    assert!(seqs(3, 10).is_empty());
    assert_eq!(
        store.events("a1", 2, 1).expect("events")[0].1,
        b"{\"n\":3}".to_vec()
    );
    assert!(store.events("a2", 0, 10).expect("events").is_empty());
    let listed: Vec<String> = store
        .runs(None, 10, |_| true)
        .expect("list")
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(listed, ["a2", "a1"], "newest first");
    let unfinished: Vec<String> = store
        .unfinished()
        .expect("unfinished")
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(unfinished, ["a1"]);
    let page: Vec<String> = store
        .runs(Some("a2"), 10, |_| true)
        .expect("list")
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(page, ["a1"]);
}

#[tokio::test]
async fn many_concurrent_writes_are_grouped_and_all_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("db")).expect("open");
    let mut tasks = Vec::new();
    for i in 0..500u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(vec![Write::submit(
                    &meta(&format!("r{i:04}"), RunState::Running),
                    "x",
                )])
                .await
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("write");
    }
    assert_eq!(store.runs(None, 1000, |_| true).expect("list").len(), 500);
}

#[test]
fn a_summary_stored_before_reruns_loads_as_no_rerun() {
    let mut stored: serde_json::Value =
        serde_json::from_slice(&meta("r", RunState::Success).to_json()).unwrap();
    assert!(stored.get("rerun_of").is_none(), "not written when unset");
    stored.as_object_mut().unwrap().remove("rerun_of");
    let loaded = RunMeta::from_json(stored.to_string().as_bytes()).unwrap();
    assert_eq!(loaded.rerun_of, None);
    let mut rerun = meta("s", RunState::Running);
    rerun.rerun_of = Some("r".to_owned());
    assert_eq!(RunMeta::from_json(&rerun.to_json()).unwrap(), rerun);
}
