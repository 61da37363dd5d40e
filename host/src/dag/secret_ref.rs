//! Secret names and references as a DAG writes them (`DB_PASS: "vault:secret/data/app#password"`),
//! and the Vault mounts no reference may ever name: what shows without Vault or a config.

use std::fmt;

/// The prefix every reference starts with (the only backend so far).
const SCHEME: &str = "vault:";

/// Where a secret lives in Vault: a KV path and a key of the secret there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The KV mount: the path's first segment (`secret`).
    pub mount: String,
    /// Which version of the KV engine serves the mount.
    pub engine: KvEngine,
    /// The secret's path inside the mount (`app`, `team/db`).
    pub path: String,
    /// The key of the secret's data (`password`).
    pub key: String,
}

/// KV v1 (a plain key/value store) or v2 (versioned, with `data/` in the API path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvEngine {
    V1,
    V2,
}

impl SecretRef {
    /// Reads `vault:MOUNT/PATH#KEY`. A path whose second segment is `data`
    /// is read with KV v2 (Vault's convention: `secret/data/app` is the
    /// secret `app` of the v2 mount `secret`); any other path with KV v1.
    pub fn parse(text: &str) -> Result<SecretRef, String> {
        let expected =
            "expected `vault:<mount>/<path>#<key>`, e.g. `vault:secret/data/app#password`";
        let Some(rest) = text.strip_prefix(SCHEME) else {
            return Err(format!("`{text}` is not a secret reference: {expected}"));
        };
        let Some((path, key)) = rest.rsplit_once('#') else {
            return Err(format!(
                "`{text}` names no key (`#<key>` at the end): {expected}"
            ));
        };
        if key.is_empty() || key.chars().any(|c| c.is_control()) {
            return Err(format!(
                "`{text}` has an empty or unprintable key: {expected}"
            ));
        }
        let segments: Vec<&str> = path.split('/').collect();
        if let Some(bad) = segments.iter().find(|s| {
            s.is_empty()
                || **s == "."
                || **s == ".."
                || s.chars()
                    .any(|c| c.is_control() || c.is_whitespace() || "?#%\\".contains(c))
        }) {
            return Err(format!(
                "`{text}` has an invalid path segment `{bad}`: segments are non-empty, not `.` \
                 or `..`, without spaces or `?#%\\`"
            ));
        }
        let (mount, engine, inner) = match segments.as_slice() {
            [mount, "data", inner @ ..] if !inner.is_empty() => (*mount, KvEngine::V2, inner),
            [_, "data"] => {
                return Err(format!(
                    "`{text}` names a KV v2 mount but no secret: add the secret's path after \
                     `data/`"
                ));
            }
            [mount, inner @ ..] if !inner.is_empty() => (*mount, KvEngine::V1, inner),
            _ => {
                return Err(format!(
                    "`{text}` names only a mount: the path is `<mount>/<secret>` (KV v1) or \
                     `<mount>/data/<secret>` (KV v2)"
                ));
            }
        };
        Ok(SecretRef {
            mount: mount.to_owned(),
            engine,
            path: inner.join("/"),
            key: key.to_owned(),
        })
    }

    /// The path as Vault's HTTP API names it (`secret/data/app`).
    pub fn api_path(&self) -> String {
        match self.engine {
            KvEngine::V1 => format!("{}/{}", self.mount, self.path),
            KvEngine::V2 => format!("{}/data/{}", self.mount, self.path),
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}#{}", self.api_path(), self.key)
    }
}

/// Checks a secret's name: environment-variable style (`DB_PASS`), since
/// drivers such as `shell` hand secrets to processes under their names, and
/// not `DROVER_…`, which drover keeps for its own variables.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "invalid secret name `{name}`: use letters, digits and `_`, not starting with a \
             digit (an environment variable name such as `DB_PASS`)"
        ));
    }
    if name.to_ascii_uppercase().starts_with("DROVER_") {
        return Err(format!(
            "invalid secret name `{name}`: names starting with `DROVER_` are drover's own"
        ));
    }
    Ok(())
}

/// Mounts no reference may name, whatever the allowlist says: they hold
/// Vault's own state and drover's credentials (`auth/token/lookup-self`
/// answers with drover's token), not pipeline secrets.
pub const ALWAYS_REFUSED: [&str; 5] = ["sys", "auth", "identity", "cubbyhole", "token"];

/// Why a reference names a mount no node may read, if it does.
pub fn always_refused(reference: &SecretRef) -> Option<String> {
    let mount = reference.mount.to_ascii_lowercase();
    ALWAYS_REFUSED.contains(&mount.as_str()).then(|| {
        format!(
            "`{reference}` is refused: paths under `{}/` are Vault's own and are never given \
             to nodes",
            reference.mount
        )
    })
}

/// The problems of a node's secrets that show without a driver or Vault: one message per
/// for each bad name or reference, by field (`secrets.DB_PASS`).
pub fn syntax_problems(secrets: &[(String, String)]) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (name, reference) in secrets {
        let field = format!("secrets.{name}");
        if let Err(message) = check_name(name) {
            problems.push((field.clone(), message));
        } else if !names.insert(name.as_str()) {
            problems.push((field.clone(), format!("duplicate secret `{name}`")));
        }
        match SecretRef::parse(reference) {
            Err(message) => problems.push((field, message)),
            Ok(parsed) => {
                if let Some(message) = always_refused(&parsed) {
                    problems.push((field, message));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_when_the_second_segment_is_data() {
        let r = SecretRef::parse("vault:secret/data/app/db#password").unwrap();
        assert_eq!(
            (r.mount.as_str(), r.engine, r.path.as_str(), r.key.as_str()),
            ("secret", KvEngine::V2, "app/db", "password")
        );
        assert_eq!(r.to_string(), "vault:secret/data/app/db#password");
    }

    #[test]
    fn v1_otherwise() {
        let r = SecretRef::parse("vault:kv/app#token").unwrap();
        assert_eq!(
            (r.mount.as_str(), r.engine, r.path.as_str(), r.key.as_str()),
            ("kv", KvEngine::V1, "app", "token")
        );
    }

    #[test]
    fn malformed_references_say_why() {
        for (text, says) in [
            ("secret/data/app#password", "not a secret reference"),
            ("vault:secret/data/app", "names no key"),
            ("vault:secret/data/app#", "empty or unprintable key"),
            ("vault:secret#k", "names only a mount"),
            ("vault:secret/data#k", "no secret"),
            ("vault:secret//app#k", "invalid path segment ``"),
            ("vault:secret/../sys#k", "invalid path segment `..`"),
            ("vault:secret/a b#k", "invalid path segment `a b`"),
        ] {
            let err = SecretRef::parse(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn names_are_environment_variable_names() {
        for good in ["DB_PASS", "_x", "token2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "2FA", "DB-PASS", "DB PASS", "é"] {
            assert!(
                check_name(bad).unwrap_err().contains("invalid secret name"),
                "{bad}"
            );
        }
        assert!(check_name("DROVER_X").unwrap_err().contains("drover's own"));
    }
}
