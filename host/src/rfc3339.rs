//! RFC 3339 (UTC) text for [`SystemTime`], and serde helpers using it; the calendar work is
//! jiff's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::Timestamp;

/// The current time, truncated to whole microseconds so that it survives
/// a round trip through [`format`] and [`parse`].
pub fn now() -> SystemTime {
    let now = SystemTime::now();
    match now.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::new(d.as_secs(), d.subsec_micros() * 1000),
        Err(_) => now,
    }
}

/// Formats `time` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, microseconds). A time beyond the
/// years jiff knows (±9999) is written as the nearest one it does.
pub fn format(time: SystemTime) -> String {
    let stamp = Timestamp::try_from(time).unwrap_or(if time < UNIX_EPOCH {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    });
    format!("{stamp:.6}")
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
pub fn parse(text: &str) -> Option<SystemTime> {
    text.parse::<Timestamp>().ok().map(SystemTime::from)
}

/// Serde for a [`SystemTime`] as RFC 3339 text.
pub mod required {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format(*time))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SystemTime, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        super::parse(&text)
            .ok_or_else(|| D::Error::custom(format!("not an RFC 3339 timestamp: `{text}`")))
    }
}

/// Serde for an optional [`SystemTime`] as RFC 3339 text or null.
pub mod optional {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(
        time: &Option<SystemTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match time {
            Some(time) => serializer.serialize_str(&super::format(*time)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        match Option::<std::borrow::Cow<str>>::deserialize(deserializer)? {
            Some(text) => super::parse(&text)
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("not an RFC 3339 timestamp: `{text}`"))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_back() {
        assert_eq!(format(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::new(1_709_251_199, 123_456_000);
        assert_eq!(format(t), "2024-02-29T23:59:59.123456Z");
        assert_eq!(parse("2024-02-29T23:59:59.123456Z"), Some(t));
        assert_eq!(parse("2024-03-01T01:59:59.123456+02:00"), Some(t));
        assert_eq!(
            parse("2024-02-29T23:59:59Z"),
            Some(t - Duration::from_nanos(123_456_000))
        );
        let before = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(format(before), "1969-12-31T23:59:58.500000Z");
        assert_eq!(parse(&format(before)), Some(before));
        assert_eq!(parse("2024-02-29 nonsense"), None);
        assert_eq!(parse("2024-02-29T23:59:5é.1Z"), None);
        // A time must say where it is: no offset, no time.
        assert_eq!(parse("2024-02-29T23:59:59"), None);
    }

    /// The fuzz target `protocol` (host/fuzz) checks that stored events read back as written:
    /// whatever parses must format to text that parses to the same time.
    #[test]
    fn what_parses_formats_back() {
        for text in [
            "2024-01-01T00:00:00+99:99",
            "2024-01-01T00:00:00+01:60",
            "2024-13-01T00:00:00Z",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
        for text in [
            "9999-12-30T21:59:59+01:00",
            "0000-01-01T00:00:00Z",
            "2016-12-31T23:59:60Z",
        ] {
            let time = parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(parse(&format(time)), Some(time), "{text}");
        }
    }
}
