//! Hostile nodes against the process sandbox: what a node tries in order to reach the host,
//! and each time the refusal. The suite runs as root and, in CI, again as an unprivileged user
//! (`tests/run.sh`), since the sandbox confines nodes differently in each case.

use crate::support;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover::sandbox::{Confinement, Policy, Sandbox, SandboxConfig};

use support::sandbox::{request, run, sh};

const PYTHON: &str = "/usr/bin/python3";

fn root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn sandbox_with(config: SandboxConfig) -> Sandbox {
    Sandbox::new(config).expect("the sandbox must work as root and as a normal user")
}

fn confine(sandbox: &Sandbox, workspace: &Path) -> Arc<Confinement> {
    sandbox
        .confine(&Policy {
            workspace: workspace.to_owned(),
            read_only_files: vec![],
            network: false,
            unix_sockets: false,
            limits: None,
        })
        .expect("confine")
}

/// A folder for a workspace that a node uid can reach (`/tmp` is searchable by all).
fn workspace() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Python that connects to the Unix socket at argv[1] and prints what happened.
const CONNECT: &str = "import socket, sys\n\
try:\n    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print('CONNECTED')\n\
except OSError as e:\n    print('REFUSED', e)\n";

#[tokio::test]
async fn unix_sockets_outside_the_workspace_refuse() {
    let sandbox = sandbox_with(SandboxConfig::default());
    // One socket owned by drover's user with mode 0600, one 0666 in /tmp, one in /run (as
    // root) or the runtime folder (as a normal user): each answers the host, none a node.
    let private_dir = if root() {
        PathBuf::from(format!("/run/drover-hostile-{}", std::process::id()))
    } else {
        std::env::temp_dir().join(format!("drover-hostile-run-{}", std::process::id()))
    };
    std::fs::create_dir_all(&private_dir).unwrap();
    let private = private_dir.join("private.sock");
    let _private = UnixListener::bind(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    let open_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let open = open_dir.path().join("open.sock");
    let _open = UnixListener::bind(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o666)).unwrap();
    // The host itself reaches both.
    std::os::unix::net::UnixStream::connect(&private).unwrap();
    std::os::unix::net::UnixStream::connect(&open).unwrap();

    let ws = workspace();
    let conf = confine(&sandbox, ws.path());
    for socket in [&private, &open] {
        let socket = socket.to_str().unwrap();
        let req = request(ws.path(), PYTHON, &["-c", CONNECT, socket]);
        let (status, out, err) = run(&conf, &req).await;
        assert!(status.success(), "python failed: {err}");
        assert!(
            out.starts_with("REFUSED") && out.contains("Permission denied"),
            "a node reached {socket}: {out}{err}"
        );
    }
    // socketpair stays: shells and runtimes use it for pipes.
    let req = request(
        ws.path(),
        PYTHON,
        &[
            "-c",
            "import socket; a, b = socket.socketpair(); a.send(b'ok'); print(b.recv(2).decode())",
        ],
    );
    let (status, out, err) = run(&conf, &req).await;
    assert!(status.success() && out.trim() == "ok", "{out}{err}");
    let _ = std::fs::remove_dir_all(&private_dir);
}

#[tokio::test]
async fn etc_shadow_and_the_rest_of_etc_are_out_of_reach() {
    let sandbox = sandbox_with(SandboxConfig::default());
    let ws = workspace();
    let conf = confine(&sandbox, ws.path());
    let (status, out, err) = run(
        &conf,
        &sh(
            ws.path(),
            "cat /etc/shadow; echo \"shadow=$?\"; ls /etc/ssh >/dev/null 2>&1; echo \"etc=$?\"; \
             cat /etc/passwd >/dev/null; echo \"passwd=$?\"",
        ),
    )
    .await;
    assert!(status.success(), "{err}");
    assert!(out.contains("shadow=1"), "{out}{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(out.contains("etc=2"), "{out}{err}");
    // What libc needs is still there.
    assert!(out.contains("passwd=0"), "{out}{err}");
}

#[tokio::test]
async fn processes_run_under_an_identity_of_the_node_own() {
    let sandbox = sandbox_with(SandboxConfig::default());
    let ws = workspace();
    let conf = confine(&sandbox, ws.path());
    let (status, out, err) = run(&conf, &sh(ws.path(), "id -u; id -G; touch made")).await;
    assert!(status.success(), "{err}");
    let mut lines = out.lines();
    let uid: u32 = lines.next().unwrap().parse().unwrap();
    let groups = lines.next().unwrap();
    // SAFETY: geteuid cannot fail.
    let drover = unsafe { libc::geteuid() };
    if root() {
        assert_ne!(uid, 0, "a node ran as root");
        assert_eq!(Some(uid), conf.identity().uid());
        assert_eq!(groups, uid.to_string(), "supplementary groups leaked");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(ws.path().join("made")).unwrap().uid(),
            uid
        );
        assert_eq!(
            std::fs::metadata(ws.path()).unwrap().mode() & 0o777,
            0o700,
            "other nodes could look into the workspace"
        );
    } else {
        assert!(sandbox.per_node_namespace());
        assert_eq!(uid, drover);
    }
}

