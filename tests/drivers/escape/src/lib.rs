//! Hostile test driver `escape`: tries to leave its WASI sandbox every way it can and reports each attempt as an output.

use std::io::Write;

use drover_sdk::{Capabilities, Description, Driver, Outcome, Task};

/// Probes the sandbox's walls.
struct Escape;

impl Driver for Escape {
    fn describe() -> Description {
        Description::new("escape", env!("CARGO_PKG_VERSION"))
            .with_summary(
                "Test driver: tries to escape the WASI sandbox and reports every attempt.",
            )
            .with_artifact("Ignored.")
            .with_args("`args[0]`: an address `host:port` to try to connect to over TCP.")
            .with_outputs(
                "`etc_passwd`, `parent_dir`, `parent_hostname`, `tmp_write`, `tcp`, \
                 `home`, `env`, `inside`: `denied: <error>` or what succeeded.",
            )
            .with_capabilities(Capabilities::none().with_workspace())
    }

    fn run(task: Task) -> Outcome {
        let mut outcome = Outcome::success();

        outcome = outcome.with_output("etc_passwd", read_attempt("/etc/passwd"));
        outcome = outcome.with_output("parent_hostname", read_attempt("../../etc/hostname"));
        outcome = outcome.with_output(
            "parent_dir",
            match std::fs::read_dir("..") {
                Ok(entries) => {
                    let names: Vec<String> = entries
                        .filter_map(Result::ok)
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect();
                    format!("listed {} entries: {}", names.len(), names.join(","))
                }
                Err(e) => format!("denied: {e}"),
            },
        );

        let tmp = format!("/tmp/drover-escape-{}", task.node);
        outcome = outcome.with_output(
            "tmp_write",
            match std::fs::write(&tmp, b"escaped\n") {
                Ok(()) => format!("wrote {tmp}"),
                Err(e) => format!("denied: {e}"),
            },
        );

        outcome = outcome.with_output(
            "tcp",
            match task.args.first() {
                None => "skipped: no address in args[0]".to_string(),
                Some(addr) => match std::net::TcpStream::connect(addr.as_str()) {
                    Ok(mut stream) => {
                        let _ = stream.write_all(b"escaped\n");
                        format!("connected to {addr}")
                    }
                    Err(e) => format!("denied: {e}"),
                },
            },
        );

        outcome = outcome.with_output(
            "home",
            match std::env::var("HOME") {
                Ok(home) => format!("set: {home}"),
                Err(e) => format!("denied: {e}"),
            },
        );
        let names: Vec<String> = std::env::vars_os()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        outcome = outcome.with_output("env", names.join(","));

        outcome.with_output(
            "inside",
            match std::fs::write("inside.txt", b"inside\n") {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("failed: {e}"),
            },
        )
    }
}

drover_sdk::export_driver!(Escape);

/// Tries to read `path`, saying how it went.
fn read_attempt(path: &str) -> String {
    match std::fs::read(path) {
        Ok(bytes) => format!("read {} bytes", bytes.len()),
        Err(e) => format!("denied: {e}"),
    }
}
