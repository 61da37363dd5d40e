//! The `log` capability: a driver's log lines, sent to the node's log sink.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use super::bindings::drover::driver::log::{Host, Level};
use crate::secrets::Redactor;
use crate::task::{LogLevel, LogLine, LogSink, LogSource, cap_line};

/// Adds the `log` interface to `linker`, each instance's state being its [`LogHost`] (shared
/// with the other interfaces, which log too).
pub(super) fn link(
    linker: &mut wasmtime::component::Linker<super::state::InstanceState>,
) -> wasmtime::Result<()> {
    super::bindings::drover::driver::log::add_to_linker::<
        super::state::InstanceState,
        wasmtime::component::HasSelf<Arc<LogHost>>,
    >(linker, |s| &mut s.log)
}

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
            // drover's own log is one event per line: a driver must not be
            // able to end the line and forge events of drover's after it.
            None => {
                tracing::info!(node = %escape_controls(&self.node), ?level, "{}", escape_controls(&message))
            }
        }
    }
}

/// `text` with its control characters (C0 but tab, DEL, C1) and Unicode line
/// and direction controls written as escapes (`\n`, `\r`, `\u{1b}`), for
/// driver text that goes into drover's own log: a log reader must be able to
/// trust that each line, and each colour, is drover's. A tab stays: it can
/// neither end a line nor move the cursor off it.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            c if needs_escape(c) => {
                // Writing to a String cannot fail.
                let _ = write!(escaped, "\\u{{{:x}}}", u32::from(c));
            }
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
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
        self.send(LogSource::Driver, level, cap_line(message)).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls("plain text"), "plain text");
        assert_eq!(
            escape_controls(
                "ok\n2025-01-01T00:00:00Z ERROR drover::api::auth: forged\r\t\u{1b}[31m\u{85}\u{2028}"
            ),
            "ok\\n2025-01-01T00:00:00Z ERROR drover::api::auth: forged\\r\t\\u{1b}[31m\\u{85}\\u{2028}"
        );
    }
}
