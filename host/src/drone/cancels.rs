//! Cancels for running attempts: a token per attempt id, fired by the
//! `drover:cancel` channel (or by the attempt's mark, when a message was
//! missed while Redis was away).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::transport::redis::protocol::ATTEMPT_CANCEL_CHANNEL;
use crate::transport::redis::subscription;

/// The attempts running on this drone, by attempt id.
#[derive(Clone, Default)]
pub struct Cancels {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    /// The same attempt may run twice here (delivered, then claimed).
    tokens: HashMap<String, Vec<(u64, CancellationToken)>>,
}

/// Keeps an attempt's token registered until dropped.
pub struct Registered {
    cancels: Cancels,
    attempt: String,
    serial: u64,
}

impl Cancels {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fires `token` when `attempt` is canceled, until the guard is dropped.
    pub fn register(&self, attempt: String, token: CancellationToken) -> Registered {
        let mut inner = self.lock();
        inner.next += 1;
        let serial = inner.next;
        inner
            .tokens
            .entry(attempt.clone())
            .or_default()
            .push((serial, token));
        Registered {
            cancels: self.clone(),
            attempt,
            serial,
        }
    }

    /// Cancels every run of `attempt` here; says whether there was one.
    pub fn cancel(&self, attempt: &str) -> bool {
        let inner = self.lock();
        let Some(tokens) = inner.tokens.get(attempt) else {
            return false;
        };
        for (_, token) in tokens {
            token.cancel();
        }
        true
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut inner = self.cancels.lock();
        if let Some(tokens) = inner.tokens.get_mut(&self.attempt) {
            tokens.retain(|(serial, _)| *serial != self.serial);
            if tokens.is_empty() {
                inner.tokens.remove(&self.attempt);
            }
        }
    }
}

/// Listens on `drover:cancel` until `quit`, subscribing again whenever the
/// connection drops.
pub async fn listen(client: redis::Client, cancels: Cancels, quit: CancellationToken) {
    subscription::listen(client, ATTEMPT_CANCEL_CHANNEL, quit, |attempt| {
        let attempt = attempt.trim();
        if cancels.cancel(attempt) {
            tracing::info!(%attempt, "canceling an attempt on request");
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_reaches_every_registered_run_until_it_is_dropped() {
        let cancels = Cancels::default();
        let (a, b) = (CancellationToken::new(), CancellationToken::new());
        let first = cancels.register("r/1/1".into(), a.clone());
        let _second = cancels.register("r/1/1".into(), b.clone());
        assert!(!cancels.cancel("r/2/1"));
        drop(first);
        assert!(cancels.cancel("r/1/1"));
        assert!(!a.is_cancelled());
        assert!(b.is_cancelled());
    }
}
