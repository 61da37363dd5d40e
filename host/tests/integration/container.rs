//! Containers end to end: the real `drover` binary and its built-in `docker`
//! driver against a private dockerd (`tests/docker.sh`) and a busybox image
//! imported into it. Each test names its nodes uniquely and checks at the
//! end that no container labeled with them is left.

use crate::support;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use support::docker::{self, IMAGE};
use support::{Drover, node, stderr};

/// A drover whose config points at the private engine, plus `extra` TOML.
fn drover_with(extra: &str) -> Drover {
    let drover = Drover::new();
    drover.configure(&docker::config(extra));
    drover
}

/// A drover allowed the test images.
fn drover() -> Drover {
    drover_with("[drivers.docker]\nimages = [\"drover-test/*\"]\n")
}

/// Asserts that no container of node `name` is left on the engine.
fn assert_no_container(name: &str) {
    let left = docker::containers_labeled(&format!("drover.node={name}"));
    assert!(
        left.is_empty(),
        "containers of `{name}` left behind: {left:?}"
    );
}

fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    condition()
}

/// A one-node DAG of the docker driver: `artifact`, then `args` (YAML).
fn dag(name: &str, artifact: &str, args: &[&str], extra: &str) -> String {
    let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "name: {name}\nnodes:\n  {name}:\n    driver: docker\n    artifact: {artifact:?}\n    args: [{}]\n{extra}",
        args.join(", ")
    )
}

