//! One attempt of one node: the dispatcher call, its deadline, and the report back.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{CANCEL_GRACE, Dispatch, NodeRun};
use crate::dag::NodeIndex;
use crate::rfc3339;
use crate::task::{NodeStatus, Outcome};

/// How an attempt ended, as reported to the scheduler.
#[derive(Debug)]
pub(super) struct Ended {
    pub index: NodeIndex,
    pub attempt: u32,
    pub started_at: SystemTime,
    pub finished_at: SystemTime,
    pub outcome: Outcome,
    /// The node's own timeout passed and the engine canceled the attempt.
    pub timed_out: Option<Duration>,
}

/// Reports the attempt's end exactly once, even if the dispatcher panics.
struct Report {
    to: UnboundedSender<Ended>,
    index: NodeIndex,
    attempt: u32,
    started_at: SystemTime,
    sent: bool,
}

impl Report {
    fn send(mut self, outcome: Outcome, timed_out: Option<Duration>) {
        self.sent = true;
        self.send_now(outcome, timed_out);
    }

    fn send_now(&self, outcome: Outcome, timed_out: Option<Duration>) {
        // The scheduler only goes away when the run future is dropped.
        let _ = self.to.send(Ended {
            index: self.index,
            attempt: self.attempt,
            started_at: self.started_at,
            finished_at: rfc3339::now(),
            outcome,
            timed_out,
        });
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        if !self.sent {
            self.send_now(Outcome::failure("the dispatcher panicked"), None);
        }
    }
}

/// Runs `run` on `dispatch`, canceling it when `deadline` (the node's
/// timeout, and the instant it passes) comes or `stop` fires, and reports
/// how it ended to `to`. Spawned once per attempt.
pub(super) async fn run(
    dispatch: Arc<dyn Dispatch>,
    run: NodeRun,
    started_at: SystemTime,
    deadline: Option<(Duration, Instant)>,
    stop: Arc<CancellationToken>,
    to: UnboundedSender<Ended>,
) {
    let report = Report {
        to,
        index: run.index,
        attempt: run.task.attempt,
        started_at,
        sent: false,
    };
    let cancel = run.cancel.clone();
    let mut attempt = dispatch.dispatch(run);
    let timed_out = tokio::select! {
        biased;
        outcome = &mut attempt => return report.send(outcome, None),
        _ = sleep_until(deadline) => deadline.map(|(t, _)| t),
        _ = stop.cancelled() => None,
    };
    cancel.cancel();
    let outcome = match tokio::time::timeout(CANCEL_GRACE, attempt).await {
        Ok(outcome) => outcome,
        Err(_) => {
            tracing::warn!(
                node = report.index,
                "dispatcher ignored cancel for {CANCEL_GRACE:?}; dropped it"
            );
            Outcome::with_message(
                NodeStatus::Canceled,
                "the dispatcher did not stop when canceled",
            )
        }
    };
    report.send(outcome, timed_out);
}

async fn sleep_until(deadline: Option<(Duration, Instant)>) {
    match deadline {
        Some((_, at)) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
