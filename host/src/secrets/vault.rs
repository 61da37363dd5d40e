//! The Vault (OpenBao) client: logs in (token, token file or AppRole) and
//! reads one key of a KV v1 or v2 secret. Errors name what failed, never a value.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use vaultrs::api::EndpointMiddleware;
use vaultrs::client::{VaultClient, VaultClientSettings};
use vaultrs::error::ClientError;

use super::policy::PathPolicy;
use crate::config::{VaultSettings, VaultSource};
use crate::dag::secret_ref::{KvEngine, SecretRef};

/// How long a request may take unless `vault.timeout` says.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a mount found to be KV is believed to stay KV: mounts change
/// rarely, and checking before every read would double the requests.
const MOUNT_CHECK_TTL: Duration = Duration::from_secs(60);

/// The mount types that hold plain key/value secrets (`generic` is KV v1's
/// old name).
const KV_TYPES: [&str; 2] = ["kv", "generic"];

/// A `[vault]` section that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("[vault] {0}")]
pub struct VaultConfigError(String);

/// Why a secret could not be read. The text never holds a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub String);

/// A Vault server and how to log in to it. Cheap to share; connections are
/// reused.
pub struct Vault {
    address: url::Url,
    http: reqwest::Client,
    timeout: Duration,
    auth: Auth,
    /// The namespace every request goes to (`X-Vault-Namespace`), if any.
    namespace: Option<String>,
    /// The token of the last AppRole login, until it expires.
    login: Mutex<Option<(String, Option<Instant>)>>,
    /// The paths references may name.
    paths: PathPolicy,
    /// Paths whose mount was found to be KV, and when.
    kv_mounts: Mutex<HashMap<String, Instant>>,
}

enum Auth {
    Token(String),
    /// The file, and what to call it in errors: where its path came from.
    TokenFile(PathBuf, &'static str),
    AppRole {
        mount: String,
        role_id: String,
        secret_id: SecretId,
    },
}

enum SecretId {
    Inline(String),
    File(PathBuf),
}

impl Vault {
    /// Checks the settings (address, exactly one way to log in, timeout)
    /// without contacting the server.
    pub fn new(settings: &VaultSettings) -> Result<Vault, VaultConfigError> {
        // Settings from the environment say so: there is no [vault] section to look at.
        let bad = |m: String| match settings.source {
            VaultSource::ConfigFile => VaultConfigError(m),
            VaultSource::Environment { .. } => {
                VaultConfigError(format!("from {}: {m}", settings.source.describe(settings)))
            }
        };
        if settings.address.trim().is_empty() {
            return Err(bad("address is not set".into()));
        }
        let address = url::Url::parse(&settings.address)
            .map_err(|e| bad(format!("address `{}` is not a URL: {e}", settings.address)))?;
        if !matches!(address.scheme(), "http" | "https") || address.host().is_none() {
            return Err(bad(format!(
                "address `{}` must be an http:// or https:// URL with a host",
                settings.address
            )));
        }
        let timeout = match &settings.timeout {
            Some(text) => {
                drover_duration::parse_duration(text).map_err(|e| bad(format!("timeout: {e}")))?
            }
            None => DEFAULT_TIMEOUT,
        };
        if timeout.is_zero() {
            return Err(bad("timeout must be greater than zero".into()));
        }
        let auth = match (&settings.token, &settings.token_file, &settings.approle) {
            (Some(token), None, None) => Auth::Token(token.clone()),
            (None, Some(file), None) => Auth::TokenFile(
                file.clone(),
                match settings.source {
                    VaultSource::ConfigFile => "vault.token_file",
                    VaultSource::Environment { token } => token,
                },
            ),
            (None, None, Some(approle)) => {
                let secret_id = match (&approle.secret_id, &approle.secret_id_file) {
                    (Some(id), None) => SecretId::Inline(id.clone()),
                    (None, Some(file)) => SecretId::File(file.clone()),
                    _ => {
                        return Err(bad(
                            "approle: set exactly one of `secret_id` or `secret_id_file`".into(),
                        ));
                    }
                };
                Auth::AppRole {
                    mount: approle.mount.clone().unwrap_or_else(|| "approle".into()),
                    role_id: approle.role_id.clone(),
                    secret_id,
                }
            }
            _ => {
                return Err(bad(
                    "set exactly one of `token`, `token_file` or `approle` to say how drover \
                     logs in"
                        .into(),
                ));
            }
        };
        let mut http = reqwest::Client::builder().use_rustls_tls().timeout(timeout);
        if let Some(file) = &settings.ca_cert {
            for certificate in ca_certificates(file).map_err(bad)? {
                http = http.add_root_certificate(certificate);
            }
        }
        let http = http
            .build()
            .map_err(|e| bad(format!("cannot make an HTTP client: {e}")))?;
        let namespace = settings
            .namespace
            .as_deref()
            .map(|ns| ns.trim().trim_matches('/'))
            .filter(|ns| !ns.is_empty())
            .map(str::to_owned);
        Ok(Vault {
            address,
            http,
            timeout,
            auth,
            namespace,
            login: Mutex::new(None),
            paths: PathPolicy::new(settings.paths.as_deref()),
            kv_mounts: Mutex::new(HashMap::new()),
        })
    }

