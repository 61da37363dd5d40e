//! Integration tests of the process sandbox with real processes.

use crate::support;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use drover::sandbox::{
    Child, Confinement, ExitStatus, Policy, Rlimits, Sandbox, SandboxConfig, SandboxError,
    SpawnRequest, SpawnStep,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use support::sandbox::{request, run, sh};

const OPEN_FILES: u64 = 512;

/// Tests share one sandbox; the fd-leak test takes this lock exclusively so that no other
/// test opens or closes fds while it counts them.
static FD_LOCK: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        Sandbox::new(SandboxConfig {
            rlimits: Rlimits {
                open_files: Some(OPEN_FILES),
                ..Rlimits::default()
            },
            ..SandboxConfig::default()
        })
        .expect("sandbox")
    })
}

fn confine(workspace: &Path, read_only_files: Vec<PathBuf>, network: bool) -> Arc<Confinement> {
    sandbox()
        .confine(&Policy {
            workspace: workspace.to_owned(),
            read_only_files,
            network,
            unix_sockets: false,
            limits: None,
        })
        .expect("confine")
}

/// True once `pid` is gone or a zombie (reparented grandchildren may never be reaped when
/// pid 1 of the container does not reap).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn stdout_and_stderr_are_read_line_by_line() {
    let _g = FD_LOCK.read().await;
    let ws = tempfile::tempdir().unwrap();
    let conf = confine(ws.path(), vec![], false);
    let mut child = conf
        .spawn(&sh(
            ws.path(),
            "echo one; echo err-one >&2; echo two; echo err-two >&2; echo \"$PATH\"",
        ))
        .unwrap();
    let mut out = BufReader::new(child.take_stdout().unwrap()).lines();
    let mut err = BufReader::new(child.take_stderr().unwrap()).lines();
    assert_eq!(out.next_line().await.unwrap().as_deref(), Some("one"));
    assert_eq!(out.next_line().await.unwrap().as_deref(), Some("two"));
    // Only the environment we gave, nothing from the host.
    assert_eq!(
        out.next_line().await.unwrap().as_deref(),
        Some("/usr/bin:/bin")
    );
    assert_eq!(out.next_line().await.unwrap(), None);
    assert_eq!(err.next_line().await.unwrap().as_deref(), Some("err-one"));
    assert_eq!(err.next_line().await.unwrap().as_deref(), Some("err-two"));
    assert_eq!(err.next_line().await.unwrap(), None);
    assert!(child.wait().await.unwrap().success());
}

#[tokio::test]
async fn exit_codes_and_signals_are_reported() {
    let _g = FD_LOCK.read().await;
    let ws = tempfile::tempdir().unwrap();
    let conf = confine(ws.path(), vec![], false);
    let (status, _, _) = run(&conf, &sh(ws.path(), "exit 3")).await;
    assert_eq!(
        status,
        ExitStatus {
            code: Some(3),
            signal: None
        }
    );
    let (status, _, _) = run(&conf, &sh(ws.path(), "kill -TERM $$")).await;
    assert_eq!(
        status,
        ExitStatus {
            code: None,
            signal: Some(libc::SIGTERM)
        }
    );
    // SIGPIPE is back to its default in the child although Rust ignores it in the host.
    let (status, _, _) = run(&conf, &sh(ws.path(), "kill -PIPE $$")).await;
    assert_eq!(status.signal, Some(libc::SIGPIPE));

    // wait() is repeatable, and kill_group after exit is harmless.
    let mut child = conf.spawn(&sh(ws.path(), "exit 7")).unwrap();
    assert_eq!(child.wait().await.unwrap().code, Some(7));
    child.kill_group();
    assert_eq!(child.wait().await.unwrap().code, Some(7));
}

#[tokio::test]
async fn stdin_pipe_works_and_default_stdin_is_dev_null() {
    let _g = FD_LOCK.read().await;
    let ws = tempfile::tempdir().unwrap();
    let conf = confine(ws.path(), vec![], false);
    let mut req = request(ws.path(), "/bin/cat", &[]);
    req.stdin = true;
    let mut child = conf.spawn(&req).unwrap();
    let mut stdin = child.take_stdin().unwrap();
    stdin.write_all(b"hello\nworld\n").await.unwrap();
    drop(stdin);
    let mut out = String::new();
    child
        .take_stdout()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    assert_eq!(out, "hello\nworld\n");
    assert!(child.wait().await.unwrap().success());

    let (status, out, _) = run(&conf, &request(ws.path(), "/bin/cat", &[])).await;
    assert!(status.success());
    assert_eq!(out, "");
}

