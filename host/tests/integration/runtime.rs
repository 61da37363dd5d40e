//! The runtime against real components: the standard drivers, and hostile
//! drivers that trap, loop, allocate, reach for programs and files they were
//! not granted. The host must stay up and each node must fail with a reason.

use crate::support;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use drover::config::{Config, DriverPolicy};
use drover::registry;
use drover::runtime::{CacheOutcome, Runtime};
use drover::task::{LogSource, NodeStatus, Outcome, Task};
use support::runtime::Harness;
use tokio_util::sync::CancellationToken;

fn test_driver(name: &str) -> Arc<[u8]> {
    let path = support::test_drivers::folder()
        .join(format!("test_driver_{}.wasm", name.replace('-', "_")));
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into()
}

fn builtin(name: &str) -> Arc<[u8]> {
    registry::builtin(name).expect("built-in driver").into()
}

fn task(node: &str, artifact: &str) -> Task {
    Task {
        run_id: "test".into(),
        node: node.into(),
        attempt: 1,
        artifact: artifact.into(),
        ..Task::default()
    }
}

fn with_timeout(mut task: Task, timeout: Duration) -> Task {
    task.deadline = Some(SystemTime::now() + timeout);
    task
}

/// After a hostile driver, the host must still run a well-behaved one.
async fn host_still_works(h: &Harness) {
    let noop = h.load(builtin("noop")).await;
    let (outcome, _) = h.run(&noop, task("after", "")).await;
    assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
}

#[tokio::test]
async fn noop_succeeds_and_describes_itself() {
    let h = Harness::new();
    let noop = h.load(builtin("noop")).await;
    assert_eq!(noop.name(), "noop");
    assert!(noop.description().capabilities.exec.is_empty());
    let (outcome, _) = h.run(&noop, task("n", "")).await;
    assert_eq!(outcome.status, NodeStatus::Success);
    // noop needs no workspace, so none is made.
    assert!(!h.workspace("n").exists());
}

#[tokio::test]
async fn compiled_drivers_are_cached_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: Some(dir.path().to_path_buf()),
        ..Config::default()
    };
    let first = Runtime::new(config.clone())
        .unwrap()
        .load(builtin("shell"))
        .await
        .unwrap();
    assert_eq!(first.cache_outcome(), CacheOutcome::Compiled);
    let second = Runtime::new(config)
        .unwrap()
        .load(builtin("shell"))
        .await
        .unwrap();
    assert_eq!(second.cache_outcome(), CacheOutcome::Hit);
    assert_eq!(first.digest(), second.digest());
    assert_eq!(first.digest().len(), 64);
    // A corrupt cache entry is recompiled, not trusted.
    for entry in std::fs::read_dir(dir.path().join("compiled")).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let config = Config {
        data_dir: Some(dir.path().to_path_buf()),
        ..Config::default()
    };
    let third = Runtime::new(config)
        .unwrap()
        .load(builtin("shell"))
        .await
        .unwrap();
    assert_eq!(third.cache_outcome(), CacheOutcome::Compiled);
}

#[tokio::test]
async fn things_that_are_not_drivers_are_refused() {
    let h = Harness::new();
    let garbage = h
        .runtime
        .load(Arc::from(&b"not wasm at all"[..]))
        .await
        .unwrap_err();
    assert!(
        garbage.to_string().contains("not a usable drover driver"),
        "{garbage}"
    );
    // A valid core module (the 8-byte empty module) is not a component.
    let core = h
        .runtime
        .load(Arc::from(&b"\0asm\x01\0\0\0"[..]))
        .await
        .unwrap_err();
    assert!(
        core.to_string().contains("not a usable drover driver"),
        "{core}"
    );
}

