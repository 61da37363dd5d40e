//! The JSON messages of distributed mode (jobs, reports, drone heartbeats, attempt ids and marks) and the run events a store hands back.
//!
//! Every reader gets the same bytes: the corpus holds examples of each
//! message, and a mutation of one kind of message is as good a test of the
//! others' readers as any. What a reader accepts must survive being written
//! and read again unchanged, since leaders and drones write what they read
//! back later.

#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use drover::rfc3339;
use drover::runs::Numbered;
use drover::transport::redis::{AttemptId, AttemptMark, DroneInfo, Job, ProtocolError, Report};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Job::decode(data) {
        Ok(job) => assert_eq!(Job::decode(job.encode().as_bytes()), Ok(job)),
        Err(e) => check_error(&e),
    }
    match Report::decode(data) {
        Ok(report) => assert_eq!(Report::decode(report.encode().as_bytes()), Ok(report)),
        Err(e) => check_error(&e),
    }
    if let Ok(info) = serde_json::from_slice::<DroneInfo>(data) {
        let text = serde_json::to_vec(&info).unwrap();
        assert_eq!(serde_json::from_slice::<DroneInfo>(&text).unwrap(), info);
    }
    // A stored event is written as JSON and read back by a restarted or
    // another leader: once written, it must read back as itself (timestamps
    // are stored to the microsecond, so the first write may round them).
    if let Ok(event) = serde_json::from_slice::<Numbered>(data) {
        let written = serde_json::to_vec(&event).unwrap();
        let reread: Numbered = serde_json::from_slice(&written).unwrap_or_else(|e| {
            panic!(
                "{} does not read back: {e}",
                String::from_utf8_lossy(&written)
            )
        });
        assert_eq!(serde_json::to_vec(&reread).unwrap(), written);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = text.parse::<AttemptId>() {
        assert_eq!(id.to_string().parse::<AttemptId>(), Ok(id));
    }
    if let Some(mark) = AttemptMark::parse(text) {
        assert_eq!(mark.as_str(), text);
    }
    if let Some(time) = rfc3339::parse(text) {
        let written = rfc3339::format(time);
        let reread = rfc3339::parse(&written)
            .unwrap_or_else(|| panic!("`{text}` formats as `{written}`, which does not parse"));
        let micros = |t: std::time::SystemTime| match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_micros() as i128,
            Err(e) => -(e.duration().as_nanos().div_ceil(1000) as i128),
        };
        assert_eq!(micros(reread), micros(time), "`{text}` → `{written}`");
        assert!(
            reread
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .subsec_nanos()
                % 1000
                == 0
        );
    }
});

/// Refusals say what is wrong.
fn check_error(error: &ProtocolError) {
    match error {
        ProtocolError::Malformed(why) => assert!(!why.is_empty()),
        ProtocolError::Version(v) => assert_ne!(*v, drover::transport::redis::protocol::VERSION),
    }
}
