//! The ansible driver's readers of what ansible-playbook leaves behind: the JSON lines of drover's callback plugin and ansible's own log.

#![no_main]

use drover_plugin_ansible::events::{Run, log_errors, one_line};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The outputs every run has, in order, before any set_stats data.
const FIXED: &[&str] = &[
    "ok",
    "changed",
    "failed",
    "unreachable",
    "skipped",
    "rescued",
    "ignored",
    "hosts",
    "report",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let run = Run::parse(&text);
    let failed = run.results.iter().any(|r| {
        let status = r.get("status").and_then(Value::as_str);
        (status == Some("failed") && r.get("ignored") != Some(&Value::Bool(true)))
            || status == Some("unreachable")
    });
    let failure = run.failure();
    assert_eq!(failure.is_some(), failed, "{failure:?}");

    let declared = ["fact".to_owned(), "ok".to_owned(), "report".to_owned()];
    let outputs = run.outputs(&declared);
    let keys: Vec<&str> = outputs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(&keys[..FIXED.len()], FIXED);
    for (i, key) in keys.iter().enumerate() {
        assert!(!keys[..i].contains(key), "output `{key}` twice");
    }
    // `hosts` and `report` are JSON unless set_stats data replaced them.
    let custom = run
        .stats
        .as_ref()
        .and_then(|s| s.get("custom"))
        .and_then(|c| c.get("_run"))
        .and_then(Value::as_object);
    for (key, value) in &outputs {
        if (key == "hosts" || key == "report") && !custom.is_some_and(|c| c.contains_key(key)) {
            serde_json::from_str::<Value>(value).expect("hosts and report are JSON");
        }
    }

    for error in log_errors(&text) {
        assert!(!one_line(&error).contains('\n'));
    }
    assert!(!one_line(&text).contains('\n'));
});
