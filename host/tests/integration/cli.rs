//! `drover driver …` as a user runs it: the real binary, real drivers, exit
//! codes 0 (success), 1 (the node failed) and 2 (bad input).

use crate::support;
use std::path::PathBuf;

use serde_json::Value;

use support::{Drover, stderr};

fn test_driver(name: &str) -> PathBuf {
    support::test_drivers::folder().join(format!("test_driver_{name}.wasm"))
}

#[test]
fn lists_the_builtin_drivers() {
    let out = Drover::new().run(&["driver", "list"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["noop", "sleep", "shell", "npm-test", "docker", "ansible"] {
        let line = format!("{name}\t{} (built-in)", env!("CARGO_PKG_VERSION"));
        assert!(text.lines().any(|l| l == line), "{text}");
    }
}

#[test]
fn describes_a_driver_as_json() {
    let (code, json) = Drover::new().json(&["driver", "describe", "shell", "--output", "json"]);
    assert_eq!(code, 0);
    assert_eq!(json["name"], "shell");
    assert_eq!(json["capabilities"]["exec"], serde_json::json!(["sh"]));
    assert_eq!(json["digest"].as_str().unwrap().len(), 64);
}

#[test]
fn noop_succeeds_with_a_json_outcome() {
    let (code, json) = Drover::new().json(&["driver", "run", "noop", "--output", "json"]);
    assert_eq!(code, 0);
    assert_eq!(json["status"], "success");
    assert!(json.get("exit_code").is_some());
    assert!(json["outputs"].as_object().unwrap().is_empty());
    assert!(json.get("message").is_some());
}

#[test]
fn shell_outputs_args_and_env_reach_the_outcome() {
    let (code, json) = Drover::new().json(&[
        "driver",
        "run",
        "shell",
        "--artifact",
        "echo greeting=$GREETING-$1",
        "--arg",
        "world",
        "--env",
        "GREETING=hello",
        "--expect-output",
        "greeting",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["outputs"]["greeting"], "hello-world");
    assert_eq!(json["exit_code"], 0);
}

#[test]
fn a_failing_node_exits_1() {
    let (code, json) = Drover::new().json(&[
        "driver",
        "run",
        "shell",
        "--artifact",
        "exit 4",
        "--output",
        "json",
    ]);
    assert_eq!(code, 1);
    assert_eq!(json["status"], "failure");
    assert_eq!(json["exit_code"], 4);
}

#[test]
fn text_output_streams_logs_prefixed_with_the_node() {
    let out = Drover::new().run(&[
        "driver",
        "run",
        "shell",
        "--artifact",
        "echo one; echo two >&2",
        "--name",
        "build",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[build] stdout: one"), "{text}");
    assert!(text.contains("[build] stderr: two"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("success")), "{text}");
}

#[test]
fn script_files_resolve_from_the_current_folder() {
    let drover = Drover::new();
    std::fs::write(
        drover.dir.path().join("hello.sh"),
        "echo \"hi $1\"\necho said=yes >> \"$DROVER_OUTPUT\"\n",
    )
    .unwrap();
    let (code, json) = drover.json(&[
        "driver",
        "run",
        "shell",
        "--artifact",
        "hello.sh",
        "--arg",
        "there",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["outputs"]["said"], "yes");
}

#[test]
fn bad_input_exits_2_and_says_what_is_wrong() {
    let drover = Drover::new();
    let cases: &[(&[&str], &str)] = &[
        (&["driver", "run", "nosuch"], "unknown driver `nosuch`"),
        (&["driver", "run", "./missing.wasm"], "missing.wasm"),
        (
            &["driver", "run", "sleep", "--artifact", "soon"],
            "field `artifact`",
        ),
        (&["driver", "run", "noop", "--env", "NOEQUALS"], "KEY=VALUE"),
        (
            &["driver", "run", "noop", "--timeout", "soon"],
            "invalid duration `soon`",
        ),
    ];
    for (args, expected) in cases {
        let out = drover.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // Not a component at all.
    std::fs::write(drover.dir.path().join("junk.wasm"), b"junk").unwrap();
    let out = drover.run(&["driver", "run", "./junk.wasm"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a usable drover driver"),
        "{}",
        stderr(&out)
    );
    // A broken config file names itself and the field.
    std::fs::write(
        drover.dir.path().join("drover.toml"),
        "[limits]\nmemory = 3\n",
    )
    .unwrap();
    let out = drover.run(&["driver", "run", "noop"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("drover.toml") && stderr(&out).contains("memory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_driver_given_by_path_runs_and_a_trap_exits_1() {
    let path = test_driver("trap");
    let (code, json) =
        Drover::new().json(&["driver", "run", path.to_str().unwrap(), "--output", "json"]);
    assert_eq!(code, 1);
    assert_eq!(json["status"], "failure");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .starts_with("driver panicked"),
        "{json}"
    );
}

#[test]
fn timeout_is_reported() {
    let (code, json) = Drover::new().json(&[
        "driver",
        "run",
        "sleep",
        "--artifact",
        "30s",
        "--timeout",
        "300ms",
        "--output",
        "json",
    ]);
    assert_eq!(code, 1);
    assert_eq!(json["status"], "timeout");
}

#[test]
fn ctrl_c_cancels_the_node() {
    let drover = Drover::new();
    let mut child = drover.spawn(&[
        "driver",
        "run",
        "shell",
        "--artifact",
        "echo started; sleep 30",
        "--output",
        "json",
    ]);
    // Wait until the process runs (logs go to stderr in JSON mode).
    child.wait_for_log("stdout: started");
    child.interrupt();
    let ended = child.finish();
    assert_eq!(ended.code, Some(1));
    let json: Value = serde_json::from_str(&ended.stdout).unwrap();
    assert_eq!(json["status"], "canceled");
}

/// A DAG of the hostile `greedy` driver (node `greedy`, `args`) beside a
/// `shell` node.
fn greedy_dag(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "name: greedy\nnodes:\n  greedy:\n    driver: {:?}\n    args: [{}]\n  \
         beside:\n    driver: shell\n    artifact: 'for i in 1 2 3 4 5; do cat /dev/null; done; echo fine'\n",
        test_driver("greedy").display().to_string(),
        args.join(", ")
    )
}

/// Runs `dag` as a user would; returns the run record and drover's stderr.
fn run_dag(drover: &Drover, dag: &str, log: Option<&str>) -> (Value, String) {
    let file = drover.write("dag.yaml", dag);
    let mut cmd = drover.command(&["run", &file, "--output", "json"]);
    if let Some(filter) = log {
        cmd.env("DROVER_LOG", filter);
    }
    let out = cmd.output().unwrap();
    let logs = stderr(&out);
    let record: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {logs}"));
    (record, logs)
}

#[test]
fn a_driver_opening_files_without_end_fails_alone_and_a_shell_node_beside_it_runs() {
    // Few descriptors for drover itself: without the per-node cap the
    // driver would take them all and the shell node could not start `sh`.
    let drover = Drover::new();
    // The shell node starts once the driver has had time to take what it
    // can (it holds that 2 s).
    let dag = format!(
        "{}    needs: [wait]\n  wait:\n    driver: sleep\n    artifact: 300ms\n",
        greedy_dag(&["files"])
    );
    let file = drover.write("dag.yaml", &dag);
    let run = drover.command(&["run", &file, "--output", "json"]);
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -Sn 1400 && exec \"$0\" \"$@\"")
        .arg(run.get_program())
        .args(run.get_args())
        .current_dir(drover.dir.path())
        .env_remove("DROVER_LOG");
    let out = cmd.output().unwrap();
    let logs = stderr(&out);
    let record: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {logs}"));
    let greedy = support::node(&record, "greedy");
    assert_eq!(greedy["state"], "failure", "{greedy:#}");
    assert!(
        greedy["error"]
            .as_str()
            .unwrap()
            .starts_with("too many open files in this node (limit 1024)"),
        "{greedy:#}"
    );
    let beside = support::node(&record, "beside");
    assert_eq!(beside["state"], "success", "{beside:#}\n{logs}");
    assert!(logs.contains("[beside] fine"), "{logs}");
}

/// Workspaces are kept within `[limits] max_workspace_files` and `max_workspace_mib`, whoever
/// writes them (a driver through WASI, a node's processes): the node is stopped well before it
/// would end by itself, and says which quota it passed; a node beside it is unaffected.
#[test]
fn a_node_filling_its_workspace_is_stopped_at_its_quota() {
    let drover = Drover::new();
    drover.configure("[limits]\nmax_workspace_files = 200\nmax_workspace_mib = 4\n");
    let greedy = test_driver("greedy").display().to_string();
    let dag = format!(
        "name: fill\nnodes:\n  \
         files:\n    driver: {greedy:?}\n    args: [fill, '1000', '10']\n  \
         disk:\n    driver: {greedy:?}\n    args: [fill, '10', '1048576']\n  \
         shell:\n    driver: shell\n    artifact: 'for i in $(seq 500); do : > f$i; done; sleep 10'\n  \
         beside:\n    driver: shell\n    artifact: 'for i in $(seq 50); do : > f$i; done; echo fine'\n"
    );
    let began = std::time::Instant::now();
    let (record, logs) = run_dag(&drover, &dag, None);
    assert!(
        began.elapsed() < std::time::Duration::from_secs(8),
        "the nodes ran their 10 s: {record:#}"
    );
    let error = |name| {
        let node = support::node(&record, name);
        assert_eq!(node["state"], "failure", "{node:#}");
        node["error"].as_str().unwrap_or_default().to_owned()
    };
    for name in ["files", "shell"] {
        let error = error(name);
        assert!(
            error.starts_with("workspace quota: ")
                && error.contains("more than 200 files and folders ([limits] max_workspace_files)"),
            "{name}: {error}"
        );
    }
    let error = error("disk");
    assert!(
        error.contains("more than 4 MiB of disk ([limits] max_workspace_mib)"),
        "{error}"
    );
    assert_eq!(
        support::node(&record, "beside")["state"],
        "success",
        "{logs}"
    );
}

#[test]
fn the_open_files_limit_is_configurable() {
    let drover = Drover::new();
    drover.write(
        "drover.toml",
        &format!(
            "{}[limits]\nmax_wasi_handles = 50\n",
            std::fs::read_to_string(drover.path("drover.toml")).unwrap()
        ),
    );
    let (record, _) = run_dag(&drover, &greedy_dag(&["files"]), None);
    let greedy = support::node(&record, "greedy");
    assert!(
        greedy["error"]
            .as_str()
            .unwrap()
            .starts_with("too many open files in this node (limit 50)"),
        "{greedy:#}"
    );
}

#[test]
fn an_outcome_over_the_limit_fails_the_node_clearly() {
    let drover = Drover::new();
    for (kind, size) in [("outcome", 2 << 20), ("message", 100_000_000)] {
        let size = size.to_string();
        let (record, logs) = run_dag(&drover, &greedy_dag(&[kind, &size]), None);
        let greedy = support::node(&record, "greedy");
        assert_eq!(greedy["state"], "failure", "{kind}");
        let error = greedy["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!(
                "outcome too large: the driver returned {} bytes",
                size.parse::<usize>().unwrap() + if kind == "outcome" { 3 } else { 0 }
            )) && error.contains("limit of 1024 KiB"),
            "{kind}: {error}"
        );
        assert!(
            greedy["outputs"].as_object().is_none_or(|o| o.is_empty()),
            "{kind}"
        );
        assert_eq!(
            support::node(&record, "beside")["state"],
            "success",
            "{logs}"
        );
    }
    // Just under the limit passes.
    let (record, _) = run_dag(&drover, &greedy_dag(&["outcome", "1000000"]), None);
    assert_eq!(support::node(&record, "greedy")["state"], "success");
}

#[test]
fn a_driver_cannot_forge_lines_of_drovers_log() {
    let drover = Drover::new();
    let path = test_driver("greedy");
    let out = drover
        .command(&[
            "driver",
            "run",
            path.to_str().unwrap(),
            "--arg",
            "forge",
            "--name",
            "greedy",
            "--output",
            "json",
        ])
        .env("DROVER_LOG", "info")
        .output()
        .unwrap();
    let logs = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    for line in logs.lines() {
        assert!(
            !line.starts_with("2099-01-01") && !line.contains('\u{1b}') && !line.contains('\r'),
            "a forged line in drover's log: {line:?}\n{logs}"
        );
    }
    // Written while validated (to drover's own log) and while run (to the
    // node's log, which the command prints), escaped both times.
    let escaped = "innocent\\n2099-01-01T00:00:00.000000Z ERROR drover::api::auth: forged by greedy\\r\\u{1b}[2K";
    assert!(
        logs.lines()
            .any(|l| l.contains("drover::runtime") && l.contains(escaped)),
        "{logs}"
    );
    assert!(
        logs.lines()
            .any(|l| l == format!("[greedy] error: {escaped}")),
        "{logs}"
    );
}

/// The config's names from before durations carried their unit still work, with one
/// warning each naming the new name; `config show` prints the new names. A bare number
/// under a new name is refused, naming the key and the fix.
#[test]
fn old_config_names_are_read_with_a_warning_and_bare_durations_refused() {
    let drover = Drover::new();
    drover.configure("[drone]\nheartbeat_ms = 1500\n\n[server]\nmax_body_bytes = 2097152\n");
    let out = drover.run(&["config", "show"]);
    let (text, log) = (String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(out.status.success(), "{log}");
    assert!(
        text.contains("heartbeat = \"1500ms\"") && text.contains("max_body_mib = 2"),
        "{text}"
    );
    assert!(
        !text.contains("heartbeat_ms") && !text.contains("max_body_bytes"),
        "{text}"
    );
    for (old, new) in [
        ("heartbeat_ms", "heartbeat = \"1500ms\""),
        ("max_body_bytes", "max_body_mib = 2"),
    ] {
        let warnings = log
            .lines()
            .filter(|l| l.contains("WARN") && l.contains(old) && l.contains(new))
            .count();
        assert_eq!(warnings, 1, "{old}: {log}");
    }

    let drover = Drover::new();
    drover.configure("[drone]\nheartbeat = 1500\n");
    let out = drover.run(&["config", "show"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("[drone] heartbeat: `1500` has no unit: write heartbeat = \"1500ms\""),
        "{}",
        stderr(&out)
    );
}

/// `drover config show` prints the configuration in effect with defaults filled in and
/// secrets masked; without `--config`, the user's `$XDG_CONFIG_HOME/drover/config.toml` is
/// read, and `drover config path` says so.
#[test]
fn config_show_masks_secrets_and_the_default_file_is_found() {
    let drover = Drover::new();
    drover.configure(
        "[limits]\nmax_log_lines = 1234\n\n[[server.tokens]]\ntoken = \"s3cret-token\"\n\
         role = \"admin\"\n",
    );
    let out = drover.run(&["config", "show"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.starts_with("# from "), "{text}");
    assert!(text.contains("max_log_lines = 1234"), "{text}");
    // A default the file does not set is shown too.
    assert!(text.contains("max_outcome_kib = 1024"), "{text}");
    assert!(
        !text.contains("s3cret-token") && text.contains("********"),
        "{text}"
    );

    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("drover")).unwrap();
    let file = home.path().join("drover/config.toml");
    std::fs::write(&file, "[limits]\nmax_log_lines = 4321\n").unwrap();
    let plain = |args: &[&str]| {
        std::process::Command::new(support::drover_bin())
            .args(args)
            .env_remove("DROVER_CONFIG")
            .env("XDG_CONFIG_HOME", home.path())
            .output()
            .unwrap()
    };
    let out = plain(&["config", "path"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        file.display().to_string()
    );
    let out = plain(&["config", "show"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("max_log_lines = 4321"),
        "{}",
        stderr(&out)
    );
    // A broken default file is an error that names it, not a silent fallback.
    std::fs::write(&file, "[limits]\nmax_log_lines = \"many\"\n").unwrap();
    let out = plain(&["config", "show"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&file.display().to_string()),
        "{}",
        stderr(&out)
    );
}

/// Without a `[vault]` section, `drover config show` shows the Vault of the `VAULT_*`
/// variables, says so, and masks the token; a section wins over them, and a section that
/// lacks what they would give is refused rather than completed from them.
#[test]
fn config_show_names_the_environment_as_vaults_source_and_masks_the_token() {
    let drover = Drover::new();
    let show = |env: &[(&str, &str)]| {
        let mut cmd = drover.command(&["config", "show"]);
        cmd.envs(env.iter().copied());
        cmd.output().unwrap()
    };
    let env = [
        ("VAULT_ADDR", "http://127.0.0.1:8200"),
        ("VAULT_TOKEN", "hvs.s3cret-env-token"),
        ("VAULT_NAMESPACE", "team"),
    ];
    let out = show(&env);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text.contains("# [vault] from the environment (VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE)"),
        "{text}"
    );
    assert!(
        text.contains("address = \"http://127.0.0.1:8200\"")
            && text.contains("namespace = \"team\"")
            && text.contains("token = \"********\""),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");

    let out = show(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("# no [vault] section and no VAULT_ADDR"),
        "{text}"
    );

    drover
        .configure("[vault]\naddress = \"http://vault.internal:8200\"\ntoken_file = \"/run/t\"\n");
    let out = show(&env);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text.contains("# [vault] from the configuration file's [vault] section")
            && text.contains("vault.internal")
            && !text.contains("127.0.0.1:8200")
            && !text.contains("namespace"),
        "{text}"
    );
}

#[test]
fn a_vault_section_without_a_way_to_log_in_is_not_completed_from_the_environment() {
    let drover = Drover::new();
    drover.configure("[vault]\naddress = \"http://127.0.0.1:8200\"\n");
    let out = drover
        .command(&["config", "show"])
        .env("VAULT_TOKEN", "hvs.s3cret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("drover.toml")
            && err.contains("[vault] has no way to log in")
            && err.contains("(set: VAULT_TOKEN) fill in nothing"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
}
