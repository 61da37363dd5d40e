//! The `sleep` driver: waits for the duration given as the node's artifact, then succeeds.

use std::time::Duration;

use drover_sdk::{Capabilities, Description, Driver, Outcome, Problem, Task};

/// Waits for the duration in the node's artifact.
struct Sleep;

impl Driver for Sleep {
    fn describe() -> Description {
        Description::new("sleep", env!("CARGO_PKG_VERSION"))
            .with_summary("Waits for a while, then succeeds.")
            .with_artifact(
                "How long to wait: a number with an optional unit, `ms`, `s`, `m` or `h` \
                 (seconds when there is none); fractions allowed, e.g. `250ms`, `1.5s`, `2m`.",
            )
            .with_args("Ignored.")
            .with_outputs("None.")
            .with_capabilities(Capabilities::none())
    }

    fn validate(task: &Task) -> Vec<Problem> {
        match parse_duration(&task.artifact) {
            Ok(_) => Vec::new(),
            Err(e) => vec![Problem::new("artifact", e)],
        }
    }

    fn run(task: Task) -> Outcome {
        match parse_duration(&task.artifact) {
            Ok(d) => {
                std::thread::sleep(d);
                Outcome::success()
            }
            Err(e) => Outcome::failure(e),
        }
    }
}

drover_sdk::export_driver!(Sleep);

/// Parses `250ms`, `2s`, `1.5m`, `1h` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("a duration is required, e.g. `250ms`, `2s`, `1m`, `1h` or `5`".to_string());
    }
    let unit_start = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(unit_start);
    let number = number.trim_end();
    let not_a_duration =
        || format!("`{text}` is not a duration; write e.g. `250ms`, `1.5s`, `2m`, `1h` or `5`");
    let valid_number = number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.chars().any(|c| c.is_ascii_digit());
    if !valid_number {
        return Err(not_a_duration());
    }
    let scale = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in duration `{text}`; use `ms`, `s`, `m` or `h`"
            ));
        }
    };
    let value: f64 = number.parse().map_err(|_| not_a_duration())?;
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("duration `{text}` is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration(" 0 "), Ok(Duration::ZERO));
    }

    #[test]
    fn parses_fractions() {
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration(".25m"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("1.5 s"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "", "   ", "s", "abc", "1x", "1.2.3s", "-1s", "+1s", "1e3", "nan", "inf", "1sec", "1d",
            ".", "1e999",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn says_what_is_wrong() {
        let e = parse_duration("soon").unwrap_err();
        assert!(e.contains("not a duration"), "{e}");
        let e = parse_duration("1x").unwrap_err();
        assert!(e.contains("unknown unit `x`"), "{e}");
        let e = parse_duration("").unwrap_err();
        assert!(e.contains("required"), "{e}");
    }

    #[test]
    fn validate_reports_artifact() {
        let problems = Sleep::validate(&Task::new("n", "soon"));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "artifact");
        assert!(Sleep::validate(&Task::new("n", "10ms")).is_empty());
        assert_eq!(Sleep::validate(&Task::new("n", "")).len(), 1);
    }
}
