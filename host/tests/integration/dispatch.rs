//! The leader's dispatch through a real Redis. The tests play the drones:
//! they take jobs from the pools' streams and write reports with the
//! protocol's types, as `drover drone` does, and check what the leader
//! makes of them.

use crate::common;
use crate::support;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Fold;
use drover::admission::{self, Accepted};
use drover::api::{self, AppState, Auth};
use drover::backend::{Distributed, Embedded};
use drover::dag::{Dag, NodeState};
use drover::engine::{self, Event, Options, RunRecord, RunState};
use drover::registry::Registry;
use drover::runs::Runs;
use drover::store::Store;
use drover::store::redis::RedisStore;
use drover::task::{LogLevel, LogLine, LogSource, NodeStatus, Outcome};
use drover::transport::redis::protocol::{self, AttemptId, DroneInfo, Job, Report, VERSION};
use drover::transport::redis::{PoolStatus, RedisDispatcher};
use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamReadOptions, StreamReadReply};
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::redis::Redis;
use support::runtime::Harness;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const DRONE: &str = "test-drone";

/// A leader's parts: a runtime and registry over a temporary folder, and
/// its dispatcher.
struct Leader {
    _harness: Harness,
    registry: Registry,
    dispatcher: RedisDispatcher,
}

async fn leader(redis: &Redis) -> Leader {
    let harness = Harness::new();
    let registry = Registry::open(harness.runtime.clone()).expect("registry");
    let dispatcher = RedisDispatcher::connect(&redis.url(), registry.clone())
        .await
        .expect("the dispatcher connects");
    Leader {
        _harness: harness,
        registry,
        dispatcher,
    }
}

async fn accept(registry: &Registry, yaml: &str) -> Accepted {
    match admission::accept(registry, yaml, None, 1, &BTreeMap::new()).await {
        Ok(accepted) => accepted,
        Err(refused) => panic!("the test DAG is refused: {refused}"),
    }
}

/// A run going on in the background, its events collected.
struct Running {
    handle: tokio::task::JoinHandle<RunRecord>,
    events: mpsc::UnboundedReceiver<Event>,
    cancel: CancellationToken,
}

fn start(accepted: &Accepted, leader: &Leader, run: &str, options: Options) -> Running {
    let dispatch = leader.dispatcher.run(
        run,
        &accepted.drivers,
        CancellationToken::new(),
        HashMap::new(),
    );
    let (tx, events) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let handle = tokio::spawn(engine::run(
        Arc::clone(&accepted.dag),
        run.to_owned(),
        dispatch,
        options,
        tx,
        cancel.clone(),
    ));
    Running {
        handle,
        events,
        cancel,
    }
}

impl Running {
    /// Waits for the end; returns the record and every event.
    async fn end(mut self) -> (RunRecord, Vec<Event>) {
        let record = tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("the run ends within 30s")
            .expect("the run does not panic");
        let mut events = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            events.push(event);
        }
        (record, events)
    }
}

fn parallel(n: usize) -> Options {
    Options {
        parallelism: n,
        ..Options::default()
    }
}

fn log_lines(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Log(line) => Some((line.node.to_string(), line.message.clone())),
            _ => None,
        })
        .collect()
}