#[tokio::test]
async fn filesystem_is_confined_to_the_workspace() {
    let _g = FD_LOCK.read().await;
    let ws = tempfile::tempdir().unwrap();
    let sibling = tempfile::tempdir().unwrap();
    std::fs::write(sibling.path().join("secret"), "s3cret").unwrap();
    let outside = std::env::temp_dir().join(format!("sandbox-outside-{}", std::process::id()));
    let conf = confine(ws.path(), vec![], false);

    // Cannot write outside.
    let (status, _, err) = run(
        &conf,
        &sh(ws.path(), &format!("echo x > {}", outside.display())),
    )
    .await;
    assert!(!status.success());
    assert!(err.contains("Permission denied"), "stderr: {err}");
    assert!(!outside.exists());

    // Cannot read (or list) another workspace.
    let (status, out, _) = run(
        &conf,
        &sh(
            ws.path(),
            &format!("cat {0}/secret; ls {0}", sibling.path().display()),
        ),
    )
    .await;
    assert!(!status.success());
    assert!(!out.contains("s3cret"), "stdout: {out}");

    // Can write, read, rename and delete inside, and write to /dev/null.
    let (status, out, err) = run(
        &conf,
        &sh(
            ws.path(),
            "mkdir -p d && echo hi > d/f && mv d/f g && cat g && rm g && echo x > /dev/null",
        ),
    )
    .await;
    assert!(status.success(), "stderr: {err}");
    assert_eq!(out, "hi\n");
}

#[tokio::test]
async fn a_confinement_is_reused_for_the_same_inodes_and_never_for_a_folder_made_again() {
    let _g = FD_LOCK.read().await;
    let root = tempfile::tempdir().unwrap();
    let ws = root.path().join("ws");
    let script = root.path().join("node.sh");
    std::fs::write(&script, "touch made-by-script\n").unwrap();
    std::fs::create_dir(&ws).unwrap();
    let first = confine(&ws, vec![script.clone()], false);
    let again = confine(&ws, vec![script.clone()], false);
    assert!(
        first.shares_ruleset_with(&again),
        "the same inodes share one ruleset"
    );
    assert!(!first.shares_ruleset_with(&confine(&ws, vec![], false)));
    assert!(!first.shares_ruleset_with(&confine(&ws, vec![script.clone()], true)));

    // The same path, a new folder: a ruleset naming the old inode would
    // refuse every write to it.
    std::fs::remove_dir(&ws).unwrap();
    std::fs::create_dir(&ws).unwrap();
    let remade = confine(&ws, vec![script.clone()], false);
    assert!(!first.shares_ruleset_with(&remade));
    let (status, _, err) = run(&remade, &sh(&ws, "touch made-here")).await;
    assert!(status.success(), "stderr: {err}");
    assert!(ws.join("made-here").exists());

    // So is a script written again under the same name.
    std::fs::remove_file(&script).unwrap();
    std::fs::write(&script, "touch made-by-script\n").unwrap();
    let rewritten = confine(&ws, vec![script.clone()], false);
    assert!(!remade.shares_ruleset_with(&rewritten));
    let (status, _, err) = run(
        &rewritten,
        &request(&ws, "/bin/sh", &[script.to_str().unwrap()]),
    )
    .await;
    assert!(status.success(), "stderr: {err}");
    assert!(ws.join("made-by-script").exists());
}

#[tokio::test]
async fn read_only_files_are_readable_and_executable_but_not_writable() {
    let _g = FD_LOCK.read().await;
    let ws = tempfile::tempdir().unwrap();
    let scripts = tempfile::tempdir().unwrap();
    let script = scripts.path().join("node.sh");
    std::fs::write(&script, "echo from-script\n").unwrap();
    let other = scripts.path().join("other.sh");
    std::fs::write(&other, "echo other\n").unwrap();
    let conf = confine(ws.path(), vec![script.clone()], false);

    let (status, out, err) = run(
        &conf,
        &request(ws.path(), "/bin/sh", &[script.to_str().unwrap()]),
    )
    .await;
    assert!(status.success(), "stderr: {err}");
    assert_eq!(out, "from-script\n");

    let (status, _, _) = run(
        &conf,
        &sh(ws.path(), &format!("echo more >> {}", script.display())),
    )
    .await;
    assert!(!status.success());
    assert_eq!(
        std::fs::read_to_string(&script).unwrap(),
        "echo from-script\n"
    );

    // A file next to it is not granted.
    let (status, out, _) = run(&conf, &sh(ws.path(), &format!("cat {}", other.display()))).await;
    assert!(!status.success());
    assert_eq!(out, "");
}

