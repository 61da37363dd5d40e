//! The drone's side of the jobs streams: creating the consumer group,
//! reading and claiming entries, and parsing what Redis answers without
//! trusting what other writers put there.

use std::time::Duration;

use redis::Value;
use redis::aio::ConnectionLike;

use crate::transport::redis::entries::{self, RawEntry};
use crate::transport::redis::protocol::{self, GROUP, JOB_FIELD, Job, ProtocolError};

/// One entry of a pool's jobs stream, as it came.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The pool whose stream it is on.
    pub pool: String,
    /// The stream entry id.
    pub id: String,
    /// Its fields, as raw bytes; `None` when the entry is gone from the stream.
    pub fields: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl Entry {
    fn of(pool: &str, raw: RawEntry) -> Entry {
        Entry {
            pool: pool.to_owned(),
            id: raw.id,
            fields: raw.fields,
        }
    }

    /// The jobs stream the entry is on.
    pub fn stream(&self) -> String {
        protocol::jobs_key(&self.pool)
    }

    /// The job the entry carries.
    pub fn job(&self) -> Result<Job, ProtocolError> {
        if self.fields.is_none() {
            return Err(ProtocolError::Malformed(
                "the entry has no fields (deleted from the stream)".into(),
            ));
        }
        let value = entries::field(self.fields.as_deref(), JOB_FIELD)
            .ok_or_else(|| ProtocolError::Malformed(format!("no `{JOB_FIELD}` field")))?;
        Job::decode(value)
    }
}

/// Makes the group `drones` on each pool's stream (and the stream if need
/// be); a group that exists already is fine.
pub async fn create_groups<C: ConnectionLike>(
    conn: &mut C,
    pools: &[String],
) -> redis::RedisResult<()> {
    for pool in pools {
        let made: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(protocol::jobs_key(pool))
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(conn)
            .await;
        match made {
            Err(e) if e.code() != Some("BUSYGROUP") => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Whether Redis lost the group (or the stream): after a restart without
/// an append-only file, or when someone deleted the stream.
pub fn is_no_group(error: &redis::RedisError) -> bool {
    error.code() == Some("NOGROUP")
}

/// Reads up to `count` new entries from the pools' streams for consumer
/// `consumer`, waiting up to `block` for the first one.
pub async fn read_new<C: ConnectionLike>(
    conn: &mut C,
    consumer: &str,
    pools: &[String],
    count: usize,
    block: Duration,
) -> redis::RedisResult<Vec<Entry>> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(count.max(1))
        .arg("BLOCK")
        // BLOCK 0 would wait for ever.
        .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1))
        .arg("STREAMS");
    for pool in pools {
        cmd.arg(protocol::jobs_key(pool));
    }
    for _ in pools {
        cmd.arg(">");
    }
    let reply: Value = cmd.query_async(conn).await?;
    Ok(parse_read(reply, pools))
}

/// Takes over up to `count` entries of `pool`'s stream that have been
/// pending (with any consumer) for longer than `min_idle`. Walks the
/// pending list from `cursor` with at most `calls` commands (each looks at
/// up to ten times COUNT entries) and leaves `cursor` where the next round
/// goes on, so that a long list of live entries costs little per round.
pub async fn claim_idle<C: ConnectionLike>(
    conn: &mut C,
    consumer: &str,
    pool: &str,
    min_idle: Duration,
    count: usize,
    cursor: &mut String,
    calls: usize,
) -> redis::RedisResult<Vec<Entry>> {
    let key = protocol::jobs_key(pool);
    let mut found = Vec::new();
    for _ in 0..calls.max(1) {
        let reply: Value = redis::cmd("XAUTOCLAIM")
            .arg(&key)
            .arg(GROUP)
            .arg(consumer)
            .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX))
            .arg(cursor.as_str())
            .arg("COUNT")
            .arg(count.saturating_sub(found.len()).max(1))
            .query_async(conn)
            .await?;
        let (next, entries) = parse_autoclaim(reply, pool);
        found.extend(entries);
        *cursor = next.unwrap_or_else(|| "0-0".to_owned());
        if cursor == "0-0" || found.len() >= count {
            break;
        }
    }
    Ok(found)
}

