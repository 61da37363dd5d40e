//! The wire protocol between leaders and drones: the Redis keys they share
//! and the messages on their streams, all JSON.
//!
//! # Keys
//! Every key starts with `drover:`.
//!
//! | key | type | written by | what |
//! |---|---|---|---|
//! | `drover:jobs:<pool>` | stream, group `drones` | leader | one entry per attempt to run, field `job` = [`Job`] |
//! | `drover:run:<run>:reports` | stream | drones | what happened to the run's attempts, field `report` = [`Report`] |
//! | `drover:run:<run>:attempts` | hash | both | attempt id → [`AttemptMark`]: dedupes enqueues and finished attempts |
//! | `drover:driver:<hex>` | string | leader | the component bytes whose sha256 is `<hex>` |
//! | `drover:drone:<id>` | string, expires | drone | [`DroneInfo`], refreshed every heartbeat |
//! | `drover:drones` | set | drone | ids of drones seen in the last [`DRONE_RETENTION`] (stale ones have no `drover:drone:<id>`) |
//! | `drover:drones:last` | hash | drone | id → its last [`DroneInfo`], kept after it stopped so that a dead drone shows when it was last seen |
//! | `drover:pools` | set | both | every pool a job was sent to or a drone serves |
//! | `drover:cancel` | pub/sub channel | leader | an attempt id whose attempt must stop |
//!
//! The leaders' run state (run summaries, DAG texts, event logs, final
//! records, leases) lives under `drover:run:<run>:…` and `drover:runs`, kept
//! by the Redis store; drones never read it.
//!
//! # An attempt's life
//! 1. The leader owning the run stores the driver's bytes (`SET NX`), marks
//!    the attempt `queued` (`HSETNX`: a second enqueue of the same attempt,
//!    by a restarted or competing leader, stops here) and adds the [`Job`]
//!    to its pool's stream.
//! 2. A drone of that pool reads it with `XREADGROUP`, fetches the driver by
//!    digest if it lacks it (and refuses bytes whose sha256 differs), reads
//!    the attempt's mark and, unless it is `done` or `canceled` (skipped) or
//!    missing (the run is over and its keys deleted: skipped too), reports
//!    [`Report::Started`] in the same script call, streams [`Report::Log`]
//!    lines (numbered, so that the leader drops a batch written twice),
//!    and while the attempt runs keeps the entry's idle time low
//!    (`XCLAIM` to itself).
//! 3. At the end, in one script call: [`Report::Done`] added to the run's
//!    reports and the attempt marked `done` (unless the run ended meanwhile:
//!    its keys are not made again), the job entry acknowledged and
//!    deleted. (A drone sends the `Started` of every attempt starting at
//!    the same time in one call, and likewise their ends; each attempt's
//!    writes stay together.) A drone that dies before that leaves the entry pending; once
//!    it has been idle longer than the claim time, another drone of the pool
//!    claims it (`XAUTOCLAIM`) and runs the attempt again under the same id.
//! 4. The leader reads the run's reports, and takes the first `Done` of each
//!    attempt; later duplicates are ignored. Delivery is at least once;
//!    every message carries its attempt id, so applying one twice is harmless.
//!
//! Entries that do not parse, or carry another protocol version, are logged
//! and dropped (acknowledged and deleted); they never stop a drone or a leader.

use serde::{Deserialize, Serialize};

use crate::task::{LogLine, Outcome, Task};

/// The protocol version every message carries; others are dropped.
pub const VERSION: u32 = 1;

/// The pool of nodes that name none.
pub const DEFAULT_POOL: &str = "default";

/// The consumer group of drones on every jobs stream.
pub const GROUP: &str = "drones";

/// The field of a jobs-stream entry holding the [`Job`].
pub const JOB_FIELD: &str = "job";

/// The field of a reports-stream entry holding the [`Report`].
pub const REPORT_FIELD: &str = "report";

/// The set of drone ids.
pub const DRONES: &str = "drover:drones";

/// The hash of every listed drone's last heartbeat.
pub const DRONES_LAST: &str = "drover:drones:last";

/// How long a drone that stopped beating stays listed (with its last
/// heartbeat) before leaders drop it: drone ids change with every process,
/// so the list would otherwise grow with every restart.
pub const DRONE_RETENTION: std::time::Duration = std::time::Duration::from_secs(3600);

/// The set of pool names.
pub const POOLS: &str = "drover:pools";

/// The pub/sub channel of attempt ids to cancel.
pub const ATTEMPT_CANCEL_CHANNEL: &str = "drover:cancel";