/// Makes the drones' group on `pool`'s stream, as a drone does at start.
async fn join(conn: &mut MultiplexedConnection, pool: &str) {
    let made: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(protocol::jobs_key(pool))
        .arg(protocol::GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    if let Err(e) = made {
        assert_eq!(e.code(), Some("BUSYGROUP"), "{e}");
    }
}

/// Takes up to `count` jobs of `pool` as a drone would, waiting up to
/// `wait` for the first (under the test connection's 500 ms response
/// timeout): (entry id, job).
async fn take(
    conn: &mut MultiplexedConnection,
    pool: &str,
    count: usize,
    wait: Duration,
) -> Vec<(String, Job)> {
    join(conn, pool).await;
    take_joined(conn, pool, count, wait).await
}

/// [`take`] from a group that must exist already.
async fn take_joined(
    conn: &mut MultiplexedConnection,
    pool: &str,
    count: usize,
    wait: Duration,
) -> Vec<(String, Job)> {
    let options = StreamReadOptions::default()
        .group(protocol::GROUP, DRONE)
        .count(count)
        .block(wait.as_millis() as usize);
    let reply: Option<StreamReadReply> = conn
        .xread_options(&[protocol::jobs_key(pool)], &[">"], &options)
        .await
        .expect("XREADGROUP");
    let mut jobs = Vec::new();
    for stream in reply.map(|r| r.keys).unwrap_or_default() {
        for entry in stream.ids {
            let bytes: Vec<u8> = entry.get(protocol::JOB_FIELD).expect("a job field");
            jobs.push((entry.id, Job::decode(&bytes).expect("a job")));
        }
    }
    jobs
}

/// Takes exactly `n` jobs of `pool`, waiting up to 20 s in all.
async fn take_n(conn: &mut MultiplexedConnection, pool: &str, n: usize) -> Vec<(String, Job)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut jobs = Vec::new();
    while jobs.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} jobs came to pool `{pool}`",
            jobs.len()
        );
        jobs.extend(take(conn, pool, n - jobs.len(), Duration::from_millis(200)).await);
    }
    assert_eq!(jobs.len(), n, "more jobs than expected in pool `{pool}`");
    jobs
}

/// Adds `report` to its run's reports stream.
async fn report(conn: &mut MultiplexedConnection, report: &Report) {
    let key = protocol::reports_key(&report.attempt_id().run);
    let _: String = conn
        .xadd(key, "*", &[(protocol::REPORT_FIELD, report.encode())])
        .await
        .expect("XADD report");
}

fn started(id: &AttemptId) -> Report {
    Report::Started {
        v: VERSION,
        attempt_id: id.clone(),
        drone: DRONE.into(),
        at_us: protocol::now_us(),
    }
}

/// The attempt's first log line.
fn log(id: &AttemptId, message: &str) -> Report {
    Report::Log {
        v: VERSION,
        attempt_id: id.clone(),
        drone: DRONE.into(),
        seq: 1,
        line: LogLine {
            node: "as the drone names it".into(),
            source: LogSource::Driver,
            level: LogLevel::Info,
            message: message.into(),
        },
    }
}

fn done(id: &AttemptId, outcome: Outcome) -> Report {
    Report::Done {
        v: VERSION,
        attempt_id: id.clone(),
        drone: DRONE.into(),
        outcome,
    }
}

fn success(outputs: &[(&str, &str)]) -> Outcome {
    Outcome {
        outputs: outputs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Outcome::with_message(NodeStatus::Success, "")
    }
}

/// Ends a job the way a drone does, in one MULTI: the Done report, the
/// mark, the acknowledgement and the deletion of the entry.
async fn finish(conn: &mut MultiplexedConnection, entry: &str, job: &Job, outcome: Outcome) {
    let id = job.attempt_id.to_string();
    let jobs = protocol::jobs_key(&job.pool);
    let _: () = redis::pipe()
        .atomic()
        .cmd("XADD")
        .arg(protocol::reports_key(&job.attempt_id.run))
        .arg("*")
        .arg(protocol::REPORT_FIELD)
        .arg(done(&job.attempt_id, outcome).encode())
        .ignore()
        .cmd("HSET")
        .arg(protocol::attempts_key(&job.attempt_id.run))
        .arg(&id)
        .arg(protocol::AttemptMark::Done.as_str())
        .ignore()
        .cmd("XACK")
        .arg(&jobs)
        .arg(protocol::GROUP)
        .arg(entry)
        .ignore()
        .cmd("XDEL")
        .arg(&jobs)
        .arg(entry)
        .ignore()
        .query_async(conn)
        .await
        .expect("MULTI done");
}

async fn mark(conn: &mut MultiplexedConnection, id: &AttemptId) -> Option<String> {
    conn.hget(protocol::attempts_key(&id.run), id.to_string())
        .await
        .expect("HGET mark")
}

