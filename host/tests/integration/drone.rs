//! `drover drone` end to end: the real binary against a real redis-server,
//! with the test playing the leader by writing protocol entries (jobs,
//! driver bytes, marks, cancels) and reading the drone's reports.

use crate::support;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use drover::task::{NodeStatus, Task};
use drover::transport::redis::protocol::{
    self, AttemptId, AttemptMark, DroneInfo, GROUP, JOB_FIELD, Job, REPORT_FIELD, Report, VERSION,
};
use redis::aio::MultiplexedConnection;
use support::redis::Redis;
use support::{Drover, Running};

/// A built component from the wasm target folder: the standard plugins
/// and the test drivers.
fn component(file: &str) -> Vec<u8> {
    let path = support::test_drivers::folder().join(file);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): run `bash tests/setup.sh` and rebuild",
            path.display()
        )
    })
}

fn sha256(bytes: &[u8]) -> String {
    drover::runtime::digest(bytes)
}

/// The test's side of the protocol: what a leader writes and reads.
struct Leader {
    conn: MultiplexedConnection,
    run: String,
}

impl Leader {
    async fn new(redis: &Redis, run: &str) -> Leader {
        Leader {
            conn: redis.connection().await,
            run: run.to_owned(),
        }
    }

    /// Stores a component as a leader does; returns its digest.
    async fn put_driver(&mut self, bytes: &[u8]) -> String {
        let hex = sha256(bytes);
        let _: () = redis::cmd("SET")
            .arg(protocol::driver_key(&hex))
            .arg(bytes)
            .query_async(&mut self.conn)
            .await
            .unwrap();
        hex
    }

    fn job(&self, node: usize, driver: &str, digest: &str, artifact: &str) -> Job {
        Job {
            v: VERSION,
            attempt_id: AttemptId {
                run: self.run.clone(),
                node,
                attempt: 1,
            },
            pool: protocol::DEFAULT_POOL.into(),
            driver: driver.into(),
            digest: digest.into(),
            task: Task {
                run_id: self.run.clone(),
                node: format!("n{node}"),
                attempt: 1,
                artifact: artifact.into(),
                ..Task::default()
            },
            sent_us: protocol::now_us(),
        }
    }

    /// Marks the attempt queued and adds the job to its pool's stream.
    async fn enqueue(&mut self, job: &Job) -> String {
        let _: () = redis::cmd("HSETNX")
            .arg(protocol::attempts_key(&job.attempt_id.run))
            .arg(job.attempt_id.to_string())
            .arg(AttemptMark::Queued.as_str())
            .query_async(&mut self.conn)
            .await
            .unwrap();
        self.add_raw(&job.pool, &[(JOB_FIELD, &job.encode())]).await
    }

    /// Adds an entry with these fields as they are; returns its id.
    async fn add_raw(&mut self, pool: &str, fields: &[(&str, &str)]) -> String {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(protocol::jobs_key(pool)).arg("*");
        for (name, value) in fields {
            cmd.arg(*name).arg(*value);
        }
        cmd.query_async(&mut self.conn).await.unwrap()
    }

    async fn set_mark(&mut self, attempt: &AttemptId, mark: AttemptMark) {
        let _: () = redis::cmd("HSET")
            .arg(protocol::attempts_key(&attempt.run))
            .arg(attempt.to_string())
            .arg(mark.as_str())
            .query_async(&mut self.conn)
            .await
            .unwrap();
    }

    async fn mark(&mut self, attempt: &AttemptId) -> Option<String> {
        redis::cmd("HGET")
            .arg(protocol::attempts_key(&attempt.run))
            .arg(attempt.to_string())
            .query_async(&mut self.conn)
            .await
            .unwrap()
    }