#[tokio::test]
async fn network_only_when_granted() {
    let _g = FD_LOCK.read().await;
    let ws = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!(
        "import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5); print('connected')"
    );

    let denied = confine(ws.path(), vec![], false);
    let (status, out, err) = run(
        &denied,
        &request(ws.path(), "/usr/bin/python3", &["-c", &script]),
    )
    .await;
    assert!(!status.success(), "connected without network: {out}");
    assert!(
        err.contains("Network is unreachable") || err.contains("Permission denied"),
        "stderr: {err}"
    );

    let granted = confine(ws.path(), vec![], true);
    let (status, out, err) = run(
        &granted,
        &request(ws.path(), "/usr/bin/python3", &["-c", &script]),
    )
    .await;
    assert!(status.success(), "stderr: {err}");
    assert_eq!(out, "connected\n");
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_ok());
}

#[tokio::test]
async fn rlimits_are_applied() {
    let _g = FD_LOCK.read().await;
    let ws = tempfile::tempdir().unwrap();
    let conf = confine(ws.path(), vec![], false);
    let (status, out, _) = run(&conf, &sh(ws.path(), "ulimit -n; ulimit -Hn; ulimit -c")).await;
    assert!(status.success());
    assert_eq!(out, format!("{OPEN_FILES}\n{OPEN_FILES}\n0\n"));
}

#[tokio::test]
async fn cannot_signal_the_host_and_has_no_privileges() {
    let _g = FD_LOCK.read().await;
    let ws = tempfile::tempdir().unwrap();
    let conf = confine(ws.path(), vec![], true);
    let host = std::process::id();
    let (status, _, err) = run(&conf, &sh(ws.path(), &format!("kill -0 {host}"))).await;
    assert!(!status.success(), "could signal the host; stderr: {err}");
    assert!(err.contains("not permitted"), "stderr: {err}");
    // /proc is not granted by default.
    let (status, _, _) = run(&conf, &sh(ws.path(), "cat /proc/self/status")).await;
    assert!(!status.success());

    // With /proc granted, look at the process's own credentials.
    let mut config = SandboxConfig::default();
    config.read_only_paths.push("/proc".into());
    let with_proc = Sandbox::new(config)
        .unwrap()
        .confine(&Policy {
            workspace: ws.path().to_owned(),
            read_only_files: vec![],
            network: false,
            unix_sockets: false,
            limits: None,
        })
        .unwrap();
    let (status, out, err) = run(
        &with_proc,
        &sh(
            ws.path(),
            "grep -E '^(CapEff|CapPrm|CapAmb|NoNewPrivs|SigBlk|SigIgn)' /proc/self/status; \
             cat /proc/1/environ >/dev/null && echo read-pid1-environ",
        ),
    )
    .await;
    assert!(!status.success(), "stdout: {out}");
    for line in [
        "CapPrm:\t0000000000000000",
        "CapEff:\t0000000000000000",
        "CapAmb:\t0000000000000000",
        "NoNewPrivs:\t1",
        "SigBlk:\t0000000000000000",
        "SigIgn:\t0000000000000000",
    ] {
        assert!(out.contains(line), "missing {line:?} in {out}");
    }
    assert!(!out.contains("read-pid1-environ"));
    assert!(err.contains("Permission denied"), "stderr: {err}");
}

async fn first_line(child: &mut Child) -> String {
    let mut lines = BufReader::new(child.take_stdout().unwrap()).lines();
    lines.next_line().await.unwrap().unwrap()
}

#[tokio::test]
async fn kill_group_kills_grandchildren() {
    let _g = FD_LOCK.read().await;
    let ws = tempfile::tempdir().unwrap();
    let conf = confine(ws.path(), vec![], false);
    let mut child = conf
        .spawn(&sh(ws.path(), "sleep 100 & echo $!; sleep 100"))
        .unwrap();
    let grandchild: u32 = first_line(&mut child).await.parse().unwrap();
    assert!(!is_dead(grandchild));
    child.kill_group();
    let status = child.wait().await.unwrap();
    assert_eq!(status.signal, Some(libc::SIGKILL));
    wait_until("the background sleep is dead", || is_dead(grandchild)).await;
}

