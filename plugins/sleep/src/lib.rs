//! The `sleep` driver: waits for the duration given as the node's artifact, then succeeds.

use drover_sdk::duration::parse_duration;
use drover_sdk::{Capabilities, Description, Driver, Outcome, Problem, Task};

/// Waits for the duration in the node's artifact.
struct Sleep;

impl Driver for Sleep {
    fn describe() -> Description {
        Description::new("sleep", env!("CARGO_PKG_VERSION"))
            .with_summary("Waits for a while, then succeeds.")
            .with_artifact(
                "How long to wait: a number with an optional unit, `ms`, `s`, `m` or `h` \
                 (seconds when there is none); fractions allowed, e.g. `250ms`, `1.5s`, `2m` \
                 (the grammar of drover's own durations).",
            )
            .with_args("Ignored.")
            .with_outputs("None.")
            .with_capabilities(Capabilities::none())
    }

    fn validate(task: &Task) -> Vec<Problem> {
        match parse_duration(&task.artifact) {
            Ok(_) => Vec::new(),
            Err(e) => vec![Problem::new("artifact", e.to_string())],
        }
    }

    fn run(task: Task) -> Outcome {
        match parse_duration(&task.artifact) {
            Ok(d) => {
                std::thread::sleep(d);
                Outcome::success()
            }
            Err(e) => Outcome::failure(e.to_string()),
        }
    }
}

drover_sdk::export_driver!(Sleep);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_reports_artifact() {
        let problems = Sleep::validate(&Task::new("n", "soon"));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "artifact");
        assert!(problems[0].message.contains("invalid duration `soon`"));
        assert!(Sleep::validate(&Task::new("n", "10ms")).is_empty());
        assert_eq!(Sleep::validate(&Task::new("n", "")).len(), 1);
    }

    /// One grammar: what drover's `--timeout` refuses, `sleep` refuses too.
    #[test]
    fn reads_durations_as_drover_does() {
        for text in [".5s", "1.5 s", "1e3", "-1s"] {
            assert_eq!(
                Sleep::validate(&Task::new("n", text)).len(),
                1,
                "{text:?} should be refused"
            );
        }
        assert!(Sleep::validate(&Task::new("n", "1.5s")).is_empty());
    }
}
