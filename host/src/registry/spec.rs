//! What a DAG node's `driver` field can say: a name with an optional semver
//! requirement or digest, or a component file.

use std::path::PathBuf;

use semver::VersionReq;

/// A driver as a node names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverSpec {
    /// `name` or `name@<semver requirement>` (`shell@1`, `shell@^1.2`,
    /// `shell@=1.2.3`): the highest published version that matches.
    Named {
        name: String,
        requirement: Option<VersionReq>,
    },
    /// `name@sha256:<hex>`: exactly that component.
    Digest { name: String, digest: String },
    /// A component file: anything with a `/` or ending in `.wasm`.
    File(PathBuf),
}

/// Why a `driver` field cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{written}`: {reason}")]
pub struct SpecError {
    pub written: String,
    pub reason: String,
}

impl DriverSpec {
    /// Reads a `driver` field. gorchestrator's `nil` means `noop`.
    pub fn parse(written: &str) -> Result<DriverSpec, SpecError> {
        let error = |reason: String| SpecError {
            written: written.to_owned(),
            reason,
        };
        if written.contains('/') || written.ends_with(".wasm") {
            return Ok(DriverSpec::File(PathBuf::from(written)));
        }
        let (name, pin) = match written.split_once('@') {
            Some((name, pin)) => (name, Some(pin)),
            None => (written, None),
        };
        let name = if name == "nil" { "noop" } else { name };
        if !is_valid_name(name) {
            return Err(error(
                "a driver name is lower-case letters, digits and `-`, starting with a letter"
                    .into(),
            ));
        }
        let name = name.to_owned();
        match pin {
            None => Ok(DriverSpec::Named {
                name,
                requirement: None,
            }),
            Some(pin) => {
                if let Some(hex) = pin.strip_prefix("sha256:") {
                    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Ok(DriverSpec::Digest {
                            name,
                            digest: hex.to_ascii_lowercase(),
                        });
                    }
                    return Err(error("a digest is `sha256:` and 64 hex digits".into()));
                }
                VersionReq::parse(pin)
                    .map(|requirement| DriverSpec::Named {
                        name,
                        requirement: Some(requirement),
                    })
                    .map_err(|e| {
                        error(format!(
                            "`@{pin}` is neither a semver requirement (`@1`, `@^1.2`, `@=1.2.3`) \
                             nor a digest (`@sha256:<hex>`): {e}"
                        ))
                    })
            }
        }
    }

    /// The driver's name, for named and digest specs.
    pub fn name(&self) -> Option<&str> {
        match self {
            DriverSpec::Named { name, .. } | DriverSpec::Digest { name, .. } => Some(name),
            DriverSpec::File(_) => None,
        }
    }
}

/// Whether `name` can be a plugin's name: it appears in DAGs, URLs and file
/// names, so it stays plain.
pub fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= 64
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_requirements_digests_and_files() {
        assert_eq!(
            DriverSpec::parse("shell").unwrap(),
            DriverSpec::Named {
                name: "shell".into(),
                requirement: None
            }
        );
        assert_eq!(
            DriverSpec::parse("nil").unwrap().name(),
            Some("noop"),
            "gorchestrator's nil"
        );
        let DriverSpec::Named {
            requirement: Some(req),
            ..
        } = DriverSpec::parse("shell@1").unwrap()
        else {
            panic!("a requirement");
        };
        assert!(req.matches(&"1.4.0".parse().unwrap()));
        assert!(!req.matches(&"2.0.0".parse().unwrap()));
        let hex = "AB".repeat(32);
        assert_eq!(
            DriverSpec::parse(&format!("x@sha256:{hex}")).unwrap(),
            DriverSpec::Digest {
                name: "x".into(),
                digest: hex.to_ascii_lowercase()
            }
        );
        assert_eq!(
            DriverSpec::parse("./d/x.wasm").unwrap(),
            DriverSpec::File("./d/x.wasm".into())
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let e = DriverSpec::parse("shell@banana").unwrap_err();
        assert!(e.to_string().contains("semver requirement"), "{e}");
        let e = DriverSpec::parse("shell@sha256:abc").unwrap_err();
        assert!(e.to_string().contains("64 hex digits"), "{e}");
        let e = DriverSpec::parse("Shell").unwrap_err();
        assert!(e.to_string().contains("lower-case"), "{e}");
    }
}