/// A sandbox whose node uids no other test uses: processes killed at a node's end count
/// against its uid's process limit until pid 1 reaps them, which may take a while.
fn sandbox_of_its_own(first_uid: u32) -> Sandbox {
    sandbox_with(SandboxConfig {
        node_uids: drover::sandbox::UidRange {
            first: first_uid,
            count: 8,
        },
        ..SandboxConfig::default()
    })
}

#[tokio::test]
async fn a_node_cannot_start_more_processes_than_its_limit() {
    let sandbox = sandbox_of_its_own(2_100_000);
    let ws = workspace();
    let conf = confine(&sandbox, ws.path());
    // 400 processes at once; the default limit is 256.
    let (status, out, err) = run(
        &conf,
        &sh(
            ws.path(),
            "n=0; for i in $(seq 400); do sleep 30 >/dev/null 2>&1 & n=$((n+1)); done; \
             echo started=$n",
        ),
    )
    .await;
    assert!(status.success() || status.code.is_some(), "{err}");
    assert!(
        err.contains("Resource temporarily unavailable") || err.contains("Cannot fork"),
        "400 processes started: {out}{err}"
    );
    conf.kill_all();

    // A real fork bomb, bounded by the limit, and cleaned up when the node ends.
    let ws2 = workspace();
    let bomb = confine(&sandbox_of_its_own(2_100_200), ws2.path());
    let mut child = bomb
        .spawn(&sh(ws2.path(), "b() { b | b & }; b; sleep 1"))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(child.take_stdout());
    drop(child.take_stderr());
    drop(child);
    drop(bomb);
    // The host carries on: another node starts a process at once.
    let ws3 = workspace();
    let after = confine(&sandbox_of_its_own(2_100_100), ws3.path());
    let began = Instant::now();
    let (status, out, _) = run(&after, &sh(ws3.path(), "echo fine")).await;
    assert!(status.success() && out.trim() == "fine");
    assert!(began.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn memory_over_the_node_limit_kills_and_says_so() {
    if !root() {
        // As a normal user drover has no memory cgroup of its own to give nodes (the docs
        // say so): the process count still applies.
        eprintln!("memory limit: needs root (a memory cgroup), not checked as a normal user");
        return;
    }
    let sandbox = sandbox_with(SandboxConfig::default());
    let ws = workspace();
    let conf = confine(&sandbox, ws.path());
    // 3 GiB, touched, against the default 2 GiB.
    let req = request(
        ws.path(),
        PYTHON,
        &["-c", "x = b'x' * (3 << 30); print('SURVIVED')"],
    );
    let (status, out, err) = run(&conf, &req).await;
    assert!(!out.contains("SURVIVED"), "3 GiB went through: {err}");
    assert_eq!(status.signal, Some(libc::SIGKILL), "{status:?} {err}");
    assert_eq!(
        conf.identity().memory_limit_reached(),
        Some(drover::sandbox::DEFAULT_NODE_MEMORY_BYTES)
    );
    // A node under its limit is fine, in the same cgroup afterwards.
    drop(conf);
    let ok = confine(&sandbox, ws.path());
    let small = request(
        ws.path(),
        PYTHON,
        &["-c", "x = b'x' * (64 << 20); print('SURVIVED')"],
    );
    let (status, out, err) = run(&ok, &small).await;
    assert!(status.success() && out.contains("SURVIVED"), "{err}");
    assert_eq!(ok.identity().memory_limit_reached(), None);
}

#[tokio::test]
async fn nothing_a_node_started_outlives_it_setsid_or_not() {
    let sandbox = sandbox_with(SandboxConfig::default());
    let ws = workspace();
    let conf = confine(&sandbox, ws.path());
    // A daemon that leaves the process group and the session, then writes late.
    let (status, out, err) = run(
        &conf,
        &sh(
            ws.path(),
            "setsid sh -c 'echo $$ > daemon.pid; sleep 0.5; echo PWNED > late' \
             </dev/null >/dev/null 2>&1 & sleep 0.2; cat daemon.pid",
        ),
    )
    .await;
    assert!(status.success(), "{err}");
    let pid: i32 = out.trim().parse().expect("the daemon's pid");
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the daemon should still run"
    );
    drop(conf);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !ws.path().join("late").exists(),
        "a process outlived its node and wrote into its workspace"
    );
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty()
            || stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
        "the daemon survived its node: {stat}"
    );
}