#[tokio::test]
async fn sleep_waits_and_validates_its_duration() {
    let h = Harness::new();
    let sleep = h.load(builtin("sleep")).await;
    let started = Instant::now();
    let (outcome, _) = h.run(&sleep, task("s", "150ms")).await;
    assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
    assert!(started.elapsed() >= Duration::from_millis(150));
    let problems = h
        .runtime
        .validate(&sleep, &task("s", "soon"))
        .await
        .unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "artifact");
    assert!(
        h.runtime
            .validate(&sleep, &task("s", "2s"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn sleep_past_its_deadline_times_out() {
    let h = Harness::new();
    let sleep = h.load(builtin("sleep")).await;
    let started = Instant::now();
    let (outcome, _) = h
        .run(
            &sleep,
            with_timeout(task("s", "1h"), Duration::from_millis(200)),
        )
        .await;
    assert_eq!(outcome.status, NodeStatus::Timeout, "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn shell_runs_inline_scripts_and_collects_outputs() {
    let h = Harness::new();
    let shell = h.load(builtin("shell")).await;
    let mut t = task(
        "sh",
        "echo hello $1; echo ip=10.0.0.1; echo other=x; echo from_file=yes >> \"$DROVER_OUTPUT\"; echo warn >&2",
    );
    t.args = vec!["world".into()];
    t.outputs = vec!["ip".into()];
    let (outcome, logs) = h.run(&shell, t).await;
    assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
    assert_eq!(outcome.exit_code, Some(0));
    assert_eq!(
        outcome.outputs.get("ip").map(String::as_str),
        Some("10.0.0.1")
    );
    assert_eq!(
        outcome.outputs.get("from_file").map(String::as_str),
        Some("yes")
    );
    // Only declared outputs come from stdout.
    assert!(
        !outcome.outputs.contains_key("other"),
        "{:?}",
        outcome.outputs
    );
    assert!(
        logs.iter()
            .any(|l| l.source == LogSource::Stdout && l.message == "hello world")
    );
    assert!(
        logs.iter()
            .any(|l| l.source == LogSource::Stderr && l.message == "warn")
    );
}

#[tokio::test]
async fn shell_runs_script_files_and_reports_failure() {
    let h = Harness::new();
    let shell = h.load(builtin("shell")).await;
    let scripts = tempfile::tempdir().unwrap();
    std::fs::write(
        scripts.path().join("build.sh"),
        "echo \"args: $*\"\nexit 3\n",
    )
    .unwrap();
    let mut t = task("file", "build.sh");
    t.args = vec!["a".into(), "b".into()];
    t.resolve_artifact_file(scripts.path());
    assert!(t.artifact_file.is_some());
    let (outcome, logs) = h.run(&shell, t).await;
    assert_eq!(outcome.status, NodeStatus::Failure, "{outcome:?}");
    assert_eq!(outcome.exit_code, Some(3));
    assert!(outcome.message.contains('3'), "{}", outcome.message);
    assert!(logs.iter().any(|l| l.message == "args: a b"), "{logs:?}");
}

#[tokio::test]
async fn shell_timeout_kills_the_whole_process_group() {
    let h = Harness::new();
    let shell = h.load(builtin("shell")).await;
    let marker = format!("{}.{}", 500 + std::process::id() % 100, std::process::id());
    let script = format!("sleep {marker} & sleep {marker}");
    let (outcome, _) = h
        .run(
            &shell,
            with_timeout(task("slow", &script), Duration::from_millis(300)),
        )
        .await;
    assert_eq!(outcome.status, NodeStatus::Timeout, "{outcome:?}");
    // Both sleeps (the child and the backgrounded grandchild) are gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive = processes_with_arg(&marker);
        if alive == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{alive} process(es) survived the timeout"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn canceling_a_shell_node_kills_its_processes() {
    let h = Harness::new();
    let shell = h.load(builtin("shell")).await;
    let marker = format!("{}.{}", 700 + std::process::id() % 100, std::process::id());
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let (outcome, _) = h
        .run_with(&shell, task("c", &format!("sleep {marker}")), cancel)
        .await;
    assert_eq!(outcome.status, NodeStatus::Canceled, "{outcome:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while processes_with_arg(&marker) > 0 {
        assert!(Instant::now() < deadline, "the process survived cancel");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn processes_with_arg(arg: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let state = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // Zombies are dead already; they only wait to be reaped.
            let zombie = state
                .rsplit(')')
                .next()
                .is_some_and(|s| s.trim_start().starts_with('Z'));
            !zombie && cmdline.split(|b| *b == 0).any(|a| a == arg.as_bytes())
        })
        .count()
}

#[tokio::test]
async fn shell_processes_stay_in_their_workspace() {
    let h = Harness::new();
    let shell = h.load(builtin("shell")).await;
    // Another node's workspace, with a secret in it.
    let other = h.workspace("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("secret"), "s3cret").unwrap();
    let outside = h.dir.path().join("outside.txt");
    let script = format!(
        "echo inside > inside.txt && cat inside.txt; \
         echo x > {outside} && echo WROTE_OUTSIDE; \
         cat {secret} && echo READ_OTHER; \
         exit 0",
        outside = outside.display(),
        secret = other.join("secret").display(),
    );
    let (outcome, logs) = h.run(&shell, task("confined", &script)).await;
    assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
    let text: Vec<&str> = logs.iter().map(|l| l.message.as_str()).collect();
    assert!(text.contains(&"inside"), "{text:?}");
    assert!(!text.contains(&"WROTE_OUTSIDE"), "{text:?}");
    assert!(!text.contains(&"READ_OTHER"), "{text:?}");
    assert!(!text.iter().any(|l| l.contains("s3cret")), "{text:?}");
    assert!(!outside.exists());
    assert!(h.workspace("confined").join("inside.txt").exists());
}

#[tokio::test]
async fn shell_has_no_network_unless_granted() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!(
        "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), timeout=2); print(\"CONNECTED\")'"
    );
    let h = Harness::new();
    let shell = h.load(builtin("shell")).await;
    let (outcome, logs) = h.run(&shell, task("offline", &script)).await;
    assert_eq!(outcome.status, NodeStatus::Failure, "{outcome:?} {logs:?}");
    assert!(!logs.iter().any(|l| l.message == "CONNECTED"));

    // The operator can grant the network to a driver.
    let granted = Harness::with_config(|c| {
        c.drivers.insert(
            "shell".into(),
            DriverPolicy {
                network: Some(true),
                ..DriverPolicy::default()
            },
        );
    });
    let shell = granted.load(builtin("shell")).await;
    let (outcome, logs) = granted.run(&shell, task("online", &script)).await;
    assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?} {logs:?}");
    assert!(logs.iter().any(|l| l.message == "CONNECTED"));
}

#[tokio::test]
async fn the_operator_can_narrow_the_exec_allowlist() {
    let h = Harness::with_config(|c| {
        c.drivers.insert(
            "shell".into(),
            DriverPolicy {
                exec: Some(vec!["bash".into()]),
                ..DriverPolicy::default()
            },
        );
    });
    let shell = h.load(builtin("shell")).await;
    let (outcome, _) = h.run(&shell, task("narrow", "true")).await;
    assert_eq!(outcome.status, NodeStatus::Failure, "{outcome:?}");
    assert!(
        outcome.message.contains("not on the allowlist"),
        "{}",
        outcome.message
    );
}

#[tokio::test]
async fn a_trapping_driver_fails_its_node_with_the_panic_message() {
    let h = Harness::new();
    let trap = h.load(test_driver("trap")).await;
    let (outcome, _) = h.run(&trap, task("trap", "")).await;
    assert_eq!(outcome.status, NodeStatus::Failure, "{outcome:?}");
    assert!(
        outcome.message.starts_with("driver panicked"),
        "{}",
        outcome.message
    );
    host_still_works(&h).await;
}

#[tokio::test]
async fn a_looping_driver_times_out_and_the_host_carries_on() {
    let h = Harness::new();
    let spin = h.load(test_driver("spin")).await;
    let started = Instant::now();
    let (outcome, _) = h
        .run(
            &spin,
            with_timeout(task("spin", ""), Duration::from_millis(300)),
        )
        .await;
    assert_eq!(outcome.status, NodeStatus::Timeout, "{outcome:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    host_still_works(&h).await;
}

#[tokio::test]
async fn a_looping_driver_can_be_canceled() {
    let h = Harness::new();
    let spin = h.load(test_driver("spin")).await;
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.cancel();
    });
    let (outcome, _) = h.run_with(&spin, task("spin", ""), cancel).await;
    assert_eq!(outcome.status, NodeStatus::Canceled, "{outcome:?}");
}

#[tokio::test]
async fn a_looping_driver_runs_out_of_fuel_when_fuel_is_set() {
    let h = Harness::with_config(|c| c.limits.fuel = Some(50_000_000));
    let spin = h.load(test_driver("spin")).await;
    let (outcome, _) = h
        .run(
            &spin,
            with_timeout(task("spin", ""), Duration::from_secs(60)),
        )
        .await;
    assert_eq!(outcome.status, NodeStatus::Failure, "{outcome:?}");
    assert!(outcome.message.contains("fuel"), "{}", outcome.message);
}

#[tokio::test]
async fn an_allocating_driver_hits_its_memory_limit() {
    let h = Harness::with_config(|c| c.limits.memory_mib = 64);
    let hog = h.load(test_driver("hog")).await;
    let (outcome, _) = h
        .run(&hog, with_timeout(task("hog", ""), Duration::from_secs(60)))
        .await;
    assert_eq!(outcome.status, NodeStatus::Failure, "{outcome:?}");
    assert!(
        outcome.message.contains("memory limit of 64 MiB"),
        "{}",
        outcome.message
    );
    host_still_works(&h).await;
}

#[tokio::test]
async fn a_driver_cannot_start_programs_off_its_allowlist() {
    let h = Harness::new();
    let driver = h.load(test_driver("forbidden-exec")).await;
    for program in ["/usr/bin/id", "curl", "python3"] {
        let (outcome, _) = h.run(&driver, task("forbidden", program)).await;
        assert_eq!(
            outcome.status,
            NodeStatus::Failure,
            "{program}: {outcome:?}"
        );
        assert!(
            outcome.message.contains("not on the allowlist"),
            "{}",
            outcome.message
        );
        assert!(!outcome.outputs.contains_key("ran"));
    }
}

#[tokio::test]
async fn a_driver_cannot_reach_outside_its_workspace() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let h = Harness::new();
    let driver = h.load(test_driver("escape")).await;
    let mut t = task("escape", "");
    t.args = vec![addr];
    t.env = vec![("GRANTED".into(), "1".into())];
    let (outcome, _) = h.run(&driver, t).await;
    assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
    let out = |k: &str| outcome.outputs.get(k).cloned().unwrap_or_default();
    for key in [
        "etc_passwd",
        "parent_hostname",
        "parent_dir",
        "tmp_write",
        "tcp",
        "home",
    ] {
        assert!(out(key).starts_with("denied"), "{key} = {}", out(key));
    }
    // The environment is exactly what the node was granted.
    assert_eq!(out("env"), "GRANTED");
    assert_eq!(out("inside"), "ok");
    assert!(h.workspace("escape").join("inside.txt").exists());
    assert!(!Path::new("/tmp/drover-escape-escape").exists());
}

// ---------------------------------------------------------------------------
// read-stdout and read-line (the `line-reader` test driver)
// ---------------------------------------------------------------------------

fn line_reader_task(node: &str, mode: &str, script: &str, timeout_ms: Option<u64>) -> Task {
    let mut t = with_timeout(task(node, mode), Duration::from_secs(30));
    t.args = vec![script.into()];
    t.args.extend(timeout_ms.map(|ms| ms.to_string()));
    t
}

fn output<'a>(outcome: &'a Outcome, key: &str) -> &'a str {
    outcome
        .outputs
        .get(key)
        .unwrap_or_else(|| panic!("no output `{key}` in {outcome:?}"))
}

