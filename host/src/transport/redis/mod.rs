//! Dispatch through Redis: the protocol leaders and drones speak, the
//! connection both open, and the leader's dispatch.

pub mod dispatch;
mod enqueue;
pub mod entries;
mod fleet;
pub mod protocol;
mod reports;
pub(crate) mod retry;
pub mod subscription;

pub use dispatch::{DroneStatus, PoolStatus, RedisDispatcher};
pub use protocol::{AttemptId, AttemptMark, DroneInfo, Job, ProtocolError, Report};

/// What can go wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// The URL does not parse.
    #[error("`{url}` is not a Redis URL (try redis://127.0.0.1:6379): {source}")]
    Url {
        url: String,
        #[source]
        source: redis::RedisError,
    },
    /// Redis could not be reached, or refused a command.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Opens a client for `url`, checking the URL but not connecting yet.
pub fn client(url: &str) -> Result<redis::Client, RedisError> {
    redis::Client::open(url).map_err(|source| RedisError::Url {
        url: url.to_owned(),
        source,
    })
}

/// A connection that reconnects by itself after Redis restarts, so a
/// command fails only while Redis is away. Checks that Redis answers first.
pub async fn connect(url: &str) -> Result<redis::aio::ConnectionManager, RedisError> {
    let client = client(url)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(6)
        .set_max_delay(std::time::Duration::from_secs(2));
    let mut conn = redis::aio::ConnectionManager::new_with_config(client, config).await?;
    let _: String = redis::cmd("PING").query_async(&mut conn).await?;
    Ok(conn)
}
