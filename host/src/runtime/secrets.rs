//! The `secrets` capability: a node's secrets, read from Vault before `run`,
//! handed to its driver by name, and nothing else.

use std::collections::BTreeMap;

use super::bindings::drover::driver::secrets::{Error, Host};

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