#[tokio::test]
async fn read_line_hands_over_lines_while_the_process_runs() {
    let h = Harness::new();
    let reader = h.load(test_driver("line-reader")).await;
    // The script only goes on once the driver has seen `ping` (it creates
    // `ack`): lines handed over only at exit would deadlock it.
    let script = "echo one; echo ping; i=0; \
                  while [ ! -e ack ]; do sleep 0.02; i=$((i+1)); [ $i -gt 1000 ] && exit 9; done; \
                  echo two";
    let (outcome, logs) = h
        .run(&reader, line_reader_task("live", "lines", script, None))
        .await;
    assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
    assert_eq!(output(&outcome, "lines"), "one|ping|two");
    assert_eq!(output(&outcome, "code"), "0");
    // At the end of output, and after it, read-line gives `none`.
    assert_eq!(output(&outcome, "after_end"), "Ok(None)");
    assert_eq!(output(&outcome, "timed_out"), "false");
    // Lines the driver read still go to the log.
    let stdout: Vec<&str> = logs
        .iter()
        .filter(|l| l.source == LogSource::Stdout)
        .map(|l| l.message.as_str())
        .collect();
    assert_eq!(stdout, ["one", "ping", "two"], "{logs:?}");
}

#[tokio::test]
async fn read_line_without_read_stdout_is_invalid() {
    let h = Harness::new();
    let reader = h.load(test_driver("line-reader")).await;
    let (outcome, _) = h
        .run(&reader, line_reader_task("plain", "plain", "echo x", None))
        .await;
    assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
    assert_eq!(output(&outcome, "error"), "invalid");
    assert_eq!(output(&outcome, "code"), "0");
}

