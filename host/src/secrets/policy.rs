//! Which Vault paths a secret reference may name: never Vault's own
//! endpoints, and only what the operator's `[vault] paths` allowlist matches.

use crate::dag::secret_ref::{SecretRef, always_refused};

/// The allowlist used when `[vault] paths` is unset: every path, so that
/// the token's own Vault policy is what bounds references (as before the
/// allowlist existed); the always-refused mounts stay refused.
pub const DEFAULT_PATHS: [&str; 1] = ["*"];

/// The paths references may name: glob patterns over the path as Vault's
/// API names it (`secret/data/app`), where `*` matches any run of
/// characters, `/` included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPolicy {
    patterns: Vec<String>,
}

impl Default for PathPolicy {
    fn default() -> Self {
        PathPolicy::new(None)
    }
}

impl PathPolicy {
    /// The operator's patterns, or [`DEFAULT_PATHS`] when unset.
    pub fn new(patterns: Option<&[String]>) -> Self {
        let patterns = match patterns {
            Some(p) => p.to_vec(),
            None => DEFAULT_PATHS.iter().map(|p| (*p).to_owned()).collect(),
        };
        PathPolicy { patterns }
    }

    /// Why `reference` may not be read, if it may not.
    pub fn check(&self, reference: &SecretRef) -> Result<(), String> {
        if let Some(why) = always_refused(reference) {
            return Err(why);
        }
        let path = reference.api_path();
        if self.patterns.iter().any(|p| crate::glob::matches(p, &path)) {
            return Ok(());
        }
        Err(format!(
            "`{reference}` is refused: `{path}` is not allowed by drover's [vault] paths ({})",
            if self.patterns.is_empty() {
                "empty: no path is".to_owned()
            } else {
                self.patterns.join(", ")
            }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> SecretRef {
        SecretRef::parse(text).unwrap()
    }

    #[test]
    fn vaults_own_mounts_are_refused_whatever_the_allowlist() {
        let everything = PathPolicy::new(Some(&["*".to_owned()]));
        for text in [
            "vault:auth/token/lookup-self#id",
            "vault:sys/mounts#x",
            "vault:identity/entity/name/x#id",
            "vault:cubbyhole/x#k",
            "vault:token/x#k",
            "vault:SYS/x#k",
            "vault:sys/data/x#k",
        ] {
            let err = everything.check(&r(text)).unwrap_err();
            assert!(err.contains("never given to nodes"), "{text}: {err}");
        }
    }

    #[test]
    fn the_allowlist_bounds_the_rest() {
        let policy = PathPolicy::new(Some(&["secret/data/ci/*".to_owned(), "kv/app".to_owned()]));
        assert!(policy.check(&r("vault:secret/data/ci/db#p")).is_ok());
        assert!(policy.check(&r("vault:kv/app#p")).is_ok());
        let err = policy.check(&r("vault:secret/data/prod/db#p")).unwrap_err();
        assert!(
            err.contains("`secret/data/prod/db` is not allowed by drover's [vault] paths"),
            "{err}"
        );
        let nothing = PathPolicy::new(Some(&[]));
        assert!(nothing.check(&r("vault:kv/app#p")).is_err());
        // Unset: everything but Vault's own mounts.
        assert!(PathPolicy::default().check(&r("vault:kv/app#p")).is_ok());
    }
}
