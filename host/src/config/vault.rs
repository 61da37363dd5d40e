//! The `[vault]` section of the configuration: where Vault is and how drover logs in.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where secrets come from: a Vault (or OpenBao) server, and exactly one
/// way to authenticate to it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSettings {
    /// The server, e.g. `https://vault.example.org:8200`.
    pub address: String,
    /// A Vault token.
    #[serde(default)]
    pub token: Option<String>,
    /// A file holding a Vault token, read again whenever secrets are read
    /// (so a token rotated by an agent is picked up).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Log in with AppRole.
    #[serde(default)]
    pub approle: Option<AppRoleSettings>,
    /// How long one request to Vault may take (default `10s`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// The paths secret references may name: globs over the API path
    /// (`secret/data/ci/*`), `*` matching any characters, `/` included.
    /// Unset: every path but Vault's own mounts (see `policy`).
    #[serde(default)]
    pub paths: Option<Vec<String>>,
}

/// AppRole credentials: a role id and a secret id (inline or in a file).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRoleSettings {
    /// The role's id.
    pub role_id: String,
    /// The secret id.
    #[serde(default)]
    pub secret_id: Option<String>,
    /// A file holding the secret id, read at each login.
    #[serde(default)]
    pub secret_id_file: Option<PathBuf>,
    /// Where the AppRole auth method is mounted (default `approle`).
    #[serde(default)]
    pub mount: Option<String>,
}

// Never print credentials, even in debug output.
impl std::fmt::Debug for VaultSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultSettings")
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("token_file", &self.token_file)
            .field("approle", &self.approle)
            .field("timeout", &self.timeout)
            .field("paths", &self.paths)
            .finish()
    }
}

impl std::fmt::Debug for AppRoleSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRoleSettings")
            .field("role_id", &self.role_id)
            .field("secret_id", &self.secret_id.as_ref().map(|_| "…"))
            .field("secret_id_file", &self.secret_id_file)
            .field("mount", &self.mount)
            .finish()
    }
}
