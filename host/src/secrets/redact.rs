//! Redaction: replaces a node's secret values in any text that leaves the node.

use std::borrow::Cow;

use aho_corasick::AhoCorasick;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// What a value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this (in bytes) are hidden as they are but not in
/// their encoded forms: the hex or base64 of two or three bytes is common
/// enough in ordinary output that hiding it would garble logs.
pub const MIN_REDACTED_LEN: usize = 6;

/// The values to hide from one node's log and outcome, in their own form
/// and the encoded forms a driver could print them in (base64, hex,
/// percent-encoding). Empty (and free) for nodes without secrets.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Finds every pattern, overlapping matches included; `None` when
    /// there is nothing to hide.
    matcher: Option<AhoCorasick>,
    /// The longest pattern, in bytes.
    longest: usize,
}

impl Redactor {
    /// Hides each value, and each line of a value that has several (process
    /// output reaches the log line by line), with their encoded forms.
    /// Empty values hide nothing.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut plain: Vec<Vec<u8>> = Vec::new();
        let mut encoded: Vec<Vec<u8>> = Vec::new();
        for value in values {
            let mut bases = vec![value];
            if value.contains('\n') {
                bases.extend(value.lines().map(|l| l.strip_suffix('\r').unwrap_or(l)));
            }
            for base in bases.into_iter().filter(|b| !b.is_empty()) {
                plain.push(base.as_bytes().to_vec());
                if base.len() >= MIN_REDACTED_LEN {
                    encoded.extend(encoded_forms(base.as_bytes()));
                }
            }
        }
        if plain.is_empty() {
            return Redactor::default();
        }
        let mut patterns: Vec<Vec<u8>> = plain.iter().chain(&encoded).cloned().collect();
        patterns.sort_unstable();
        patterns.dedup();
        // Building fails only past the automaton's size limits, far beyond
        // what a node's secrets make; hiding the plain values then is
        // better than hiding nothing.
        let (matcher, patterns) = match AhoCorasick::new(&patterns) {
            Ok(matcher) => (matcher, patterns),
            Err(e) => {
                tracing::warn!("secrets too large to hide their encoded forms: {e}");
                match AhoCorasick::new(&plain) {
                    Ok(matcher) => (matcher, plain),
                    Err(e) => {
                        tracing::error!("secrets too large to hide: {e}");
                        return Redactor::default();
                    }
                }
            }
        };
        let longest = patterns.iter().map(Vec::len).max().unwrap_or(0);
        Redactor {
            matcher: Some(matcher),
            longest,
        }
    }

    /// Whether there is nothing to hide.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// The spans of `bytes` to hide, sorted and merged: overlapping or
    /// touching occurrences of different patterns are one span.
    fn spans(&self, bytes: &[u8]) -> Vec<(usize, usize)> {
        let Some(matcher) = &self.matcher else {
            return Vec::new();
        };
        let mut found: Vec<(usize, usize)> = matcher
            .find_overlapping_iter(bytes)
            .map(|m| (m.start(), m.end()))
            .collect();
        found.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(found.len());
        for (start, end) in found {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }

    /// `text` with every occurrence of a value replaced by [`REDACTED`].
    /// Overlapping occurrences of different values are hidden as one span.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let spans = self.spans(text.as_bytes());
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        // Patterns are whole UTF-8 strings or ASCII, so every span starts
        // and ends on a character boundary of `text`.
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for (start, end) in spans {
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

    /// Where to cut `bytes`, the start of a line too long to keep whole, so
    /// that no value is split between the part sent now (`..cut`) and the
    /// rest, which goes in front of what follows. Up to the longest pattern
    /// less one byte stays behind (a value may begin there), more when an
    /// occurrence straddles that place (it goes whole to the rest), and the
    /// cut is moved off the middle of a UTF-8 character.
    pub fn split_point(&self, bytes: &[u8]) -> usize {
        let mut cut = bytes.len().saturating_sub(self.longest.saturating_sub(1));
        if cut == bytes.len() {
            return cut;
        }
        match self
            .spans(bytes)
            .into_iter()
            .find(|&(start, end)| start < cut && cut < end)
        {
            // At the occurrence's start, unless that leaves nothing to
            // send: then after it (it is whole here, so it is hidden).
            Some((start, _)) if start > 0 => start,
            Some((_, end)) => end,
            None => {
                let nominal = cut;
                while cut > 0 && nominal - cut < 3 && bytes[cut] & 0xC0 == 0x80 {
                    cut -= 1;
                }
                cut
            }
        }
    }
}

/// The encoded forms of `value` that could appear in output: hex (lower
/// and upper), base64 (standard and URL-safe, padded or not, and the part
/// that does not depend on its neighbours at each of the three alignments
/// inside a longer base64 text) and percent-encoding.
fn encoded_forms(value: &[u8]) -> Vec<Vec<u8>> {
    let mut forms = vec![
        hex::encode(value).into_bytes(),
        hex::encode_upper(value).into_bytes(),
    ];
    // Whole, hidden with their last characters even though those carry
    // padding bits too.
    for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(value).into_bytes());
    }
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        // Inside a longer base64 text the value starts `shift` bytes into a
        // 3-byte group. Encoding it behind `shift` zero bytes gives the same
        // characters, except those that also carry bits of the neighbours:
        // keep only the characters made of the value's bits alone.
        for shift in 0..3 {
            let mut shifted = vec![0; shift];
            shifted.extend_from_slice(value);
            let text = engine.encode(&shifted).into_bytes();
            let first = (8 * shift).div_ceil(6);
            let last = 8 * (shift + value.len()) / 6;
            if last > first {
                forms.push(text[first..last].to_vec());
            }
        }
    }
    for upper in [true, false] {
        forms.push(percent_encode(value, upper, |b| {
            b.is_ascii_alphanumeric() || b"-._~".contains(&b)
        }));
        // Every byte escaped, as some encoders do.
        forms.push(percent_encode(value, upper, |_| false));
    }
    forms
}