/// As root, drover is the subreaper of its node processes: what a node left is killed and
/// reaped when the node ends, so the next node on the same uid has its whole process count. (A
/// killed orphan that pid 1 has not reaped yet is a zombie, and zombies count; where drover is
/// pid 1 in a container, nobody else would ever reap it.)
#[tokio::test]
async fn killed_orphans_do_not_count_against_the_next_node() {
    if !root() {
        eprintln!("orphans: drover is their subreaper as root only (the docs say so)");
        return;
    }
    let sandbox = sandbox_with(SandboxConfig {
        node_uids: drover::sandbox::UidRange {
            first: 2_100_300,
            count: 1,
        },
        ..SandboxConfig::default()
    });
    let ws = workspace();
    let policy = Policy {
        workspace: ws.path().to_owned(),
        read_only_files: vec![],
        network: false,
        unix_sockets: false,
        // In a memory cgroup, as nodes are by default: it tells that something was left.
        limits: Some(drover::sandbox::NodeLimits {
            memory_bytes: Some(512 << 20),
            processes: Some(16),
        }),
    };
    let first = sandbox.confine(&policy).expect("confine");
    let (status, _, err) = run(
        &first,
        &sh(
            ws.path(),
            "for i in $(seq 10); do setsid sleep 30 </dev/null >/dev/null 2>&1 & done; sleep 0.2",
        ),
    )
    .await;
    assert!(status.success(), "{err}");
    drop(first);
    // One uid in the range: the second node has the first one's.
    let second = sandbox.confine(&policy).expect("confine");
    let (status, out, err) = run(&second, &sh(ws.path(), &start_processes(12))).await;
    assert!(
        status.success() && out.contains("started 12"),
        "the first node's processes still counted: {out}{err}"
    );
}

/// `drover run`: a node's setsid'd process that would write into the folder the next node
/// gets (workspaces are recycled) is gone before that folder is handed on.
#[test]
fn a_survivor_cannot_forge_the_next_nodes_output() {
    let drover = support::Drover::new();
    let dag = drover.write(
        "forge.yaml",
        "name: forge\nnodes:\n  a:\n    driver: shell\n    artifact: |\n      \
         setsid sh -c 'sleep 0.3; echo \"echo PWNED-by-node-a\" > next.sh' </dev/null >/dev/null 2>&1 &\n      \
         echo started\n  b:\n    driver: shell\n    needs: [a]\n    artifact: |\n      \
         sleep 0.6; if [ -f next.sh ]; then sh next.sh; else echo clean; fi\n    outputs: []\n",
    );
    let out = drover.run(&["run", &dag]);
    let stdout = support::stdout(&out);
    let stderr = support::stderr(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains("PWNED") && !stderr.contains("PWNED"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("clean") || stderr.contains("clean"),
        "{stdout}\n{stderr}"
    );
}

/// `drover run`: a node over its memory limit fails saying so, and the run carries on.
#[test]
fn a_node_over_its_memory_limit_fails_saying_memory_limit() {
    if !root() {
        eprintln!("memory limit: needs root (a memory cgroup), not checked as a normal user");
        return;
    }
    let drover = support::Drover::new();
    drover.configure("[sandbox]\nmax_node_memory_mib = 128\n");
    let dag = drover.write(
        "hog.yaml",
        "name: hog\nnodes:\n  hog:\n    driver: shell\n    \
         artifact: python3 -c \"x = b'x' * (512 << 20)\"\n  \
         after:\n    driver: shell\n    artifact: echo still-here\n",
    );
    let (code, record) = drover.record(&["run", &dag]);
    assert_eq!(code, 1, "{record:#}");
    let hog = support::node(&record, "hog");
    let error = hog["attempts"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("memory limit") && error.contains("128 MiB"),
        "{record:#}"
    );
    assert_eq!(
        support::node(&record, "after")["state"],
        "success",
        "{record:#}"
    );
}

/// A shell command that starts `n` processes, then kills and reaps them all and says
/// `started n`; when a fork is refused it does the same and fails. It leaves nothing behind:
/// killed processes that pid 1 has not reaped yet would still count against the next node
/// that takes the same uid.
fn start_processes(n: u32) -> String {
    format!(
        "python3 -c \"\nimport os, signal, sys\nkids = []\ntry:\n    for _ in range({n}):\n        \
         pid = os.fork()\n        if pid == 0:\n            signal.pause()\n        kids.append(pid)\n\
         except OSError as e:\n    print('refused after', len(kids), e)\n\
         for pid in kids:\n    os.kill(pid, signal.SIGKILL)\n    os.waitpid(pid, 0)\n\
         print('started', len(kids))\nsys.exit(0 if len(kids) == {n} else 1)\n\""
    )
}

/// `drover run`: `[drivers.shell]` sets the process count of every shell node, a node lowers
/// its own limits further (memory too, as root), and a node asking for more than its driver may
/// have is refused before anything runs.
#[test]
fn drivers_and_nodes_set_limits_within_the_operators() {
    let drover = support::Drover::new();
    drover.configure("[drivers.shell]\nmax_node_processes = 64\n");
    let mut dag = String::new();
    dag.push_str("name: limits\nnodes:\n");
    for (name, grants, n) in [
        ("within", "null", 20),
        ("over-driver", "null", 100),
        ("over-node", "{\"processes\": 8}", 20),
    ] {
        let mut fields = serde_json::json!({"driver": "shell", "artifact": start_processes(n)});
        let grants: serde_json::Value = serde_json::from_str(grants).unwrap();
        if !grants.is_null() {
            fields["grants"] = grants;
        }
        // JSON is YAML: each node one flow mapping.
        dag.push_str(&format!("  {name}: {fields}\n"));
    }
    if root() {
        dag.push_str(
            "  over-memory:\n    driver: shell\n    grants: {memory_mib: 64}\n    \
             artifact: python3 -c \"x = b'x' * (256 << 20)\"\n",
        );
    }
    let dag = drover.write("limits.yaml", &dag);
    let (code, record) = drover.record(&["run", &dag]);
    assert_eq!(code, 1, "{record:#}");
    let state = |name| support::node(&record, name)["state"].clone();
    assert_eq!(state("within"), "success", "{record:#}");
    assert_eq!(state("over-driver"), "failure", "{record:#}");
    assert_eq!(state("over-node"), "failure", "{record:#}");
    if root() {
        let error = support::node(&record, "over-memory")["attempts"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            error.contains("memory limit") && error.contains("64 MiB"),
            "{record:#}"
        );
    }

    let greedy = drover.write(
        "greedy.yaml",
        "name: greedy\nnodes:\n  first:\n    driver: shell\n    artifact: echo RAN > ran\n  \
         greedy:\n    driver: shell\n    grants: {processes: 1000}\n    artifact: 'true'\n",
    );
    let out = drover.run(&["run", &greedy]);
    let stderr = support::stderr(&out);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("node `greedy`, field `grants.processes`")
            && stderr.contains(
                "1000 processes is more than driver `shell` may have (64 processes, \
                 `[drivers.shell] max_node_processes`)"
            ),
        "{stderr}"
    );
    assert!(!support::stdout(&out).contains("RAN"), "{stderr}");
}