    /// The server's address, as configured.
    pub fn address(&self) -> &str {
        self.address.as_str()
    }

    /// The value of one secret. The reference is checked against the
    /// paths policy again (a run carried on after the configuration
    /// changed, a drone with its own), and its mount must be KV.
    pub async fn read(&self, reference: &SecretRef) -> Result<String, ReadError> {
        self.paths.check(reference).map_err(ReadError)?;
        let token = self.token().await?;
        match self.read_with(&token, reference).await {
            // An AppRole token may have been revoked or expired early: log
            // in again once.
            Err(Failure::Denied(_)) if matches!(self.auth, Auth::AppRole { .. }) => {
                self.forget_login();
                let token = self.token().await?;
                self.read_with(&token, reference)
                    .await
                    .map_err(|f| f.explain(self, reference))
            }
            other => other.map_err(|f| f.explain(self, reference)),
        }
    }

    async fn read_with(&self, token: &str, reference: &SecretRef) -> Result<String, Failure> {
        self.check_kv_mount(token, reference).await?;
        let client = self.client(token);
        let data: Value = match reference.engine {
            KvEngine::V1 => vaultrs::kv1::get(&client, &reference.mount, &reference.path).await,
            KvEngine::V2 => vaultrs::kv2::read(&client, &reference.mount, &reference.path).await,
        }
        .map_err(Failure::from)?;
        let Value::Object(map) = data else {
            // A KV v2 secret whose latest version was deleted has no data.
            return Err(Failure::NoSecret);
        };
        match map.get(&reference.key) {
            Some(Value::String(value)) => Ok(value.clone()),
            Some(Value::Null) | None => {
                let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
                keys.sort_unstable();
                Err(Failure::NoKey(keys.join(", ")))
            }
            // Numbers, booleans, lists: their JSON text.
            Some(other) => Ok(other.to_string()),
        }
    }

    /// Asks Vault which mount serves the reference and refuses any that is
    /// not KV: a GET on another engine can answer with credentials
    /// (`database/creds/…` even makes new ones), which a KV read never does.
    /// `sys/internal/ui/mounts/<path>` answers any token that has a
    /// capability on the path, so drover's token needs no `sys/` policy.
    async fn check_kv_mount(&self, token: &str, reference: &SecretRef) -> Result<(), Failure> {
        // By the whole path: a mount of another engine may sit below a KV one.
        let path = reference.api_path();
        let known = self
            .mounts()
            .get(&path)
            .is_some_and(|checked| checked.elapsed() < MOUNT_CHECK_TTL);
        if known {
            return Ok(());
        }
        let mut url = self.address.clone();
        url.path_segments_mut()
            .map_err(|()| Failure::Unreadable)?
            .pop_if_empty()
            .extend(["v1", "sys", "internal", "ui", "mounts"])
            .extend(path.split('/'));
        let mut request = self.http.get(url).header("X-Vault-Token", token);
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Unreachable(format!("{e:#}")))?;
        let status = response.status().as_u16();
        if status == 403 {
            return Err(Failure::Denied(String::new()));
        }
        if !response.status().is_success() {
            return Err(Failure::Status(status, String::new()));
        }
        let answer: Value = response.json().await.map_err(|_| Failure::Unreadable)?;
        let kind = answer["data"]["type"].as_str().unwrap_or("");
        if !KV_TYPES.contains(&kind) {
            let kind = if kind.is_empty() { "unknown" } else { kind };
            return Err(Failure::NotKv(kind.to_owned()));
        }
        self.mounts().insert(path, Instant::now());
        Ok(())
    }

    fn mounts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.kv_mounts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A client that sends `token`; it shares this `Vault`'s connections.
    fn client(&self, token: &str) -> VaultClient {
        VaultClient {
            http: rustify::clients::reqwest::Client::new(self.address.as_str(), self.http.clone()),
            middle: EndpointMiddleware {
                token: token.to_owned(),
                version: "v1".into(),
                wrap: None,
                namespace: self.namespace.clone(),
            },
            settings: VaultClientSettings {
                address: self.address.clone(),
                ca_certs: Vec::new(),
                identity: None,
                timeout: Some(self.timeout),
                token: token.to_owned(),
                verify: true,
                version: 1,
                wrapping: false,
                namespace: self.namespace.clone(),
            },
        }
    }

