//! Redaction: replaces a node's secret values in any text that leaves the node.

use std::borrow::Cow;

/// What a value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// The values to hide from one node's log and outcome. Empty (and free) for
/// nodes without secrets.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so that a value containing another is hidden whole.
    patterns: Vec<String>,
}

impl Redactor {
    /// Hides each value, and each line of a value that has several (process
    /// output reaches the log line by line). Empty values hide nothing.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut patterns: Vec<String> = Vec::new();
        for value in values {
            let mut add = |p: &str| {
                if !p.is_empty() && !patterns.iter().any(|q| q == p) {
                    patterns.push(p.to_owned());
                }
            };
            add(value);
            if value.contains('\n') {
                for line in value.lines() {
                    add(line.strip_suffix('\r').unwrap_or(line));
                }
            }
        }
        patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
        Redactor { patterns }
    }

    /// Whether there is nothing to hide.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// `text` with every occurrence of a value replaced by [`REDACTED`].
    /// Overlapping occurrences of different values are hidden as one span.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.patterns.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for pattern in &self.patterns {
            // Every start, overlapping ones included (`aa` in `aaa` twice).
            let mut from = 0;
            while let Some(at) = text[from..].find(pattern.as_str()) {
                let start = from + at;
                spans.push((start, start + pattern.len()));
                from = start + text[start..].chars().next().map_or(1, char::len_utf8);
            }
        }
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        let mut i = 0;
        while i < spans.len() {
            let (start, mut end) = spans[i];
            i += 1;
            while i < spans.len() && spans[i].0 <= end {
                end = end.max(spans[i].1);
                i += 1;
            }
            out.push_str(&text[copied..start]);
            out.push_str(REDACTED);
            copied = end;
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }

    /// Like [`redact`](Self::redact), for an owned string.
    pub fn redact_owned(&self, text: String) -> String {
        match self.redact(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(redacted) => redacted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_to_hide_borrows() {
        let r = Redactor::new([]);
        assert!(matches!(r.redact("abc"), Cow::Borrowed("abc")));
        let r = Redactor::new(["s3cret"]);
        assert!(matches!(r.redact("abc"), Cow::Borrowed("abc")));
    }

    #[test]
    fn every_occurrence_is_replaced() {
        let r = Redactor::new(["s3cret", "hunter2"]);
        assert_eq!(
            r.redact("a s3cret, hunter2 and s3crets3cret"),
            "a [redacted], [redacted] and [redacted]"
        );
    }

    #[test]
    fn overlapping_values_are_hidden_whole() {
        let r = Redactor::new(["abcd", "cdef", "aa"]);
        assert_eq!(r.redact("xabcdefy"), "x[redacted]y");
        assert_eq!(r.redact("aaa"), "[redacted]");
        // The longer value wins over the one it contains.
        let r = Redactor::new(["pass", "password"]);
        assert_eq!(r.redact("password"), "[redacted]");
    }

    #[test]
    fn lines_of_multi_line_values_are_hidden_alone() {
        let r = Redactor::new(["line one\r\nline two"]);
        assert_eq!(r.redact("got line two"), "got [redacted]");
        assert_eq!(r.redact("line one\r\nline two"), "[redacted]");
    }

    #[test]
    fn empty_values_hide_nothing_and_unicode_is_kept_whole() {
        let r = Redactor::new(["", "ü"]);
        assert_eq!(r.redact("üüx"), "[redacted]x");
    }
}
