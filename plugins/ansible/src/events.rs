//! Reading the JSON events of drover's callback plugin into the node's outputs and report.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

/// Counts ansible keeps per host, as the outputs name them: (output, ansible's key).
const COUNTS: &[(&str, &str)] = &[
    ("ok", "ok"),
    ("changed", "changed"),
    ("failed", "failures"),
    ("unreachable", "unreachable"),
    ("skipped", "skipped"),
    ("rescued", "rescued"),
    ("ignored", "ignored"),
];

/// What one ansible-playbook run reported.
#[derive(Debug, Default)]
pub struct Run {
    /// Every host result, in order.
    pub results: Vec<Map<String, Value>>,
    /// The final stats event: `hosts` (counts per host) and `custom` (set_stats data).
    pub stats: Option<Map<String, Value>>,
}

impl Run {
    /// Reads the events file; lines that are not JSON objects are skipped.
    pub fn parse(text: &str) -> Run {
        let mut run = Run::default();
        for line in text.lines() {
            let Ok(Value::Object(event)) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            match event.get("event").and_then(Value::as_str) {
                Some("result") => run.results.push(event),
                Some("stats") => run.stats = Some(event),
                _ => {}
            }
        }
        run
    }

    /// Why the node fails, if a host failed (and the failure was not ignored) or was
    /// unreachable: the first such result, with the count of the others.
    pub fn failure(&self) -> Option<String> {
        let bad: Vec<&Map<String, Value>> = self
            .results
            .iter()
            .filter(|r| {
                let status = text(r, "status");
                (status == "failed" && r.get("ignored") != Some(&Value::Bool(true)))
                    || status == "unreachable"
            })
            .collect();
        let first = bad.first()?;
        let what = if text(first, "status") == "unreachable" {
            format!(
                "host {} was unreachable in task `{}`",
                text(first, "host"),
                text(first, "task")
            )
        } else {
            format!(
                "task `{}` failed on {}",
                text(first, "task"),
                text(first, "host")
            )
        };
        let msg = one_line(text(first, "msg"));
        let mut message = if msg.is_empty() {
            what
        } else {
            format!("{what}: {msg}")
        };
        if bad.len() > 1 {
            message.push_str(&format!(" (and {} more failed results)", bad.len() - 1));
        }
        Some(message)
    }

    /// The node's outputs: totals, per-host counts, the report, set_stats data, and declared
    /// outputs set by set_fact.
    pub fn outputs(&self, declared: &[String]) -> Vec<(String, String)> {
        let empty = Map::new();
        let stats = self.stats.as_ref().unwrap_or(&empty);
        let hosts = stats
            .get("hosts")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let mut outputs = Vec::new();
        for (output, key) in COUNTS {
            let total: u64 = hosts
                .values()
                .filter_map(|counts| counts.get(key).and_then(Value::as_u64))
                .sum();
            outputs.push(((*output).to_owned(), total.to_string()));
        }
        let per_host: Map<String, Value> = hosts
            .iter()
            .map(|(host, counts)| {
                let counts: Map<String, Value> = COUNTS
                    .iter()
                    .map(|(output, key)| {
                        (
                            (*output).to_owned(),
                            counts.get(key).cloned().unwrap_or(json!(0)),
                        )
                    })
                    .collect();
                (host.clone(), Value::Object(counts))
            })
            .collect();
        outputs.push(("hosts".to_owned(), Value::Object(per_host).to_string()));
        let report: Vec<Value> = self
            .results
            .iter()
            .map(|r| {
                let mut entry = Map::new();
                for key in [
                    "play", "task", "host", "status", "changed", "msg", "ignored",
                ] {
                    if let Some(v) = r.get(key) {
                        entry.insert(key.to_owned(), v.clone());
                    }
                }
                Value::Object(entry)
            })
            .collect();
        outputs.push(("report".to_owned(), Value::Array(report).to_string()));

        // set_stats data: run-wide (`per_host: false`, the default) under `_run`.
        // Outputs are found by name through an index: the playbook decides
        // how many keys there are, and a search of the list per key took
        // minutes for 200,000 of them.
        let mut slots: HashMap<String, usize> = outputs
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        let mut set = |key: &str, value: &Value, outputs: &mut Vec<(String, String)>| {
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            match slots.get(key) {
                Some(&i) => outputs[i].1 = value,
                None => {
                    slots.insert(key.to_owned(), outputs.len());
                    outputs.push((key.to_owned(), value));
                }
            }
        };
        if let Some(data) = stats
            .get("custom")
            .and_then(|c| c.get("_run"))
            .and_then(Value::as_object)
        {
            for (key, value) in data {
                set(key, value, &mut outputs);
            }
        }
        // set_fact: only the facts the node asks for, the last value set on any host.
        let set_by_stats: HashSet<String> = outputs.iter().map(|(k, _)| k.clone()).collect();
        for name in declared {
            if set_by_stats.contains(name) {
                continue;
            }
            let fact = self
                .results
                .iter()
                .rev()
                .find_map(|r| r.get("facts").and_then(|f| f.get(name.as_str())));
            if let Some(value) = fact {
                set(name, value, &mut outputs);
            }
        }
        outputs
    }
}

