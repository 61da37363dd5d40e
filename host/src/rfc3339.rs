//! RFC 3339 (UTC) text for [`SystemTime`], and serde helpers using it.

use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The current time, truncated to whole microseconds so that it survives
/// a round trip through [`format`] and [`parse`].
pub fn now() -> SystemTime {
    let now = SystemTime::now();
    match now.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::new(d.as_secs(), d.subsec_micros() * 1000),
        Err(_) => now,
    }
}

/// Formats `time` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, microseconds).
pub fn format(time: SystemTime) -> String {
    let (secs, nanos) = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let mut secs = -(d.as_secs() as i64);
            let mut nanos = d.subsec_nanos();
            if nanos > 0 {
                secs -= 1;
                nanos = 1_000_000_000 - nanos;
            }
            (secs, nanos)
        }
    };
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let second_of_day = secs.rem_euclid(86_400);
    let mut out = String::with_capacity(27);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        nanos / 1000
    );
    out
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
pub fn parse(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if !text.is_ascii()
        || b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = digits(&text[0..4])?;
    let month = digits(&text[5..7])?;
    let day = digits(&text[8..10])?;
    let hour = digits(&text[11..13])?;
    let minute = digits(&text[14..16])?;
    let second = digits(&text[17..19])?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos: i64 = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        for (i, c) in fraction[..len].bytes().take(9).enumerate() {
            nanos += i64::from(c - b'0') * 10i64.pow(8 - i as u32);
        }
        rest = &fraction[len..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || rb[3] != b':' {
                return None;
            }
            let (hours, minutes) = (digits(&rest[1..3])?, digits(&rest[4..6])?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let minutes = hours * 60 + minutes;
            match rb[0] {
                b'+' => minutes * 60,
                b'-' => -minutes * 60,
                _ => return None,
            }
        }
    };
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    // An offset can carry a time in year 0000 or 9999 into a year [`format`]
    // cannot write in four digits; what is read must be writable again.
    if !(FIRST_SECOND..=LAST_SECOND).contains(&secs) {
        return None;
    }
    let since_epoch = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(since_epoch + Duration::from_nanos(nanos as u64))
    } else {
        UNIX_EPOCH
            .checked_sub(since_epoch)?
            .checked_add(Duration::from_nanos(nanos as u64))
    }
}

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z, in seconds since the
/// Unix epoch: the times with a four-digit year.
const FIRST_SECOND: i64 = -62_167_219_200;
const LAST_SECOND: i64 = 253_402_300_799;

fn digits(text: &str) -> Option<i64> {
    if text.bytes().all(|c| c.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) to days since 1970-01-01, after Howard Hinnant.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
    }

    /// The fuzz target `protocol` (host/fuzz) checks that stored events read
    /// back as written: an offset carried a time out of the years [`format`]
    /// writes in four digits ("10000-01-01T…" does not parse), and offsets
    /// of 99:99 were taken.
    #[test]
    fn what_parses_formats_back() {
        for text in [
            "9999-12-31T23:59:59-01:00",
            "0000-01-01T00:00:00+00:01",
            "2024-01-01T00:00:00+99:99",
            "2024-01-01T00:00:00+01:60",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
        for text in ["9999-12-31T23:59:59+01:00", "0000-01-01T00:00:00Z"] {
            let time = parse(text).unwrap();
            assert_eq!(parse(&format(time)), Some(time), "{text}");
        }
    }
}