fn json_output(n: &Value, key: &str) -> Value {
    let text = n["outputs"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no output `{key}` in {n:#}"));
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("output `{key}` is not JSON ({e}): {text}"))
}

#[test]
fn steps_run_in_order_in_one_container_and_their_files_stay_in_the_workspace() {
    let drover = drover();
    let name = "steps-write";
    let file = drover.write(
        "dag.yaml",
        &dag(
            name,
            IMAGE,
            &[
                "echo one > built.txt; pwd",
                "echo two >> built.txt; cat built.txt",
                "echo from-step-three >&2",
            ],
            "",
        ),
    );
    let out = drover.run(&["run", &file, "--keep-workspaces", "--output", "json"]);
    let logs = stderr(&out);
    let record: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {logs}"));
    assert_eq!(out.status.code(), Some(0), "{record:#}\n{logs}");
    let n = node(&record, name);
    assert_eq!(n["state"], "success", "{n:#}");
    assert_eq!(n["exit_code"], 0);
    // Output streamed to the node's log, stdout and stderr alike.
    for line in ["/workspace", "one", "two", "stderr: from-step-three"] {
        assert!(
            logs.contains(&format!("[{name}] {line}")),
            "no `{line}` in {logs}"
        );
    }
    let steps = json_output(n, "steps");
    let steps = steps.as_array().unwrap();
    assert_eq!(steps.len(), 3, "{steps:?}");
    for step in steps {
        assert_eq!(step["status"], "success");
        assert_eq!(step["exit_code"], 0);
        assert!(step["duration_ms"].is_u64());
    }
    // Written inside the container, visible on the host afterwards.
    let built = drover.files_in_runs("built.txt");
    assert_eq!(built.len(), 1, "{built:?}");
    assert_eq!(std::fs::read_to_string(&built[0]).unwrap(), "one\ntwo\n");
    assert_no_container(name);
}

#[test]
fn a_failing_step_fails_the_node_naming_it_and_later_steps_do_not_run() {
    let drover = drover();
    let name = "steps-fail";
    let file = drover.write(
        "dag.yaml",
        &dag(
            name,
            IMAGE,
            &["echo first", "echo broken; exit 3", "echo never-printed"],
            "",
        ),
    );
    let (code, record) = drover.record(&["run", &file]);
    assert_eq!(code, 1, "{record:#}");
    let n = node(&record, name);
    assert_eq!(n["state"], "failure");
    assert_eq!(n["exit_code"], 3);
    let error = n["error"].as_str().unwrap();
    assert!(
        error.contains("step 2")
            && error.contains("echo broken; exit 3")
            && error.contains("exit code 3"),
        "{error}"
    );
    // The engine keeps outputs of successful nodes only: the step report of
    // a failed one is in the outcome `drover driver run` prints.
    let out = drover.run(&[
        "driver",
        "run",
        "docker",
        "--name",
        name,
        "--artifact",
        IMAGE,
        "--arg",
        "echo first",
        "--arg",
        "echo broken; exit 3",
        "--arg",
        "echo never-printed",
        "--output",
        "json",
    ]);
    assert!(
        !stderr(&out).contains("never-printed\n"),
        "{}",
        stderr(&out)
    );
    let n: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    assert_eq!(n["status"], "failure", "{n:#}");
    assert_eq!(n["outputs"]["failed_step"], "2");
    let steps = json_output(&n, "steps");
    assert_eq!(steps[0]["status"], "success");
    assert_eq!(steps[1]["status"], "failure");
    assert_eq!(steps[1]["exit_code"], 3);
    assert_eq!(steps[2]["status"], "skipped");
    assert!(steps[2]["exit_code"].is_null());
    assert_no_container(name);
}

#[test]
fn a_build_file_runs_stage_by_stage_and_reports_each() {
    let drover = drover();
    let name = "stages";
    let build = format!(
        "image: {IMAGE}\nenv: {{GREETING: hello}}\nstages:\n  - name: build\n    script:\n      - echo $GREETING > out.txt\n      - echo built\n  - name: test\n    script:\n      - test -f out.txt\n      - echo checking; exit 7\n      - echo not-run\n  - name: deploy\n    script: [echo deployed]\n"
    );
    let file = drover.write("dag.yaml", &dag(name, &build, &[], ""));
    let out = drover.run(&["run", &file, "--output", "json"]);
    let logs = stderr(&out);
    let record: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {logs}"));
    let n = node(&record, name);
    assert_eq!(n["state"], "failure", "{n:#}\n{logs}");
    assert_eq!(n["exit_code"], 7);
    let error = n["error"].as_str().unwrap();
    assert!(
        error.contains("step 2 of stage `test`") && error.contains("exit code 7"),
        "{error}"
    );
    // The outputs of a failed node: from the outcome `drover driver run` prints.
    let out = drover.run(&[
        "driver",
        "run",
        "docker",
        "--name",
        name,
        "--artifact",
        &build,
        "--output",
        "json",
    ]);
    let n: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    assert_eq!(n["outputs"]["failed_stage"], "test", "{n:#}");
    let stages = json_output(&n, "stages");
    let names: Vec<&str> = stages
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["build", "test", "deploy"]);
    assert_eq!(stages[0]["status"], "success");
    assert_eq!(stages[1]["status"], "failure");
    assert_eq!(stages[1]["steps"][1]["exit_code"], 7);
    assert_eq!(stages[1]["steps"][2]["status"], "skipped");
    assert_eq!(stages[2]["status"], "skipped");
    // Stage markers in the log, and nothing from steps that did not run.
    assert!(
        logs.contains(&format!("[{name}] driver: ==> stage build")),
        "{logs}"
    );
    assert!(
        logs.contains(&format!("[{name}] driver: [test] $ test -f out.txt")),
        "{logs}"
    );
    assert!(logs.contains(&format!("[{name}] built")), "{logs}");
    assert!(!logs.contains("] not-run"), "{logs}");
    assert!(!logs.contains("] deployed"), "{logs}");
    assert_no_container(name);
}