/// `value` with each byte that `keep` refuses written `%XX`.
fn percent_encode(value: &[u8], upper: bool, keep: impl Fn(u8) -> bool) -> Vec<u8> {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = Vec::with_capacity(value.len() * 3);
    for &b in value {
        if keep(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'%',
                digits[usize::from(b >> 4)],
                digits[usize::from(b & 15)],
            ]);
        }
    }
    out
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

    const SECRET: &str = "pa55-Wörd/7f+c?";

    #[test]
    fn hex_and_percent_encoded_forms_are_hidden() {
        let r = Redactor::new([SECRET]);
        let bytes = SECRET.as_bytes();
        for form in [
            hex::encode(bytes),
            hex::encode_upper(bytes),
            "pa55-W%C3%B6rd%2F7f%2Bc%3F".to_owned(),
            "pa55-W%c3%b6rd%2f7f%2bc%3f".to_owned(),
            bytes.iter().map(|b| format!("%{b:02X}")).collect(),
        ] {
            assert_eq!(r.redact(&format!("x={form};")), "x=[redacted];", "{form}");
        }
    }

    #[test]
    fn base64_forms_are_hidden_alone_and_at_every_alignment() {
        let r = Redactor::new([SECRET]);
        for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let alone = engine.encode(SECRET);
            assert_eq!(r.redact(&format!("b64 {alone} end")), "b64 [redacted] end");
            // Inside a longer encoded text, after 0, 1 or 2 other bytes.
            for before in ["", "x", "xy", "xyz", "wxyz"] {
                let text = engine.encode(format!("{before}{SECRET}tail bytes"));
                let redacted = r.redact(&text);
                let Some((head, tail)) = redacted.split_once(REDACTED) else {
                    panic!("{before:?}: {text}");
                };
                // Only characters that carry other bytes' bits are kept.
                assert!(head.len() <= (8 * before.len()).div_ceil(6), "{redacted}");
                assert!(
                    tail.len() <= (8 * "tail bytes".len()).div_ceil(6) + 2,
                    "{redacted}"
                );
            }
        }
    }

    #[test]
    fn short_values_are_hidden_plain_but_not_encoded() {
        let r = Redactor::new(["abc12"]);
        assert_eq!(r.redact("x abc12 y"), "x [redacted] y");
        // Its hex would match ordinary hex text far too often.
        assert_eq!(r.redact(&hex::encode("abc12")), hex::encode("abc12"));
    }

    #[test]
    fn the_split_point_keeps_values_whole() {
        let r = Redactor::new([SECRET]);
        let longest = r.longest;
        assert!(longest >= SECRET.len() * 3, "{longest}");
        // Nothing to hide: anywhere, here the end.
        assert_eq!(Redactor::default().split_point(b"abcdef"), 6);
        // A value straddling where the cut would be: it goes to the rest.
        let mut line = vec![b'.'; 1000];
        let at = 1000 - longest + 1 - 5;
        line[at..at + SECRET.len()].copy_from_slice(SECRET.as_bytes());
        let cut = r.split_point(&line);
        assert_eq!(cut, at);
        // Neither side of a plain cut can hold the value whole then; the
        // rest holds the start of any value that begins in it.
        let clean = vec![b'.'; 1000];
        assert_eq!(r.split_point(&clean), 1000 - (longest - 1));
        // Off the middle of a UTF-8 character.
        let mut text = "é".repeat(500).into_bytes();
        text.push(b'.');
        let cut = r.split_point(&text);
        assert!(std::str::from_utf8(&text[..cut]).is_ok(), "{cut}");
        // A value at the very start that straddles: sent whole and hidden.
        let mut start = SECRET.as_bytes().to_vec();
        start.extend(vec![b'.'; longest - 5]);
        assert_eq!(r.split_point(&start), SECRET.len());
    }
}
