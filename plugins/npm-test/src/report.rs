//! What the driver makes of the test results: a log line per test, the outputs, the JSON report and the node's outcome.

use drover_sdk::Outcome;
use drover_sdk::exec::ExitStatus;
use serde_json::{Value, json};

use crate::tap::{Parser, Status, TestResult};

/// Logs one completed test: failures at error level, with their message.
pub fn log_result(result: &TestResult) {
    if result.group && !result.counted {
        return;
    }
    let name = result.full_name();
    let duration = result
        .duration_ms
        .map(|ms| format!(" ({ms:.1} ms)"))
        .unwrap_or_default();
    let reason = result
        .message
        .as_deref()
        .map(|m| format!(": {}", m.lines().next().unwrap_or_default()))
        .unwrap_or_default();
    match result.status {
        Status::Passed => drover_sdk::info!("pass {name}{duration}"),
        Status::Failed => drover_sdk::error!("FAIL {name}{duration}{reason}"),
        Status::Skipped => drover_sdk::info!("skip {name}{reason}"),
        Status::Todo => drover_sdk::info!("todo {name}{reason}"),
    }
}

/// The JSON report: totals, and every counted test in the order it ended.
pub fn json_report(package: &str, parser: &Parser, status: &ExitStatus) -> Value {
    let totals = parser.totals();
    let tests: Vec<Value> = parser
        .results()
        .iter()
        .filter(|r| r.counted)
        .map(|r| {
            json!({
                "name": r.name,
                "path": r.path.iter().map(|p| p.as_deref().unwrap_or("?")).collect::<Vec<_>>(),
                "status": r.status.as_str(),
                "duration_ms": r.duration_ms,
                "message": r.message,
            })
        })
        .collect();
    json!({
        "package": package,
        "total": totals.total(),
        "passed": totals.passed,
        "failed": totals.failed,
        "skipped": totals.skipped,
        "todo": totals.todo,
        "bail_out": parser.bail_out(),
        "exit_code": status.code,
        "timed_out": status.timed_out,
        "tests": tests,
    })
}

/// The node's outcome: its outputs always, success only when npm test
/// succeeded, no test failed and the tests did not bail out.
pub fn outcome(package: &str, parser: &Parser, status: &ExitStatus) -> Outcome {
    let totals = parser.totals();
    if !parser.saw_tap() {
        drover_sdk::warn!(
            "npm test printed no TAP, so no test results are known: its test runner must \
             report in TAP (node's runner does, with the NODE_OPTIONS this driver sets)"
        );
    }
    let failed: Vec<String> = parser
        .results()
        .iter()
        .filter(|r| r.counted && r.status == Status::Failed)
        .map(TestResult::full_name)
        .collect();
    let mut outcome = if let Some(reason) = parser.bail_out() {
        Outcome::failure(format!("the tests bailed out: {reason}"))
    } else if !failed.is_empty() {
        let mut names = failed
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if failed.len() > 3 {
            names.push_str(", ...");
        }
        Outcome::failure(format!(
            "{} of {} tests failed: {names}",
            failed.len(),
            totals.total()
        ))
    } else if !status.success() {
        Outcome::failure(format!("npm test failed: {status}"))
    } else {
        Outcome::success().with_message(format!(
            "{} tests: {} passed, {} skipped, {} todo",
            totals.total(),
            totals.passed,
            totals.skipped,
            totals.todo
        ))
    };
    if let Some(code) = status.code {
        outcome = outcome.with_exit_code(code);
    }
    outcome
        .with_output("passed", totals.passed.to_string())
        .with_output("failed", totals.failed.to_string())
        .with_output("skipped", totals.skipped.to_string())
        .with_output("todo", totals.todo.to_string())
        .with_output("total", totals.total().to_string())
        .with_output("package", package)
        .with_output("report", json_report(package, parser, status).to_string())
}
