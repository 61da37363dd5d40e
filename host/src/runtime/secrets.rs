//! The `secrets` capability: a node's secrets, read from Vault before `run`,
//! handed to its driver by name, and nothing else.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::Description;
use super::bindings::drover::driver::secrets::{Error, Host};
use crate::config::{Config, Policy};
use crate::secrets::{self, FetchError, MIN_REDACTED_LEN, Redactor, Values, Vault};
use crate::task::{NodeStatus, Outcome, Task};

/// Adds the `secrets` interface to `linker`, each instance's state being its [`SecretsHost`].
pub(super) fn link(
    linker: &mut wasmtime::component::Linker<super::state::InstanceState>,
) -> wasmtime::Result<()> {
    super::bindings::drover::driver::secrets::add_to_linker::<
        super::state::InstanceState,
        wasmtime::component::HasSelf<SecretsHost>,
    >(linker, |s| &mut s.secrets)
}

/// Per-instance state of the `secrets` interface.
pub struct SecretsHost {
    /// The node's secrets by name; `None` outside `run`.
    values: Option<BTreeMap<String, String>>,
}

impl SecretsHost {
    /// For `describe` and `validate`: no secrets at all.
    pub fn unavailable() -> Self {
        SecretsHost { values: None }
    }

    /// For `run`: exactly the node's secrets.
    pub fn granted(values: impl IntoIterator<Item = (String, String)>) -> Self {
        SecretsHost {
            values: Some(values.into_iter().collect()),
        }
    }
}

impl Host for SecretsHost {
    async fn names(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(self
            .values
            .as_ref()
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default())
    }

    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        let Some(values) = &self.values else {
            return Ok(Err(Error::Unavailable(
                "secrets are only given to `run`, not to `describe` or `validate`".into(),
            )));
        };
        Ok(match values.get(&name) {
            Some(value) => Ok(value.clone()),
            None => Err(Error::NotGranted(format!(
                "the node was not granted a secret `{name}` (it has: {}); list it under the \
                 node's `secrets`",
                if values.is_empty() {
                    "none".to_owned()
                } else {
                    values.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ))),
        })
    }
}

/// The `secrets` interface as a whole: the Vault nodes' secrets are read
/// from (when one is configured).
pub struct Secrets {
    vault: Option<Arc<Vault>>,
}

impl Secrets {
    /// The interface on the Vault `config` names, if any.
    pub(super) fn new(config: &Config) -> Result<Secrets, crate::secrets::VaultConfigError> {
        let vault = match &config.vault {
            Some(settings) => Some(Arc::new(Vault::new(settings)?)),
            None => None,
        };
        Ok(Secrets { vault })
    }

    /// Reads the node's secrets (none for most nodes), with what hides
    /// their values; or the outcome that ends the node.
    pub(super) async fn read(
        &self,
        policy: &Policy<'_>,
        description: &Description,
        task: &Task,
        cancel: &CancellationToken,
        deadline: Option<Instant>,
    ) -> Result<(Values, Arc<Redactor>), Outcome> {
        if task.secrets.is_empty() {
            return Ok((Vec::new(), Arc::default()));
        }
        // Checked when the DAG was accepted; checked again for runs carried
        // on after the configuration changed.
        if !policy.secrets(description.capabilities.secrets) {
            return Err(Outcome::failure(format!(
                "driver `{}` may not be given secrets (it does not declare them, or the \
                 operator's policy does not allow them)",
                description.name
            )));
        }
        match secrets::fetch(self.vault.as_deref(), &task.secrets, cancel, deadline).await {
            Ok(values) => {
                let redactor = Redactor::new(values.iter().map(|(_, v)| v.as_str()));
                Ok((values, Arc::new(redactor)))
            }
            Err(FetchError::Canceled) => Err(Outcome::with_message(
                NodeStatus::Canceled,
                FetchError::Canceled.to_string(),
            )),
            Err(FetchError::Deadline) => Err(Outcome::with_message(
                NodeStatus::Timeout,
                FetchError::Deadline.to_string(),
            )),
            Err(e) => Err(Outcome::failure(e.to_string())),
        }
    }
}

/// A warning for each secret too short to hide its encoded forms: its
/// value is still hidden wherever it appears, which garbles the log where
/// those few characters are ordinary text. Names only, never values.
pub(super) fn short_value_warnings(values: &Values) -> Vec<String> {
    values
        .iter()
        .filter(|(_, value)| !value.is_empty() && value.len() < MIN_REDACTED_LEN)
        .map(|(name, value)| {
            format!(
                "secret `{name}` is only {} bytes long: it is hidden wherever those characters \
                 appear, but its base64, hex and URL-encoded forms are not; give secrets at \
                 least {MIN_REDACTED_LEN} bytes",
                value.len()
            )
        })
        .collect()
}

/// The outcome with the node's secrets hidden from its message and outputs.
pub(super) fn redact_outcome(redactor: &Redactor, outcome: Outcome) -> Outcome {
    if redactor.is_empty() {
        return outcome;
    }
    Outcome {
        message: redactor.redact_owned(outcome.message),
        outputs: outcome
            .outputs
            .into_iter()
            .map(|(k, v)| (redactor.redact_owned(k), redactor.redact_owned(v)))
            .collect(),
        ..outcome
    }
}