#[test]
fn a_build_file_in_the_workspace_is_read_from_there() {
    let drover = drover();
    let workspace = drover.path("repo");
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::write(
        workspace.join(".drover.yml"),
        format!(
            "image: {IMAGE}\nstages:\n  - name: only\n    script: [\"echo in-repo > result.txt\"]\n"
        ),
    )
    .unwrap();
    let out = drover.run(&[
        "driver",
        "run",
        "docker",
        "--artifact",
        ".drover.yml",
        "--workspace",
        workspace.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let outcome: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    assert_eq!(outcome["status"], "success", "{outcome:#} {}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(workspace.join("result.txt")).unwrap(),
        "in-repo\n"
    );
}

#[test]
fn an_image_missing_from_the_engine_is_a_clear_error() {
    let drover = drover();
    let name = "no-such-image";
    let file = drover.write(
        "dag.yaml",
        &dag(name, "drover-test/absent:9", &["true"], ""),
    );
    let (code, record) = drover.record(&["run", &file]);
    assert_eq!(code, 1);
    let error = node(&record, name)["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("`drover-test/absent:9` is not on the Docker engine")
            && error.contains("no registry is reachable"),
        "{error}"
    );
    assert_no_container(name);
}

#[test]
fn an_image_off_the_allowlist_is_refused_saying_what_to_configure() {
    // No images configured at all: every image is refused.
    let drover = drover_with("");
    let name = "not-listed";
    let file = drover.write("dag.yaml", &dag(name, IMAGE, &["true"], ""));
    let (code, record) = drover.record(&["run", &file]);
    assert_eq!(code, 1);
    let error = node(&record, name)["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("not allowed")
            && error.contains(&format!(
                "image `{IMAGE}` is not on the allowlist of driver `docker`"
            ))
            && error.contains(&format!("images = [\"{IMAGE}\"]"))
            && error.contains("[drivers.docker]"),
        "{error}"
    );
    // A list that does not match is refused too.
    let drover = drover_with("[drivers.docker]\nimages = [\"debian:*\"]\n");
    let file = drover.write("dag.yaml", &dag(name, IMAGE, &["true"], ""));
    let (_, record) = drover.record(&["run", &file]);
    let error = node(&record, name)["error"].as_str().unwrap().to_string();
    assert!(error.contains("(allowed: debian:*)"), "{error}");
    assert_no_container(name);
}

#[test]
fn a_driver_denied_containers_by_policy_cannot_start_one() {
    let drover = drover_with("[drivers.docker]\ncontainer = false\nimages = [\"drover-test/*\"]\n");
    let name = "denied";
    let file = drover.write("dag.yaml", &dag(name, IMAGE, &["true"], ""));
    let (code, record) = drover.record(&["run", &file]);
    assert_eq!(code, 1);
    let error = node(&record, name)["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("driver `docker` may not run containers")
            && error.contains("container = false"),
        "{error}"
    );
    assert_no_container(name);
}

#[test]
fn containers_have_no_network_by_default() {
    let drover = drover();
    let name = "no-network";
    let file = drover.write(
        "dag.yaml",
        &dag(name, IMAGE, &["cat /proc/net/dev", "ip -o link"], ""),
    );
    let out = drover.run(&["run", &file, "--output", "json"]);
    let logs = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    // Interface names from /proc/net/dev (`  lo: 0 0 ...`) and from
    // `ip -o link` (`1: lo: <LOOPBACK,...>`).
    let mut interfaces = Vec::new();
    for line in logs
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("[{name}] ")))
    {
        if line.starts_with("driver: ") || line.starts_with("stderr: ") {
            continue;
        }
        let fields: Vec<&str> = line.split(':').map(str::trim).collect();
        match fields.as_slice() {
            [index, name, ..] if index.parse::<u32>().is_ok() => interfaces.push(name.to_string()),
            [name, _] if !name.is_empty() && !name.contains(' ') && !name.contains('|') => {
                interfaces.push(name.to_string())
            }
            _ => {}
        }
    }
    assert_eq!(interfaces, ["lo", "lo"], "{logs}");
    assert_no_container(name);
}

#[test]
fn a_step_that_hangs_is_killed_at_the_node_timeout_and_its_container_removed() {
    let drover = drover();
    let name = "hangs";
    let file = drover.write(
        "dag.yaml",
        &dag(
            name,
            IMAGE,
            &["echo waiting; sleep 1000"],
            "    timeout: 2s\n",
        ),
    );
    let began = Instant::now();
    let (code, record) = drover.record(&["run", &file]);
    assert_eq!(code, 1, "{record:#}");
    assert!(
        began.elapsed() < Duration::from_secs(30),
        "took {:?}",
        began.elapsed()
    );
    assert_eq!(node(&record, name)["state"], "timeout", "{record:#}");
    assert_no_container(name);
}

#[test]
fn ctrl_c_removes_the_running_container() {
    let drover = drover();
    let name = "canceled";
    let file = drover.write(
        "dag.yaml",
        &dag(name, IMAGE, &["echo started; sleep 1000"], ""),
    );
    let mut child = drover.spawn(&["run", &file, "--output", "json"]);
    child.wait_for_log(&format!("[{name}] started"));
    assert_eq!(
        docker::containers_labeled(&format!("drover.node={name}")).len(),
        1
    );
    child.interrupt();
    let ended = child.finish();
    let (out, rest) = (ended.stdout, ended.rest);
    assert_eq!(ended.code, Some(1), "{rest}");
    let record: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(node(&record, name)["state"], "canceled");
    assert_no_container(name);
}