fn text<'a>(event: &'a Map<String, Value>, key: &str) -> &'a str {
    event.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A message on one line: its lines joined with "; ", blank ones dropped.
pub fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The errors in ansible's log file (ANSIBLE_LOG_PATH): each entry logged at ERROR level,
/// with its continuation lines.
pub fn log_errors(log: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let mut current: Option<String> = None;
    for line in log.lines() {
        if is_log_entry(line) {
            if let Some(done) = current.take() {
                errors.push(done.trim_end().to_owned());
            }
            if let Some((_, message)) = line.split_once(" ERROR| ") {
                current = Some(message.to_owned());
            }
        } else if let Some(entry) = current.as_mut() {
            entry.push('\n');
            entry.push_str(line);
        }
    }
    if let Some(done) = current {
        errors.push(done.trim_end().to_owned());
    }
    errors
}

/// ansible's log lines start with `YYYY-MM-DD HH:MM:SS,mmm p=PID `.
fn is_log_entry(line: &str) -> bool {
    // Bytes, not `&line[19..]`: the log is anyone's text, and byte 19 may
    // fall inside a character.
    let b = line.as_bytes();
    b.len() > 24
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[10] == b' '
        && b[13] == b':'
        && b[19] == b','
        && line.contains(" p=")
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: &str = r#"{"event": "play_start", "play": "all"}
{"event": "task_start", "play": "all", "task": "make a file"}
{"changed": true, "event": "result", "host": "h1", "msg": "", "play": "all", "status": "changed", "task": "make a file"}
{"changed": false, "event": "result", "facts": {"answer": 42, "greeting": "hi"}, "host": "h1", "msg": "", "play": "all", "status": "ok", "task": "set_fact"}
{"changed": true, "event": "result", "host": "h1", "ignored": true, "msg": "non-zero return code", "play": "all", "status": "failed", "task": "nope"}
{"changed": false, "event": "result", "host": "h2", "msg": "it broke\nbadly", "play": "all", "status": "failed", "task": "fail here"}
not json
{"custom": {"_run": {"built": "yes", "count": 3}}, "event": "stats", "hosts": {"h1": {"changed": 2, "failures": 0, "ignored": 1, "ok": 3, "rescued": 0, "skipped": 0, "unreachable": 0}, "h2": {"changed": 0, "failures": 1, "ignored": 0, "ok": 0, "rescued": 0, "skipped": 1, "unreachable": 0}}}
"#;

    #[test]
    fn failures_name_the_task_host_and_message() {
        let run = Run::parse(EVENTS);
        assert_eq!(run.results.len(), 4);
        assert_eq!(
            run.failure().unwrap(),
            "task `fail here` failed on h2: it broke; badly"
        );
        assert!(
            Run::parse(&EVENTS.replace(
                "\"status\": \"failed\", \"task\": \"fail here\"",
                "\"status\": \"ok\", \"task\": \"fail here\""
            ))
            .failure()
            .is_none()
        );
    }

    #[test]
    fn outputs_total_per_host_report_stats_and_facts() {
        let run = Run::parse(EVENTS);
        let outputs = run.outputs(&["answer".to_owned(), "missing".to_owned()]);
        let get = |k: &str| {
            outputs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("ok"), Some("3"));
        assert_eq!(get("changed"), Some("2"));
        assert_eq!(get("failed"), Some("1"));
        assert_eq!(get("skipped"), Some("1"));
        assert_eq!(get("built"), Some("yes"));
        assert_eq!(get("count"), Some("3"));
        assert_eq!(get("answer"), Some("42"));
        assert_eq!(get("greeting"), None, "only declared facts");
        assert_eq!(get("missing"), None);
        let hosts: Value = serde_json::from_str(get("hosts").unwrap()).unwrap();
        assert_eq!(hosts["h2"]["failed"], 1);
        let report: Value = serde_json::from_str(get("report").unwrap()).unwrap();
        assert_eq!(report.as_array().unwrap().len(), 4);
        assert_eq!(report[0]["task"], "make a file");
        assert_eq!(report[0]["status"], "changed");
    }

    #[test]
    fn errors_are_read_from_the_log() {
        let log = "2026-12-01 23:41:16,538 p=969 u=root n=ansible INFO| PLAY [all]\n\
                   2026-12-01 23:41:16,538 p=969 u=root n=ansible ERROR| [ERROR]: YAML parsing failed: bad\n\
                   Origin: /tmp/bad.yml:5:1\n\
                   \n\
                   (source not shown)\n\n";
        let errors = log_errors(log);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("[ERROR]: YAML parsing failed: bad\nOrigin: /tmp/bad.yml:5:1")
        );
        assert_eq!(
            one_line(&errors[0]),
            "[ERROR]: YAML parsing failed: bad; Origin: /tmp/bad.yml:5:1; (source not shown)"
        );
    }

    /// Found with the fuzz target `ansible_events` on a large input: each
    /// set_stats key searched the outputs so far, so 200,000 keys (3 MB of
    /// events) took 3 minutes in a release build. Now linear: a second or
    /// so here in a debug build, against many minutes before.
    #[test]
    fn many_set_stats_keys_take_linear_time() {
        let keys = 100_000;
        let data: Map<String, Value> = (0..keys)
            .map(|i| (format!("k{i}"), json!(i)))
            .chain([("ok".to_owned(), json!("mine"))])
            .collect();
        let events = json!({"event": "stats", "hosts": {}, "custom": {"_run": data}}).to_string();
        let started = std::time::Instant::now();
        let outputs = Run::parse(&events).outputs(&["k7".to_owned()]);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "took {:?}",
            started.elapsed()
        );
        // The 9 outputs every run has, `ok` replaced in place, then each key once.
        assert_eq!(outputs.len(), 9 + keys);
        assert_eq!(outputs[0], ("ok".to_owned(), "mine".to_owned()));
        let k7: Vec<&(String, String)> = outputs.iter().filter(|(k, _)| k == "k7").collect();
        assert_eq!(k7, [&("k7".to_owned(), "7".to_owned())]);
    }

    /// Found by fuzzing (host/fuzz, target `ansible_events`): a character
    /// across byte 19 of a line that otherwise starts like a log entry
    /// panicked the driver ("byte index 19 is not a char boundary").
    #[test]
    fn a_character_across_the_millisecond_comma_is_not_a_log_entry() {
        let log = "2026-01-01 10:00:0\u{e9},000 p=1 u=root n=ansible ERROR| boom\n\
                   2026-01-01 10:00:00,\u{e9}00 p=1 u=root n=ansible ERROR| real\n";
        assert_eq!(log_errors(log), ["real"]);
    }
}