/// Takes an entry this drone runs back to itself, so that its idle time
/// stays low and no other drone claims it. With `idle`, sets the entry's
/// idle time instead, so that another drone may claim it at once.
pub async fn touch<C: ConnectionLike>(
    conn: &mut C,
    consumer: &str,
    entry: &Entry,
    idle: Option<Duration>,
) -> redis::RedisResult<()> {
    let mut cmd = redis::cmd("XCLAIM");
    cmd.arg(entry.stream())
        .arg(GROUP)
        .arg(consumer)
        .arg(0)
        .arg(&entry.id);
    if let Some(idle) = idle {
        cmd.arg("IDLE")
            .arg(u64::try_from(idle.as_millis()).unwrap_or(u64::MAX));
    }
    cmd.arg("JUSTID");
    let _: Value = cmd.query_async(conn).await?;
    Ok(())
}

/// The ids of up to `count` entries of `pool`'s stream pending with `consumer`.
pub async fn pending_of<C: ConnectionLike>(
    conn: &mut C,
    consumer: &str,
    pool: &str,
    count: usize,
) -> redis::RedisResult<Vec<String>> {
    let reply: Value = redis::cmd("XPENDING")
        .arg(protocol::jobs_key(pool))
        .arg(GROUP)
        .arg("-")
        .arg("+")
        .arg(count)
        .arg(consumer)
        .query_async(conn)
        .await?;
    let Value::Array(rows) = reply else {
        return Ok(Vec::new());
    };
    Ok(rows
        .into_iter()
        .filter_map(|row| match row {
            Value::Array(parts) => parts
                .into_iter()
                .next()
                .and_then(entries::bytes)
                .and_then(|id| String::from_utf8(id).ok()),
            _ => None,
        })
        .collect())
}

/// The entries of an `XREADGROUP` answer, on the streams of `pools` only.
fn parse_read(reply: Value, pools: &[String]) -> Vec<Entry> {
    let mut found = Vec::new();
    for (key, items) in entries::streams(reply) {
        let Some(pool) = pools
            .iter()
            .find(|pool| protocol::jobs_key(pool).as_bytes() == key.as_slice())
        else {
            continue;
        };
        found.extend(items.into_iter().map(|raw| Entry::of(pool, raw)));
    }
    found
}

/// The next cursor and the claimed entries of an `XAUTOCLAIM` answer.
fn parse_autoclaim(reply: Value, pool: &str) -> (Option<String>, Vec<Entry>) {
    let Value::Array(parts) = reply else {
        return (None, Vec::new());
    };
    let mut parts = parts.into_iter();
    let next = parts
        .next()
        .and_then(entries::bytes)
        .and_then(|b| String::from_utf8(b).ok());
    let claimed = parts
        .next()
        .map(|items| {
            entries::entries(items)
                .into_iter()
                .map(|raw| Entry::of(pool, raw))
                .collect()
        })
        .unwrap_or_default();
    (next, claimed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn read_answers_parse_and_odd_entries_say_why() {
        let pools = vec!["default".to_owned(), "gpu".to_owned()];
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk("drover:jobs:gpu"),
                Value::Array(vec![
                    Value::Array(vec![
                        bulk("1-1"),
                        Value::Array(vec![bulk("job"), bulk("{not json")]),
                    ]),
                    Value::Array(vec![bulk("1-2"), Value::Nil]),
                    Value::Array(vec![
                        bulk("1-3"),
                        Value::Array(vec![bulk("other"), bulk("x")]),
                    ]),
                    Value::Int(7),
                ]),
            ]),
            Value::Array(vec![bulk("drover:jobs:elsewhere"), Value::Array(vec![])]),
        ]);
        let entries = parse_read(reply, &pools);
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["1-1", "1-2", "1-3"]);
        assert!(entries.iter().all(|e| e.pool == "gpu"));
        let reasons: Vec<String> = entries
            .iter()
            .map(|e| e.job().unwrap_err().to_string())
            .collect();
        assert!(reasons[0].contains("job:"), "{}", reasons[0]);
        assert!(reasons[1].contains("no fields"), "{}", reasons[1]);
        assert!(reasons[2].contains("no `job` field"), "{}", reasons[2]);
        assert!(parse_read(Value::Nil, &pools).is_empty());
    }

    #[test]
    fn autoclaim_answers_parse() {
        let reply = Value::Array(vec![
            bulk("0-0"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("5-0"),
                    Value::Array(vec![bulk("job"), bulk("{}")]),
                ]),
                Value::Nil,
            ]),
            Value::Array(vec![bulk("4-0")]),
        ]);
        let (next, entries) = parse_autoclaim(reply, "default");
        assert_eq!(next.as_deref(), Some("0-0"));
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].id, "5-0");
        assert_eq!(entries[0].stream(), "drover:jobs:default");
    }
}