#[test]
fn leftovers_of_a_dead_drover_are_removed_at_start_and_a_live_ones_kept() {
    let dead_owner = docker::dead_owner();
    docker::create_labeled(&dead_owner, "leftover-dead");
    // This test process stands for a drover that still runs.
    docker::create_labeled(&docker::live_owner(), "leftover-live");
    // A drover of the same (dead) pid on another machine: not ours to judge.
    let elsewhere = dead_owner.replacen(&docker::hostname(), "another-machine", 1);
    docker::create_labeled(&elsewhere, "leftover-elsewhere");

    let drover = drover();
    let file = drover.write("dag.yaml", "name: n\nnodes:\n  a:\n    driver: noop\n");
    let out = drover.run(&["run", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        eventually(Duration::from_secs(5), || docker::containers_labeled(
            "drover.node=leftover-dead"
        )
        .is_empty()),
        "the dead drover's container was not removed"
    );
    let live = docker::containers_labeled("drover.node=leftover-live");
    let elsewhere = docker::containers_labeled("drover.node=leftover-elsewhere");
    for id in live.iter().chain(&elsewhere) {
        docker::docker(&["rm", "-f", id]);
    }
    assert_eq!(live.len(), 1, "a live drover's container was removed");
    assert_eq!(
        elsewhere.len(),
        1,
        "another machine's container was removed"
    );
}

/// The test driver that misuses containers (tests/drivers/container).
fn probe_driver() -> String {
    support::test_drivers::folder()
        .join("test_driver_container.wasm")
        .display()
        .to_string()
}

fn probe_drover() -> Drover {
    drover_with("[drivers.container-probe]\nimages = [\"drover-test/*\"]\n")
}

#[test]
fn a_driver_that_traps_with_a_container_alive_leaves_none() {
    let drover = probe_drover();
    let name = "probe-trap";
    let file = drover.write(
        "dag.yaml",
        &format!(
            "name: t\nnodes:\n  {name}:\n    driver: {:?}\n    artifact: trap\n    args: [{IMAGE:?}]\n",
            probe_driver()
        ),
    );
    let out = drover.run(&["run", &file, "--output", "json"]);
    let logs = stderr(&out);
    let record: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {logs}"));
    let n = node(&record, name);
    assert_eq!(n["state"], "failure", "{n:#}");
    assert!(n["error"].as_str().unwrap().contains("panicked"), "{n:#}");
    assert!(logs.contains(&format!("[{name}] started")), "{logs}");
    assert_no_container(name);
}

#[test]
fn files_are_placed_read_only_outside_the_workspace_and_removed_afterwards() {
    let drover = probe_drover();
    let name = "probe-files";
    let file = drover.write(
        "dag.yaml",
        &format!(
            "name: t\nnodes:\n  {name}:\n    driver: {:?}\n    artifact: files\n    args: [{IMAGE:?}]\n    env: {{SECRET: hunter2-value}}\n",
            probe_driver()
        ),
    );
    let child = drover
        .command(&["run", &file, "--output", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let logs = stderr(&out);
    let record: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {logs}"));
    let n = node(&record, name);
    assert_eq!(n["state"], "success", "{n:#}\n{logs}");
    assert_eq!(n["outputs"]["read"], "true", "{n:#}");
    assert!(logs.contains(&format!("[{name}] hunter2-value")), "{logs}");
    assert_eq!(
        n["outputs"]["write"], "false",
        "the file was writable: {logs}"
    );
    assert_eq!(n["outputs"]["listed"], "true");
    assert!(
        !logs.contains("] token"),
        "the file is in the workspace: {logs}"
    );
    // The host folder that held the file is gone with the container.
    let root = std::env::temp_dir().join("drover-container-files");
    let left: Vec<_> = std::fs::read_dir(&root)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|f| f.starts_with(&format!("{pid}-")))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "files left in {}: {left:?}",
        root.display()
    );
    assert_no_container(name);
}

#[test]
fn an_unreachable_engine_is_named_in_the_error() {
    let drover = Drover::new();
    let socket = drover.path("no-dockerd.sock");
    drover.configure(&format!(
        "\n[container]\ndocker_host = \"unix://{}\"\n[drivers.docker]\nimages = [\"drover-test/*\"]\n",
        socket.display()
    ));
    let name = "no-engine";
    let dag_file = drover.write("dag.yaml", &dag(name, IMAGE, &["true"], ""));
    let (code, record) = drover.record(&["run", &dag_file]);
    assert_eq!(code, 1);
    let error = node(&record, name)["error"].as_str().unwrap().to_string();
    assert!(
        error.contains(&format!(
            "cannot reach the Docker engine at unix://{}",
            socket.display()
        )) && error.contains("docker_host"),
        "{error}"
    );
}

// ---- secrets from a real OpenBao ----

const SECRET: &str = "db-Pa55-wörd-93e1c7";
const KEY: &str = "deploy-key-5b20af";

/// The sha256 of `value` in hex: steps check a secret by it, so that no
/// DAG text holds the value.
fn digest(value: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(value.as_bytes()))
}