/// Writes a drone's heartbeat as `drover drone` does.
fn drone_info(id: &str, pools: &[&str], running: usize) -> DroneInfo {
    DroneInfo {
        id: id.into(),
        host: "test-host".into(),
        pid: 42,
        pools: pools.iter().map(|p| (*p).to_owned()).collect(),
        concurrency: 4,
        running,
        finished: 7,
        started_at: "2026-01-01T00:00:00Z".into(),
        last_seen: "2026-01-01T00:00:01Z".into(),
        version: "test".into(),
    }
}

/// Leaves drone `id` as one that stopped beating `ago`: listed, with its
/// last heartbeat kept and no live one.
async fn stopped(conn: &mut MultiplexedConnection, id: &str, ago: Duration) {
    let info = DroneInfo {
        last_seen: drover::rfc3339::format(std::time::SystemTime::now() - ago),
        ..drone_info(id, &["default"], 1)
    };
    let _: () = redis::pipe()
        .cmd("SADD")
        .arg(protocol::DRONES)
        .arg(id)
        .ignore()
        .cmd("HSET")
        .arg(protocol::DRONES_LAST)
        .arg(id)
        .arg(serde_json::to_string(&info).unwrap())
        .ignore()
        .query_async(conn)
        .await
        .expect("a stopped drone");
}

async fn heartbeat(conn: &mut MultiplexedConnection, id: &str, pools: &[&str], running: usize) {
    let info = drone_info(id, pools, running);
    let _: () = redis::pipe()
        .cmd("SADD")
        .arg(protocol::DRONES)
        .arg(id)
        .ignore()
        .cmd("SET")
        .arg(protocol::drone_key(id))
        .arg(serde_json::to_string(&info).unwrap())
        .arg("EX")
        .arg(60)
        .ignore()
        .cmd("SADD")
        .arg(protocol::POOLS)
        .arg(pools)
        .ignore()
        .query_async(conn)
        .await
        .expect("heartbeat");
}

fn node<'a>(record: &'a RunRecord, name: &str) -> &'a engine::NodeRecord {
    record
        .nodes
        .iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("no node `{name}`"))
}

fn id(run: &str, node: usize, attempt: u32) -> AttemptId {
    AttemptId {
        run: run.into(),
        node,
        attempt,
    }
}

const ROUTED: &str = r"
name: routed
nodes:
  a:
    driver: noop
    outputs: [k]
  b:
    driver: noop
    needs: [a]
    pool: gpu
    args: ['${{ nodes.a.outputs.k }}']
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_attempt_goes_to_its_pool_once_and_its_first_done_wins() {
    let redis = Redis::start();
    let mut conn = redis.connection().await;
    heartbeat(&mut conn, "d1", &["default", "gpu"], 0).await;
    let leader = leader(&redis).await;
    let accepted = accept(&leader.registry, ROUTED).await;
    let running = start(&accepted, &leader, "r1", parallel(2));

    let [(entry, job)] = take_n(&mut conn, "default", 1).await.try_into().unwrap();
    assert_eq!(job.attempt_id, id("r1", 0, 1));
    assert_eq!(job.pool, "default");
    assert_eq!(job.driver, "noop");
    assert_eq!(job.task.node, "a");
    assert_eq!(job.task.attempt, 1);
    assert!(job.sent_us > 0 && job.sent_us <= protocol::now_us());
    let pinned = accepted.drivers.pins()["noop"].clone();
    assert_eq!(job.digest, pinned);
    let bytes: Vec<u8> = conn
        .get(protocol::driver_key(&job.digest))
        .await
        .expect("GET driver");
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        job.digest,
        "the component's bytes are in Redis under their digest"
    );
    assert_eq!(
        mark(&mut conn, &job.attempt_id).await.as_deref(),
        Some("queued")
    );

    report(&mut conn, &started(&job.attempt_id)).await;
    report(&mut conn, &log(&job.attempt_id, "hello from a")).await;
    finish(&mut conn, &entry, &job, success(&[("k", "first")])).await;
    // A second drone that ran the same attempt (claimed after an idle
    // time) reports too: the leader keeps the first.
    report(
        &mut conn,
        &done(&job.attempt_id, Outcome::failure("the late duplicate")),
    )
    .await;

    let [(entry, job)] = take_n(&mut conn, "gpu", 1).await.try_into().unwrap();
    assert_eq!(job.attempt_id, id("r1", 1, 1));
    assert_eq!(
        job.task.args,
        vec!["first".to_owned()],
        "the first Done's outputs"
    );
    finish(&mut conn, &entry, &job, success(&[])).await;

    let (record, events) = running.end().await;
    assert_eq!(record.state, RunState::Success, "{record:#?}");
    let a = node(&record, "a");
    assert_eq!(a.attempts.len(), 1);
    assert_eq!(a.outputs.get("k").map(String::as_str), Some("first"));
    assert_eq!(
        log_lines(&events),
        vec![("a".to_owned(), "hello from a".to_owned())],
        "the drone's line, under the node's name, and no waiting line: d1 serves both pools"
    );
    for pool in ["default", "gpu"] {
        assert!(
            take(&mut conn, pool, 10, Duration::from_millis(300))
                .await
                .is_empty(),
            "each attempt was sent once"
        );
    }

    let reports = protocol::reports_key("r1");
    let attempts = protocol::attempts_key("r1");
    let exists: usize = conn.exists(&[&reports, &attempts]).await.unwrap();
    assert_eq!(exists, 2);
    leader.dispatcher.finish_run("r1").await;
    let exists: usize = conn.exists(&[&reports, &attempts]).await.unwrap();
    assert_eq!(exists, 0, "a finished run's protocol keys are deleted");
}

