//! Secrets from Vault (OpenBao): the client that reads the references DAGs
//! write (their syntax is the DAG's, in [`crate::dag::secret_ref`]) just
//! before a node runs, the submit-time checks against the operator's
//! policy, and the redaction of their values from everything a node leaves
//! behind.

mod policy;
mod redact;
mod vault;

use std::time::Instant;

use tokio_util::sync::CancellationToken;

pub use crate::config::{AppRoleSettings, VaultSettings};
pub use crate::dag::secret_ref::{
    ALWAYS_REFUSED, KvEngine, SecretRef, always_refused, check_name, syntax_problems,
};
pub use policy::{DEFAULT_PATHS, PathPolicy};
pub use redact::{MIN_REDACTED_LEN, REDACTED, Redactor};
pub use vault::{ReadError, Vault, VaultConfigError};

use crate::config::{Config, Policy};
use crate::dag::Problem;

/// A node's secrets, read: (name, value), in the node's order.
pub type Values = Vec<(String, String)>;

/// The submit-time checks that need the node's driver and the operator's
/// configuration: the driver takes secrets, the policy allows them, a
/// `[vault]` is configured, and its `paths` allow each reference.
pub fn grant_problems(
    config: &Config,
    node: &str,
    secrets: &[(String, String)],
    driver: &str,
    declares: bool,
) -> Vec<Problem> {
    if secrets.is_empty() {
        return Vec::new();
    }
    let at = format!("node `{node}`, field `secrets`");
    let mut problems = Vec::new();
    if !declares {
        problems.push(Problem::new(
            &at,
            format!(
                "driver `{driver}` does not read secrets (its description does not declare \
                 `capabilities.secrets`)"
            ),
        ));
    } else if !Policy::of(config, driver).secrets(declares) {
        problems.push(Problem::new(
            &at,
            format!(
                "the operator's policy does not allow secrets for driver `{driver}` \
                 ([drivers.{driver}] secrets = false)"
            ),
        ));
    }
    let Some(vault) = &config.vault else {
        problems.push(Problem::new(
            &at,
            "no Vault is configured: add a [vault] section (address and a way to log in) to \
             drover's configuration, or set VAULT_ADDR and VAULT_TOKEN where drover runs",
        ));
        return problems;
    };
    let paths = PathPolicy::new(vault.paths.as_deref());
    for (name, reference) in secrets {
        // Malformed and always-refused references are reported by
        // `syntax_problems`; once is enough.
        let Ok(parsed) = SecretRef::parse(reference) else {
            continue;
        };
        if always_refused(&parsed).is_some() {
            continue;
        }
        if let Err(message) = paths.check(&parsed) {
            problems.push(Problem::new(
                format!("node `{node}`, field `secrets.{name}`"),
                message,
            ));
        }
    }
    problems
}

/// Reads every secret of a node, in order, until `cancel` fires or
/// `deadline` passes. The error names the secret and its reference, never a
/// value.
pub async fn fetch(
    vault: Option<&Vault>,
    secrets: &[(String, String)],
    cancel: &CancellationToken,
    deadline: Option<Instant>,
) -> Result<Values, FetchError> {
    let Some(vault) = vault else {
        return Err(FetchError::Failed(
            "the node has secrets but no Vault is configured ([vault] in drover's configuration, \
             or VAULT_ADDR and VAULT_TOKEN where drover runs)"
                .into(),
        ));
    };
    let read_all = async {
        let mut values = Vec::with_capacity(secrets.len());
        for (name, written) in secrets {
            let reference = SecretRef::parse(written)
                .map_err(|e| FetchError::Failed(format!("secret `{name}`: {e}")))?;
            let value = vault
                .read(&reference)
                .await
                .map_err(|e| FetchError::Failed(format!("secret `{name}` ({reference}): {e}")))?;
            values.push((name.clone(), value));
        }
        Ok::<Values, FetchError>(values)
    };
    let until_deadline = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(FetchError::Canceled),
        _ = until_deadline => Err(FetchError::Deadline),
        done = read_all => done,
    }
}

/// Why a node's secrets were not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Failed(String),
    #[error("canceled while reading the node's secrets")]
    Canceled,
    #[error("the node's deadline passed while reading its secrets from Vault")]
    Deadline,
}
