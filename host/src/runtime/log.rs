//! The `log` capability: a driver's log lines, sent to the node's log sink.

use std::sync::Arc;

use super::bindings::drover::driver::log::{Host, Level};
use crate::secrets::Redactor;
use crate::task::{LogLevel, LogLine, LogSink, LogSource};

/// Per-instance state of the `log` interface. Every line of a node's log
/// passes through [`LogHost::send`], which hides the node's secrets.
pub struct LogHost {
    node: Arc<str>,
    sink: Option<LogSink>,
    redactor: Arc<Redactor>,
}

impl LogHost {
    /// Lines go to `sink`, or to `tracing` when there is none (while a
    /// driver is described or validated).
    pub fn new(node: Arc<str>, sink: Option<LogSink>) -> Self {
        LogHost {
            node,
            sink,
            redactor: Arc::default(),
        }
    }

    /// Hides these values from every line sent.
    pub fn with_redactor(mut self, redactor: Arc<Redactor>) -> Self {
        self.redactor = redactor;
        self
    }

    /// What hides the node's secrets, for text that leaves the node
    /// another way than through the log.
    pub fn redactor(&self) -> &Arc<Redactor> {
        &self.redactor
    }

    /// Sends one line, waiting for room when the sink is full.
    pub async fn send(&self, source: LogSource, level: LogLevel, message: String) {
        let message = self.redactor.redact_owned(message);
        match &self.sink {
            // A closed sink means nobody is listening any more; the node
            // goes on regardless.
            Some(sink) => {
                let _ = sink
                    .send(LogLine {
                        node: self.node.clone(),
                        source,
                        level,
                        message,
                    })
                    .await;
            }
            None => tracing::info!(node = %self.node, ?level, "{message}"),
        }
    }
}

// Implemented on the `Arc` because `exec` shares the same log with the
// tasks that pump process output.
impl Host for Arc<LogHost> {
    async fn write(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        self.send(LogSource::Driver, level, message).await;
        Ok(())
    }
}
