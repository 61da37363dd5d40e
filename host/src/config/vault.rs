//! The `[vault]` section of the configuration, or the `VAULT_*` environment variables when
//! there is none: where Vault is and how drover logs in.

use std::ffi::OsString;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where secrets come from: a Vault (or OpenBao) server, and exactly one
/// way to authenticate to it.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSettings {
    /// The server, e.g. `https://vault.example.org:8200`. Required; a default only so that
    /// a section without it is refused by [`resolve`] with a message, not by the parser.
    #[serde(default)]
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
    /// The namespace requests go to (Vault Enterprise, OpenBao), sent as
    /// `X-Vault-Namespace`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// A PEM file of CA certificates to trust for an `https` address, besides the
    /// system's.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// Where these settings came from; not a setting itself.
    #[serde(skip)]
    pub source: VaultSource,
}

/// Where the Vault settings in use came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VaultSource {
    /// The configuration file's `[vault]` section.
    #[default]
    ConfigFile,
    /// The `VAULT_*` environment variables, as there was no `[vault]` section; `token` says
    /// where the token came from (`VAULT_TOKEN`, `VAULT_TOKEN_FILE` or `~/.vault-token`).
    Environment {
        /// Where the token came from.
        token: &'static str,
    },
}

impl VaultSource {
    /// Where the settings came from, in a few words, for `drover config show` and logs.
    pub fn describe(self, settings: &VaultSettings) -> String {
        match self {
            VaultSource::ConfigFile => "the configuration file's [vault] section".to_owned(),
            VaultSource::Environment { token } => {
                let mut used = vec!["VAULT_ADDR", token];
                if settings.namespace.is_some() {
                    used.push("VAULT_NAMESPACE");
                }
                if settings.ca_cert.is_some() {
                    used.push("VAULT_CACERT");
                }
                format!("the environment ({})", used.join(", "))
            }
        }
    }
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
            .field("namespace", &self.namespace)
            .field("ca_cert", &self.ca_cert)
            .field("source", &self.source)
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

/// The variables the `vault` and `bao` CLIs read, as drover reads them. An empty variable
/// counts as unset.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VaultEnv {
    /// `VAULT_ADDR`.
    pub addr: Option<String>,
    /// `VAULT_TOKEN`.
    pub token: Option<String>,
    /// `VAULT_TOKEN_FILE`.
    pub token_file: Option<PathBuf>,
    /// `VAULT_NAMESPACE`.
    pub namespace: Option<String>,
    /// `VAULT_CACERT`.
    pub ca_cert: Option<PathBuf>,
    /// `$HOME`, for the CLIs' token file `~/.vault-token`.
    pub home: Option<PathBuf>,
}

impl VaultEnv {
    /// The variables of this process.
    pub fn from_process() -> VaultEnv {
        VaultEnv::from_lookup(|name| std::env::var_os(name))
    }

    /// The variables as `lookup` gives them (by name).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> VaultEnv {
        let get = |name: &str| lookup(name).filter(|value| !value.is_empty());
        let text = |name: &str| get(name).map(|value| value.to_string_lossy().into_owned());
        VaultEnv {
            addr: text("VAULT_ADDR"),
            token: text("VAULT_TOKEN"),
            token_file: get("VAULT_TOKEN_FILE").map(PathBuf::from),
            namespace: text("VAULT_NAMESPACE"),
            ca_cert: get("VAULT_CACERT").map(PathBuf::from),
            home: get("HOME").map(PathBuf::from),
        }
    }

    /// The names of the variables that are set, for saying where settings came from
    /// (`HOME` is not one).
    pub fn names(&self) -> Vec<&'static str> {
        [
            ("VAULT_ADDR", self.addr.is_some()),
            ("VAULT_TOKEN", self.token.is_some()),
            ("VAULT_TOKEN_FILE", self.token_file.is_some()),
            ("VAULT_NAMESPACE", self.namespace.is_some()),
            ("VAULT_CACERT", self.ca_cert.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// Vault settings that cannot be used, said before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultSettingsError {
    /// A `[vault]` section that lacks what the environment might have given.
    #[error(
        "[vault] has no {missing}. A [vault] section is used on its own: the VAULT_* \
         environment variables{set} fill in nothing; set it in the section, or remove the \
         section to use the environment"
    )]
    Partial {
        /// What the section lacks.
        missing: &'static str,
        /// `` (set: VAULT_ADDR, ...)`` when some are set.
        set: String,
    },
    /// `VAULT_ADDR` without any token to log in with.
    #[error(
        "VAULT_ADDR is set but there is no token: set VAULT_TOKEN or VAULT_TOKEN_FILE (HOME \
         is not set, so there is no ~/.vault-token), or configure a [vault] section"
    )]
    NoToken,
}

