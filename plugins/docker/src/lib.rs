//! The `docker` driver: full builds in one fresh container, either steps on
//! an image or the stages of a build file.

mod build;

use std::io::ErrorKind;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use drover_sdk::container::{Container, Spec, WORKSPACE};
use drover_sdk::outputs::parse_key_values;
use drover_sdk::{Capabilities, Description, Driver, Outcome, Problem, Task, secrets};
use serde::Serialize;

use build::{BuildFile, Stage};

/// The environment variable naming the file steps may write outputs to.
const OUTPUT_VAR: &str = "DROVER_OUTPUT";

/// Runs builds in containers.
struct Docker;

impl Driver for Docker {
    fn describe() -> Description {
        Description::new("docker", env!("CARGO_PKG_VERSION"))
            .with_summary("Runs a build in one fresh container: steps on an image, or the stages of a build file.")
            .with_artifact(
                "Either an image (e.g. `debian:12`), whose steps are the node's args; or a build \
                 file (YAML: `image`, `env`, `secret_files`, `stages: [{name, script: [...]}]`), \
                 inline or the path of a file in the node's workspace.",
            )
            .with_args(
                "With an image: the steps, each run as `sh -c STEP` in order in the same \
                 container (workspace at /workspace), stopping at the first that fails. \
                 With a build file: none.",
            )
            .with_outputs(
                "`steps` (image) or `stages` (build file): JSON with each step's command, \
                 status, exit code and duration; `failed_step` / `failed_stage` when one \
                 failed; and every `key=value` line a step writes to `$DROVER_OUTPUT`. \
                 The node's secrets are in every step's environment under their names (over \
                 `env` of the same name), or read-only files where the build file's \
                 `secret_files` puts them; hidden from the log and the outcome.",
            )
            .with_capabilities(
                Capabilities::none()
                    .with_container()
                    .with_workspace()
                    .with_secrets(),
            )
    }

    fn validate(task: &Task) -> Vec<Problem> {
        match Plan::of(task, false) {
            Ok(_) => Vec::new(),
            Err((field, message)) => vec![Problem::new(field, message)],
        }
    }

    fn run(task: Task) -> Outcome {
        let plan = match Plan::of(&task, true) {
            Ok(plan) => plan,
            Err((field, message)) => return Outcome::failure(format!("{field}: {message}")),
        };
        let output_file = format!(".drover-output-{}", task.attempt);
        if let Err(e) = std::fs::remove_file(&output_file)
            && e.kind() != ErrorKind::NotFound
        {
            return Outcome::failure(format!("cannot remove stale {output_file}: {e}"));
        }
        let granted = match Granted::read(&plan.build) {
            Ok(granted) => granted,
            Err(message) => return Outcome::failure(message),
        };
        let mut spec = Spec::new(&plan.build.image)
            .envs(
                task.env
                    .iter()
                    .filter(|(k, _)| k != OUTPUT_VAR && !granted.in_env(k))
                    .cloned(),
            )
            .envs(
                plan.build
                    .env
                    .iter()
                    .filter(|(k, _)| !granted.in_env(k))
                    .map(|(k, v)| (k.clone(), v.clone())),
            )
            .env(OUTPUT_VAR, format!("{WORKSPACE}/{output_file}"));
        for (path, value) in &granted.files {
            spec = spec.file(path, value.as_bytes());
        }
        if let Some(dir) = &plan.build.workdir {
            spec = spec.workdir(dir);
        }
        if let Some(mib) = plan.build.memory_mib {
            spec = spec.memory_mib(mib);
        }
        if let Some(pids) = plan.build.pids {
            spec = spec.pids(pids);
        }
        if let Some(cpus) = plan.build.cpus {
            spec = spec.cpu_millis((cpus * 1000.0) as u32);
        }
        let container = match Container::start(&spec) {
            Ok(c) => c,
            Err(e) => {
                return Outcome::failure(format!(
                    "cannot start a container from `{}`: {e}",
                    plan.build.image
                ));
            }
        };
        drover_sdk::info!(
            "container {} from {}",
            short(&container.id()),
            plan.build.image
        );

        let env: Vec<(&str, &str)> = granted
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let report = run_stages(&container, &plan.build.stages, &env, task.deadline_ms);
        // Removes the container before the outcome is reported.
        drop(container);

        let mut outcome = match &report.failed {
            None => Outcome::success().with_exit_code(0),
            Some(failed) => Outcome::failure(failed.message(plan.named_stages))
                .with_exit_code(failed.exit_code.unwrap_or(-1)),
        };
        if plan.named_stages {
            outcome = outcome.with_output("stages", json(&report.stages));
            if let Some(failed) = &report.failed {
                outcome = outcome.with_output("failed_stage", failed.stage.clone());
            }
        } else {
            let steps = report
                .stages
                .first()
                .map(|s| s.steps.clone())
                .unwrap_or_default();
            outcome = outcome.with_output("steps", json(&steps));
        }
        if let Some(failed) = &report.failed {
            outcome = outcome.with_output("failed_step", failed.step.to_string());
        }
        match std::fs::read(&output_file) {
            Ok(bytes) => {
                outcome =
                    outcome.with_outputs(parse_key_values(&String::from_utf8_lossy(&bytes), None));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => drover_sdk::warn!("cannot read ${OUTPUT_VAR} ({output_file}): {e}"),
        }
        outcome
    }
}

drover_sdk::export_driver!(Docker);

/// The outputs' JSON form of `value`.
fn json<T: Serialize>(value: &T) -> String {
    // Plain structs of strings and numbers always serialise.
    serde_json::to_string(value).unwrap_or_default()
}

/// The node's secrets, split by where the steps find them.
struct Granted {
    /// (name, value): in each step's environment. Handed to each command,
    /// not to the container's own environment, which anyone with access
    /// to the engine can read (`docker inspect`) while it runs.
    env: Vec<(String, String)>,
    /// (path in the container, value): read-only files.
    files: Vec<(String, String)>,
}

impl Granted {
    /// Reads every secret the node was granted; the message when one
    /// cannot be read, or the build file places one the node lacks.
    fn read(build: &BuildFile) -> Result<Granted, String> {
        let mut granted = Granted {
            env: Vec::new(),
            files: Vec::new(),
        };
        let names = secrets::names();
        for name in &names {
            let value =
                secrets::get(name).map_err(|e| format!("cannot read secret `{name}`: {e}"))?;
            match build.secret_files.get(name) {
                Some(path) => granted.files.push((path.clone(), value)),
                None => granted.env.push((name.clone(), value)),
            }
        }
        if let Some(name) = build.secret_files.keys().find(|n| !names.contains(n)) {
            return Err(format!(
                "secret_files.{name}: the node has no secret `{name}` (it has: {}); list it \
                 under the node's `secrets`",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ));
        }
        Ok(granted)
    }

