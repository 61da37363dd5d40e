//! The cap on each attempt's log: which lines are kept, and the lines
//! drover writes to say what was cut.
//!
//! Every line of every node passes the scheduler on its way to the run's
//! events, whichever dispatcher produced it (this process's runtime or a
//! drone through Redis), so the cap applies there, once, and neither a
//! driver nor a drone can get around it.

use std::sync::Arc;

use crate::task::{LogLevel, LogLine, LogSource, cap_line};

/// How many lines an attempt keeps unless configured: a verbose CI build
/// (tens of thousands of lines) fits, `yes` reaches it in well under a second.
pub const DEFAULT_LOG_LINES: u64 = 100_000;
/// How many bytes of text an attempt keeps unless configured: four times
/// GitLab's default job log limit (4 MiB).
pub const DEFAULT_LOG_BYTES: u64 = 16 * 1024 * 1024;

/// How much of one attempt's log is kept: the first lines up to either
/// limit; the rest are dropped and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Lines kept per attempt, drover's own included.
    pub lines: u64,
    /// Bytes of text kept per attempt (each line without its newline).
    pub bytes: u64,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            lines: DEFAULT_LOG_LINES,
            bytes: DEFAULT_LOG_BYTES,
        }
    }
}

/// What one attempt has logged so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogTally {
    /// Lines kept.
    pub lines: u64,
    /// Bytes of the lines kept.
    pub bytes: u64,
    /// Whether the log was cut: every later line is dropped.
    pub cut: bool,
    /// Lines dropped since the cut.
    pub dropped_lines: u64,
    /// Bytes of the lines dropped since the cut, as the node wrote them.
    pub dropped_bytes: u64,
}

/// How the cut markers begin, so that a reader can tell them from the
/// node's own lines.
pub const CUT_MARKER: &str = "drover: log cut after ";

impl LogTally {
    /// Counts `line` against `limits` and returns what goes into the log:
    /// the line itself (at most [`crate::task::MAX_LOG_LINE`] bytes of it),
    /// or, for the first line over a limit, a marker saying that the log is
    /// cut from here, or nothing.
    pub fn admit(&mut self, limits: LogLimits, mut line: LogLine) -> Option<LogLine> {
        if !self.cut {
            line.message = cap_line(std::mem::take(&mut line.message));
            let size = line.message.len() as u64;
            if self.lines < limits.lines && self.bytes.saturating_add(size) <= limits.bytes {
                self.lines += 1;
                self.bytes += size;
                return Some(line);
            }
            self.cut = true;
        }
        self.dropped_lines += 1;
        self.dropped_bytes = self.dropped_bytes.saturating_add(line.message.len() as u64);
        if self.dropped_lines > 1 {
            return None;
        }
        Some(marker(
            &line.node,
            format!(
                "{CUT_MARKER}{} lines / {} (the limit is {} lines or {} per attempt); \
                 later lines are dropped, and counted when the attempt ends",
                self.lines,
                size(self.bytes),
                limits.lines,
                size(limits.bytes),
            ),
        ))
    }

    /// The line that ends a cut log: how much was kept and how much was
    /// dropped. `None` when nothing was cut.
    pub fn summary(&self, node: &str) -> Option<LogLine> {
        self.cut.then(|| {
            marker(
                &Arc::from(node),
                format!(
                    "{CUT_MARKER}{} lines / {}; {} more {} ({}) dropped",
                    self.lines,
                    size(self.bytes),
                    self.dropped_lines,
                    if self.dropped_lines == 1 {
                        "line"
                    } else {
                        "lines"
                    },
                    size(self.dropped_bytes),
                ),
            )
        })
    }
}

fn marker(node: &Arc<str>, message: String) -> LogLine {
    LogLine {
        node: Arc::clone(node),
        source: LogSource::Drover,
        level: LogLevel::Warn,
        message,
    }
}

/// `bytes` for people: `512 bytes`, `12.5 KiB`, `16 MiB`, `1.5 GiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if bytes == 1 {
        return "1 byte".to_owned();
    }
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let text = format!("{value:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> LogLine {
        LogLine {
            node: Arc::from("n"),
            source: LogSource::Stdout,
            level: LogLevel::Info,
            message: text.to_owned(),
        }
    }

    #[test]
    fn lines_past_the_line_limit_are_dropped_after_one_marker() {
        let limits = LogLimits {
            lines: 3,
            bytes: 1024,
        };
        let mut tally = LogTally::default();
        let kept: Vec<String> = (0..10)
            .filter_map(|i| tally.admit(limits, line(&format!("y{i}"))))
            .map(|l| l.message)
            .collect();
        assert_eq!(kept.len(), 4, "{kept:?}");
        assert_eq!(kept[..3], ["y0", "y1", "y2"]);
        assert!(kept[3].starts_with(CUT_MARKER), "{}", kept[3]);
        assert_eq!(
            tally.summary("n").unwrap().message,
            "drover: log cut after 3 lines / 6 bytes; 7 more lines (14 bytes) dropped"
        );
    }

    #[test]
    fn the_byte_limit_cuts_too_and_nothing_is_let_in_after_the_cut() {
        let limits = LogLimits {
            lines: 100,
            bytes: 10,
        };
        let mut tally = LogTally::default();
        assert!(tally.admit(limits, line("12345678")).is_some());
        let marker = tally.admit(limits, line("abc")).unwrap();
        assert_eq!(marker.source, LogSource::Drover);
        // A line that would still fit stays out: the log is cut once.
        assert!(tally.admit(limits, line("x")).is_none());
        assert_eq!((tally.lines, tally.bytes), (1, 8));
        assert_eq!((tally.dropped_lines, tally.dropped_bytes), (2, 4));
    }

    #[test]
    fn an_uncut_log_has_no_summary_and_long_lines_are_shortened() {
        let mut tally = LogTally::default();
        let long = "x".repeat(crate::task::MAX_LOG_LINE * 2);
        let kept = tally.admit(LogLimits::default(), line(&long)).unwrap();
        assert!(kept.message.len() < crate::task::MAX_LOG_LINE + 64);
        assert!(tally.summary("n").is_none());
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(16 * 1024 * 1024), "16 MiB");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 * 1024 * 1024 * 1024), "3 GiB");
    }
}
