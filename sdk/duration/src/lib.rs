//! Human-friendly durations (`250ms`, `2s`, `1.5m`, `1h`, a bare number of
//! seconds): the one grammar of drover's DAG files, config, command-line
//! flags and `sleep` driver, shared by the host and drivers (through
//! `drover_sdk::duration`).

use std::time::Duration;

/// A duration that could not be read; its message names the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// Not a number with one of the units.
    Invalid(String),
    /// More nanoseconds than 64 bits hold (about 584 years).
    TooLong(String),
}

impl std::fmt::Display for DurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DurationError::Invalid(text) => write!(
                f,
                "invalid duration `{text}`: expected a number with a unit (`ms`, `s`, `m`, `h`), \
                 e.g. `250ms`, `30s`, `1.5m`"
            ),
            DurationError::TooLong(text) => write!(f, "duration `{text}` is too long"),
        }
    }
}

impl std::error::Error for DurationError {}

/// Parses `250ms`, `2s`, `1.5m`, `1h` or a bare number of seconds, exactly
/// (integer arithmetic, nanosecond precision). Surrounding spaces are
/// ignored; a space between number and unit, a sign, an exponent or a
/// fraction without a whole part (`.5s`) are not durations.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    const UNITS: [(&str, u128); 4] = [
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    let bad = || DurationError::Invalid(text.to_string());
    let too_long = || DurationError::TooLong(text.to_string());
    let trimmed = text.trim();
    let (number, unit) = UNITS
        .iter()
        .find_map(|&(suffix, nanos)| trimmed.strip_suffix(suffix).map(|n| (n, nanos)))
        .unwrap_or((trimmed, 1_000_000_000));
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !digits(whole)
        || !digits(fraction)
        || (number.contains('.') && fraction.is_empty())
    {
        return Err(bad());
    }
    let whole: u128 = whole.parse().map_err(|_| too_long())?;
    // Nanosecond precision at most: 18 fraction digits are plenty for hours.
    let fraction = &fraction[..fraction.len().min(18)];
    let scale = 10u128.pow(fraction.len() as u32);
    let fraction: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| bad())?
    };
    let nanos = whole
        .checked_mul(unit)
        .and_then(|n| n.checked_add(fraction * unit / scale))
        .ok_or_else(too_long)?;
    let nanos = u64::try_from(nanos).map_err(|_| too_long())?;
    Ok(Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration(" 0 ").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("0.5").unwrap(), Duration::from_millis(500));
    }

    #[test]
    fn garbage_is_refused_with_the_input_named() {
        for bad in [
            "", "   ", "s", "abc", "1x", "-1s", "+1s", "1..2s", "1.2.3s", "1e3", "1e400", "nan",
            "inf", "1sec", "1d", "1 s", ".5s", ".", "1.",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("`{bad}`")), "{e}");
        }
        assert!(matches!(
            parse_duration("99999999999999999999999h"),
            Err(DurationError::TooLong(_))
        ));
    }
}