    /// The token to send: the configured one, the token file's, or an
    /// AppRole login's (cached until it expires).
    async fn token(&self) -> Result<String, ReadError> {
        match &self.auth {
            Auth::Token(token) => Ok(token.clone()),
            Auth::TokenFile(path, name) => read_trimmed(path, name).await,
            Auth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                if let Some((token, expires)) = &*self.cached()
                    && expires.is_none_or(|e| Instant::now() < e)
                {
                    return Ok(token.clone());
                }
                let secret_id = match secret_id {
                    SecretId::Inline(id) => id.clone(),
                    SecretId::File(path) => {
                        read_trimmed(path, "vault.approle.secret_id_file").await?
                    }
                };
                let auth =
                    vaultrs::auth::approle::login(&self.client(""), mount, role_id, &secret_id)
                        .await
                        .map_err(|e| {
                            ReadError(format!(
                                "AppRole login (auth/{mount}) at {} failed: {}",
                                self.address,
                                Failure::from(e).reason()
                            ))
                        })?;
                // Renew well before the lease ends; a lease of 0 never ends.
                let expires = (auth.lease_duration > 0).then(|| {
                    Instant::now() + Duration::from_secs(auth.lease_duration.saturating_mul(9) / 10)
                });
                *self.cached() = Some((auth.client_token.clone(), expires));
                Ok(auth.client_token)
            }
        }
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, Option<(String, Option<Instant>)>> {
        self.login.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn forget_login(&self) {
        *self.cached() = None;
    }
}

/// The certificates of a PEM file (`vault.ca_cert`, `VAULT_CACERT`), or why there are none.
fn ca_certificates(file: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(file).map_err(|e| {
        format!(
            "cannot read the CA certificate file {}: {e}",
            file.display()
        )
    })?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        format!(
            "the CA certificate file {} is not PEM certificates: {e}",
            file.display()
        )
    })?;
    if certificates.is_empty() {
        return Err(format!(
            "the CA certificate file {} holds no certificate",
            file.display()
        ));
    }
    Ok(certificates)
}

async fn read_trimmed(path: &Path, field: &str) -> Result<String, ReadError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| ReadError(format!("cannot read {field} {}: {e}", path.display())))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(ReadError(format!("{field} {} is empty", path.display())));
    }
    Ok(text.to_owned())
}

/// What went wrong with one request, before it is explained.
enum Failure {
    Denied(String),
    NoSecret,
    NoKey(String),
    Status(u16, String),
    Unreachable(String),
    Unreadable,
    /// The mount's engine, which is not KV.
    NotKv(String),
}

impl From<ClientError> for Failure {
    // Only the status, Vault's error messages and transport errors are kept:
    // some variants carry the response body, which may hold secrets.
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::APIError { code: 403, errors } => Failure::Denied(errors.join("; ")),
            ClientError::APIError { code: 404, .. } => Failure::NoSecret,
            ClientError::APIError { code, errors } => Failure::Status(code, errors.join("; ")),
            ClientError::RestClientError { source } => match source {
                rustify::errors::ClientError::ServerResponseError { code: 403, .. } => {
                    Failure::Denied(String::new())
                }
                rustify::errors::ClientError::ServerResponseError { code: 404, .. } => {
                    Failure::NoSecret
                }
                rustify::errors::ClientError::ServerResponseError { code, .. } => {
                    Failure::Status(code, String::new())
                }
                rustify::errors::ClientError::RequestError { source, .. } => {
                    Failure::Unreachable(format!("{source:#}"))
                }
                _ => Failure::Unreadable,
            },
            ClientError::ResponseEmptyError | ClientError::ResponseDataEmptyError => {
                Failure::NoSecret
            }
            _ => Failure::Unreadable,
        }
    }
}

impl Failure {
    fn reason(&self) -> String {
        match self {
            Failure::Denied(detail) if detail.is_empty() => "permission denied (403)".into(),
            Failure::Denied(detail) => format!("permission denied (403): {detail}"),
            Failure::NoSecret => "not found (404)".into(),
            Failure::NoKey(keys) => format!("no such key (the secret has: {keys})"),
            Failure::Status(code, detail) if detail.is_empty() => format!("status {code}"),
            Failure::Status(code, detail) => format!("status {code}: {detail}"),
            Failure::Unreachable(detail) => format!("cannot reach the server: {detail}"),
            Failure::Unreadable => "its answer could not be read".into(),
            Failure::NotKv(kind) => {
                format!("its mount is a `{kind}` engine, not KV; only KV secrets are read")
            }
        }
    }

    fn explain(self, vault: &Vault, reference: &SecretRef) -> ReadError {
        let at = reference.api_path();
        ReadError(match self {
            Failure::Denied(_) => format!(
                "Vault at {} refused to read `{at}`: {}; check drover's token and its policy",
                vault.address,
                self.reason()
            ),
            Failure::NoSecret => format!("Vault at {} has no secret at `{at}`", vault.address),
            Failure::NoKey(keys) => format!(
                "the secret at `{at}` has no key `{}` (its keys: {})",
                reference.key,
                if keys.is_empty() { "none" } else { &keys }
            ),
            Failure::Unreachable(detail) => {
                format!("cannot reach Vault at {}: {detail}", vault.address)
            }
            other => format!(
                "Vault at {} could not read `{at}`: {}",
                vault.address,
                other.reason()
            ),
        })
    }
}