/// The Vault settings to use: the configuration file's `[vault]` section when there is one,
/// else the environment's as the `vault` CLI reads it (`VAULT_ADDR`; `VAULT_TOKEN`, else
/// `VAULT_TOKEN_FILE`, else `~/.vault-token`; `VAULT_NAMESPACE`; `VAULT_CACERT`), else none.
///
/// A section is never merged with the environment: an address from one place and a token
/// from another could send a token to a server it was not meant for. So a section without
/// an address or a way to log in is refused, naming the variables it does not take from.
/// Without `VAULT_ADDR` the environment configures nothing, whatever else is set.
pub fn resolve(
    configured: Option<VaultSettings>,
    env: &VaultEnv,
) -> Result<Option<VaultSettings>, VaultSettingsError> {
    if let Some(settings) = configured {
        let missing = if settings.address.trim().is_empty() {
            Some("`address`")
        } else if settings.token.is_none()
            && settings.token_file.is_none()
            && settings.approle.is_none()
        {
            Some("way to log in (`token`, `token_file` or `approle`)")
        } else {
            None
        };
        if let Some(missing) = missing {
            let names = env.names();
            let set = if names.is_empty() {
                String::new()
            } else {
                format!(" (set: {})", names.join(", "))
            };
            return Err(VaultSettingsError::Partial { missing, set });
        }
        return Ok(Some(VaultSettings {
            source: VaultSource::ConfigFile,
            ..settings
        }));
    }
    let Some(address) = env.addr.clone() else {
        return Ok(None);
    };
    let (token, token_file, from) = match (&env.token, &env.token_file, &env.home) {
        (Some(token), _, _) => (Some(token.clone()), None, "VAULT_TOKEN"),
        (None, Some(file), _) => (None, Some(file.clone()), "VAULT_TOKEN_FILE"),
        // Like the CLIs' token helper: read at each use, so a later `vault login` counts,
        // and a missing file is an error when a secret is read, not now.
        (None, None, Some(home)) => (None, Some(home.join(".vault-token")), "~/.vault-token"),
        (None, None, None) => return Err(VaultSettingsError::NoToken),
    };
    Ok(Some(VaultSettings {
        address,
        token,
        token_file,
        namespace: env.namespace.clone(),
        ca_cert: env.ca_cert.clone(),
        source: VaultSource::Environment { token: from },
        ..VaultSettings::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> VaultEnv {
        VaultEnv::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    fn section(text: &str) -> VaultSettings {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn without_a_section_the_environment_is_used_as_the_cli_reads_it() {
        let all = env(&[
            ("VAULT_ADDR", "https://vault.example:8200"),
            ("VAULT_TOKEN", "hvs.x"),
            ("VAULT_TOKEN_FILE", "/run/token"),
            ("VAULT_NAMESPACE", "team/ci"),
            ("VAULT_CACERT", "/etc/ca.pem"),
            ("HOME", "/home/u"),
        ]);
        let settings = resolve(None, &all).unwrap().unwrap();
        assert_eq!(settings.address, "https://vault.example:8200");
        assert_eq!(settings.token.as_deref(), Some("hvs.x"));
        assert_eq!(settings.token_file, None, "VAULT_TOKEN wins over the file");
        assert_eq!(settings.namespace.as_deref(), Some("team/ci"));
        assert_eq!(settings.ca_cert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(
            settings.source,
            VaultSource::Environment {
                token: "VAULT_TOKEN"
            }
        );
        assert_eq!(
            settings.source.describe(&settings),
            "the environment (VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE, VAULT_CACERT)"
        );
        assert_eq!(settings.approle, None);

        let file = env(&[
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN_FILE", "/run/token"),
            ("HOME", "/home/u"),
        ]);
        let settings = resolve(None, &file).unwrap().unwrap();
        assert_eq!(
            (settings.token, settings.token_file),
            (None, Some(PathBuf::from("/run/token")))
        );

        let home = env(&[("VAULT_ADDR", "http://127.0.0.1:8200"), ("HOME", "/home/u")]);
        let settings = resolve(None, &home).unwrap().unwrap();
        assert_eq!(
            settings.token_file,
            Some(PathBuf::from("/home/u/.vault-token"))
        );
        assert_eq!(
            settings.source.describe(&settings),
            "the environment (VAULT_ADDR, ~/.vault-token)"
        );
    }

    #[test]
    fn without_vault_addr_the_environment_configures_nothing() {
        assert_eq!(resolve(None, &VaultEnv::default()), Ok(None));
        let token_only = env(&[("VAULT_TOKEN", "hvs.x"), ("HOME", "/home/u")]);
        assert_eq!(resolve(None, &token_only), Ok(None));
        // Empty means unset, as in a shell's `VAULT_ADDR=`.
        let empty = env(&[("VAULT_ADDR", ""), ("VAULT_TOKEN", "hvs.x")]);
        assert_eq!(resolve(None, &empty), Ok(None));
    }

    #[test]
    fn an_address_without_any_token_is_refused_naming_the_variables() {
        let err = resolve(None, &env(&[("VAULT_ADDR", "http://127.0.0.1:8200")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("VAULT_TOKEN") && err.contains("VAULT_TOKEN_FILE"),
            "{err}"
        );
    }

    #[test]
    fn a_section_wins_whole_and_is_never_merged_with_the_environment() {
        let vars = env(&[
            ("VAULT_ADDR", "https://other.example:8200"),
            ("VAULT_TOKEN", "hvs.env"),
            ("VAULT_NAMESPACE", "env-ns"),
            ("HOME", "/home/u"),
        ]);
        let configured =
            section("address = \"http://127.0.0.1:8200\"\ntoken_file = \"/etc/drover/token\"\n");
        let settings = resolve(Some(configured.clone()), &vars).unwrap().unwrap();
        assert_eq!(settings, configured);
        assert_eq!(settings.source, VaultSource::ConfigFile);
        assert_eq!(settings.token, None, "no token from VAULT_TOKEN");
        assert_eq!(
            settings.namespace, None,
            "no namespace from VAULT_NAMESPACE"
        );

        // A partial section is refused, not completed from the environment.
        let no_address = section("token_file = \"/etc/drover/token\"\n");
        let err = resolve(Some(no_address.clone()), &vars)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no `address`")
                && err.contains("set: VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE"),
            "{err}"
        );
        let err = resolve(Some(no_address), &VaultEnv::default())
            .unwrap_err()
            .to_string();
        assert!(!err.contains("set:"), "{err}");
        let no_login = section("address = \"http://127.0.0.1:8200\"\n");
        let err = resolve(Some(no_login), &vars).unwrap_err().to_string();
        assert!(
            err.contains("no way to log in") && err.contains("VAULT_TOKEN"),
            "{err}"
        );
    }
}