/// The jobs stream of a pool.
pub fn jobs_key(pool: &str) -> String {
    format!("drover:jobs:{pool}")
}

/// The reports stream of a run.
pub fn reports_key(run: &str) -> String {
    format!("drover:run:{run}:reports")
}

/// The attempt marks of a run.
pub fn attempts_key(run: &str) -> String {
    format!("drover:run:{run}:attempts")
}

/// Where a component's bytes are kept, by the hex sha256 of those bytes.
pub fn driver_key(digest_hex: &str) -> String {
    format!("drover:driver:{digest_hex}")
}

/// A drone's heartbeat record.
pub fn drone_key(id: &str) -> String {
    format!("drover:drone:{id}")
}

/// Whether `pool` may name a pool: 1–64 of `[A-Za-z0-9_.-]`.
pub fn valid_pool(pool: &str) -> bool {
    (1..=64).contains(&pool.len())
        && pool
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The id of one attempt of one node of one run: `<run>/<node index>/<attempt>`.
/// The same attempt keeps its id however often it is delivered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId {
    /// The run.
    pub run: String,
    /// The node's index in the DAG.
    pub node: usize,
    /// 1 for the first attempt.
    pub attempt: u32,
}

impl std::fmt::Display for AttemptId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.run, self.node, self.attempt)
    }
}

impl std::str::FromStr for AttemptId {
    type Err = ProtocolError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ProtocolError::Malformed(format!("`{s}` is not an attempt id"));
        let mut parts = s.rsplitn(3, '/');
        let attempt = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let node = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let run = parts.next().filter(|r| !r.is_empty()).ok_or_else(bad)?;
        Ok(AttemptId {
            run: run.to_owned(),
            node,
            attempt,
        })
    }
}

impl Serialize for AttemptId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AttemptId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One attempt to run, as a leader sends it to the drones of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Always [`VERSION`].
    pub v: u32,
    /// Which attempt this is.
    pub attempt_id: AttemptId,
    /// The pool it was sent to.
    pub pool: String,
    /// The driver's name as the DAG wrote it (for logs and the drone's policy).
    pub driver: String,
    /// The hex sha256 of the driver's component: the drone runs exactly this.
    pub digest: String,
    /// The node, upstream outputs substituted. Its `deadline` is absolute.
    pub task: Task,
    /// When the leader sent it, in microseconds since the Unix epoch: the
    /// start of the dispatch latency.
    pub sent_us: u64,
}

/// What a drone says about an attempt, on the run's reports stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Report {
    /// The drone began running the attempt.
    Started {
        /// Always [`VERSION`].
        v: u32,
        attempt_id: AttemptId,
        /// The drone's id.
        drone: String,
        /// When, in microseconds since the Unix epoch.
        at_us: u64,
    },
    /// A log line the attempt wrote.
    Log {
        /// Always [`VERSION`].
        v: u32,
        attempt_id: AttemptId,
        /// The drone's id.
        #[serde(default)]
        drone: String,
        /// The line's number in what this drone's run of the attempt wrote,
        /// from 1. A batch of lines written again (its reply was lost when
        /// Redis went away) repeats numbers already seen. 0 (missing, from a
        /// drone older than the numbering): forwarded as it comes.
        #[serde(default)]
        seq: u64,
        line: LogLine,
    },
    /// The attempt ended.
    Done {
        /// Always [`VERSION`].
        v: u32,
        attempt_id: AttemptId,
        /// The drone's id.
        drone: String,
        outcome: Outcome,
    },
}

impl Report {
    /// The attempt the report is about.
    pub fn attempt_id(&self) -> &AttemptId {
        match self {
            Report::Started { attempt_id, .. }
            | Report::Log { attempt_id, .. }
            | Report::Done { attempt_id, .. } => attempt_id,
        }
    }

    fn version(&self) -> u32 {
        match self {
            Report::Started { v, .. } | Report::Log { v, .. } | Report::Done { v, .. } => *v,
        }
    }
}

/// Where an attempt stands, in its run's attempts hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptMark {
    /// Sent to a pool; not finished.
    Queued,
    /// A drone reported it done.
    Done,
    /// The leader canceled it: a drone that has not started it must not.
    Canceled,
}

impl AttemptMark {
    /// The hash value.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptMark::Queued => "queued",
            AttemptMark::Done => "done",
            AttemptMark::Canceled => "canceled",
        }
    }

    /// Parses a hash value.
    pub fn parse(text: &str) -> Option<AttemptMark> {
        match text {
            "queued" => Some(AttemptMark::Queued),
            "done" => Some(AttemptMark::Done),
            "canceled" => Some(AttemptMark::Canceled),
            _ => None,
        }
    }
}