    /// Every report of the run so far, with its stream entry id.
    async fn reports(&mut self) -> Vec<(String, Report)> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(protocol::reports_key(&self.run))
            .arg("-")
            .arg("+")
            .query_async(&mut self.conn)
            .await
            .unwrap();
        reply
            .ids
            .into_iter()
            .map(|entry| {
                let text: String = entry.get(REPORT_FIELD).expect("a report field");
                let report = Report::decode(text.as_bytes())
                    .unwrap_or_else(|e| panic!("the drone wrote a bad report {text}: {e}"));
                (entry.id, report)
            })
            .collect()
    }

    /// The reports about one attempt.
    async fn reports_of(&mut self, attempt: &AttemptId) -> Vec<Report> {
        self.reports()
            .await
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| r.attempt_id() == attempt)
            .collect()
    }

    /// Waits for the attempt's `Done`; returns the drone and the outcome.
    async fn done(&mut self, attempt: &AttemptId) -> (String, drover::task::Outcome) {
        self.done_within(attempt, Duration::from_secs(60)).await
    }

    async fn done_within(
        &mut self,
        attempt: &AttemptId,
        within: Duration,
    ) -> (String, drover::task::Outcome) {
        let start = Instant::now();
        loop {
            for report in self.reports_of(attempt).await {
                if let Report::Done { drone, outcome, .. } = report {
                    return (drone, outcome);
                }
            }
            assert!(
                start.elapsed() < within,
                "no Done for {attempt} within {within:?}; reports: {:?}",
                self.reports().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `n` attempts of the run have started.
    async fn started(&mut self, n: usize) {
        let start = Instant::now();
        loop {
            let started = self
                .reports()
                .await
                .iter()
                .filter(|(_, r)| matches!(r, Report::Started { .. }))
                .count();
            if started >= n {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "only {started} of {n} attempts started: {:?}",
                self.reports().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn len(&mut self, pool: &str) -> usize {
        redis::cmd("XLEN")
            .arg(protocol::jobs_key(pool))
            .query_async(&mut self.conn)
            .await
            .unwrap()
    }

    /// How many entries of the pool's stream the drones hold unacknowledged.
    async fn pending(&mut self, pool: &str) -> usize {
        let reply: redis::RedisResult<redis::Value> = redis::cmd("XPENDING")
            .arg(protocol::jobs_key(pool))
            .arg(GROUP)
            .query_async(&mut self.conn)
            .await;
        match reply {
            Ok(redis::Value::Array(parts)) => match parts.first() {
                Some(redis::Value::Int(n)) => *n as usize,
                _ => 0,
            },
            _ => 0,
        }
    }
}

/// Starts `drover drone` on `redis` with extra flags; waits until it is up.
fn drone(drover: &Drover, redis: &Redis, flags: &[&str]) -> Running {
    let url = redis.url();
    let mut args = vec!["drone", "--redis", url.as_str()];
    args.extend_from_slice(flags);
    let mut running = drover.spawn(&args);
    running.wait_for_log(" up: pools ");
    running
}

/// SIGKILL, as a crash.
fn kill_9(running: &Running) {
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(running.id() as i32, libc::SIGKILL) };
}

fn builtin(name: &str) -> (Vec<u8>, String) {
    let bytes = component(&format!("drover_plugin_{name}.wasm"));
    let hex = sha256(&bytes);
    (bytes, hex)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noop_and_shell_jobs_reach_done_with_their_logs() {
    let redis = Redis::start();
    let drover = Drover::new();
    let mut leader = Leader::new(&redis, "run-basic").await;
    let (noop, noop_hex) = builtin("noop");
    let (shell, shell_hex) = builtin("shell");
    leader.put_driver(&noop).await;
    leader.put_driver(&shell).await;
    let running = drone(&drover, &redis, &["--concurrency", "2"]);

    let noop_job = leader.job(0, "noop", &noop_hex, "");
    let shell_job = leader.job(
        1,
        "shell",
        &shell_hex,
        "echo hello from $0; echo second line >&2",
    );
    leader.enqueue(&noop_job).await;
    leader.enqueue(&shell_job).await;

    let (by, outcome) = leader.done(&noop_job.attempt_id).await;
    assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
    assert!(!by.is_empty());
    let (_, outcome) = leader.done(&shell_job.attempt_id).await;
    assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
    assert_eq!(outcome.exit_code, Some(0));

    let reports = leader.reports_of(&shell_job.attempt_id).await;
    assert!(
        matches!(reports.first(), Some(Report::Started { drone, .. }) if *drone == by),
        "Started first, by the drone: {reports:?}"
    );
    assert!(
        matches!(reports.last(), Some(Report::Done { .. })),
        "{reports:?}"
    );
    let lines: Vec<&str> = reports
        .iter()
        .filter_map(|r| match r {
            Report::Log { line, .. } => Some(line.message.as_str()),
            _ => None,
        })
        .collect();
    assert!(lines.contains(&"hello from shell"), "{lines:?}");
    assert!(lines.contains(&"second line"), "{lines:?}");

    // Marked done, acknowledged and deleted; the workspaces are gone.
    assert_eq!(
        leader.mark(&shell_job.attempt_id).await.as_deref(),
        Some("done")
    );
    assert_eq!(leader.len("default").await, 0);
    assert_eq!(leader.pending("default").await, 0);
    let workspaces = files_under(&drover.data().join("runs"));
    assert!(workspaces.is_empty(), "left behind: {workspaces:?}");

    running.interrupt();
    let ended = running.finish();
    assert_eq!(ended.code, Some(0), "{}", ended.log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_it_lacks_is_fetched_once_by_digest_and_cached() {
    let redis = Redis::start();
    let drover = Drover::new();
    let mut leader = Leader::new(&redis, "run-fetch").await;
    let greet = component("test_driver_greet.wasm");
    let hex = leader.put_driver(&greet).await;
    let running = drone(&drover, &redis, &[]);

    let first = leader.job(0, "greet", &hex, "drone");
    leader.enqueue(&first).await;
    let (_, outcome) = leader.done(&first.attempt_id).await;
    assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
    assert_eq!(outcome.outputs["greeting"], "hello, drone");
    let cached = drover.data().join(format!("drone/drivers/{hex}.wasm"));
    assert_eq!(std::fs::read(&cached).unwrap(), greet, "cached as fetched");

    // Gone from Redis: the drone has it already.
    let _: () = redis::cmd("DEL")
        .arg(protocol::driver_key(&hex))
        .query_async(&mut leader.conn)
        .await
        .unwrap();
    let second = leader.job(1, "greet", &hex, "again");
    leader.enqueue(&second).await;
    let (_, outcome) = leader.done(&second.attempt_id).await;
    assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
    running.interrupt();
    assert_eq!(running.finish().code, Some(0));

    // A new drone on the same data folder finds it in its disk cache.
    let running = drone(&drover, &redis, &[]);
    let third = leader.job(2, "greet", &hex, "cache");
    leader.enqueue(&third).await;
    let (_, outcome) = leader.done(&third.attempt_id).await;
    assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
    assert_eq!(outcome.outputs["greeting"], "hello, cache");
    running.interrupt();
    assert_eq!(running.finish().code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_driver_bytes_end_in_a_failure_naming_the_digest_and_nothing_runs() {
    let redis = Redis::start();
    let drover = Drover::new();
    let mut leader = Leader::new(&redis, "run-digest").await;
    let running = drone(&drover, &redis, &[]);

    // Bytes stored under a digest they do not have.
    let greet = component("test_driver_greet.wasm");
    let claimed = "0".repeat(63) + "1";
    let _: () = redis::cmd("SET")
        .arg(protocol::driver_key(&claimed))
        .arg(&greet)
        .query_async(&mut leader.conn)
        .await
        .unwrap();
    let wrong = leader.job(0, "greet", &claimed, "x");
    // No bytes at all.
    let absent = "ab".repeat(32);
    let missing = leader.job(1, "greet", &absent, "x");
    // Not a digest.
    let bogus = leader.job(2, "greet", "../../etc/passwd", "x");
    // A driver that asks for more than the drone's policy allows.
    let forbidden_hex = leader
        .put_driver(&component("test_driver_forbidden_exec.wasm"))
        .await;
    let forbidden = leader.job(3, "forbidden-exec", &forbidden_hex, "x");
    for job in [&wrong, &missing, &bogus, &forbidden] {
        leader.enqueue(job).await;
    }

    let (_, outcome) = leader.done(&wrong.attempt_id).await;
    assert_eq!(outcome.status, NodeStatus::Failure);
    assert!(outcome.message.contains(&claimed), "{}", outcome.message);
    assert!(
        outcome.message.contains(&sha256(&greet)),
        "{}",
        outcome.message
    );
    let (_, outcome) = leader.done(&missing.attempt_id).await;
    assert_eq!(outcome.status, NodeStatus::Failure);
    assert!(outcome.message.contains(&absent), "{}", outcome.message);
    assert!(outcome.message.contains("missing"), "{}", outcome.message);
    let (_, outcome) = leader.done(&bogus.attempt_id).await;
    assert_eq!(outcome.status, NodeStatus::Failure);
    assert!(
        outcome.message.contains("not a sha256 digest"),
        "{}",
        outcome.message
    );
    let (_, outcome) = leader.done(&forbidden.attempt_id).await;
    assert_eq!(outcome.status, NodeStatus::Failure);
    assert!(
        outcome.message.contains(&forbidden_hex),
        "{}",
        outcome.message
    );
    assert!(
        outcome.message.contains("exec of `sh`"),
        "{}",
        outcome.message
    );

    for job in [&wrong, &missing, &bogus, &forbidden] {
        let reports = leader.reports_of(&job.attempt_id).await;
        assert!(
            !reports.iter().any(|r| matches!(r, Report::Started { .. })),
            "{} must not have started: {reports:?}",
            job.attempt_id
        );
    }
    let cached = files_under(&drover.data().join("drone/drivers"));
    assert!(
        cached
            .iter()
            .all(|p| !p.to_string_lossy().contains(&claimed)),
        "wrong bytes cached: {cached:?}"
    );
    running.interrupt();
    assert_eq!(running.finish().code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_concurrency_attempts_run_at_once() {
    let redis = Redis::start();
    let drover = Drover::new();
    let mut leader = Leader::new(&redis, "run-k").await;
    let (sleep, hex) = builtin("sleep");
    leader.put_driver(&sleep).await;
    let running = drone(
        &drover,
        &redis,
        &["--concurrency", "2", "--heartbeat", "100ms"],
    );
    let jobs: Vec<Job> = (0..6)
        .map(|n| leader.job(n, "sleep", &hex, "400ms"))
        .collect();
    for job in &jobs {
        leader.enqueue(job).await;
    }
    let mut most_seen = 0;
    let id = {
        let start = Instant::now();
        loop {
            let keys: Vec<String> = redis::cmd("SMEMBERS")
                .arg(protocol::DRONES)
                .query_async(&mut leader.conn)
                .await
                .unwrap();
            if let Some(id) = keys.into_iter().next() {
                break id;
            }
            assert!(start.elapsed() < Duration::from_secs(10));
        }
    };
    for job in &jobs {
        loop {
            let info: Option<String> = redis::cmd("GET")
                .arg(protocol::drone_key(&id))
                .query_async(&mut leader.conn)
                .await
                .unwrap();
            if let Some(info) = info {
                let info: DroneInfo = serde_json::from_str(&info).unwrap();
                most_seen = most_seen.max(info.running);
            }
            let done = leader
                .reports_of(&job.attempt_id)
                .await
                .iter()
                .any(|r| matches!(r, Report::Done { .. }));
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
    assert!(most_seen <= 2, "the heartbeat said {most_seen} running");

    // Each attempt's span, from its Started to its Done entry: never more
    // than two overlap, and two did.
    let reports = leader.reports().await;
    let mut spans = Vec::new();
    for job in &jobs {
        let start = reports.iter().find_map(|(_, r)| match r {
            Report::Started {
                attempt_id, at_us, ..
            } if *attempt_id == job.attempt_id => Some(*at_us / 1000),
            _ => None,
        });
        let end = reports.iter().find_map(|(id, r)| match r {
            Report::Done {
                attempt_id,
                outcome,
                ..
            } if *attempt_id == job.attempt_id => {
                assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
                id.split('-').next().and_then(|ms| ms.parse::<u64>().ok())
            }
            _ => None,
        });
        spans.push((start.unwrap(), end.unwrap()));
    }
    let overlap_at = |t: u64| spans.iter().filter(|(s, e)| *s <= t && t < *e).count();
    let most = spans.iter().map(|(s, _)| overlap_at(*s)).max().unwrap();
    assert_eq!(most, 2, "spans {spans:?}");
    running.interrupt();
    assert_eq!(running.finish().code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_pools_it_does_not_serve_are_left_alone() {
    let redis = Redis::start();
    let drover = Drover::new();
    let mut leader = Leader::new(&redis, "run-pools").await;
    let (noop, hex) = builtin("noop");
    leader.put_driver(&noop).await;
    let running = drone(&drover, &redis, &["--pool", "gpu", "--pool", "arm.v8"]);
    let other = leader.job(0, "noop", &hex, "");
    let mut gpu = leader.job(1, "noop", &hex, "");
    gpu.pool = "gpu".into();
    let mut arm = leader.job(2, "noop", &hex, "");
    arm.pool = "arm.v8".into();
    leader.enqueue(&other).await;
    leader.enqueue(&gpu).await;
    leader.enqueue(&arm).await;
    assert_eq!(
        leader.done(&gpu.attempt_id).await.1.status,
        NodeStatus::Success
    );
    assert_eq!(
        leader.done(&arm.attempt_id).await.1.status,
        NodeStatus::Success
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(leader.reports_of(&other.attempt_id).await.is_empty());
    assert_eq!(leader.len("default").await, 1);
    assert_eq!(leader.pending("default").await, 0);
    let pools: Vec<String> = redis::cmd("SMEMBERS")
        .arg(protocol::POOLS)
        .query_async(&mut leader.conn)
        .await
        .unwrap();
    assert!(
        pools.contains(&"gpu".to_owned()) && pools.contains(&"arm.v8".to_owned()),
        "{pools:?}"
    );
    running.interrupt();
    assert_eq!(running.finish().code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_foreign_and_hostile_entries_are_dropped_and_the_drone_carries_on() {
    let redis = Redis::start();
    let drover = Drover::new();
    let mut leader = Leader::new(&redis, "run-bad").await;
    let (noop, hex) = builtin("noop");
    leader.put_driver(&noop).await;
    let trap_hex = leader.put_driver(&component("test_driver_trap.wasm")).await;
    let running = drone(&drover, &redis, &[]);

    let garbage = leader.add_raw("default", &[(JOB_FIELD, "{not json")]).await;
    let fieldless = leader.add_raw("default", &[("other", "x")]).await;
    let future_job = leader
        .job(9, "noop", &hex, "")
        .encode()
        .replace("\"v\":1", "\"v\":99");
    let foreign = leader.add_raw("default", &[(JOB_FIELD, &future_job)]).await;
    let trap = leader.job(1, "trap", &trap_hex, "");
    leader.enqueue(&trap).await;
    let good = leader.job(0, "noop", &hex, "");
    leader.enqueue(&good).await;

    assert_eq!(
        leader.done(&good.attempt_id).await.1.status,
        NodeStatus::Success
    );
    let (_, outcome) = leader.done(&trap.attempt_id).await;
    assert_eq!(outcome.status, NodeStatus::Failure);
    assert!(
        outcome.message.contains("trapped") || outcome.message.contains("panicked"),
        "{}",
        outcome.message
    );
    let start = Instant::now();
    while leader.len("default").await > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "bad entries left on the stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(leader.pending("default").await, 0);

    running.interrupt();
    let ended = running.finish();
    assert_eq!(ended.code, Some(0), "{}", ended.log);
    for (id, reason) in [
        (&garbage, "malformed message: job:"),
        (&fieldless, "no `job` field"),
        (&foreign, "protocol version 99"),
    ] {
        assert!(
            ended
                .log
                .lines()
                .any(|l| l.contains(id.as_str()) && l.contains(reason)),
            "no warning naming {id} and `{reason}`: {}",
            ended.log
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_marked_canceled_or_done_are_skipped() {
    let redis = Redis::start();
    let drover = Drover::new();
    let mut leader = Leader::new(&redis, "run-marks").await;
    let (shell, hex) = builtin("shell");
    leader.put_driver(&shell).await;
    let canceled = leader.job(0, "shell", &hex, "touch ran");
    let done = leader.job(1, "shell", &hex, "touch ran");
    leader
        .set_mark(&canceled.attempt_id, AttemptMark::Canceled)
        .await;
    leader.set_mark(&done.attempt_id, AttemptMark::Done).await;
    leader.enqueue(&canceled).await;
    leader.enqueue(&done).await;
    let good = leader.job(2, "shell", &hex, "true");
    leader.enqueue(&good).await;

    let running = drone(&drover, &redis, &["--concurrency", "1"]);
    assert_eq!(
        leader.done(&good.attempt_id).await.1.status,
        NodeStatus::Success
    );
    for job in [&canceled, &done] {
        assert!(leader.reports_of(&job.attempt_id).await.is_empty());
    }
    assert_eq!(
        leader.mark(&canceled.attempt_id).await.as_deref(),
        Some("canceled")
    );
    assert_eq!(leader.len("default").await, 0);
    running.interrupt();
    assert_eq!(running.finish().code, Some(0));
}

/// A run's marks and reports go when it ends: a job of it found later is
/// not run, and an attempt that ends after that leaves no keys behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_a_run_that_ended_leave_nothing_behind() {
    let redis = Redis::start();
    let drover = Drover::new();
    let mut leader = Leader::new(&redis, "run-ended").await;
    let (sleep, hex) = builtin("sleep");
    leader.put_driver(&sleep).await;
    let running = drone(&drover, &redis, &[]);
    let keys = [
        protocol::attempts_key("run-ended"),
        protocol::reports_key("run-ended"),
    ];
    let exists = |conn: &mut redis::aio::MultiplexedConnection| {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(&keys);
        let mut conn = conn.clone();
        async move { cmd.query_async::<usize>(&mut conn).await.unwrap() }
    };

    // Ends while the drone runs it.
    let late = leader.job(0, "sleep", &hex, "1s");
    leader.enqueue(&late).await;
    leader.started(1).await;
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut leader.conn)
        .await
        .unwrap();
    // Found after the end (say, claimed from a dead drone).
    let stale = leader.job(1, "sleep", &hex, "60s");
    leader
        .add_raw("default", &[(JOB_FIELD, &stale.encode())])
        .await;

    // Off the stream well before the stale job's minute: it was not run.
    let deadline = Instant::now() + Duration::from_secs(20);
    while leader.len("default").await > 0 {
        assert!(Instant::now() < deadline, "the jobs were not taken off");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        exists(&mut leader.conn).await,
        0,
        "the run's keys came back"
    );
    running.interrupt();
    let ended = running.finish();
    assert_eq!(ended.code, Some(0), "{}", ended.log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_on_the_channel_stops_a_running_attempt_and_deadlines_hold() {
    let redis = Redis::start();
    let drover = Drover::new();
    let mut leader = Leader::new(&redis, "run-cancel").await;
    let (sleep, hex) = builtin("sleep");
    leader.put_driver(&sleep).await;
    let running = drone(&drover, &redis, &[]);

    let long = leader.job(0, "sleep", &hex, "60s");
    leader.enqueue(&long).await;
    leader.started(1).await;
    let began = Instant::now();
    let _: () = redis::cmd("PUBLISH")
        .arg(protocol::ATTEMPT_CANCEL_CHANNEL)
        .arg(long.attempt_id.to_string())
        .query_async(&mut leader.conn)
        .await
        .unwrap();
    let (_, outcome) = leader
        .done_within(&long.attempt_id, Duration::from_secs(10))
        .await;
    assert_eq!(outcome.status, NodeStatus::Canceled, "{outcome:?}");
    assert!(began.elapsed() < Duration::from_secs(10));

    let mut bounded = leader.job(1, "sleep", &hex, "60s");
    bounded.task.deadline = Some(SystemTime::now() + Duration::from_millis(500));
    leader.enqueue(&bounded).await;
    let (_, outcome) = leader
        .done_within(&bounded.attempt_id, Duration::from_secs(10))
        .await;
    assert_eq!(outcome.status, NodeStatus::Timeout, "{outcome:?}");
    running.interrupt();
    assert_eq!(running.finish().code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_tells_pool_and_load_and_goes_after_a_graceful_stop() {
    let redis = Redis::start();
    let drover = Drover::new();
    let mut leader = Leader::new(&redis, "run-beat").await;
    let (sleep, hex) = builtin("sleep");
    leader.put_driver(&sleep).await;
    let running = drone(
        &drover,
        &redis,
        &[
            "--id",
            "drone-a",
            "--pool",
            "blue",
            "-j",
            "3",
            "--heartbeat",
            "100ms",
        ],
    );
    let mut job = leader.job(0, "sleep", &hex, "1500ms");
    job.pool = "blue".into();
    leader.enqueue(&job).await;
    leader.started(1).await;

    let key = protocol::drone_key("drone-a");
    let start = Instant::now();
    let info = loop {
        let text: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut leader.conn)
            .await
            .unwrap();
        let info: DroneInfo = serde_json::from_str(&text.expect("a heartbeat")).unwrap();
        if info.running == 1 {
            break info;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{info:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(info.id, "drone-a");
    assert_eq!(info.pools, ["blue"]);
    assert_eq!(info.concurrency, 3);
    assert_eq!(info.pid, running.id());
    assert!(
        drover::rfc3339::parse(&info.last_seen).is_some(),
        "{info:?}"
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut leader.conn)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 300, "expires after three beats: {ttl} ms");
    let member: bool = redis::cmd("SISMEMBER")
        .arg(protocol::DRONES)
        .arg("drone-a")
        .query_async(&mut leader.conn)
        .await
        .unwrap();
    assert!(member);

    let pid = running.id();
    // A graceful stop lets the running attempt finish, then removes the key.
    running.interrupt();
    let ended = running.finish();
    assert_eq!(ended.code, Some(0), "{}", ended.log);
    let reports = leader.reports_of(&job.attempt_id).await;
    assert!(
        reports.iter().any(
            |r| matches!(r, Report::Done { outcome, .. } if outcome.status == NodeStatus::Success)
        ),
        "{reports:?}"
    );
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut leader.conn)
        .await
        .unwrap();
    assert!(!exists, "the heartbeat key outlived the drone");
    // Its last heartbeat stays, so that the list shows when it was last seen.
    let last: Option<String> = redis::cmd("HGET")
        .arg(protocol::DRONES_LAST)
        .arg("drone-a")
        .query_async(&mut leader.conn)
        .await
        .unwrap();
    let last: DroneInfo = serde_json::from_str(&last.expect("the last heartbeat")).unwrap();
    assert_eq!((last.id.as_str(), last.pid), ("drone-a", pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drone_killed_mid_run_has_its_attempts_claimed_and_finished_by_another() {
    let redis = Redis::start();
    let drover = Drover::new();
    let mut leader = Leader::new(&redis, "run-kill").await;
    let (sleep, hex) = builtin("sleep");
    leader.put_driver(&sleep).await;
    let first = drone(&drover, &redis, &["--id", "doomed", "-j", "4"]);
    let jobs: Vec<Job> = (0..3).map(|n| leader.job(n, "sleep", &hex, "3s")).collect();
    for job in &jobs {
        leader.enqueue(job).await;
    }
    leader.started(3).await;
    kill_9(&first);
    let _ = first.finish();

    let other = Drover::new();
    let second = drone(
        &other,
        &redis,
        &["--id", "rescuer", "--claim-idle", "500ms"],
    );
    for job in &jobs {
        let (by, outcome) = leader.done(&job.attempt_id).await;
        assert_eq!(by, "rescuer");
        assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
        let reports = leader.reports_of(&job.attempt_id).await;
        let dones = reports
            .iter()
            .filter(|r| matches!(r, Report::Done { .. }))
            .count();
        assert_eq!(dones, 1, "{reports:?}");
    }
    assert_eq!(leader.len("default").await, 0);
    assert_eq!(leader.pending("default").await, 0);
    second.interrupt();
    let ended = second.finish();
    assert_eq!(ended.code, Some(0), "{}", ended.log);
    assert_eq!(
        ended
            .log
            .matches("claimed a job entry of an unresponsive drone")
            .count(),
        3,
        "{}",
        ended.log
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_drone_keeps_its_attempts_from_being_claimed() {
    let redis = Redis::start();
    let drover = Drover::new();
    let mut leader = Leader::new(&redis, "run-live").await;
    let (sleep, hex) = builtin("sleep");
    leader.put_driver(&sleep).await;
    let first = drone(&drover, &redis, &["--id", "busy", "--claim-idle", "1000ms"]);
    let job = leader.job(0, "sleep", &hex, "2s");
    leader.enqueue(&job).await;
    leader.started(1).await;
    let other = Drover::new();
    let second = drone(&other, &redis, &["--id", "eager", "--claim-idle", "1000ms"]);
    let (by, outcome) = leader.done(&job.attempt_id).await;
    assert_eq!((by.as_str(), outcome.status), ("busy", NodeStatus::Success));
    let starts = leader
        .reports_of(&job.attempt_id)
        .await
        .iter()
        .filter(|r| matches!(r, Report::Started { .. }))
        .count();
    assert_eq!(starts, 1, "the attempt ran twice");
    for running in [first, second] {
        running.interrupt();
        assert_eq!(running.finish().code, Some(0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_finish_when_redis_restarts_mid_run() {
    let mut redis = Redis::start();
    let drover = Drover::new();
    let mut leader = Leader::new(&redis, "run-restart").await;
    let (sleep, hex) = builtin("sleep");
    leader.put_driver(&sleep).await;
    let running = drone(&drover, &redis, &["-j", "4", "--heartbeat", "200ms"]);
    let jobs: Vec<Job> = (0..3)
        .map(|n| leader.job(n, "sleep", &hex, "1500ms"))
        .collect();
    for job in &jobs {
        leader.enqueue(job).await;
    }
    leader.started(3).await;
    // Away while the attempts end: their Done waits for Redis to return.
    redis.kill();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    redis.restart();
    let mut leader = Leader::new(&redis, "run-restart").await;
    for job in &jobs {
        let (_, outcome) = leader.done(&job.attempt_id).await;
        assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
    }
    // It reads new jobs again too.
    let after = leader.job(3, "sleep", &hex, "10ms");
    leader.enqueue(&after).await;
    assert_eq!(
        leader.done(&after.attempt_id).await.1.status,
        NodeStatus::Success
    );
    assert_eq!(leader.len("default").await, 0);
    running.interrupt();
    let ended = running.finish();
    assert_eq!(ended.code, Some(0), "{}", ended.log);
    assert!(
        ended.log.contains("retrying"),
        "Redis was never missed: {}",
        ended.log
    );
    for job in &jobs {
        let dones = leader
            .reports_of(&job.attempt_id)
            .await
            .iter()
            .filter(|r| matches!(r, Report::Done { .. }))
            .count();
        assert_eq!(dones, 1, "{}", job.attempt_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_and_an_unreachable_redis_are_clear_errors() {
    let drover = Drover::new();
    let out = drover.run(&["drone", "--redis", "nonsense://x"]);
    assert_eq!(out.status.code(), Some(2), "{}", support::stderr(&out));
    assert!(
        support::stderr(&out).contains("nonsense://x"),
        "{}",
        support::stderr(&out)
    );
    let out = drover.run(&["drone", "--redis", "redis://127.0.0.1:1", "--pool", "a b"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        support::stderr(&out).contains("`a b` is not a pool name"),
        "{}",
        support::stderr(&out)
    );
    let out = drover.run(&["drone", "--redis", "redis://127.0.0.1:1", "-j", "0"]);
    assert_eq!(out.status.code(), Some(2));

    let port = support::openbao::free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let out = drover.run(&["drone", "--redis", &url]);
    assert_eq!(out.status.code(), Some(1), "{}", support::stderr(&out));
    assert!(
        support::stderr(&out).contains(&format!("cannot reach Redis at {url}")),
        "{}",
        support::stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_still_running_after_the_grace_are_left_to_other_drones_at_once() {
    let redis = Redis::start();
    let drover = Drover::new();
    let mut leader = Leader::new(&redis, "run-grace").await;
    let (sleep, hex) = builtin("sleep");
    leader.put_driver(&sleep).await;
    let first = drone(&drover, &redis, &["--id", "leaving", "--grace", "200ms"]);
    let job = leader.job(0, "sleep", &hex, "3s");
    leader.enqueue(&job).await;
    leader.started(1).await;
    first.interrupt();
    let ended = first.finish();
    assert_eq!(ended.code, Some(0), "{}", ended.log);
    assert!(
        leader
            .reports_of(&job.attempt_id)
            .await
            .iter()
            .all(|r| !matches!(r, Report::Done { .. }))
    );
    assert_eq!(
        leader.pending("default").await,
        1,
        "left pending for another drone"
    );

    // The default claim idle time is 30 s: the entry was released, not aged.
    let other = Drover::new();
    let second = drone(&other, &redis, &["--id", "staying"]);
    let (by, outcome) = leader
        .done_within(&job.attempt_id, Duration::from_secs(15))
        .await;
    assert_eq!(
        (by.as_str(), outcome.status),
        ("staying", NodeStatus::Success)
    );
    second.interrupt();
    assert_eq!(second.finish().code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_lost_its_data_gets_the_groups_and_sets_back() {
    let redis = Redis::start();
    let drover = Drover::new();
    let mut leader = Leader::new(&redis, "run-flushed").await;
    let (noop, hex) = builtin("noop");
    let running = drone(
        &drover,
        &redis,
        &["--id", "phoenix", "--heartbeat", "100ms"],
    );
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut leader.conn)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    leader.put_driver(&noop).await;
    let job = leader.job(0, "noop", &hex, "");
    leader.enqueue(&job).await;
    let (_, outcome) = leader.done(&job.attempt_id).await;
    assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
    let member: bool = redis::cmd("SISMEMBER")
        .arg(protocol::DRONES)
        .arg("phoenix")
        .query_async(&mut leader.conn)
        .await
        .unwrap();
    assert!(member, "the drone is listed again");
    running.interrupt();
    let ended = running.finish();
    assert_eq!(ended.code, Some(0), "{}", ended.log);
    assert!(
        ended.log.contains("lost their consumer group"),
        "{}",
        ended.log
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drone_section_of_the_config_is_used_and_flags_win() {
    let redis = Redis::start();
    let drover = Drover::new();
    drover.configure(
        "[drone]\npools = [\"from-config\"]\nconcurrency = 3\nid = \"configured\"\nheartbeat = \"100ms\"",
    );
    let running = drone(&drover, &redis, &[]);
    assert!(
        running
            .seen
            .contains("drone configured up: pools from-config, concurrency 3"),
        "{}",
        running.seen
    );
    running.interrupt();
    assert_eq!(running.finish().code, Some(0));
    let running = drone(&drover, &redis, &["--pool", "flag", "-j", "1"]);
    assert!(
        running
            .seen
            .contains("drone configured up: pools flag, concurrency 1"),
        "{}",
        running.seen
    );
    running.interrupt();
    assert_eq!(running.finish().code, Some(0));

    drover.configure("bogus = 1");
    let url = redis.url();
    let out = drover.run(&["drone", "--redis", &url]);
    assert_eq!(out.status.code(), Some(2), "{}", support::stderr(&out));
}

/// The drone's duration flags read drover's one grammar and want their unit written: they took
/// bare milliseconds before, which the grammar would read as seconds.
#[test]
fn duration_flags_carry_their_unit() {
    let drover = Drover::new();
    let out = drover.run(&[
        "drone",
        "--redis",
        "redis://127.0.0.1:1",
        "--grace",
        "30000",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = support::stderr(&out);
    assert!(
        err.contains("`30000` has no unit: write e.g. `30000ms`"),
        "{err}"
    );
    let out = drover.run(&[
        "drone",
        "--redis",
        "redis://127.0.0.1:1",
        "--heartbeat",
        "soon",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        support::stderr(&out).contains("invalid duration `soon`"),
        "{}",
        support::stderr(&out)
    );
    let out = drover.run(&[
        "drone",
        "--redis",
        "redis://127.0.0.1:1",
        "--heartbeat",
        "0s",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        support::stderr(&out).contains("--heartbeat must be at least 1ms"),
        "{}",
        support::stderr(&out)
    );
}
