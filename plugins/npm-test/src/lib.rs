//! The `npm-test` driver: installs an npm package (a tarball, a folder or `name@version`) and runs its tests, reporting each as it completes.

mod npm;
mod report;
pub mod tap;

use drover_sdk::exec::{self, Command};
use drover_sdk::{Capabilities, Description, Driver, Outcome, Problem, Task};

use npm::Npm;

/// Installs npm packages and runs their tests.
struct NpmTest;

impl Driver for NpmTest {
    fn describe() -> Description {
        Description::new("npm-test", env!("CARGO_PKG_VERSION"))
            .with_summary("Installs an npm package and runs its tests (`npm test`), reading TAP.")
            .with_artifact(
                "The package: a tarball (`npm pack`) or a package folder, relative to the DAG \
                 file's folder, or `name@version` from the registry (which needs the network: \
                 `[drivers.npm-test] network = true`).",
            )
            .with_args("Passed to the test script: `npm test -- <args...>`.")
            .with_outputs(
                "`passed`, `failed`, `skipped`, `todo`, `total` (counts of tests), `package` \
                 (`name@version`) and `report` (JSON: the totals and every test's name, parent \
                 path, status, duration and failure message), also when the node fails. The \
                 node fails when a test fails, the tests bail out, npm fails, or the package \
                 has no `scripts.test`.",
            )
            .with_capabilities(Capabilities::none().with_exec(["npm"]).with_workspace())
    }

    fn validate(task: &Task) -> Vec<Problem> {
        let artifact = task.artifact.trim();
        if artifact.is_empty() {
            return vec![Problem::new(
                "artifact",
                "a package is required: a tarball or package folder relative to the DAG file, \
                 or `name@version`",
            )];
        }
        if task.artifact_file.is_none() && looks_like_a_path(artifact) {
            return vec![Problem::new(
                "artifact",
                format!(
                    "`{artifact}` does not exist relative to the DAG file's folder (expected a \
                     tarball, a package folder, or `name@version` from the registry)"
                ),
            )];
        }
        Vec::new()
    }

    fn run(task: Task) -> Outcome {
        let artifact = task.artifact.trim();
        if artifact.is_empty() {
            return Outcome::failure("no package: the artifact is empty");
        }
        let npm = match Npm::prepare(&exec::workspace_path(), task.attempt, &task.env) {
            Ok(npm) => npm,
            Err(e) => return Outcome::failure(e),
        };
        let spec = task
            .artifact_file
            .clone()
            .unwrap_or_else(|| artifact.to_string());
        let package = match npm.install(&spec, task.artifact_file.is_none()) {
            Ok(package) => package,
            Err(e) => return Outcome::failure(e),
        };
        let id = package.id();
        let Some(script) = &package.test_script else {
            return Outcome::failure(format!(
                "package `{id}` has no `scripts.test` in its package.json: nothing to run \
                 (add e.g. \"test\": \"node --test\")"
            ))
            .with_output("package", id);
        };
        drover_sdk::info!("testing {id}: {script}");
        let mut cmd: Command = npm.test_command(&task.args);
        cmd.read_stdout();
        let process = match cmd.spawn() {
            Ok(process) => process,
            Err(e) => return Outcome::failure(format!("cannot run npm test: {e}")),
        };
        let mut parser = tap::Parser::new();
        for line in process.lines() {
            match line {
                Ok(line) => parser.line(&line).iter().for_each(report::log_result),
                Err(e) => {
                    drover_sdk::warn!("reading the output of npm test failed: {e}");
                    break;
                }
            }
        }
        parser.finish().iter().for_each(report::log_result);
        let status = match process.wait() {
            Ok(status) => status,
            Err(e) => return Outcome::failure(format!("waiting for npm test failed: {e}")),
        };
        report::outcome(&id, &parser, &status)
    }
}

drover_sdk::export_driver!(NpmTest);

/// Whether an artifact that names no existing file was meant as one rather
/// than as a registry spec (`name`, `name@1.2`, `@scope/name@^2`).
fn looks_like_a_path(artifact: &str) -> bool {
    // `github:user/repo`, `git+https://…`, `npm:name@1`: specs for npm.
    let protocol = artifact.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+')
    });
    if protocol {
        return false;
    }
    artifact.starts_with('.')
        || artifact.starts_with('/')
        || artifact.starts_with('~')
        || artifact.ends_with(".tgz")
        || artifact.ends_with(".tar.gz")
        || artifact.ends_with(".tar")
        || (artifact.contains('/') && !artifact.starts_with('@'))
        || artifact.matches('/').count() > 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_wants_a_package() {
        assert_eq!(NpmTest::validate(&Task::new("n", " ")).len(), 1);
        for spec in [
            "left-pad",
            "left-pad@1.3.0",
            "@scope/pkg@^2",
            "github:user/repo",
            "git+https://example.invalid/a/b.git",
        ] {
            assert!(
                NpmTest::validate(&Task::new("n", spec)).is_empty(),
                "{spec}"
            );
        }
        for path in [
            "./missing.tgz",
            "pkg-1.0.0.tgz",
            "dir/sub",
            "/abs/pkg",
            "@a/b/c",
        ] {
            let problems = NpmTest::validate(&Task::new("n", path));
            assert_eq!(problems.len(), 1, "{path}");
            assert!(problems[0].message.contains("does not exist"), "{path}");
        }
        let mut found = Task::new("n", "./pkg.tgz");
        found.artifact_file = Some("/dags/pkg.tgz".into());
        assert!(NpmTest::validate(&found).is_empty());
    }
}
