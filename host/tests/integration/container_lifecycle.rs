//! The edges of a container's life, end to end against the private dockerd
//! (`tests/docker.sh`) and its busybox image: a command outliving its own
//! timeout, leftovers of a dead drover removed when `drover serve` starts
//! (also after a real crash), and a node narrowing its driver's container
//! grants. Each test names its nodes uniquely and checks at the end that no
//! container labeled with them is left.

use crate::support;
use std::time::{Duration, Instant};

use serde_json::Value;

use support::docker::{self, IMAGE};
use support::server::{self, Server};
use support::{Drover, node, stderr};

/// A drover whose config points at the private engine, plus `extra` TOML.
fn drover_with(extra: &str) -> Drover {
    let drover = Drover::new();
    drover.configure(&docker::config(extra));
    drover
}

/// Containers (running or not) of node `name`.
fn containers_of(name: &str) -> Vec<String> {
    docker::containers_labeled(&format!("drover.node={name}"))
}

/// Asserts that no container of node `name` is left on the engine.
fn assert_no_container(name: &str) {
    let left = containers_of(name);
    assert!(
        left.is_empty(),
        "containers of `{name}` left behind: {left:?}"
    );
}

/// Removes the containers a test made itself, by id.
fn remove(ids: &[String]) {
    for id in ids {
        docker::docker(&["rm", "-f", id]);
    }
}

/// The test driver that misuses containers (tests/drivers/container).
fn probe_driver() -> String {
    let path = support::test_drivers::folder().join("test_driver_container.wasm");
    assert!(
        path.exists(),
        "{} is missing after building the test drivers",
        path.display()
    );
    path.display().to_string()
}