#[tokio::test]
async fn read_line_stops_at_the_process_timeout() {
    let h = Harness::new();
    let reader = h.load(test_driver("line-reader")).await;
    let marker = format!("{}.{}", 800 + std::process::id() % 100, std::process::id());
    let script = format!("echo one; sleep {marker}");
    let started = Instant::now();
    let (outcome, _) = h
        .run(
            &reader,
            line_reader_task("slow", "lines", &script, Some(300)),
        )
        .await;
    assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
    assert_eq!(output(&outcome, "lines"), "one");
    // `wait` after the timed-out read says so.
    assert_eq!(output(&outcome, "timed_out"), "true");
    assert!(started.elapsed() < Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(5);
    while processes_with_arg(&marker) > 0 {
        assert!(
            Instant::now() < deadline,
            "the process survived its timeout"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn canceling_a_node_stops_a_read_line() {
    let h = Harness::new();
    let reader = h.load(test_driver("line-reader")).await;
    let marker = format!("{}.{}", 900 + std::process::id() % 100, std::process::id());
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let script = format!("echo one; sleep {marker}");
    let (outcome, _) = h
        .run_with(
            &reader,
            line_reader_task("c", "lines", &script, None),
            cancel,
        )
        .await;
    assert_eq!(outcome.status, NodeStatus::Canceled, "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(5);
    while processes_with_arg(&marker) > 0 {
        assert!(Instant::now() < deadline, "the process survived cancel");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn unread_lines_make_the_process_wait_instead_of_filling_memory() {
    let h = Harness::new();
    let reader = h.load(test_driver("line-reader")).await;
    // 10,000 lines of about 100 bytes, each counted in `progress` before it
    // is written. The driver reads one line, waits until `progress` stops
    // changing (the process is blocked), then waits for the process.
    let pad = "x".repeat(90);
    let script = format!(
        "i=0; while [ $i -lt 10000 ]; do i=$((i+1)); echo $i > progress; echo \"$i {pad}\"; done"
    );
    let mut t = line_reader_task("flood", "flood", &script, None);
    t.deadline = Some(SystemTime::now() + Duration::from_secs(120));
    let (outcome, logs) = h.run(&reader, t).await;
    assert_eq!(outcome.status, NodeStatus::Success, "{outcome:?}");
    // While nobody read, the process stopped where the pipe, the host's
    // reader buffer and the 256 lines waiting for the driver were full.
    let progress: usize = output(&outcome, "progress").parse().unwrap();
    assert!(
        progress < 4000,
        "the process wrote {progress} lines while the driver read one"
    );
    assert_eq!(output(&outcome, "lines"), format!("1 {pad}"));
    // `wait` after a partial read lets it finish; every line reached the log.
    assert_eq!(output(&outcome, "code"), "0");
    let stdout = logs
        .iter()
        .filter(|l| l.source == LogSource::Stdout)
        .count();
    assert_eq!(stdout, 10000);
}
