//! Turning program output into node outputs, following gorchestrator's `key=value` line convention.

/// Parses the `key=value` lines of `text` into outputs.
///
/// Each line that has a `=` after a non-empty key is an output; other lines
/// are ignored. The key is everything before the first `=` and may not
/// contain whitespace (so `Building foo: x=1` is not an output); the value is
/// everything after it, kept as is except for a trailing `\r`. When a key
/// appears more than once, its last value wins. Outputs come back in the
/// order their keys first appeared.
///
/// With `wanted`, only the keys it lists are returned; with `None`, all of
/// them.
///
/// ```
/// use drover_sdk::outputs::parse_key_values;
///
/// let text = "building...\nversion=1.2\nsha=abc\r\nversion=1.3\n";
/// let all = parse_key_values(text, None);
/// assert_eq!(all, vec![
///     ("version".to_string(), "1.3".to_string()),
///     ("sha".to_string(), "abc".to_string()),
/// ]);
/// let wanted = ["sha".to_string()];
/// assert_eq!(parse_key_values(text, Some(&wanted)), vec![("sha".to_string(), "abc".to_string())]);
/// ```
pub fn parse_key_values(text: &str, wanted: Option<&[String]>) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = split_line(line) else {
            continue;
        };
        if let Some(wanted) = wanted
            && !wanted.iter().any(|w| w == key)
        {
            continue;
        }
        match found.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => found.push((key.to_string(), value.to_string())),
        }
    }
    found
}

/// Splits one line into key and value, if it is a `key=value` line.
fn split_line(line: &str) -> Option<(&str, &str)> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (key, value) = line.split_once('=')?;
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return None;
    }
    Some((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_text() {
        assert!(parse_key_values("", None).is_empty());
        assert!(parse_key_values("\n\n", None).is_empty());
    }

    #[test]
    fn plain_pairs_in_first_seen_order() {
        assert_eq!(
            parse_key_values("b=2\na=1\n", None),
            pairs(&[("b", "2"), ("a", "1")])
        );
    }

    #[test]
    fn last_value_wins() {
        assert_eq!(
            parse_key_values("a=1\nb=2\na=3", None),
            pairs(&[("a", "3"), ("b", "2")])
        );
    }

    #[test]
    fn ignores_non_pairs() {
        let text = "hello\n=nokey\nsome text: x=1\n  indented=no\nk=v\n\tt=no\n";
        assert_eq!(parse_key_values(text, None), pairs(&[("k", "v")]));
    }

    #[test]
    fn value_keeps_equals_and_spaces() {
        assert_eq!(
            parse_key_values("url=http://x/?a=b \nempty=\n", None),
            pairs(&[("url", "http://x/?a=b "), ("empty", "")])
        );
    }

    #[test]
    fn trims_trailing_carriage_return_only() {
        assert_eq!(
            parse_key_values("a=1\r\nb=x\ry\r\n", None),
            pairs(&[("a", "1"), ("b", "x\ry")])
        );
    }

    #[test]
    fn filters_wanted_keys() {
        let wanted = vec!["a".to_string(), "missing".to_string()];
        assert_eq!(
            parse_key_values("a=1\nb=2\na=5\n", Some(&wanted)),
            pairs(&[("a", "5")])
        );
        assert!(parse_key_values("a=1", Some(&[])).is_empty());
    }

    #[test]
    fn no_trailing_newline() {
        assert_eq!(parse_key_values("k=v", None), pairs(&[("k", "v")]));
    }
}
