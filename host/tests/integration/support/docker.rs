//! The private Docker engine of the container tests, started (once, and
//! idempotently) by `tests/docker.sh`, and the `docker` CLI pointed at it.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The test image `tests/docker.sh` imports.
pub const IMAGE: &str = "drover-test/busybox:1";

/// The private engine's `unix://` address, starting it if needed. Fails the
/// test loudly, saying what to do, when it cannot be had.
pub fn host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/docker.sh");
        let start = Command::new("bash")
            .arg(&script)
            .arg("start")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            start.status.success(),
            "the private Docker engine did not start (run `bash tests/setup.sh` to install \
             docker.io and busybox-static, then `bash tests/docker.sh start`): {}",
            String::from_utf8_lossy(&start.stderr)
        );
        let env = Command::new("bash")
            .arg(&script)
            .arg("env")
            .output()
            .unwrap();
        String::from_utf8_lossy(&env.stdout)
            .trim()
            .strip_prefix("DOCKER_HOST=")
            .expect("tests/docker.sh env prints DOCKER_HOST=...")
            .to_string()
    })
}

/// Runs the `docker` CLI against the private engine.
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .arg("-H")
        .arg(host())
        .args(args)
        .output()
        .expect("the docker CLI (bash tests/setup.sh installs docker.io)")
}

/// Ids of the containers (running or not) with this label (`key=value`).
pub fn containers_labeled(label: &str) -> Vec<String> {
    let out = docker(&["ps", "-aq", "--filter", &format!("label={label}")]);
    assert!(
        out.status.success(),
        "docker ps: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The config lines that point drover at the private engine.
pub fn config(extra: &str) -> String {
    format!("\n[container]\ndocker_host = {:?}\n{extra}\n", host())
}

/// This machine's name, as drover's owner labels carry it.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

/// An owner label of a drover on this machine that is gone: a pid that
/// just ended.
pub fn dead_owner() -> String {
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    format!("{}/{pid}/12345", hostname())
}

/// The owner label of a drover that still runs: this test process (its start
/// time is field 22 of /proc/self/stat).
pub fn live_owner() -> String {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let start = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_string();
    format!("{}/{}/{start}", hostname(), std::process::id())
}

/// Creates (without starting) a container labeled as drover's, owned by
/// `owner`, for node `node`; returns its short id, as `docker ps -q` lists it.
pub fn create_labeled(owner: &str, node: &str) -> String {
    let out = docker(&[
        "create",
        "--network",
        "none",
        "--label",
        &format!("drover.owner={owner}"),
        "--label",
        &format!("drover.node={node}"),
        IMAGE,
        "sleep",
        "1000",
    ]);
    assert!(
        out.status.success(),
        "docker create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim()[..12].to_string()
}
