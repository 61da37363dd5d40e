//! Behaviour of the engine against a scripted in-process dispatcher.

use crate::common;
use std::sync::Arc;
use std::time::Duration;

use common::{Act, Fold, TestDispatch, dag, node, parallel, retries, run_with};
use drover::dag::{NodeState, OnInterrupt};
use drover::engine::{self, Event, LogLimits, LogTally, NoEvents, Options, RunRecord, RunState};
use drover::task::Task;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const MS: Duration = Duration::from_millis(1);

fn states(record: &RunRecord) -> Vec<(&str, NodeState, u8)> {
    record
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.state, n.state_code))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn nodes_start_only_after_their_needs_succeed() {
    let dag = dag()
        .node("a", &[])
        .node("b", &["a"])
        .node("c", &["a"])
        .node("d", &["b", "c"])
        .node("e", &[])
        .node("f", &["e", "d"])
        .build();
    let dispatch = TestDispatch::new(&[
        ("a", Act::Sleep(30 * MS)),
        ("b", Act::Sleep(10 * MS)),
        ("c", Act::Sleep(50 * MS)),
        ("e", Act::Sleep(5 * MS)),
    ]);
    let record = run_with(&dag, &dispatch, parallel(4)).await;
    assert_eq!(record.state, RunState::Success);
    let calls = dispatch.probe.calls();
    assert_eq!(calls.len(), 6);
    for (i, n) in dag.nodes.iter().enumerate() {
        let call = dispatch.probe.calls_of(&n.name).remove(0);
        for &need in &n.needs {
            let up = dispatch.probe.calls_of(&dag.nodes[need].name).remove(0);
            assert!(
                up.end_seq < call.start_seq,
                "{} started before {} ended",
                n.name,
                dag.nodes[need].name
            );
        }
        // Nodes start the moment their last need ends.
        let last_need_end = n
            .needs
            .iter()
            .map(|&p| dispatch.probe.calls_of(&dag.nodes[p].name)[0].ended)
            .max();
        if let Some(end) = last_need_end {
            assert_eq!(call.started, end, "node {i} waited");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn parallelism_limit_is_respected() {
    let mut builder = dag();
    let mut acts = Vec::new();
    let names: Vec<String> = (0..20).map(|i| format!("n{i}")).collect();
    for name in &names {
        builder = builder.node(name, &[]);
        acts.push((name.as_str(), Act::Sleep(10 * MS)));
    }
    let dag = builder.build();
    let dispatch = TestDispatch::new(&acts);
    let record = run_with(&dag, &dispatch, parallel(3)).await;
    assert_eq!(record.state, RunState::Success);
    assert_eq!(dispatch.probe.max_running(), 3);

    let dispatch = TestDispatch::new(&acts);
    run_with(&dag, &dispatch, parallel(0)).await;
    assert_eq!(dispatch.probe.max_running(), 1, "parallelism 0 counts as 1");
}

#[tokio::test(start_paused = true)]
async fn every_final_state_and_code() {
    let dag = dag()
        .node("ok", &[])
        .node("bad", &[])
        .node("child", &["bad"])
        .node("grandchild", &["child", "ok"])
        .node("slow", &[])
        .with(|n| n.timeout = Some(50 * MS))
        .node("after-slow", &["slow"])
        .node("says-timeout", &[])
        .build();
    let dispatch = TestDispatch::new(&[
        ("bad", Act::Fail("boom", Some(2))),
        ("slow", Act::Hang),
        ("says-timeout", Act::ReportTimeout),
    ]);
    let record = run_with(&dag, &dispatch, parallel(8)).await;
    assert_eq!(record.state, RunState::Failure);
    assert_eq!(
        states(&record),
        vec![
            ("ok", NodeState::Success, 3),
            ("bad", NodeState::Failure, 4),
            ("child", NodeState::NotRunnable, 5),
            ("grandchild", NodeState::NotRunnable, 5),
            ("slow", NodeState::Timeout, 10),
            ("after-slow", NodeState::NotRunnable, 5),
            ("says-timeout", NodeState::Timeout, 10),
        ]
    );
    let bad = node(&record, "bad");
    assert_eq!(bad.error.as_deref(), Some("boom"));
    assert_eq!(bad.exit_code, Some(2));
    assert_eq!(
        node(&record, "child").error.as_deref(),
        Some("not run: upstream node `bad` failed")
    );
    assert_eq!(
        node(&record, "grandchild").error.as_deref(),
        Some("not run: upstream node `bad` failed")
    );
    assert!(node(&record, "child").attempts.is_empty());
    assert!(node(&record, "child").started_at.is_none());
    let slow = node(&record, "slow");
    assert_eq!(slow.error.as_deref(), Some("timed out after 50ms"));
    assert_eq!(
        node(&record, "after-slow").error.as_deref(),
        Some("not run: upstream node `slow` timed out")
    );
    let slow_call = &dispatch.probe.calls_of("slow")[0];
    assert!(
        slow_call.saw_cancel,
        "the engine canceled the overrunning attempt"
    );
    assert_eq!(slow_call.ended - slow_call.started, 50 * MS);
    assert!(slow_call.task.deadline.is_some());
    assert_eq!(
        node(&record, "says-timeout").error.as_deref(),
        Some("driver says too slow")
    );
    assert!(dispatch.probe.calls_of("child").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_node_that_cancels_itself_is_canceled_and_its_children_not_runnable() {
    let dag = dag().node("a", &[]).node("b", &["a"]).build();
    struct SelfCancel;
    impl engine::Dispatch for SelfCancel {
        fn dispatch(&self, _run: engine::NodeRun) -> engine::DispatchFuture {
            Box::pin(async {
                drover::task::Outcome::with_message(drover::task::NodeStatus::Canceled, "gave up")
            })
        }
    }
    let record = engine::run(
        dag,
        "r".into(),
        Arc::new(SelfCancel),
        Options::default(),
        NoEvents,
        CancellationToken::new(),
    )
    .await;
    assert_eq!(record.state, RunState::Failure);
    assert_eq!(node(&record, "a").state, NodeState::Canceled);
    assert_eq!(node(&record, "a").state_code, 11);
    assert_eq!(
        node(&record, "b").error.as_deref(),
        Some("not run: upstream node `a` was canceled")
    );
}

#[tokio::test(start_paused = true)]
async fn independent_branches_continue_after_a_failure() {
    let dag = dag()
        .node("bad", &[])
        .node("bad-child", &["bad"])
        .node("x1", &[])
        .node("x2", &["x1"])
        .node("x3", &["x2"])
        .build();
    let dispatch = TestDispatch::new(&[
        ("bad", Act::Fail("no", None)),
        ("x1", Act::Sleep(10 * MS)),
        ("x2", Act::Sleep(10 * MS)),
        ("x3", Act::Sleep(10 * MS)),
    ]);
    let record = run_with(&dag, &dispatch, parallel(2)).await;
    assert_eq!(record.state, RunState::Failure);
    for name in ["x1", "x2", "x3"] {
        assert_eq!(node(&record, name).state, NodeState::Success);
    }
    assert!(dispatch.probe.calls_of("x3")[0].started > dispatch.probe.calls_of("bad")[0].ended);
}

#[tokio::test(start_paused = true)]
async fn fail_fast_cancels_running_and_pending_nodes() {
    let dag = dag()
        .node("bad", &[])
        .node("bad-child", &["bad"])
        .node("hang", &[])
        .node("hang-child", &["hang"])
        .node("queued", &[])
        .build();
    let dispatch = TestDispatch::new(&[("bad", Act::SleepFail(10 * MS)), ("hang", Act::Hang)]);
    let options = Options {
        parallelism: 2,
        fail_fast: true,
        run_timeout: None,
        reattach: false,
        ..Options::default()
    };
    let record = run_with(&dag, &dispatch, options).await;
    assert_eq!(record.state, RunState::Failure);
    assert_eq!(
        states(&record),
        vec![
            ("bad", NodeState::Failure, 4),
            ("bad-child", NodeState::NotRunnable, 5),
            ("hang", NodeState::Canceled, 11),
            ("hang-child", NodeState::Canceled, 11),
            ("queued", NodeState::Canceled, 11),
        ]
    );
    assert!(dispatch.probe.calls_of("hang")[0].saw_cancel);
    assert!(dispatch.probe.calls_of("queued").is_empty());
    let hang = node(&record, "hang");
    assert_eq!(hang.attempts.len(), 1);
    assert_eq!(hang.attempts[0].state, NodeState::Canceled);
    assert_eq!(
        hang.error.as_deref(),
        Some("node `bad` failed and the run fails fast")
    );
    assert_eq!(
        node(&record, "queued").error.as_deref(),
        Some("canceled: node `bad` failed and the run fails fast")
    );
}

#[tokio::test(start_paused = true)]
async fn retries_are_recorded_with_exponential_backoff() {
    let dag = dag()
        .node("flaky", &[])
        .with(|n| n.retries = retries(3, 100, 1000))
        .node("hopeless", &[])
        .with(|n| n.retries = retries(2, 100, 150))
        .node("after", &["flaky"])
        .build();
    let dispatch = TestDispatch::new(&[
        ("flaky", Act::FailTimes(2)),
        ("hopeless", Act::Fail("nope", Some(1))),
    ]);
    let (tx, mut rx) = mpsc::channel(1000);
    let record = engine::run(
        Arc::clone(&dag),
        "r".into(),
        Arc::new(dispatch.clone()),
        parallel(4),
        tx,
        CancellationToken::new(),
    )
    .await;
    assert_eq!(record.state, RunState::Failure);

    let flaky = node(&record, "flaky");
    assert_eq!(flaky.state, NodeState::Success);
    let attempt_states: Vec<_> = flaky
        .attempts
        .iter()
        .map(|a| (a.attempt, a.state))
        .collect();
    assert_eq!(
        attempt_states,
        vec![
            (1, NodeState::Failure),
            (2, NodeState::Failure),
            (3, NodeState::Success)
        ]
    );
    assert_eq!(flaky.attempts[0].error.as_deref(), Some("attempt 1 fails"));
    assert_eq!(flaky.attempts[2].error, None);
    assert_eq!(flaky.error, None);
    assert_eq!(flaky.started_at, Some(flaky.attempts[0].started_at));
    let calls = dispatch.probe.calls_of("flaky");
    assert_eq!(
        calls.iter().map(|c| c.task.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(calls[1].started - calls[0].ended, 100 * MS);
    assert_eq!(calls[2].started - calls[1].ended, 200 * MS);

    let hopeless = node(&record, "hopeless");
    assert_eq!(hopeless.state, NodeState::Failure);
    assert_eq!(hopeless.attempts.len(), 3);
    assert_eq!(hopeless.exit_code, Some(1));
    let calls = dispatch.probe.calls_of("hopeless");
    assert_eq!(
        calls[2].started - calls[1].ended,
        150 * MS,
        "backoff capped"
    );
    assert_eq!(node(&record, "after").state, NodeState::Success);

    let mut retry_events = Vec::new();
    while let Some(event) = rx.recv().await {
        if let Event::Retry {
            node,
            attempt,
            delay,
            ..
        } = event
        {
            retry_events.push((node, attempt, delay));
        }
    }
    assert_eq!(
        retry_events,
        vec![
            (0, 1, 100 * MS),
            (1, 1, 100 * MS),
            (0, 2, 200 * MS),
            (1, 2, 150 * MS)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn timed_out_attempts_are_retried() {
    let dag = dag()
        .node("slow", &[])
        .with(|n| {
            n.timeout = Some(20 * MS);
            n.retries = retries(1, 10, 10);
        })
        .build();
    let dispatch = TestDispatch::new(&[("slow", Act::Hang)]);
    let record = run_with(&dag, &dispatch, parallel(1)).await;
    let slow = node(&record, "slow");
    assert_eq!(slow.state, NodeState::Timeout);
    assert_eq!(slow.attempts.len(), 2);
    assert!(slow.attempts.iter().all(|a| a.state == NodeState::Timeout));
}

#[tokio::test(start_paused = true)]
async fn a_node_waiting_to_retry_holds_no_slot() {
    let dag = dag()
        .node("flaky", &[])
        .with(|n| n.retries = retries(1, 1000, 1000))
        .node("other", &[])
        .build();
    let dispatch = TestDispatch::new(&[
        ("flaky", Act::FailTimes(1)),
        ("other", Act::Sleep(100 * MS)),
    ]);
    let record = run_with(&dag, &dispatch, parallel(1)).await;
    assert_eq!(record.state, RunState::Success);
    let flaky = dispatch.probe.calls_of("flaky");
    let other = &dispatch.probe.calls_of("other")[0];
    assert_eq!(
        other.started, flaky[0].ended,
        "other ran during the backoff"
    );
    assert!(other.ended < flaky[1].started);
    assert_eq!(flaky[1].started - flaky[0].ended, 1000 * MS);
}

#[tokio::test(start_paused = true)]
async fn run_timeout_times_out_running_nodes_and_cancels_the_rest() {
    let dag = dag()
        .node("hang", &[])
        .node("hang-child", &["hang"])
        .node("quick", &[])
        .node("waiting", &[])
        .with(|n| n.retries = retries(5, 10_000, 10_000))
        .build();
    let dispatch = TestDispatch::new(&[
        ("hang", Act::Hang),
        ("quick", Act::Sleep(10 * MS)),
        ("waiting", Act::Fail("x", None)),
    ]);
    let options = Options {
        parallelism: 4,
        fail_fast: false,
        run_timeout: Some(100 * MS),
        reattach: false,
        ..Options::default()
    };
    let start = tokio::time::Instant::now();
    let record = run_with(&dag, &dispatch, options).await;
    assert_eq!(start.elapsed(), 100 * MS);
    assert_eq!(record.state, RunState::Timeout);
    assert_eq!(
        states(&record),
        vec![
            ("hang", NodeState::Timeout, 10),
            ("hang-child", NodeState::Canceled, 11),
            ("quick", NodeState::Success, 3),
            ("waiting", NodeState::Canceled, 11),
        ]
    );
    assert!(dispatch.probe.calls_of("hang")[0].saw_cancel);
    assert_eq!(
        node(&record, "hang").error.as_deref(),
        Some("the run timed out after 100ms")
    );
    assert_eq!(
        node(&record, "hang-child").error.as_deref(),
        Some("canceled: the run timed out after 100ms")
    );
    assert_eq!(node(&record, "waiting").attempts.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn cancel_mid_run_cancels_running_and_pending_nodes() {
    let dag = dag()
        .node("done", &[])
        .node("a", &["done"])
        .node("b", &["done"])
        .node("a-child", &["a"])
        .node("queued", &["done"])
        .build();
    let dispatch = TestDispatch::new(&[("a", Act::Hang), ("b", Act::Hang)]);
    let cancel = CancellationToken::new();
    let canceler = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(50 * MS).await;
            cancel.cancel();
        })
    };
    let record = engine::run(
        Arc::clone(&dag),
        "r".into(),
        Arc::new(dispatch.clone()),
        parallel(2),
        NoEvents,
        cancel,
    )
    .await;
    canceler.await.expect("canceler");
    assert_eq!(record.state, RunState::Canceled);
    assert_eq!(
        states(&record),
        vec![
            ("done", NodeState::Success, 3),
            ("a", NodeState::Canceled, 11),
            ("b", NodeState::Canceled, 11),
            ("a-child", NodeState::Canceled, 11),
            ("queued", NodeState::Canceled, 11),
        ]
    );
    assert!(dispatch.probe.calls_of("a")[0].saw_cancel);
    assert!(dispatch.probe.calls_of("b")[0].saw_cancel);
    assert!(dispatch.probe.calls_of("queued").is_empty());
    assert_eq!(
        node(&record, "a").error.as_deref(),
        Some("the run was canceled")
    );
    assert_eq!(
        node(&record, "queued").error.as_deref(),
        Some("canceled: the run was canceled")
    );
}

#[tokio::test(start_paused = true)]
async fn a_canceled_token_before_the_run_runs_nothing() {
    let dag = dag().node("a", &[]).node("b", &["a"]).build();
    let dispatch = TestDispatch::new(&[]);
    let cancel = CancellationToken::new();
    cancel.cancel();
    let record = engine::run(
        dag,
        "r".into(),
        Arc::new(dispatch.clone()),
        parallel(2),
        NoEvents,
        cancel,
    )
    .await;
    assert_eq!(record.state, RunState::Canceled);
    assert!(record.nodes.iter().all(|n| n.state == NodeState::Canceled));
    assert!(dispatch.probe.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_dispatcher_ignoring_cancel_is_given_up_on() {
    let dag = dag()
        .node("stubborn", &[])
        .with(|n| n.timeout = Some(10 * MS))
        .build();
    let dispatch = TestDispatch::new(&[("stubborn", Act::IgnoreCancel(Duration::from_secs(3600)))]);
    let start = tokio::time::Instant::now();
    let record = run_with(&dag, &dispatch, parallel(1)).await;
    assert_eq!(start.elapsed(), 10 * MS + engine::CANCEL_GRACE);
    assert_eq!(node(&record, "stubborn").state, NodeState::Timeout);
    assert!(dispatch.probe.calls().is_empty(), "its future was dropped");
}

#[tokio::test(start_paused = true)]
async fn a_late_dispatcher_that_succeeds_still_timed_out() {
    let dag = dag()
        .node("late", &[])
        .with(|n| n.timeout = Some(10 * MS))
        .build();
    let dispatch = TestDispatch::new(&[("late", Act::IgnoreCancel(5 * MS))]);
    let record = run_with(&dag, &dispatch, parallel(1)).await;
    assert_eq!(node(&record, "late").state, NodeState::Timeout);
    assert_eq!(
        dispatch.probe.calls_of("late")[0].ended - dispatch.probe.calls_of("late")[0].started,
        15 * MS
    );
}

#[tokio::test]
async fn a_panicking_dispatcher_fails_the_node() {
    let dag = dag()
        .node("boom", &[])
        .node("after", &["boom"])
        .node("other", &[])
        .build();
    let dispatch = TestDispatch::new(&[("boom", Act::Panic)]);
    let record = run_with(&dag, &dispatch, parallel(2)).await;
    assert_eq!(node(&record, "boom").state, NodeState::Failure);
    assert_eq!(
        node(&record, "boom").error.as_deref(),
        Some("the dispatcher panicked")
    );
    assert_eq!(node(&record, "after").state, NodeState::NotRunnable);
    assert_eq!(node(&record, "other").state, NodeState::Success);
}

fn task_of(dispatch: &TestDispatch, node: &str) -> Task {
    dispatch.probe.calls_of(node).remove(0).task
}

#[tokio::test]
async fn outputs_are_substituted_in_artifact_args_and_env() {
    let dag = dag()
        .node("d", &[])
        .with(|n| n.outputs = vec!["ip".into(), "port".into()])
        .node("e", &[])
        .node("use", &["d", "e"])
        .with(|n| {
            n.artifact = "ping ${{ nodes.d.outputs.ip }}:${{nodes.d.outputs.port}}".into();
            n.args = vec![
                "get_attribute d:ip".into(),
                "X=get_attribute d:port".into(),
                "--to=${{ nodes.d.outputs.ip }}".into(),
                "plain".into(),
            ];
            n.env = vec![
                ("IP".into(), "${{ nodes.d.outputs.ip }}".into()),
                ("K".into(), "v".into()),
            ];
            n.outputs = vec!["out".into()];
            n.timeout = Some(Duration::from_secs(60));
        })
        .node("grandchild", &["use"])
        .with(|n| n.args = vec!["get_attribute d:ip".into()])
        .build();
    let dispatch = TestDispatch::new(&[
        ("d", Act::Succeed(vec![("ip", "10.0.0.1"), ("port", "80")])),
        ("e", Act::Succeed(vec![("zone", "eu")])),
        ("use", Act::Succeed(vec![("out", "x")])),
    ]);
    let record = run_with(&dag, &dispatch, parallel(2)).await;
    assert_eq!(record.state, RunState::Success);
    let task = task_of(&dispatch, "use");
    assert_eq!(task.run_id, "run-1");
    assert_eq!(task.node, "use");
    assert_eq!(task.attempt, 1);
    assert_eq!(task.artifact, "ping 10.0.0.1:80");
    assert_eq!(
        task.args,
        vec!["10.0.0.1", "X=80", "--to=10.0.0.1", "plain"]
    );
    assert_eq!(
        task.env,
        vec![
            ("IP".to_owned(), "10.0.0.1".to_owned()),
            ("K".to_owned(), "v".to_owned())
        ]
    );
    assert_eq!(
        task.inputs,
        vec![
            ("d".to_owned(), "ip".to_owned(), "10.0.0.1".to_owned()),
            ("d".to_owned(), "port".to_owned(), "80".to_owned()),
            ("e".to_owned(), "zone".to_owned(), "eu".to_owned()),
        ]
    );
    assert_eq!(task.outputs, vec!["out"]);
    assert!(task.deadline.is_some());
    // Ancestors' outputs can be referenced; inputs hold only direct needs'.
    let grandchild = task_of(&dispatch, "grandchild");
    assert_eq!(grandchild.args, vec!["10.0.0.1"]);
    assert_eq!(
        grandchild.inputs,
        vec![("use".to_owned(), "out".to_owned(), "x".to_owned())]
    );
    assert_eq!(grandchild.deadline, None);
    assert_eq!(
        node(&record, "d").outputs.get("ip").map(String::as_str),
        Some("10.0.0.1")
    );
}

#[tokio::test]
async fn a_missing_output_fails_the_node_without_dispatching_it() {
    let dag = dag()
        .node("d", &[])
        .node("use", &["d"])
        .with(|n| {
            n.args = vec!["X=get_attribute d:nope".into()];
            n.retries = retries(3, 1, 1);
        })
        .node("after", &["use"])
        .node("env", &["d"])
        .with(|n| n.env = vec![("A".into(), "${{ nodes.d.outputs.missing }}".into())])
        .build();
    let dispatch = TestDispatch::new(&[("d", Act::Succeed(vec![("ip", "1")]))]);
    let record = run_with(&dag, &dispatch, parallel(2)).await;
    assert_eq!(record.state, RunState::Failure);
    let used = node(&record, "use");
    assert_eq!(used.state, NodeState::Failure);
    assert_eq!(
        used.error.as_deref(),
        Some("node `d` produced no output `nope`")
    );
    assert!(used.attempts.is_empty());
    assert!(used.finished_at.is_some());
    assert_eq!(node(&record, "after").state, NodeState::NotRunnable);
    assert_eq!(
        node(&record, "env").error.as_deref(),
        Some("node `d` produced no output `missing`")
    );
    assert!(dispatch.probe.calls_of("use").is_empty());
    assert!(dispatch.probe.calls_of("env").is_empty());
}

#[tokio::test]
async fn events_report_states_logs_and_the_end_in_order() {
    let dag = dag().node("a", &[]).node("b", &["a"]).build();
    let dispatch = TestDispatch::new(&[("a", Act::Log(vec!["one", "two"]))]);
    let (tx, mut rx) = mpsc::channel(4);
    let collector = tokio::spawn(async move {
        let mut events = Vec::new();
        while let Some(event) = rx.recv().await {
            events.push(event);
        }
        events
    });
    let record = engine::run(
        dag,
        "r".into(),
        Arc::new(dispatch),
        parallel(1),
        tx,
        CancellationToken::new(),
    )
    .await;
    assert_eq!(record.state, RunState::Success);
    let events = collector.await.expect("collector");
    let short: Vec<String> = events
        .iter()
        .map(|e| match e {
            Event::NodeState {
                node,
                state,
                attempt,
                ..
            } => format!("{node}:{}:{attempt}", state.as_str()),
            Event::Log(line) => format!("log:{}:{}", line.node, line.message),
            Event::Retry { .. } => "retry".to_owned(),
            Event::Attempt { node, record } => format!("attempt:{node}:{}", record.attempt),
            Event::Finished(state) => format!("finished:{state}"),
        })
        .collect();
    assert_eq!(
        short,
        vec![
            "0:to-run:1",
            "0:running:1",
            "log:a:one",
            "log:a:two",
            "attempt:0:1",
            "0:success:1",
            "1:to-run:1",
            "1:running:1",
            "attempt:1:1",
            "1:success:1",
            "finished:success",
        ]
    );
}

#[tokio::test]
async fn the_json_record_has_the_documented_shape() {
    let dag = dag()
        .node("ok", &[])
        .node("bad", &[])
        .with(|n| n.retries = retries(1, 1, 1))
        .node("skipped", &["bad"])
        .build();
    let dispatch = TestDispatch::new(&[
        ("ok", Act::Succeed(vec![("k", "v")])),
        ("bad", Act::Fail("it broke", Some(3))),
    ]);
    let record = engine::run(
        dag,
        "run-42".into(),
        Arc::new(dispatch),
        parallel(2),
        NoEvents,
        CancellationToken::new(),
    )
    .await;
    let value = serde_json::to_value(&record).expect("serializes");
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&value),
        vec!["id", "name", "nodes", "rerun_of", "state"]
    );
    assert_eq!(value["rerun_of"], Value::Null);
    assert_eq!(value["id"], "run-42");
    assert_eq!(value["name"], "test-dag");
    assert_eq!(value["state"], "failure");
    let nodes = value["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3);
    let node_keys = vec![
        "attempts",
        "driver",
        "driver_digest",
        "error",
        "exit_code",
        "finished_at",
        "name",
        "needs",
        "outputs",
        "reused_from",
        "started_at",
        "state",
        "state_code",
    ];
    for n in nodes {
        assert_eq!(keys(n), node_keys);
    }
    let is_time = |v: &Value| {
        let s = v.as_str().expect("timestamp string");
        s.len() == 27 && s.ends_with('Z') && s.as_bytes()[10] == b'T' && s.as_bytes()[19] == b'.'
    };

    let ok = &nodes[0];
    assert_eq!(ok["name"], "ok");
    assert_eq!(ok["state"], "success");
    assert_eq!(ok["state_code"], 3);
    assert_eq!(ok["exit_code"], 0);
    assert_eq!(ok["outputs"], json!({"k": "v"}));
    assert_eq!(ok["error"], Value::Null);
    assert!(is_time(&ok["started_at"]) && is_time(&ok["finished_at"]));
    let attempts = ok["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        keys(&attempts[0]),
        vec![
            "attempt",
            "error",
            "exit_code",
            "finished_at",
            "started_at",
            "state"
        ]
    );
    assert_eq!(attempts[0]["attempt"], 1);
    assert_eq!(attempts[0]["state"], "success");
    assert_eq!(attempts[0]["exit_code"], 0);
    assert_eq!(attempts[0]["error"], Value::Null);
    assert!(is_time(&attempts[0]["started_at"]) && is_time(&attempts[0]["finished_at"]));

    let bad = &nodes[1];
    assert_eq!(bad["state"], "failure");
    assert_eq!(bad["state_code"], 4);
    assert_eq!(bad["exit_code"], 3);
    assert_eq!(bad["outputs"], json!({}));
    assert_eq!(bad["error"], "it broke");
    let attempts = bad["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[1]["attempt"], 2);
    assert_eq!(attempts[1]["state"], "failure");
    assert_eq!(attempts[1]["error"], "it broke");

    let skipped = &nodes[2];
    assert_eq!(skipped["state"], "not-runnable");
    assert_eq!(skipped["state_code"], 5);
    assert_eq!(skipped["exit_code"], Value::Null);
    assert_eq!(skipped["started_at"], Value::Null);
    assert!(is_time(&skipped["finished_at"]));
    assert_eq!(skipped["attempts"], json!([]));
    assert_eq!(skipped["error"], "not run: upstream node `bad` failed");

    // Stored and read back, it is the same record.
    let text = serde_json::to_string(&record).expect("serializes");
    let back: RunRecord = serde_json::from_str(&text).expect("deserializes");
    assert_eq!(back, record);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100k_node_layered_dag_completes() {
    let dag = common::layered(100, 1000);
    let record = engine::run(
        Arc::clone(&dag),
        "big".into(),
        Arc::new(common::Noop),
        parallel(8),
        NoEvents,
        CancellationToken::new(),
    )
    .await;
    assert_eq!(record.state, RunState::Success);
    assert_eq!(record.nodes.len(), 100_000);
    assert!(
        record
            .nodes
            .iter()
            .all(|n| n.state == NodeState::Success && n.attempts.len() == 1)
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_run_future_cancels_running_attempts() {
    let dag = dag().node("hang", &[]).build();
    let dispatch = TestDispatch::new(&[("hang", Act::Hang)]);
    let run = run_with(&dag, &dispatch, parallel(1));
    assert!(tokio::time::timeout(10 * MS, run).await.is_err());
    // The attempt notices the cancel and returns.
    tokio::time::sleep(10 * MS).await;
    let calls = dispatch.probe.calls_of("hang");
    assert_eq!(calls.len(), 1);
    assert!(calls[0].saw_cancel);
}

/// Runs `dag` until `stop_when` holds of the fold of its events, then drops
/// the run as a crash would, and returns the record folded so far.
async fn crash_when(
    dag: &Arc<drover::dag::Dag>,
    dispatch: &TestDispatch,
    stop_when: impl Fn(&RunRecord) -> bool,
) -> RunRecord {
    let fold = Fold::new(dag, "crashed");
    let run = engine::run(
        Arc::clone(dag),
        "crashed".into(),
        Arc::new(dispatch.clone()),
        parallel(4),
        fold.clone(),
        CancellationToken::new(),
    );
    tokio::pin!(run);
    loop {
        tokio::select! {
            _ = &mut run => panic!("the run ended before the crash point"),
            _ = tokio::time::sleep(MS) => {}
        }
        if stop_when(&fold.record()) {
            return fold.record();
        }
    }
}

/// Resumes `record` on `dispatch`, checking the fold of the new events.
async fn resume(
    dag: &Arc<drover::dag::Dag>,
    dispatch: &TestDispatch,
    record: RunRecord,
) -> RunRecord {
    resume_with(dag, dispatch, record, parallel(4), CancellationToken::new()).await
}

/// Like [`resume`], with these options and cancel token.
async fn resume_with(
    dag: &Arc<drover::dag::Dag>,
    dispatch: &TestDispatch,
    record: RunRecord,
    options: Options,
    cancel: CancellationToken,
) -> RunRecord {
    let fold = Fold(Arc::new(std::sync::Mutex::new(record.clone())));
    let done = engine::resume(
        Arc::clone(dag),
        record,
        Arc::new(dispatch.clone()),
        options,
        fold.clone(),
        cancel,
    )
    .await;
    assert_eq!(fold.record(), done);
    done
}

fn reattaching() -> Options {
    Options {
        reattach: true,
        ..parallel(4)
    }
}

#[tokio::test(start_paused = true)]
async fn a_reattaching_resume_dispatches_the_running_attempt_again_under_its_number() {
    let dag = dag()
        .node("a", &[])
        .node("b", &["a"])
        .with(|n| n.retries = retries(1, 1, 1))
        .node("c", &["a", "b"])
        .with(|n| n.args = vec!["${{ nodes.a.outputs.k }}".into()])
        .build();
    let before = TestDispatch::new(&[("a", Act::Succeed(vec![("k", "from-a")])), ("b", Act::Hang)]);
    let record = crash_when(&dag, &before, |r| r.nodes[1].state == NodeState::Running).await;
    let began = record.nodes[1].running_since.expect("b runs");

    let after = TestDispatch::new(&[]);
    let done = resume_with(
        &dag,
        &after,
        record,
        reattaching(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(done.state, RunState::Success, "{done:#?}");
    assert!(after.probe.calls_of("a").is_empty(), "a is not run again");
    let calls = after.probe.calls_of("b");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].task.attempt, 1, "the same attempt, not a new one");
    let b = node(&done, "b");
    assert_eq!(b.attempts.len(), 1, "{:?}", b.attempts);
    assert_eq!(b.attempts[0].state, NodeState::Success);
    assert_eq!(
        b.attempts[0].started_at, began,
        "the attempt keeps its start"
    );
    assert_eq!(task_of(&after, "c").args, vec!["from-a".to_owned()]);
}

#[tokio::test(start_paused = true)]
async fn a_reattached_attempt_keeps_what_is_left_of_its_timeout() {
    let dag = dag()
        .node("slow", &[])
        .with(|n| n.timeout = Some(100 * MS))
        .build();
    let mut record = RunRecord::new(&dag, "r".into());
    let began = std::time::SystemTime::now() - 60 * MS;
    record.nodes[0].state = NodeState::Running;
    record.nodes[0].state_code = NodeState::Running.code();
    record.nodes[0].started_at = Some(began);
    record.nodes[0].running_since = Some(began);
    let after = TestDispatch::new(&[("slow", Act::Hang)]);
    let start = tokio::time::Instant::now();
    let done = resume_with(
        &dag,
        &after,
        record,
        reattaching(),
        CancellationToken::new(),
    )
    .await;
    let waited = start.elapsed();
    // `began` is on the wall clock, which runs on while tokio's is paused: on a
    // loaded machine the resume may come well after 60 ms, leaving less.
    let late = std::time::SystemTime::now()
        .duration_since(began)
        .unwrap_or_default()
        .saturating_sub(60 * MS);
    assert!(
        waited <= 40 * MS && waited + late > 30 * MS,
        "timed out {waited:?} after the resume ({late:?} late), not 40ms"
    );
    let slow = node(&done, "slow");
    assert_eq!(slow.state, NodeState::Timeout);
    assert_eq!(slow.attempts.len(), 1);
    assert_eq!(
        slow.attempts[0].error.as_deref(),
        Some("timed out after 100ms")
    );
    let calls = after.probe.calls_of("slow");
    assert_eq!(calls[0].task.attempt, 1);
    assert_eq!(calls[0].task.deadline, Some(began + 100 * MS));
}

#[tokio::test(start_paused = true)]
async fn a_canceled_run_reattaches_its_running_attempt_to_cancel_it() {
    let dag = dag().node("a", &[]).node("b", &[]).build();
    let before = TestDispatch::new(&[("a", Act::Hang)]);
    let record = crash_when(&dag, &before, |r| {
        r.nodes[0].state == NodeState::Running && r.nodes[1].state == NodeState::Success
    })
    .await;
    let after = TestDispatch::new(&[("a", Act::Hang)]);
    let cancel = CancellationToken::new();
    cancel.cancel();
    let done = resume_with(&dag, &after, record, reattaching(), cancel).await;
    assert_eq!(done.state, RunState::Canceled);
    let calls = after.probe.calls_of("a");
    assert_eq!(calls.len(), 1, "the dispatcher is told to stop it");
    assert!(calls[0].saw_cancel);
    assert_eq!(node(&done, "a").state, NodeState::Canceled);
    assert_eq!(node(&done, "b").state, NodeState::Success);
}

#[tokio::test(start_paused = true)]
async fn a_resumed_run_reruns_the_interrupted_node_without_using_a_retry() {
    let dag = dag()
        .node("a", &[])
        .node("b", &["a"])
        .with(|n| n.retries = retries(1, 1, 1))
        .node("c", &["a", "b"])
        .with(|n| n.args = vec!["${{ nodes.a.outputs.k }}".into()])
        .build();
    let before = TestDispatch::new(&[("a", Act::Succeed(vec![("k", "from-a")])), ("b", Act::Hang)]);
    let record = crash_when(&dag, &before, |r| r.nodes[1].state == NodeState::Running).await;
    assert_eq!(record.state, RunState::Running);
    assert_eq!(record.nodes[0].state, NodeState::Success);

    // The re-run fails: its one retry is still there to use.
    let after = TestDispatch::new(&[("b", Act::FailTimes(2))]);
    let done = resume(&dag, &after, record).await;
    assert_eq!(done.state, RunState::Success, "{done:#?}");
    assert!(
        after.probe.calls_of("a").is_empty(),
        "a finished before; not run again"
    );
    let b = node(&done, "b");
    let attempts: Vec<NodeState> = b.attempts.iter().map(|a| a.state).collect();
    assert_eq!(
        attempts,
        [
            NodeState::Interrupted,
            NodeState::Failure,
            NodeState::Success
        ]
    );
    assert!(
        b.attempts[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("interrupted"),
        "{:?}",
        b.attempts[0]
    );
    let numbers: Vec<u32> = after
        .probe
        .calls_of("b")
        .iter()
        .map(|c| c.task.attempt)
        .collect();
    assert_eq!(numbers, [2, 3]);
    assert_eq!(task_of(&after, "c").args, vec!["from-a".to_owned()]);
}

#[tokio::test(start_paused = true)]
async fn interrupted_nodes_saying_on_interrupt_fail_fail_and_the_others_run_again() {
    let dag = dag()
        .node("a", &[])
        .with(|n| n.on_interrupt = OnInterrupt::Fail)
        .node("b", &["a"])
        .node("other", &[])
        .build();
    let before = TestDispatch::new(&[("a", Act::Hang), ("other", Act::Hang)]);
    let record = crash_when(&dag, &before, |r| {
        r.nodes
            .iter()
            .filter(|n| n.state == NodeState::Running)
            .count()
            == 2
    })
    .await;
    let after = TestDispatch::new(&[]);
    let done = resume(&dag, &after, record).await;
    assert_eq!(done.state, RunState::Failure);
    assert_eq!(
        states(&done),
        vec![
            ("a", NodeState::Failure, 4),
            ("b", NodeState::NotRunnable, 5),
            ("other", NodeState::Success, 3),
        ]
    );
    let a = node(&done, "a");
    assert_eq!(a.attempts.len(), 1);
    assert_eq!(a.attempts[0].state, NodeState::Interrupted);
    assert!(
        a.error
            .as_deref()
            .unwrap_or_default()
            .contains("on_interrupt: fail"),
        "{a:?}"
    );
    assert!(after.probe.calls_of("a").is_empty());
    assert_eq!(after.probe.calls_of("other").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_resumed_run_marks_children_of_a_failed_node_not_runnable() {
    // A crash can land after a node failed but before its descendants were
    // marked: the resumed run marks them.
    let dag = dag()
        .node("a", &[])
        .node("b", &["a"])
        .node("c", &["b"])
        .build();
    let mut record = RunRecord::new(&dag, "r".into());
    record.nodes[0].state = NodeState::Failure;
    record.nodes[0].state_code = NodeState::Failure.code();
    let after = TestDispatch::new(&[]);
    let done = resume(&dag, &after, record).await;
    assert_eq!(done.state, RunState::Failure);
    assert_eq!(node(&done, "c").state, NodeState::NotRunnable);
    assert_eq!(
        node(&done, "c").error.as_deref(),
        Some("not run: upstream node `a` failed")
    );
    assert!(after.probe.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn nodes_waiting_for_a_slot_start_once_when_a_run_is_resumed() {
    let mut builder = dag();
    for name in ["a", "b", "c", "d", "e", "f"] {
        builder = builder
            .node(name, &[])
            .with(|n| n.retries = retries(1, 1, 1));
    }
    let dag = builder.build();
    let hang: Vec<(&str, Act)> = ["a", "b", "c", "d", "e", "f"]
        .into_iter()
        .map(|n| (n, Act::Hang))
        .collect();
    let before = TestDispatch::new(&hang);
    // Four slots: four nodes running, two waiting (to-run) at the crash.
    let record = crash_when(&dag, &before, |r| {
        r.nodes
            .iter()
            .filter(|n| n.state == NodeState::Running)
            .count()
            == 4
    })
    .await;
    let waiting: Vec<String> = record
        .nodes
        .iter()
        .filter(|n| n.state == NodeState::ToRun)
        .map(|n| n.name.clone())
        .collect();
    assert_eq!(waiting.len(), 2);
    let after = TestDispatch::new(&[]);
    let done = resume(&dag, &after, record).await;
    assert_eq!(done.state, RunState::Success, "{done:#?}");
    for node in &done.nodes {
        let calls = after.probe.calls_of(&node.name);
        assert_eq!(calls.len(), 1, "{} ran once after the restart", node.name);
        let expected = if waiting.contains(&node.name) { 1 } else { 2 };
        assert_eq!(calls[0].task.attempt, expected, "{}", node.name);
        assert_eq!(node.attempts.len(), expected as usize);
    }
}

#[tokio::test]
async fn a_failed_node_keeps_its_outputs_and_its_children_never_see_them() {
    let dag = dag()
        .node("tests", &[])
        .with(|n| n.retries = retries(1, 1, 1))
        .node("publish", &["tests"])
        .with(|n| n.args = vec!["${{ nodes.tests.outputs.failed }}".into()])
        .build();
    let dispatch = TestDispatch::new(&[(
        "tests",
        Act::FailWith("2 of 5 tests failed", vec![("failed", "2"), ("total", "5")]),
    )]);
    // `run_with` also checks that the events carry the outputs: a record
    // folded from them (a server's view, a stored run) has them too.
    let record = run_with(&dag, &dispatch, parallel(2)).await;
    let tests = node(&record, "tests");
    assert_eq!(tests.state, NodeState::Failure);
    assert_eq!(tests.error.as_deref(), Some("2 of 5 tests failed"));
    assert_eq!(tests.attempts.len(), 2);
    assert_eq!(
        tests.outputs.get("failed").map(String::as_str),
        Some("2"),
        "{tests:?}"
    );
    assert_eq!(tests.outputs.get("total").map(String::as_str), Some("5"));
    let publish = node(&record, "publish");
    assert_eq!(publish.state, NodeState::NotRunnable);
    assert!(publish.outputs.is_empty());
    assert!(dispatch.probe.calls_of("publish").is_empty());
    let value = serde_json::to_value(&record).expect("serializes");
    assert_eq!(
        value["nodes"][0]["outputs"],
        json!({"failed": "2", "total": "5"})
    );
}

/// The log lines `events` holds, as `node:message`.
fn log_lines(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Log(line) => Some(format!("{}:{}", line.node, line.message)),
            _ => None,
        })
        .collect()
}

/// Runs `dag` from `record` and returns its events.
async fn events_of(
    dag: &Arc<drover::dag::Dag>,
    dispatch: TestDispatch,
    record: RunRecord,
    options: Options,
) -> Vec<Event> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    engine::resume(
        Arc::clone(dag),
        record,
        Arc::new(dispatch),
        options,
        tx,
        CancellationToken::new(),
    )
    .await;
    let mut events = Vec::new();
    while let Ok(event) = rx.try_recv() {
        events.push(event);
    }
    events
}

#[tokio::test]
async fn each_attempts_log_is_cut_at_its_limit_with_a_marker_and_a_count() {
    let dag = dag().node("a", &[]).node("b", &[]).build();
    let lines = vec!["1", "2", "3", "4", "5", "6"];
    let dispatch = TestDispatch::new(&[("a", Act::Log(lines.clone())), ("b", Act::Log(vec!["x"]))]);
    let options = Options {
        log_limits: LogLimits {
            lines: 3,
            bytes: 1 << 20,
        },
        ..parallel(1)
    };
    let record = RunRecord::new(&dag, "r".into());
    let logged = log_lines(&events_of(&dag, dispatch, record, options).await);
    assert_eq!(
        logged,
        [
            "a:1",
            "a:2",
            "a:3",
            "a:drover: log cut after 3 lines / 3 bytes (the limit is 3 lines or 1 MiB per attempt); later lines are dropped, and counted when the attempt ends",
            "a:drover: log cut after 3 lines / 3 bytes; 3 more lines (3 bytes) dropped",
            "b:x",
        ]
    );
}

#[tokio::test]
async fn a_reattached_attempt_counts_on_from_what_its_log_holds() {
    let dag = dag().node("a", &[]).build();
    let mut record = RunRecord::new(&dag, "r".into());
    let began = std::time::SystemTime::now();
    record.nodes[0].state = NodeState::Running;
    record.nodes[0].state_code = NodeState::Running.code();
    record.nodes[0].started_at = Some(began);
    record.nodes[0].running_since = Some(began);
    let dispatch = TestDispatch::new(&[("a", Act::Log(vec!["3", "4"]))]);
    let tally = LogTally {
        lines: 2,
        bytes: 2,
        ..LogTally::default()
    };
    let options = Options {
        log_limits: LogLimits {
            lines: 3,
            bytes: 1 << 20,
        },
        logged: [(0, tally)].into_iter().collect(),
        ..reattaching()
    };
    let logged = log_lines(&events_of(&dag, dispatch, record, options).await);
    assert_eq!(logged.len(), 3, "{logged:?}");
    assert_eq!(logged[0], "a:3");
    assert!(logged[1].starts_with("a:drover: log cut after 3 lines / 3 bytes"));
    assert_eq!(
        logged[2],
        "a:drover: log cut after 3 lines / 3 bytes; 1 more line (1 byte) dropped"
    );
}