/// What a drone says about itself every heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroneInfo {
    /// Unique per drone process: `<host>-<pid>-<random>` unless set.
    pub id: String,
    /// The machine it runs on.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// The pools it takes nodes from.
    pub pools: Vec<String>,
    /// How many attempts it runs at once at most.
    pub concurrency: usize,
    /// How many it runs now.
    pub running: usize,
    /// How many attempts it has finished since it started.
    pub finished: u64,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it last reported (RFC 3339).
    pub last_seen: String,
    /// drover's version.
    pub version: String,
}

/// A message that cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// It does not parse, or lacks its field.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// It speaks another protocol version.
    #[error("message of protocol version {0}, this drover speaks {VERSION}")]
    Version(u32),
}

impl Job {
    /// The entry's value.
    pub fn encode(&self) -> String {
        // Plain data with string keys: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses an entry's `job` field.
    pub fn decode(bytes: &[u8]) -> Result<Job, ProtocolError> {
        let job: Job = serde_json::from_slice(bytes)
            .map_err(|e| ProtocolError::Malformed(format!("job: {e}")))?;
        if job.v != VERSION {
            return Err(ProtocolError::Version(job.v));
        }
        Ok(job)
    }
}

impl Report {
    /// The entry's value.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses an entry's `report` field.
    pub fn decode(bytes: &[u8]) -> Result<Report, ProtocolError> {
        let report: Report = serde_json::from_slice(bytes)
            .map_err(|e| ProtocolError::Malformed(format!("report: {e}")))?;
        if report.version() != VERSION {
            return Err(ProtocolError::Version(report.version()));
        }
        Ok(report)
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::NodeStatus;

    fn id() -> AttemptId {
        AttemptId {
            run: "r-1/x".into(),
            node: 12,
            attempt: 3,
        }
    }

    #[test]
    fn attempt_ids_round_trip_even_with_slashes_in_the_run() {
        let text = id().to_string();
        assert_eq!(text, "r-1/x/12/3");
        assert_eq!(text.parse::<AttemptId>().unwrap(), id());
        for bad in ["", "1/2", "/1/2", "r/x/2", "r/1/-2"] {
            assert!(bad.parse::<AttemptId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn jobs_and_reports_round_trip_and_bad_ones_say_why() {
        let job = Job {
            v: VERSION,
            attempt_id: id(),
            pool: DEFAULT_POOL.into(),
            driver: "noop".into(),
            digest: "ab".repeat(32),
            task: Task::default(),
            sent_us: 7,
        };
        assert_eq!(Job::decode(job.encode().as_bytes()).unwrap(), job);
        let done = Report::Done {
            v: VERSION,
            attempt_id: id(),
            drone: "d".into(),
            outcome: Outcome::with_message(NodeStatus::Success, ""),
        };
        assert_eq!(Report::decode(done.encode().as_bytes()).unwrap(), done);
        let log = Report::Log {
            v: VERSION,
            attempt_id: id(),
            drone: "d".into(),
            seq: 4,
            line: crate::task::LogLine {
                node: "n".into(),
                source: crate::task::LogSource::Stdout,
                level: crate::task::LogLevel::Info,
                message: "hi".into(),
            },
        };
        assert_eq!(Report::decode(log.encode().as_bytes()).unwrap(), log);
        // From a drone older than the numbering: unnumbered.
        let older = log
            .encode()
            .replace("\"drone\":\"d\",", "")
            .replace("\"seq\":4,", "");
        assert!(
            matches!(
                Report::decode(older.as_bytes()),
                Ok(Report::Log { seq: 0, .. })
            ),
            "{older}"
        );
        assert!(matches!(
            Job::decode(b"{not json"),
            Err(ProtocolError::Malformed(_))
        ));
        let future = job.encode().replace("\"v\":1", "\"v\":9");
        assert_eq!(
            Job::decode(future.as_bytes()),
            Err(ProtocolError::Version(9))
        );
    }

    #[test]
    fn pool_names_are_checked() {
        assert!(valid_pool("default"));
        assert!(valid_pool("gpu-1.eu_west"));
        assert!(!valid_pool(""));
        assert!(!valid_pool("a b"));
        assert!(!valid_pool("a:b"));
        assert!(!valid_pool(&"x".repeat(65)));
    }
}