/// Live (not zombie) processes whose uid is in `uids`.
fn live_processes_of(uids: std::ops::Range<u32>) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(meta) = entry.metadata() else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // The state follows the command name, which is in parentheses.
        let zombie = stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'));
        if uids.contains(&meta.uid()) && !zombie {
            found.push(pid);
        }
    }
    found
}

/// A crashed drover's node processes (here a `setsid` one and the node's own, of two nodes) are
/// killed when the next drover starts its sandbox, as root, under every uid, not only the one
/// its first node takes; the uids of a live drover's nodes are not touched (their locks are
/// held).
#[test]
fn what_a_crashed_drover_left_is_killed_at_the_next_start() {
    if !root() {
        eprintln!("crash leftovers: as a normal user they are not swept (see the sandbox's docs)");
        return;
    }
    const FIRST: u32 = 2_100_400;
    let uids = FIRST..FIRST + 8;
    let drover = support::Drover::new();
    drover.configure(&format!(
        "[sandbox]\nnode_uids = {{ first = {FIRST}, count = 8 }}\n"
    ));
    let dag = drover.write(
        "stays.yaml",
        "name: stays\nnodes:\n  a:\n    driver: shell\n    artifact: &stay |\n      \
         setsid sleep 300 </dev/null >/dev/null 2>&1 &\n      sleep 300\n  \
         b:\n    driver: shell\n    artifact: *stay\n",
    );
    let running = drover.spawn(&["run", &dag, "-j", "2"]);
    let began = Instant::now();
    while live_processes_of(uids.clone()).len() < 4 {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the node never started its processes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(running.id() as i32, libc::SIGKILL) };
    running.finish();
    assert!(
        !live_processes_of(uids.clone()).is_empty(),
        "the test needs leftovers: SIGKILL to drover left none"
    );

    let next = drover.write(
        "next.yaml",
        "name: next\nnodes:\n  b: {driver: shell, artifact: 'true'}\n",
    );
    let out = drover.run(&["run", &next]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let began = Instant::now();
    while !live_processes_of(uids.clone()).is_empty() {
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "left alive after the next start: {:?}",
            live_processes_of(uids.clone())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
