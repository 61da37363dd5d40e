//! The configuration's one rule for units. A duration is a string with its
//! unit (`"30s"`, `"250ms"`), read by the grammar of DAG files and
//! command-line flags (`drover_duration`); a bare number is refused, since it
//! would not say whether it counts seconds or milliseconds. A size is a whole
//! number of MiB, in a key ending in `_mib`.
//!
//! Keys from before the rule (`heartbeat_ms`, `max_body_bytes`, …) are still
//! read as deprecated aliases of the new ones, with a warning naming both, so
//! that existing files keep working.

use std::time::Duration;

use drover_duration::{DurationError, parse_duration};
use serde::{Deserialize, Deserializer, Serializer};

const MIB: u64 = 1024 * 1024;

/// A setting that breaks the unit rule; each names its section and key.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    /// A duration given as a bare number.
    #[error(
        "[{section}] {key}: `{number}` has no unit: write {key} = \"{number}ms\" or \
         {key} = \"{number}s\" (durations in the config are strings with a unit)"
    )]
    NoUnit {
        section: &'static str,
        key: &'static str,
        number: String,
    },
    /// Text that is not a duration.
    #[error("[{section}] {key}: {reason}")]
    Duration {
        section: &'static str,
        key: &'static str,
        reason: DurationError,
    },
    /// A key and its deprecated alias both set: the file says two things.
    #[error(
        "[{section}] sets both {new} and {old} (the deprecated name of {new}): keep only {new}"
    )]
    Both {
        section: &'static str,
        old: &'static str,
        new: &'static str,
    },
}

/// A duration as the file gives it, before the rule is applied: text, or a
/// number kept as written for the error that refuses it.
#[derive(Debug)]
pub(super) enum RawDuration {
    Text(String),
    Number(String),
}

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawDuration;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration with a unit, e.g. \"30s\"")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<RawDuration, E> {
                Ok(RawDuration::Text(text.to_owned()))
            }

            fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<RawDuration, E> {
                Ok(RawDuration::Number(number.to_string()))
            }

            fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<RawDuration, E> {
                Ok(RawDuration::Number(number.to_string()))
            }

            fn visit_f64<E: serde::de::Error>(self, number: f64) -> Result<RawDuration, E> {
                Ok(RawDuration::Number(number.to_string()))
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

impl RawDuration {
    fn parse(self, section: &'static str, key: &'static str) -> Result<Duration, SettingError> {
        let text = match self {
            RawDuration::Number(number) => {
                return Err(SettingError::NoUnit {
                    section,
                    key,
                    number,
                });
            }
            RawDuration::Text(text) => text,
        };
        // The grammar reads a bare number as seconds, but the keys this rule
        // replaced counted milliseconds: "30000" is refused rather than guessed.
        let trimmed = text.trim();
        if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(SettingError::NoUnit {
                section,
                key,
                number: trimmed.to_owned(),
            });
        }
        parse_duration(&text).map_err(|reason| SettingError::Duration {
            section,
            key,
            reason,
        })
    }
}

