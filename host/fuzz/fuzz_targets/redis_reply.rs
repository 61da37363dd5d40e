//! Stream replies as Redis sends them (RESP2 or RESP3 bytes), read into job and report entries the way drones and leaders read `XREADGROUP`, `XAUTOCLAIM` and `XREAD` answers.
//!
//! The bytes go through the redis crate's own reply parser first, which is
//! what sits between the socket and drover's code: any other writer of the
//! shared Redis decides what is in these replies.

#![no_main]

use drover::transport::redis::entries;
use drover::transport::redis::protocol::{JOB_FIELD, REPORT_FIELD};
use drover::transport::redis::{Job, Report};
use libfuzzer_sys::fuzz_target;
use redis::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(reply) = redis::parse_redis_value(data) else {
        return;
    };
    let listed = match &reply {
        Value::Array(items) | Value::Set(items) => items.len(),
        Value::Map(pairs) => pairs.len(),
        _ => 0,
    };
    let streams = entries::streams(reply.clone());
    assert!(streams.len() <= listed);
    let direct = entries::entries(reply.clone());
    assert!(direct.len() <= listed);
    // XAUTOCLAIM answers `[cursor, entries, deleted]`: the drone reads the
    // second element as entries.
    if let Value::Array(parts) = reply
        && let Some(items) = parts.into_iter().nth(1)
    {
        read(&entries::entries(items));
    }
    read(&direct);
    for (_, found) in &streams {
        read(found);
    }
});

fn read(found: &[entries::RawEntry]) {
    for entry in found {
        if let Some(job) = entry.field(JOB_FIELD) {
            let _ = Job::decode(job);
        }
        if let Some(report) = entry.field(REPORT_FIELD) {
            let _ = Report::decode(report);
        }
    }
}