#[tokio::test]
async fn dropping_a_child_kills_its_group_and_leaves_no_zombie() {
    let _g = FD_LOCK.read().await;
    let ws = tempfile::tempdir().unwrap();
    let conf = confine(ws.path(), vec![], false);
    let mut child = conf
        .spawn(&sh(ws.path(), "sleep 100 & echo $!; sleep 100"))
        .unwrap();
    let grandchild: u32 = first_line(&mut child).await.parse().unwrap();
    let pid = child.id();
    drop(child);
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    // Gone from /proc entirely means reaped, not merely dead.
    wait_until("the child is reaped", || !proc_dir.exists()).await;
    wait_until("the grandchild is dead", || is_dead(grandchild)).await;

    // Dropping after a normal exit reaps too.
    let mut child = conf.spawn(&sh(ws.path(), "exit 0")).unwrap();
    child.wait().await.unwrap();
    let pid = child.id();
    assert!(
        is_dead(pid),
        "exited child is kept as a zombie until dropped"
    );
    drop(child);
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
}

#[tokio::test]
async fn missing_program_and_bad_cwd_give_clear_errors() {
    let _g = FD_LOCK.read().await;
    let ws = tempfile::tempdir().unwrap();
    let conf = confine(ws.path(), vec![], false);

    let err = conf
        .spawn(&request(ws.path(), "/nonexistent/program", &[]))
        .unwrap_err();
    assert!(err.is_not_found());
    assert!(matches!(
        err,
        SandboxError::ChildSetup {
            step: SpawnStep::Exec,
            ..
        }
    ));
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/program"), "{msg}");
    assert!(msg.contains("No such file or directory"), "{msg}");

    let bad_cwd = ws.path().join("missing");
    let err = conf.spawn(&sh(&bad_cwd, "true")).unwrap_err();
    assert!(matches!(
        err,
        SandboxError::ChildSetup {
            step: SpawnStep::Chdir,
            ..
        }
    ));
    assert!(err.to_string().contains("missing"), "{err}");

    // A program outside the granted paths cannot be executed.
    let elsewhere = tempfile::tempdir().unwrap();
    let prog = elsewhere.path().join("prog");
    std::fs::copy("/bin/true", &prog).unwrap();
    let err = conf
        .spawn(&request(ws.path(), prog.to_str().unwrap(), &[]))
        .unwrap_err();
    assert!(
        err.to_string().contains("Permission denied"),
        "unexpected: {err}"
    );

    let err = conf.spawn(&request(ws.path(), "sh", &[])).unwrap_err();
    assert!(matches!(err, SandboxError::InvalidRequest { .. }), "{err}");

    let err = sandbox()
        .confine(&Policy {
            workspace: ws.path().join("nope"),
            read_only_files: vec![],
            network: false,
            unix_sockets: false,
            limits: None,
        })
        .unwrap_err();
    assert!(
        matches!(err, SandboxError::PolicyPath { .. }),
        "unexpected: {err}"
    );
}

/// The fds a spawn creates: pipes, pidfds, Landlock rulesets, namespaces. Other kinds are left
/// out because the test harness starts and stops other tests' runtimes (epoll, eventfd) while
/// this test runs.
fn open_fds() -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|t| {
            t.starts_with("pipe:")
                || t.contains("pidfd")
                || t.contains("landlock")
                || t.starts_with("net:")
        })
        .collect();
    fds.sort();
    fds
}