/// The duration `[section] key`, which was `old` in whole milliseconds before
/// the rule: the new key's value, else the old key's (with a warning), else
/// none (the default applies).
pub(super) fn duration_setting(
    section: &'static str,
    (key, value): (&'static str, Option<RawDuration>),
    (old, millis): (&'static str, Option<u64>),
) -> Result<Option<Duration>, SettingError> {
    match (value, millis) {
        (Some(_), Some(_)) => Err(SettingError::Both {
            section,
            old,
            new: key,
        }),
        (Some(value), None) => value.parse(section, key).map(Some),
        (None, Some(millis)) => {
            let duration = Duration::from_millis(millis);
            let replacement = format!("{key} = \"{}\"", format_duration(duration));
            deprecated(section, old, &replacement, "");
            Ok(Some(duration))
        }
        (None, None) => Ok(None),
    }
}

/// The size `[section] key` in MiB, which was `old` in bytes before the rule:
/// the new key's value, else the old key's rounded up to whole MiB (with a
/// warning), else none (the default applies).
pub(super) fn size_setting(
    section: &'static str,
    (key, mib): (&'static str, Option<u64>),
    (old, bytes): (&'static str, Option<u64>),
) -> Result<Option<u64>, SettingError> {
    match (mib, bytes) {
        (Some(_), Some(_)) => Err(SettingError::Both {
            section,
            old,
            new: key,
        }),
        (Some(mib), None) => Ok(Some(mib)),
        (None, Some(bytes)) => {
            // Up, not down: a limit of a few KiB must not become 0 MiB,
            // which would refuse everything.
            let mib = bytes.div_ceil(MIB);
            let rounded = if bytes % MIB == 0 {
                String::new()
            } else {
                format!(" ({bytes} bytes, rounded up to whole MiB)")
            };
            deprecated(section, old, &format!("{key} = {mib}"), &rounded);
            Ok(Some(mib))
        }
        (None, None) => Ok(None),
    }
}

/// Logs once per old key read: the file works, but should be updated.
fn deprecated(section: &str, old: &str, replacement: &str, note: &str) {
    tracing::warn!("config: [{section}] {old} is deprecated: write {replacement} instead{note}");
}

/// Writes a duration as the config reads it (for `drover config show`).
pub(super) fn serialize_duration<S: Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_duration(*duration))
}

/// `duration` in the config's notation, in the largest unit that writes it
/// exactly, so that it reads back unchanged.
pub fn format_duration(duration: Duration) -> String {
    let (secs, nanos) = (duration.as_secs(), duration.subsec_nanos());
    if nanos == 0 {
        return match secs {
            0 => "0s".to_owned(),
            s if s % 3600 == 0 => format!("{}h", s / 3600),
            s if s % 60 == 0 => format!("{}m", s / 60),
            s => format!("{s}s"),
        };
    }
    let millis = duration.as_millis();
    match duration.as_nanos() % 1_000_000 {
        0 => format!("{millis}ms"),
        rest => {
            let fraction = format!("{rest:06}");
            format!("{millis}.{}ms", fraction.trim_end_matches('0'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_so_that_they_read_back() {
        for (duration, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(2), "2s"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_nanos(1_500_000), "1.5ms"),
            (Duration::from_nanos(1), "0.000001ms"),
        ] {
            assert_eq!(format_duration(duration), text);
            assert_eq!(parse_duration(text), Ok(duration), "{text}");
        }
    }

    #[test]
    fn bare_numbers_are_refused_with_the_fix() {
        for raw in [
            RawDuration::Number("30000".into()),
            RawDuration::Text("30000".into()),
            RawDuration::Text(" 2.5 ".into()),
        ] {
            let err = raw.parse("drone", "grace").unwrap_err().to_string();
            assert!(
                err.starts_with("[drone] grace: `")
                    && err.contains("has no unit")
                    && err.contains("grace = \""),
                "{err}"
            );
        }
        let err = RawDuration::Text("soon".into())
            .parse("redis", "lease")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("[redis] lease: ") && err.contains("soon"),
            "{err}"
        );
    }

    #[test]
    fn an_old_key_is_read_and_both_keys_are_refused() {
        let new = || ("heartbeat", Some(RawDuration::Text("2s".into())));
        assert_eq!(
            duration_setting("drone", new(), ("heartbeat_ms", None)).unwrap(),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            duration_setting("drone", ("heartbeat", None), ("heartbeat_ms", Some(100))).unwrap(),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            duration_setting("drone", ("heartbeat", None), ("heartbeat_ms", None)).unwrap(),
            None
        );
        let err = duration_setting("drone", new(), ("heartbeat_ms", Some(100)))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("heartbeat_ms") && err.contains("keep only heartbeat"),
            "{err}"
        );

        let size =
            |bytes| size_setting("server", ("max_body_mib", None), ("max_body_bytes", bytes));
        assert_eq!(size(Some(8 * MIB)).unwrap(), Some(8));
        assert_eq!(size(Some(1024)).unwrap(), Some(1));
        assert_eq!(size(None).unwrap(), None);
        let err = size_setting(
            "server",
            ("max_body_mib", Some(1)),
            ("max_body_bytes", Some(1)),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("max_body_bytes") && err.contains("max_body_mib"),
            "{err}"
        );
    }
}