/// OpenBao with `secret/app` holding both test values.
async fn vault() -> support::openbao::OpenBao {
    let bao = support::openbao::OpenBao::start().await;
    bao.put_v2(
        "app",
        serde_json::json!({"password": SECRET, "deploy_key": KEY}),
    )
    .await;
    bao
}

/// A drover allowed the test images that reads secrets from `bao`.
fn drover_with_vault(bao: &support::openbao::OpenBao) -> Drover {
    drover_with(&format!(
        "[drivers.docker]\nimages = [\"drover-test/*\"]\n\n[vault]\naddress = {:?}\ntoken = {:?}\n",
        bao.address, bao.token
    ))
}

/// Every file under `dir` whose bytes hold `needle`.
fn files_holding(dir: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if std::fs::read(&path)
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        {
            found.push(path);
        }
    }
    found
}

#[tokio::test]
async fn secrets_reach_each_step_as_env_or_files_and_show_nowhere() {
    let bao = vault().await;
    let drover = drover_with_vault(&bao);
    let (env_node, file_node) = ("secret-env", "secret-files");
    let build = format!(
        "image: {IMAGE}\nsecret_files: {{DEPLOY_KEY: /run/secrets/deploy_key}}\nstages:\n  - name: use\n    script:\n      - test -z \"$DEPLOY_KEY\" && echo not-in-env\n      - test \"$(sha256sum < /run/secrets/deploy_key | cut -d' ' -f1)\" = {} && echo file-ok\n      - if echo x > /run/secrets/deploy_key; then echo writable; fi\n      - echo \"key=$(cat /run/secrets/deploy_key)\"\n      - test \"$(printf %s \"$DB_PASS\" | sha256sum | cut -d' ' -f1)\" = {} && echo env-ok-too\n",
        digest(KEY),
        digest(SECRET),
    );
    let file = drover.write(
        "dag.yaml",
        &format!(
            "name: secrets\nnodes:\n  {env_node}:\n    driver: docker\n    artifact: {IMAGE:?}\n    args: {args:?}\n    env: {{DB_PASS: not-the-secret}}\n    secrets: {{DB_PASS: \"vault:secret/data/app#password\"}}\n  {file_node}:\n    driver: docker\n    artifact: {build:?}\n    secrets: {{DB_PASS: \"vault:secret/data/app#password\", DEPLOY_KEY: \"vault:secret/data/app#deploy_key\"}}\n",
            args = [
                // Time to inspect the container from outside.
                "sleep 2".to_string(),
                format!(
                    "test \"$(printf %s \"$DB_PASS\" | sha256sum | cut -d' ' -f1)\" = {} && echo env-ok",
                    digest(SECRET)
                ),
                "echo \"the password is $DB_PASS\"".to_string(),
                "echo \"on stderr $DB_PASS\" >&2".to_string(),
                "echo \"seen=$DB_PASS\" >> \"$DROVER_OUTPUT\"".to_string(),
            ],
        ),
    );
    let child = drover
        .command(&["run", &file, "--output", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The container's own environment, which anyone with the engine can
    // read, does not hold the secret: only each step's does.
    let mut ids = Vec::new();
    let mut child = child;
    let appeared = eventually(Duration::from_secs(60), || {
        ids = docker::containers_labeled(&format!("drover.node={env_node}"));
        !ids.is_empty() || child.try_wait().is_ok_and(|s| s.is_some())
    });
    if !appeared || ids.is_empty() {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "no container of `{env_node}` appeared: {}\n{}",
            support::stdout(&out),
            stderr(&out)
        );
    }
    let inspect = docker::docker(&["inspect", "--format", "{{json .Config.Env}}", &ids[0]]);
    let env = String::from_utf8_lossy(&inspect.stdout);
    assert!(env.contains("DROVER_OUTPUT="), "{env} {inspect:?}");
    assert!(
        !env.contains(SECRET),
        "the container's env holds the secret: {env}"
    );

    let out = child.wait_with_output().unwrap();
    let (stdout, logs) = (support::stdout(&out), stderr(&out));
    let record: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {logs}"));
    assert_eq!(out.status.code(), Some(0), "{record:#}\n{logs}");
    let n = node(&record, env_node);
    assert_eq!(n["state"], "success", "{n:#}");
    assert!(
        logs.contains(&format!("[{env_node}] driver: container ")),
        "{logs}"
    );
    // The secret, not the node's `env` of the same name.
    assert!(logs.contains(&format!("[{env_node}] env-ok")), "{logs}");
    assert!(
        logs.contains(&format!("[{env_node}] the password is [redacted]")),
        "{logs}"
    );
    assert!(
        logs.contains(&format!("[{env_node}] stderr: on stderr [redacted]")),
        "{logs}"
    );
    assert_eq!(n["outputs"]["seen"], "[redacted]", "{n:#}");

    let n = node(&record, file_node);
    assert_eq!(n["state"], "success", "{n:#}\n{logs}");
    for line in ["not-in-env", "file-ok", "key=[redacted]", "env-ok-too"] {
        assert!(
            logs.contains(&format!("[{file_node}] {line}")),
            "no `{line}` in {logs}"
        );
    }
    assert!(
        !logs.contains("] writable"),
        "the secret file was writable: {logs}"
    );

    for value in [SECRET, KEY] {
        assert!(
            !stdout.contains(value) && !logs.contains(value),
            "`{value}` shows:\n{stdout}\n{logs}"
        );
        // Nor in anything the run leaves in the data folder.
        let holding = files_holding(&drover.data(), value);
        assert!(holding.is_empty(), "`{value}` is in {holding:?}");
    }
    assert_no_container(env_node);
    assert_no_container(file_node);

    // `drover driver run` hands `--secret` to the steps the same way.
    let name = "secret-driver-run";
    let out = drover.run(&[
        "driver",
        "run",
        "docker",
        "--name",
        name,
        "--secret",
        "DB_PASS=vault:secret/data/app#password",
        "--artifact",
        IMAGE,
        "--arg",
        "echo \"pass: $DB_PASS\"",
        "--output",
        "json",
    ]);
    let all = format!("{}{}", support::stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("pass: [redacted]"), "{all}");
    assert!(!all.contains(SECRET), "{all}");
    assert_no_container(name);
}

#[tokio::test]
async fn a_secret_not_in_vault_fails_the_node_before_any_container_starts() {
    let name = "secret-missing";
    let dag_text = dag(
        name,
        IMAGE,
        &["echo step-ran"],
        "    secrets: {DB_PASS: \"vault:secret/data/nothing#password\"}\n",
    );
    // Without [vault], refused at submit: the docker driver reads secrets,
    // so what is missing is the Vault.
    let drover = drover();
    let file = drover.write("dag.yaml", &dag_text);
    let out = drover.run(&["run", &file]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "node `{name}`, field `secrets`: no Vault is configured"
        )),
        "{text}"
    );

    let bao = vault().await;
    let drover = drover_with_vault(&bao);
    let file = drover.write("dag.yaml", &dag_text);
    let out = drover.run(&["run", &file, "--output", "json"]);
    let logs = stderr(&out);
    let record: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {logs}"));
    assert_eq!(out.status.code(), Some(1), "{record:#}\n{logs}");
    let n = node(&record, name);
    assert_eq!(n["state"], "failure", "{n:#}");
    let error = n["error"].as_str().unwrap();
    assert!(
        error.contains("secret `DB_PASS`")
            && error.contains("has no secret at `secret/data/nothing`"),
        "{error}"
    );
    // The driver never ran: no container, no step.
    assert!(!logs.contains("driver: container "), "{logs}");
    assert!(!logs.contains("step-ran"), "{logs}");
    assert_no_container(name);

    // A build file placing a secret the node does not list fails before
    // the container starts too, naming the field.
    let name = "secret-file-unlisted";
    let build = format!(
        "image: {IMAGE}\nsecret_files: {{DEPLOY_KEY: /run/secrets/key}}\nstages:\n  - name: s\n    script: [echo step-ran]\n"
    );
    let file = drover.write(
        "dag.yaml",
        &dag(
            name,
            &build,
            &[],
            "    secrets: {DB_PASS: \"vault:secret/data/app#password\"}\n",
        ),
    );
    let out = drover.run(&["run", &file, "--output", "json"]);
    let logs = stderr(&out);
    let record: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {logs}"));
    let n = node(&record, name);
    assert_eq!(n["state"], "failure", "{n:#}\n{logs}");
    let error = n["error"].as_str().unwrap();
    assert!(
        error.contains(
            "secret_files.DEPLOY_KEY: the node has no secret `DEPLOY_KEY` (it has: DB_PASS)"
        ),
        "{error}"
    );
    assert!(!logs.contains("driver: container "), "{logs}");
    assert!(!logs.contains("step-ran"), "{logs}");
    assert_no_container(name);
}