/// Descriptors are the whole process's, and the other modules' tests share this process: the
/// count is only meaningful with no other test running, so the test runs again, alone, in a
/// process of its own (this binary, filtered to it).
#[test]
fn concurrent_spawns_do_not_deadlock_or_leak_fds() {
    const NAME: &str = "sandbox::concurrent_spawns_do_not_deadlock_or_leak_fds";
    if std::env::var_os("DROVER_TEST_ALONE").is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--test-threads", "1"])
            .env("DROVER_TEST_ALONE", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{stderr}"
        );
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let _g = FD_LOCK.write().await;
        let ws = tempfile::tempdir().unwrap();
        let conf = confine(ws.path(), vec![], false);
        let before = open_fds();

        // A task that must keep running while spawns happen.
        let ticker = tokio::spawn(async {
            let mut ticks = 0u32;
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                ticks += 1;
            }
            ticks
        });
        let mut tasks = Vec::new();
        for t in 0..8 {
            let conf = conf.clone();
            let cwd = ws.path().to_owned();
            tasks.push(tokio::spawn(async move {
                for i in 0..25 {
                    let (status, out, _) = run(&conf, &sh(&cwd, &format!("echo {t}-{i}"))).await;
                    assert!(status.success());
                    assert_eq!(out, format!("{t}-{i}\n"));
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(ticker.await.unwrap(), 20);
        assert_eq!(open_fds(), before, "fds leaked");
    });
}

/// A request for a process with its own `/dev/shm`.
fn with_shm(mut req: SpawnRequest) -> SpawnRequest {
    req.private_shm = true;
    req
}

#[tokio::test]
async fn private_shm_allows_posix_semaphores_and_hides_the_hosts_dev_shm() {
    let _g = FD_LOCK.read().await;
    let ws = tempfile::tempdir().unwrap();
    let conf = confine(ws.path(), vec![], false);
    let tag = format!("drover-shm-test-{}", std::process::id());
    // A file of the host's in /dev/shm, which the process must not see.
    let host_file = PathBuf::from(format!("/dev/shm/{tag}-host"));
    std::fs::write(&host_file, "host").unwrap();

    // multiprocessing.Lock() is a POSIX semaphore: sem_open creates a file in /dev/shm.
    let (status, out, err) = run(
        &conf,
        &with_shm(request(
            ws.path(),
            "/usr/bin/python3",
            &[
                "-c",
                "import multiprocessing; l = multiprocessing.Lock(); l.acquire(); l.release(); print('locked')",
            ],
        )),
    )
    .await;
    assert!(status.success(), "stderr: {err}");
    assert_eq!(out, "locked\n");

    // It can write /dev/shm, sees nothing of the host's there, and what it writes stays its own.
    let script = format!(
        "echo mine > /dev/shm/{tag}-child && cat /dev/shm/{tag}-child && ls -A /dev/shm \
         && test ! -e {host} && echo hidden && stat -c %a /dev/shm && df -k /dev/shm | tail -1",
        host = host_file.display()
    );
    let (status, out, err) = run(&conf, &with_shm(sh(ws.path(), &script))).await;
    std::fs::remove_file(&host_file).unwrap();
    assert!(status.success(), "stderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "mine");
    assert_eq!(lines[1], format!("{tag}-child"), "only its own file: {out}");
    assert_eq!(lines[2], "hidden");
    assert_eq!(lines[3], "1777");
    // 64 MiB by default.
    let size_kib: u64 = lines[4].split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(size_kib, 64 * 1024, "df: {}", lines[4]);
    assert!(
        !Path::new(&format!("/dev/shm/{tag}-child")).exists(),
        "the process's /dev/shm file leaked onto the host"
    );

    // Still confined: nothing outside the workspace and its /dev/shm is writable.
    let outside = std::env::temp_dir().join(format!("{tag}-outside"));
    let (status, _, err) = run(
        &conf,
        &with_shm(sh(ws.path(), &format!("echo x > {}", outside.display()))),
    )
    .await;
    assert!(!status.success());
    assert!(err.contains("Permission denied"), "stderr: {err}");
    assert!(!outside.exists());

    // And its workspace is still its own.
    let (status, out, err) = run(
        &conf,
        &with_shm(sh(ws.path(), "echo hi > f && cat f && pwd")),
    )
    .await;
    assert!(status.success(), "stderr: {err}");
    assert_eq!(out, format!("hi\n{}\n", ws.path().display()));
}

#[tokio::test]
async fn without_private_shm_dev_shm_stays_read_only() {
    let _g = FD_LOCK.read().await;
    let ws = tempfile::tempdir().unwrap();
    let conf = confine(ws.path(), vec![], false);
    let target = format!("/dev/shm/drover-noshm-{}", std::process::id());
    let (status, _, err) = run(&conf, &sh(ws.path(), &format!("echo x > {target}"))).await;
    assert!(!status.success());
    assert!(err.contains("Permission denied"), "stderr: {err}");
    assert!(!Path::new(&target).exists());

    let (status, _, err) = run(
        &conf,
        &request(
            ws.path(),
            "/usr/bin/python3",
            &["-c", "import multiprocessing; multiprocessing.Lock()"],
        ),
    )
    .await;
    assert!(!status.success());
    assert!(err.contains("Permission denied"), "stderr: {err}");
}

#[tokio::test]
async fn private_shm_refuses_a_workspace_under_dev_shm() {
    let _g = FD_LOCK.read().await;
    let ws = tempfile::tempdir_in("/dev/shm").unwrap();
    let conf = confine(ws.path(), vec![], false);
    let err = conf
        .spawn(&with_shm(sh(ws.path(), "true")))
        .expect_err("a private /dev/shm would hide the workspace");
    assert!(matches!(err, SandboxError::InvalidRequest { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("workspace") && message.contains("/dev/shm") && message.contains("hide"),
        "{message}"
    );
    // Without the option the same workspace works.
    let (status, _, err) = run(&conf, &sh(ws.path(), "echo x > f")).await;
    assert!(status.success(), "stderr: {err}");
}