const PAIR: &str = r"
name: pair
nodes:
  a: {driver: noop}
  c: {driver: noop}
  b: {driver: noop, needs: [a, c]}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_leader_waits_for_the_attempts_it_had_sent_instead_of_sending_them_again() {
    let redis = Redis::start();
    let mut conn = redis.connection().await;
    heartbeat(&mut conn, "d1", &["default"], 2).await;

    // The first leader sends a and c, then dies while a drone runs them.
    let first = leader(&redis).await;
    let accepted = accept(&first.registry, PAIR).await;
    let dag: Arc<Dag> = Arc::clone(&accepted.dag);
    let fold = Fold::new(&dag, "r2");
    let run = tokio::spawn(engine::run(
        Arc::clone(&dag),
        "r2".into(),
        first.dispatcher.run(
            "r2",
            &accepted.drivers,
            CancellationToken::new(),
            HashMap::new(),
        ),
        parallel(2),
        fold.clone(),
        CancellationToken::new(),
    ));
    let jobs = take_n(&mut conn, "default", 2).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while fold
        .record()
        .nodes
        .iter()
        .filter(|n| n.state == NodeState::Running)
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "a and c never ran");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    run.abort();
    let _ = run.await;
    first.dispatcher.release_run("r2");
    let kept: bool = conn.exists(protocol::attempts_key("r2")).await.unwrap();
    assert!(kept, "a released run keeps its marks for the next leader");
    drop(first);
    let record = fold.record();

    // a ends while no leader watches; c is still running when the next
    // leader starts.
    let (a, c): (Vec<_>, Vec<_>) = jobs.into_iter().partition(|(_, j)| j.task.node == "a");
    let (a_entry, a_job) = &a[0];
    let (c_entry, c_job) = &c[0];
    finish(&mut conn, a_entry, a_job, success(&[("from", "before")])).await;

    let second = leader(&redis).await;
    let accepted = accept(&second.registry, PAIR).await;
    let resumed = Fold(Arc::new(std::sync::Mutex::new(record.clone())));
    let options = Options {
        reattach: true,
        ..parallel(2)
    };
    let run = tokio::spawn(engine::resume(
        Arc::clone(&accepted.dag),
        record,
        second.dispatcher.run(
            "r2",
            &accepted.drivers,
            CancellationToken::new(),
            HashMap::new(),
        ),
        options,
        resumed.clone(),
        CancellationToken::new(),
    ));
    assert!(
        take(&mut conn, "default", 10, Duration::from_millis(300))
            .await
            .is_empty(),
        "neither a nor c is sent again"
    );
    finish(&mut conn, c_entry, c_job, success(&[])).await;
    let [(entry, job)] = take_n(&mut conn, "default", 1).await.try_into().unwrap();
    assert_eq!(job.task.node, "b");
    finish(&mut conn, &entry, &job, success(&[])).await;

    let record = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the resumed run ends")
        .unwrap();
    assert_eq!(record.state, RunState::Success, "{record:#?}");
    assert_eq!(resumed.record(), record);
    for name in ["a", "b", "c"] {
        let n = node(&record, name);
        assert_eq!(n.attempts.len(), 1, "{name}: {:?}", n.attempts);
        assert_eq!(n.attempts[0].attempt, 1);
    }
    assert_eq!(
        node(&record, "a").outputs.get("from").map(String::as_str),
        Some("before"),
        "the Done written while no leader watched is found"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canceled_attempt_is_marked_and_its_id_published() {
    let redis = Redis::start();
    let mut conn = redis.connection().await;
    heartbeat(&mut conn, "d1", &["default"], 1).await;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub
        .subscribe(protocol::ATTEMPT_CANCEL_CHANNEL)
        .await
        .unwrap();

    let leader = leader(&redis).await;
    let accepted = accept(&leader.registry, "name: one\nnodes:\n  a: {driver: noop}\n").await;
    let running = start(&accepted, &leader, "r3", parallel(1));
    let [(_, job)] = take_n(&mut conn, "default", 1).await.try_into().unwrap();
    report(&mut conn, &started(&job.attempt_id)).await;

    let canceled = Instant::now();
    running.cancel.cancel();
    let (record, _) = running.end().await;
    assert!(
        canceled.elapsed() < Duration::from_secs(2),
        "the dispatch returns promptly"
    );
    assert_eq!(record.state, RunState::Canceled);
    assert_eq!(node(&record, "a").state, NodeState::Canceled);
    assert_eq!(
        mark(&mut conn, &job.attempt_id).await.as_deref(),
        Some("canceled")
    );
    let message = tokio::time::timeout(Duration::from_secs(5), pubsub.on_message().next())
        .await
        .expect("a cancel message")
        .expect("the subscription is open");
    let payload: String = message.get_payload().unwrap();
    assert_eq!(payload, job.attempt_id.to_string());
}

/// A leader that lets a run go (lease lost, or handed over at shutdown)
/// stops its engine, which cancels the attempts in flight: those must stay
/// as they are in Redis for the next leader, who re-attaches to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_of_a_run_let_go_are_left_for_the_next_leader() {
    let redis = Redis::start();
    let mut conn = redis.connection().await;
    heartbeat(&mut conn, "d1", &["default"], 1).await;
    let leader = leader(&redis).await;
    let accepted = accept(
        &leader.registry,
        "name: two\nnodes:\n  a: {driver: noop}\n  b: {driver: noop}\n",
    )
    .await;
    let released = CancellationToken::new();
    let dispatch = leader
        .dispatcher
        .run("r9", &accepted.drivers, released.clone(), HashMap::new());
    let (tx, _events) = mpsc::unbounded_channel();
    let engine = tokio::spawn(engine::run(
        Arc::clone(&accepted.dag),
        "r9".to_owned(),
        dispatch,
        parallel(2),
        tx,
        CancellationToken::new(),
    ));
    // One attempt a drone has taken, one still waiting in the stream.
    let [(_, taken)] = take_n(&mut conn, "default", 1).await.try_into().unwrap();
    report(&mut conn, &started(&taken.attempt_id)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while conn
        .xlen::<_, usize>(protocol::jobs_key("default"))
        .await
        .unwrap()
        < 2
    {
        assert!(Instant::now() < deadline, "the second job never came");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // What `Runs` does when the lease goes: say so, then drop the engine.
    // The attempts see their cancel before the run's dispatch is released
    // here (on a busy leader they may: the engine stops on another thread).
    released.cancel();
    engine.abort();
    let _ = engine.await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    leader.dispatcher.release_run("r9");

    let marks: std::collections::HashMap<String, String> =
        conn.hgetall(protocol::attempts_key("r9")).await.unwrap();
    assert_eq!(marks.len(), 2, "{marks:?}");
    assert!(
        marks.values().all(|m| m == "queued"),
        "nothing is marked canceled: {marks:?}"
    );
    let len: usize = conn.xlen(protocol::jobs_key("default")).await.unwrap();
    assert_eq!(len, 2, "both jobs are still there for a drone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_foreign_reports_are_skipped() {
    let redis = Redis::start();
    let mut conn = redis.connection().await;
    heartbeat(&mut conn, "d1", &["default"], 1).await;
    let leader = leader(&redis).await;
    let accepted = accept(&leader.registry, "name: one\nnodes:\n  a: {driver: noop}\n").await;
    let running = start(&accepted, &leader, "r4", parallel(1));
    let [(entry, job)] = take_n(&mut conn, "default", 1).await.try_into().unwrap();

    let reports = protocol::reports_key("r4");
    let future = done(&job.attempt_id, Outcome::failure("from the future"))
        .encode()
        .replace("\"v\":1", "\"v\":9");
    let foreign = done(&id("another-run", 0, 1), Outcome::failure("not ours")).encode();
    for (field, value) in [
        (protocol::REPORT_FIELD, "{not json"),
        ("something-else", "x"),
        (protocol::REPORT_FIELD, future.as_str()),
        (protocol::REPORT_FIELD, foreign.as_str()),
    ] {
        let _: String = conn.xadd(&reports, "*", &[(field, value)]).await.unwrap();
    }
    report(&mut conn, &log(&job.attempt_id, "still read")).await;
    finish(
        &mut conn,
        &entry,
        &job,
        Outcome::with_message(NodeStatus::Success, "the real one"),
    )
    .await;

    let (record, events) = running.end().await;
    assert_eq!(record.state, RunState::Success, "{record:#?}");
    assert_eq!(
        log_lines(&events),
        vec![("a".to_owned(), "still read".to_owned())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_for_a_pool_without_drones_says_so_and_times_out() {
    let redis = Redis::start();
    let mut conn = redis.connection().await;
    // A drone of another pool is no help.
    heartbeat(&mut conn, "d1", &["default"], 0).await;
    let leader = leader(&redis).await;
    let accepted = accept(
        &leader.registry,
        "name: lonely\nnodes:\n  a: {driver: noop, pool: gpu, timeout: 1s}\n",
    )
    .await;
    let running = start(&accepted, &leader, "r5", parallel(1));
    let (record, events) = running.end().await;
    let a = node(&record, "a");
    assert_eq!(a.state, NodeState::Timeout, "{a:?}");
    assert_eq!(a.error.as_deref(), Some("timed out after 1s"));
    assert_eq!(
        log_lines(&events),
        vec![(
            "a".to_owned(),
            "waiting for a drone of pool `gpu`: none is connected".to_owned()
        )]
    );
    let len: usize = conn.xlen(protocol::jobs_key("gpu")).await.unwrap();
    assert_eq!(
        len, 0,
        "the canceled job left its pool: no drone finds it later"
    );
    assert_eq!(
        mark(&mut conn, &id("r5", 0, 1)).await.as_deref(),
        Some("canceled"),
        "a drone coming later skips it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drones_and_pools_are_listed_from_heartbeats_and_streams() {
    let redis = Redis::start();
    let mut conn = redis.connection().await;
    heartbeat(&mut conn, "d1", &["default", "gpu"], 3).await;
    stopped(&mut conn, "d0-gone", Duration::from_secs(120)).await;
    // Silent for longer than drones stay listed, and an id with no record.
    stopped(&mut conn, "d00-old", protocol::DRONE_RETENTION * 2).await;
    let _: () = conn.sadd(protocol::DRONES, "d000-bare").await.unwrap();
    let leader = leader(&redis).await;
    let accepted = accept(
        &leader.registry,
        "name: batch\nnodes:\n  x: {driver: noop, pool: batch}\n  y: {driver: noop, pool: batch}\n",
    )
    .await;
    let running = start(&accepted, &leader, "r6", parallel(2));
    // Both are sent; one is taken.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let len: usize = conn.xlen(protocol::jobs_key("batch")).await.unwrap();
        if len == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the jobs never came");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    take_n(&mut conn, "batch", 1).await;

    let drones = leader.dispatcher.drones().await.unwrap();
    assert_eq!(drones.len(), 2, "{drones:?}");
    assert_eq!(drones[0].id, "d0-gone");
    assert!(!drones[0].alive);
    let last = drones[0]
        .info
        .as_ref()
        .expect("a stopped drone keeps its last heartbeat");
    assert_eq!(last.pools, vec!["default".to_owned()]);
    // The stale ones are gone from Redis too, not only from the answer.
    let ids: Vec<String> = conn.smembers(protocol::DRONES).await.unwrap();
    let mut ids = ids;
    ids.sort();
    assert_eq!(ids, ["d0-gone", "d1"]);
    let kept: Vec<String> = conn.hkeys(protocol::DRONES_LAST).await.unwrap();
    assert_eq!(kept, ["d0-gone"]);
    assert_eq!(drones[1].id, "d1");
    assert!(drones[1].alive);
    let info = drones[1].info.as_ref().unwrap();
    assert_eq!((info.running, info.concurrency), (3, 4));
    assert_eq!(info.pools, vec!["default".to_owned(), "gpu".to_owned()]);

    let pools = leader.dispatcher.pools().await.unwrap();
    let pool = |name: &str, queued, running, drones| PoolStatus {
        name: name.into(),
        queued,
        running,
        drones,
    };
    assert_eq!(
        pools,
        vec![
            pool("batch", 1, 1, 0),
            pool("default", 0, 0, 1),
            pool("gpu", 0, 0, 1)
        ]
    );
    running.cancel.cancel();
    let (record, _) = running.end().await;
    assert_eq!(record.state, RunState::Canceled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_carries_on_through_redis_restarts() {
    let mut redis = Redis::start();
    {
        let mut conn = redis.connection().await;
        heartbeat(&mut conn, "d1", &["default"], 0).await;
    }
    let leader = leader(&redis).await;
    let accepted = accept(
        &leader.registry,
        "name: chain\nnodes:\n  a: {driver: noop}\n  b: {driver: noop, needs: [a]}\n",
    )
    .await;
    // Redis is away when a is sent: the leader tries again until it is back.
    redis.kill();
    let running = start(&accepted, &leader, "r7", parallel(1));
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart();
    let mut conn = redis.connection().await;
    let [(entry, job)] = take_n(&mut conn, "default", 1).await.try_into().unwrap();
    assert_eq!(job.task.node, "a");
    // And away again while the leader waits for a's report.
    redis.restart();
    let mut conn = redis.connection().await;
    report(&mut conn, &log(&job.attempt_id, "after the restart")).await;
    finish(&mut conn, &entry, &job, success(&[])).await;
    let [(entry, job)] = take_n(&mut conn, "default", 1).await.try_into().unwrap();
    assert_eq!(job.task.node, "b");
    finish(&mut conn, &entry, &job, success(&[])).await;

    let (record, events) = running.end().await;
    assert_eq!(record.state, RunState::Success, "{record:#?}");
    assert_eq!(node(&record, "a").attempts.len(), 1);
    assert_eq!(
        log_lines(&events),
        vec![("a".to_owned(), "after the restart".to_owned())]
    );
}

/// Serves the API of `runs` on a free loopback port; returns its base URL.
async fn serve(runs: Runs) -> (String, CancellationToken) {
    let shutdown = CancellationToken::new();
    let auth = Auth::new(&[], None).unwrap();
    let state = AppState::new(runs, auth, shutdown.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(api::serve(api::Listen {
        listener,
        router: api::router(state, 1 << 20),
        tls: None,
        max_connections: 64,
        shutdown: shutdown.clone(),
    }));
    (base, shutdown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_lists_drones_and_pool_metrics_of_a_leader_and_none_when_embedded() {
    let redis = Redis::start();
    let mut conn = redis.connection().await;
    heartbeat(&mut conn, "d1", &["default", "gpu"], 2).await;
    stopped(&mut conn, "d0-gone", Duration::from_secs(120)).await;
    let leader = leader(&redis).await;
    let store = RedisStore::connect(&redis.url(), 60_000).await.unwrap();
    let distributed = Distributed::new(store, leader.dispatcher.clone());
    let (base, shutdown) =
        serve(Runs::new(leader.registry.clone(), Arc::new(distributed), 1)).await;
    let client = reqwest::Client::new();

    let body: Value = client
        .get(format!("{base}/api/v1/drones"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["mode"], "distributed");
    let drones = body["drones"].as_array().unwrap();
    assert_eq!(drones.len(), 2, "{body}");
    assert_eq!(drones[0]["id"], "d0-gone");
    assert_eq!(drones[0]["alive"], false);
    assert!(
        drones[0]["last_seen"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z')),
        "a stopped drone shows when it was last seen: {body}"
    );
    let d1 = &drones[1];
    assert_eq!(d1["id"], "d1");
    assert_eq!(d1["alive"], true);
    assert_eq!(d1["host"], "test-host");
    assert_eq!(d1["pools"], serde_json::json!(["default", "gpu"]));
    assert_eq!(d1["concurrency"], 4);
    assert_eq!(d1["running"], 2);
    assert_eq!(d1["finished"], 7);
    assert_eq!(d1["last_seen"], "2026-01-01T00:00:01Z");
    assert_eq!(body["pools"][1]["name"], "gpu");
    assert_eq!(body["pools"][1]["drones"], 1);

    let metrics = client
        .get(format!("{base}/api/v1/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "drover_pool_queued{pool=\"gpu\"} 0",
        "drover_pool_running{pool=\"default\"} 0",
        "drover_pool_drones{pool=\"gpu\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in:\n{metrics}"
        );
    }
    let openapi: Value = client
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(openapi["paths"]["/api/v1/drones"]["get"].is_object());
    shutdown.cancel();

    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(&store_dir.path().join("drover.redb")).unwrap();
    let embedded = Embedded::new(store, leader.registry.runtime().clone());
    let (base, shutdown) = serve(Runs::new(leader.registry.clone(), Arc::new(embedded), 1)).await;
    let body: Value = client
        .get(format!("{base}/api/v1/drones"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["mode"], "embedded");
    assert_eq!(body["drones"], serde_json::json!([]));
    let metrics = client
        .get(format!("{base}/api/v1/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("drover_pool_"), "{metrics}");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_jobs_stream_is_made_again_with_its_group() {
    let redis = Redis::start();
    let mut conn = redis.connection().await;
    heartbeat(&mut conn, "d1", &["default"], 0).await;
    let leader = leader(&redis).await;
    let accepted = accept(
        &leader.registry,
        "name: chain\nnodes:\n  a: {driver: noop}\n  b: {driver: noop, needs: [a]}\n",
    )
    .await;
    let running = start(&accepted, &leader, "r8", parallel(1));
    let [(entry, job)] = take_n(&mut conn, "default", 1).await.try_into().unwrap();
    // Redis loses the stream (and its group) before b is sent.
    let _: () = conn.del(protocol::jobs_key("default")).await.unwrap();
    finish(&mut conn, &entry, &job, success(&[])).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let (entry, job) = loop {
        assert!(Instant::now() < deadline, "b never came");
        let exists: bool = conn.exists(protocol::jobs_key("default")).await.unwrap();
        if exists {
            // No XGROUP CREATE here: the leader made the group with the stream.
            let mut jobs = take_joined(&mut conn, "default", 1, Duration::from_millis(300)).await;
            if let Some(taken) = jobs.pop() {
                break taken;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(job.task.node, "b");
    finish(&mut conn, &entry, &job, success(&[])).await;
    let (record, _) = running.end().await;
    assert_eq!(record.state, RunState::Success, "{record:#?}");
}
