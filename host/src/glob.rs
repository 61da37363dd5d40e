//! `*` patterns of the operator's allowlists (container images, Vault paths).

/// Whether `text` matches `pattern`, where `*` matches any run of
/// characters (empty too) and every other character itself.
pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and where in `text` it began to match: on a
    // mismatch the star takes one more character (linear backtracking).
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_within_and_across_segments() {
        for (pattern, text, expected) in [
            ("*", "secret/data/app", true),
            ("secret/data/app", "secret/data/app", true),
            ("secret/data/app", "secret/data/app2", false),
            ("secret/data/ci/*", "secret/data/ci/db/main", true),
            ("secret/data/ci/*", "secret/data/cid", false),
            ("secret/data/app-*", "secret/data/app-db", true),
            ("secret/*/team-*/db", "secret/data/team-a/b/team-c/db", true),
            ("secret/*/db", "secret/data/db/x", false),
            ("", "", true),
            ("kv/**", "kv/x", true),
        ] {
            assert_eq!(matches(pattern, text), expected, "{pattern} ~ {text}");
        }
    }
}