/// A step printing the container's pids and memory limits (cgroup v2, else v1).
const LIMITS: &str = "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max; \
     cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes";

/// The lines a node printed on its standard output, from drover's log.
fn printed(logs: &str, name: &str) -> Vec<String> {
    logs.lines()
        .filter_map(|l| l.strip_prefix(&format!("[{name}] ")))
        .filter(|l| !l.starts_with("driver: ") && !l.starts_with("stderr: "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn containers_keep_only_the_capabilities_a_build_needs_and_gain_no_privileges() {
    let drover = drover();
    let name = "locked-down";
    let file = drover.write(
        "dag.yaml",
        &dag(
            name,
            IMAGE,
            &[
                "grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status",
                LIMITS,
            ],
            "",
        ),
    );
    let out = drover.run(&["run", &file, "--output", "json"]);
    let logs = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    // CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID (bits 0-7
    // but 2) and NET_BIND_SERVICE (bit 10); Docker's default is 0xa80425fb.
    assert_eq!(
        printed(&logs, name),
        [
            "CapEff:\t00000000000004fb",
            "CapBnd:\t00000000000004fb",
            "NoNewPrivs:\t1",
            "1024",
            &(2048u64 * 1024 * 1024).to_string(),
        ],
        "{logs}"
    );
    assert_no_container(name);
}

#[test]
fn a_fork_bomb_stops_at_the_configured_pids_limit() {
    let drover = drover_with(
        // Right after the `[container]` table that `drover_with` opens.
        "max_pids = 40\nmax_memory_mib = 256\n[drivers.docker]\nimages = [\"drover-test/*\"]\n",
    );
    let name = "fork-bomb";
    let file = drover.write(
        "dag.yaml",
        &dag(
            name,
            IMAGE,
            &[
                LIMITS,
                // 100 processes at once, in a container allowed 40.
                "for i in $(seq 100); do sleep 30 >/dev/null 2>&1 & done; echo spawned-all",
            ],
            "",
        ),
    );
    let out = drover.run(&["run", &file, "--output", "json"]);
    let logs = stderr(&out);
    let record: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {logs}"));
    let lines = printed(&logs, name);
    assert_eq!(
        lines[..2],
        ["40", &(256u64 * 1024 * 1024).to_string()],
        "{logs}"
    );
    assert!(!lines.iter().any(|l| l == "spawned-all"), "{logs}");
    assert_eq!(node(&record, name)["state"], "failure", "{logs}");
    assert!(logs.contains("fork"), "{logs}");
    assert_no_container(name);
}
