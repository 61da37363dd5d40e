//! A driver for the container tests: starts a container, then traps
//! (`artifact: trap`), places a secret file and checks what a command in
//! the container sees of it (`artifact: files`), or runs a command that
//! outlives its timeout (`artifact: timeout`).

use drover_sdk::container::{Container, Spec};
use drover_sdk::{Capabilities, Description, Driver, Outcome, Task};

struct ContainerProbe;

impl Driver for ContainerProbe {
    fn describe() -> Description {
        Description::new("container-probe", "0.1.0")
            .with_summary("Misuses containers on purpose, for drover's tests.")
            .with_capabilities(Capabilities::none().with_container().with_workspace())
    }

    fn run(task: Task) -> Outcome {
        let image = task.args.first().cloned().unwrap_or_default();
        let secret = task
            .env
            .iter()
            .find(|(k, _)| k == "SECRET")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let spec = Spec::new(&image).file("/run/secrets/token", secret.as_bytes());
        let container = match Container::start(&spec) {
            Ok(c) => c,
            Err(e) => return Outcome::failure(e.to_string()),
        };
        match task.artifact.as_str() {
            "trap" => {
                let _ = container.sh("echo started", None);
                panic!("trapping with container {} alive", container.id());
            }
            "files" => {
                let read = container.sh("cat /run/secrets/token; echo", None);
                let write = container.sh("echo changed > /run/secrets/token", None);
                let listed = container.sh("ls -a /workspace", None);
                let ok = |r: &Result<drover_sdk::container::ExitStatus, _>| {
                    r.as_ref().map(|s| s.success()).unwrap_or(false)
                };
                Outcome::success().with_outputs([
                    ("read", ok(&read).to_string()),
                    ("write", ok(&write).to_string()),
                    ("listed", ok(&listed).to_string()),
                    ("id", container.id()),
                ])
            }
            "timeout" => {
                // A command that outlives its own timeout (the args' second
                // item, in ms), then the container held a while (the third,
                // in ms) for the test to look at, then a command refused.
                let ms = |i: usize| task.args.get(i).and_then(|a| a.parse::<u64>().ok());
                let began = std::time::Instant::now();
                let status = container.sh("echo begun; sleep 1000; echo never", ms(1));
                let took = began.elapsed().as_millis();
                drover_sdk::info!("exec returned after {took} ms");
                std::thread::sleep(std::time::Duration::from_millis(ms(2).unwrap_or(0)));
                let again = match container.sh("echo again", None) {
                    Ok(s) => format!("ran: {s}"),
                    Err(e) => e.to_string(),
                };
                let (timed_out, code) = match &status {
                    Ok(s) => (s.timed_out.to_string(), format!("{:?}", s.code)),
                    Err(e) => (String::new(), e.to_string()),
                };
                Outcome::success().with_outputs([
                    ("timed_out", timed_out),
                    ("code", code),
                    ("took_ms", took.to_string()),
                    ("again", again),
                    ("id", container.id()),
                ])
            }
            other => Outcome::failure(format!("unknown mode `{other}`")),
        }
    }
}

drover_sdk::export_driver!(ContainerProbe);
