//! A pub/sub subscription that outlives Redis restarts: what leaders (run
//! cancels) and drones (attempt cancels) both listen with.

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::retry::Backoff;

/// Calls `on_message` with each message's payload on `channel` until `stop`
/// fires, subscribing again (with a backoff) whenever the connection drops.
pub async fn listen(
    client: redis::Client,
    channel: &str,
    stop: CancellationToken,
    mut on_message: impl FnMut(String),
) {
    let mut backoff = Backoff::new();
    loop {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            redis::RedisResult::Ok(pubsub)
        };
        let pubsub = tokio::select! {
            () = stop.cancelled() => return,
            subscribed = subscribed => subscribed,
        };
        match pubsub {
            Ok(pubsub) => {
                backoff.reset();
                let mut messages = pubsub.into_on_message();
                loop {
                    let message = tokio::select! {
                        () = stop.cancelled() => return,
                        message = messages.next() => message,
                    };
                    let Some(message) = message else { break };
                    on_message(String::from_utf8_lossy(message.get_payload_bytes()).into_owned());
                }
                tracing::warn!("lost the subscription to {channel}; subscribing again");
            }
            Err(e) => tracing::warn!(error = %e, "cannot subscribe to {channel}; retrying"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = backoff.wait() => {}
        }
    }
}
