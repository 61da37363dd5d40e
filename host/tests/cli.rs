//! `drover driver …` as a user runs it: the real binary, real drivers, exit
//! codes 0 (success), 1 (the node failed) and 2 (bad input).

use std::path::{Path, PathBuf};

use serde_json::Value;

mod support;

use support::{Drover, stderr};

fn test_driver(name: &str) -> PathBuf {
    Path::new(env!("DROVER_TEST_DRIVERS")).join(format!("test_driver_{name}.wasm"))
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