fn running(id: &str) -> String {
    let out = docker::docker(&["inspect", "-f", "{{.State.Running}}", id]);
    assert!(out.status.success(), "docker inspect: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_command_outliving_its_timeout_is_timed_out_its_container_killed_then_removed() {
    let drover = drover_with("[drivers.container-probe]\nimages = [\"drover-test/*\"]\n");
    let name = "exec-timeout";
    // A 1.5 s timeout on `sleep 1000`; the driver then holds the killed
    // container for 3 s before trying another command in it.
    let file = drover.write(
        "dag.yaml",
        &format!(
            "name: t\nnodes:\n  {name}:\n    driver: {:?}\n    artifact: timeout\n    args: [{IMAGE:?}, \"1500\", \"3000\"]\n",
            probe_driver()
        ),
    );
    let began = Instant::now();
    let mut child = drover.spawn(&["run", &file, "--output", "json"]);
    child.wait_for_log(&format!("[{name}] driver: exec returned after"));
    // The exec came back, the node still runs: its container is there but
    // killed, not left to sleep on.
    let ids = containers_of(name);
    assert_eq!(ids.len(), 1, "{}", child.seen);
    assert_eq!(
        running(&ids[0]),
        "false",
        "the timed-out container still runs"
    );

    let ended = child.finish();
    let seen = ended.log;
    let record: Value =
        serde_json::from_str(&ended.stdout).unwrap_or_else(|e| panic!("{e}: {seen}"));
    let n = node(&record, name);
    assert_eq!(n["state"], "success", "{n:#}\n{seen}");
    let outputs = &n["outputs"];
    assert_eq!(outputs["timed_out"], "true", "{n:#}");
    // The contract: no exit code for a command that timed out.
    assert_eq!(outputs["code"], "None", "{n:#}");
    let took: u64 = outputs["took_ms"].as_str().unwrap().parse().unwrap();
    assert!((1500..10_000).contains(&took), "exec took {took} ms");
    let again = outputs["again"].as_str().unwrap();
    assert!(
        again.contains("invalid request") && again.contains("was killed when a command timed out"),
        "{again}"
    );
    assert!(
        outputs["id"].as_str().unwrap().starts_with(&ids[0]),
        "{n:#} {ids:?}"
    );
    assert!(seen.contains(&format!("[{name}] begun")), "{seen}");
    assert!(!seen.contains(&format!("[{name}] never")), "{seen}");
    assert!(began.elapsed() < Duration::from_secs(60));
    assert_no_container(name);
}

#[tokio::test(flavor = "multi_thread")]
async fn drover_serve_removes_a_dead_drovers_containers_at_start_and_keeps_a_live_ones() {
    let dead = docker::create_labeled(&docker::dead_owner(), "serve-leftover-dead");
    // This test process stands for a drover that still runs.
    let live = docker::create_labeled(&docker::live_owner(), "serve-leftover-live");

    let drover = drover_with("[drivers.docker]\nimages = [\"drover-test/*\"]\n");
    let server = Server::start(&drover, &[]);
    // Leftovers go before drover serve listens.
    let dead_left = containers_of("serve-leftover-dead");
    let live_left = containers_of("serve-leftover-live");
    remove(&live_left);
    remove(&dead_left);
    assert!(
        dead_left.is_empty(),
        "the dead drover's container {dead} was not removed: {:?}",
        server.log.lock().unwrap()
    );
    assert_eq!(live_left, [live], "a live drover's container was removed");
    assert_no_container("serve-leftover-live");
}

#[tokio::test(flavor = "multi_thread")]
async fn after_drover_serve_crashes_with_a_container_running_the_next_start_removes_it() {
    let drover = drover_with("[drivers.docker]\nimages = [\"drover-test/*\"]\n");
    let name = "serve-crash";
    let dag = format!(
        "name: crash\nnodes:\n  {name}:\n    driver: docker\n    artifact: {IMAGE:?}\n    args: [\"echo started; sleep 1000\"]\n    on_interrupt: fail\n"
    );
    let mut first = Server::start(&drover, &[]);
    let id = server::submit(&first, &dag).await;
    let limit = Instant::now() + Duration::from_secs(60);
    let crashed = loop {
        let ids = containers_of(name);
        if !ids.is_empty() {
            break ids;
        }
        assert!(Instant::now() < limit, "{:?}", first.log.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // SIGKILL: drover gets no chance to remove anything.
    first.kill();
    assert_eq!(
        containers_of(name),
        crashed,
        "the container went with drover"
    );

    let second = Server::start(&drover, &[]);
    // Leftovers go before drover serve listens.
    let after = containers_of(name);
    remove(&after);
    assert!(
        after.is_empty(),
        "the crashed drover's container survived the restart: {after:?} {:?}",
        second.log.lock().unwrap()
    );
    // The attempt that was running is not run again (`on_interrupt:
    // fail`): the run ends, and no container comes back.
    let record = server::wait_end(&second, &id).await;
    assert_eq!(record["state"], "failure", "{record:#}");
    let n = node(&record, name);
    assert!(
        n["error"]
            .as_str()
            .unwrap_or_default()
            .contains("interrupted"),
        "{n:#}"
    );
    assert_no_container(name);
}

#[tokio::test(flavor = "multi_thread")]
async fn drover_serve_stopped_with_a_node_in_a_container_removes_it_as_it_stops() {
    let drover = drover_with("[drivers.docker]\nimages = [\"drover-test/*\"]\n");
    let name = "serve-stop";
    let dag = format!(
        "name: stop\nnodes:\n  {name}:\n    driver: docker\n    artifact: {IMAGE:?}\n    args: [\"echo started; sleep 1000\"]\n"
    );
    let mut server = Server::start(&drover, &[]);
    let id = server::submit(&server, &dag).await;
    let limit = Instant::now() + Duration::from_secs(60);
    while containers_of(name).is_empty() {
        assert!(Instant::now() < limit, "{:?}", server.log.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = server.terminate();
    let log = server.log.lock().unwrap().join("\n");
    assert!(status.success(), "drover serve: {status}\n{log}");
    assert!(log.contains("will carry on"), "{log}");
    // Gone as drover stopped, not left running until it starts again.
    let left = containers_of(name);
    remove(&left);
    assert!(
        left.is_empty(),
        "left running after drover serve stopped: {log}"
    );
    // Started again, the run ends (its attempt was cut short) and no
    // container comes back.
    let again = Server::start(&drover, &[]);
    let record = server::wait_end(&again, &id).await;
    assert_eq!(record["state"], "failure", "{record:#}");
    assert_no_container(name);
}

/// A DAG of docker nodes: (name, extra YAML lines of the node).
fn docker_dag(nodes: &[(&str, &str, &str)]) -> String {
    let mut dag = String::from("name: grants\nnodes:\n");
    for (name, script, extra) in nodes {
        dag.push_str(&format!(
            "  {name}:\n    driver: docker\n    artifact: {IMAGE:?}\n    args: [{script:?}]\n{extra}"
        ));
    }
    dag
}

#[test]
fn a_node_can_take_containers_away_from_its_driver() {
    let drover = drover_with("[drivers.docker]\nimages = [\"drover-test/*\"]\n");
    let file = drover.write(
        "dag.yaml",
        &docker_dag(&[
            ("grant-kept", "echo kept", ""),
            (
                "grant-taken",
                "echo taken",
                "    grants: {container: false}\n",
            ),
            (
                "grant-no-op",
                "echo no-op",
                "    grants: {container: true}\n",
            ),
        ]),
    );
    let out = drover.run(&["run", &file, "--output", "json"]);
    let logs = stderr(&out);
    let record: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {logs}"));
    assert_eq!(out.status.code(), Some(1), "{record:#}\n{logs}");
    assert_eq!(node(&record, "grant-kept")["state"], "success", "{logs}");
    assert_eq!(node(&record, "grant-no-op")["state"], "success", "{logs}");
    let taken = node(&record, "grant-taken");
    assert_eq!(taken["state"], "failure", "{taken:#}");
    let error = taken["error"].as_str().unwrap();
    assert!(
        error.contains("not allowed")
            && error.contains(
                "node `grant-taken` takes containers away from driver `docker` (`grants: {container: false}`)"
            ),
        "{error}"
    );
    assert!(logs.contains("[grant-kept] kept"), "{logs}");
    assert!(!logs.contains("[grant-taken] taken"), "{logs}");
    for name in ["grant-kept", "grant-taken", "grant-no-op"] {
        assert_no_container(name);
    }
}

#[test]
fn a_node_cannot_give_containers_to_a_driver_that_may_not_run_them() {
    // Denied by policy, and never declared (shell).
    let drover = drover_with("[drivers.docker]\ncontainer = false\nimages = [\"drover-test/*\"]\n");
    let mut dag = docker_dag(&[("widen-docker", "echo hi", "    grants: {container: true}\n")]);
    dag.push_str("  widen-shell:\n    driver: shell\n    artifact: 'echo hi'\n    grants: {container: true}\n");
    let file = drover.write("dag.yaml", &dag);
    let out = drover.run(&["run", &file]);
    let logs = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{logs}");
    assert!(
        logs.contains("node `widen-docker`, field `grants.container`")
            && logs.contains("the config sets `container = false` under [drivers.docker]")
            && logs.contains("a node can only take grants away"),
        "{logs}"
    );
    assert!(
        logs.contains("node `widen-shell`, field `grants.container`")
            && logs.contains("driver `shell` did not declare `capabilities.container`"),
        "{logs}"
    );
    assert!(!logs.contains("[widen-"), "a node ran: {logs}");
    assert_no_container("widen-docker");
}

#[test]
fn a_node_taking_the_network_away_gets_a_container_without_one() {
    // The driver is granted the network, on the host's own network stack, so
    // that a container with it sees more than `lo`; nothing is sent.
    let drover = drover_with(
        "network_mode = \"host\"\n[drivers.docker]\nnetwork = true\nimages = [\"drover-test/*\"]\n",
    );
    let script = r"sed -n 's/^ *\([a-z0-9]*\):.*/if=\1/p' /proc/net/dev";
    let file = drover.write(
        "dag.yaml",
        &docker_dag(&[
            ("net-granted", script, ""),
            ("net-taken", script, "    grants: {network: false}\n"),
        ]),
    );
    // With `--output json` the log is on stderr.
    let out = drover.run(&["run", &file, "--output", "json"]);
    let logs = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    let interfaces = |name: &str| -> Vec<String> {
        logs.lines()
            .filter_map(|l| l.strip_prefix(&format!("[{name}] if=")))
            .map(str::to_owned)
            .collect()
    };
    let granted = interfaces("net-granted");
    assert!(
        granted.contains(&"lo".to_string()) && granted.len() > 1,
        "the granted node's container has no network beside lo: {logs}"
    );
    assert_eq!(interfaces("net-taken"), ["lo"], "{logs}");
    assert_no_container("net-granted");
    assert_no_container("net-taken");
}