    /// Whether the secret `name` is in the steps' environment (and so wins
    /// over a variable of that name).
    fn in_env(&self, name: &str) -> bool {
        self.env.iter().any(|(n, _)| n == name)
    }
}

/// What a node asks for: a build, and whether its stages have names of
/// their own (a build file) or are the node's args on an image.
struct Plan {
    build: BuildFile,
    named_stages: bool,
}

impl Plan {
    /// `(field, problem)` when the node is malformed. At `validate` time
    /// the workspace cannot be read, so a build file there is checked only
    /// when it runs.
    fn of(task: &Task, running: bool) -> Result<Plan, (&'static str, String)> {
        let artifact = task.artifact.trim();
        if artifact.is_empty() {
            return Err((
                "artifact",
                "an image (with the steps as args) or a build file is required".into(),
            ));
        }
        if let Some(text) = build::inline(artifact) {
            if !task.args.is_empty() {
                return Err((
                    "args",
                    "a build file takes no args: put the steps in its stages".into(),
                ));
            }
            let build = BuildFile::parse(text).map_err(|e| ("artifact", e))?;
            return Ok(Plan {
                build,
                named_stages: true,
            });
        }
        if build::is_file_name(artifact) {
            if task.artifact_file.is_some() {
                return Err((
                    "artifact",
                    format!(
                        "`{artifact}` lies beside the DAG file, where drivers cannot read; \
                         inline the build file in the artifact, or have it in the node's workspace"
                    ),
                ));
            }
            if !running {
                return Ok(Plan {
                    build: BuildFile::default(),
                    named_stages: true,
                });
            }
            let text = std::fs::read_to_string(artifact).map_err(|e| {
                (
                    "artifact",
                    format!("cannot read the build file `{artifact}` in the workspace: {e}"),
                )
            })?;
            let build =
                BuildFile::parse(&text).map_err(|e| ("artifact", format!("{artifact}: {e}")))?;
            return Ok(Plan {
                build,
                named_stages: true,
            });
        }
        if artifact.chars().any(char::is_whitespace) {
            return Err((
                "artifact",
                format!("`{artifact}` is neither an image name nor a build file"),
            ));
        }
        if task.args.is_empty() {
            return Err(("args", "no steps: give the commands to run as args".into()));
        }
        Ok(Plan {
            build: BuildFile {
                image: artifact.to_string(),
                stages: vec![Stage {
                    name: "steps".into(),
                    script: task.args.clone(),
                }],
                ..BuildFile::default()
            },
            named_stages: false,
        })
    }
}

/// One step's record in the outputs.
#[derive(Debug, Clone, Serialize)]
struct StepReport {
    command: String,
    status: &'static str,
    exit_code: Option<i32>,
    duration_ms: u64,
}

/// One stage's record in the outputs.
#[derive(Debug, Clone, Serialize)]
struct StageReport {
    name: String,
    status: &'static str,
    duration_ms: u64,
    steps: Vec<StepReport>,
}

/// Where the build stopped.
struct Failure {
    stage: String,
    /// 1-based, within the stage.
    step: usize,
    command: String,
    exit_code: Option<i32>,
    why: String,
}

impl Failure {
    fn message(&self, named_stages: bool) -> String {
        if named_stages {
            format!(
                "step {} of stage `{}` (`{}`) {}",
                self.step, self.stage, self.command, self.why
            )
        } else {
            format!("step {} (`{}`) {}", self.step, self.command, self.why)
        }
    }
}

struct Report {
    stages: Vec<StageReport>,
    failed: Option<Failure>,
}

fn run_stages(
    container: &Container,
    stages: &[Stage],
    env: &[(&str, &str)],
    deadline_ms: Option<u64>,
) -> Report {
    let mut report = Report {
        stages: Vec::new(),
        failed: None,
    };
    for stage in stages {
        let began = Instant::now();
        let mut record = StageReport {
            name: stage.name.clone(),
            status: "skipped",
            duration_ms: 0,
            steps: Vec::new(),
        };
        if report.failed.is_some() {
            record.steps = stage
                .script
                .iter()
                .map(|command| StepReport {
                    command: command.clone(),
                    status: "skipped",
                    exit_code: None,
                    duration_ms: 0,
                })
                .collect();
            report.stages.push(record);
            continue;
        }
        drover_sdk::info!("==> stage {}", stage.name);
        record.status = "success";
        for (i, command) in stage.script.iter().enumerate() {
            if report.failed.is_some() {
                record.steps.push(StepReport {
                    command: command.clone(),
                    status: "skipped",
                    exit_code: None,
                    duration_ms: 0,
                });
                continue;
            }
            drover_sdk::info!("[{}] $ {command}", stage.name);
            let step_began = Instant::now();
            let result =
                container.exec_with(&["sh", "-c", command], env, None, time_left(deadline_ms));
            let duration_ms = step_began.elapsed().as_millis() as u64;
            let (status, exit_code, why) = match result {
                Ok(s) if s.success() => ("success", s.code, None),
                Ok(s) if s.timed_out => ("timeout", None, Some("timed out".to_string())),
                Ok(s) => ("failure", s.code, Some(format!("failed with {s}"))),
                Err(e) => ("failure", None, Some(format!("could not run: {e}"))),
            };
            drover_sdk::info!("[{}] {status} in {duration_ms} ms", stage.name);
            record.steps.push(StepReport {
                command: command.clone(),
                status,
                exit_code,
                duration_ms,
            });
            if let Some(why) = why {
                record.status = "failure";
                report.failed = Some(Failure {
                    stage: stage.name.clone(),
                    step: i + 1,
                    command: command.clone(),
                    exit_code,
                    why,
                });
            }
        }
        record.duration_ms = began.elapsed().as_millis() as u64;
        report.stages.push(record);
    }
    report
}

/// Milliseconds until the node's deadline, if it has one.
fn time_left(deadline_ms: Option<u64>) -> Option<u64> {
    let deadline = deadline_ms?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Some(deadline.saturating_sub(now).max(1))
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(artifact: &str, args: &[&str]) -> Task {
        let mut t = Task::new("n", artifact);
        t.args = args.iter().map(|a| a.to_string()).collect();
        t
    }

    #[test]
    fn an_image_needs_steps() {
        assert!(Docker::validate(&task("busybox:1", &["echo hi"])).is_empty());
        let problems = Docker::validate(&task("busybox:1", &[]));
        assert_eq!(problems[0].field, "args");
        assert_eq!(Docker::validate(&task("", &[]))[0].field, "artifact");
    }

    #[test]
    fn an_inline_build_file_is_checked() {
        let good = "image: busybox:1\nstages:\n  - name: build\n    script: [\"echo hi\"]\n";
        assert!(Docker::validate(&task(good, &[])).is_empty());
        assert_eq!(Docker::validate(&task(good, &["x"]))[0].field, "args");
        let bad = "image: busybox:1\nstages:\n  - script: [\"echo hi\"]\n";
        let problems = Docker::validate(&task(bad, &[]));
        assert!(problems[0].message.contains("name"), "{problems:?}");
    }
}
