//! The plugin registry over HTTP: publish, list, show and remove driver components.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{Body, Path, Query, quoted};
use super::problem::Kind;
use super::{ApiError, AppState};
use crate::registry::{Origin, PluginVersion, PublishError, RegistryError, Upload};

/// The header carrying a plugin's signature (base64 ed25519 over `sha256:<hex>`).
pub const SIGNATURE_HEADER: &str = "x-drover-signature";

/// What to publish an upload as.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UploadQuery {
    /// The plugin's name; defaults to the one it describes.
    #[param(pattern = "^[a-z][a-z0-9-]*$")]
    name: Option<String>,
    /// Its semver version; defaults to the one it describes.
    #[param(pattern = r"^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$")]
    version: Option<String>,
}

/// The signature of an upload.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(
    dead_code,
    reason = "a shape for the document; the handler reads the header itself"
)]
pub(super) struct UploadHeaders {
    /// A base64 ed25519 signature over `sha256:<hex digest>`.
    #[serde(rename = "X-Drover-Signature")]
    #[param(nullable = false)]
    signature: Option<String>,
}

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        let kind = match &e {
            PublishError::Invalid(_) => Kind::InvalidPlugin,
            PublishError::Unsigned(_) | PublishError::Forbidden(_) => Kind::Forbidden,
            PublishError::Conflict(_) => Kind::Conflict,
            PublishError::Io(_) => Kind::Other(StatusCode::INTERNAL_SERVER_ERROR),
        };
        ApiError::new(kind, e.to_string())
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let kind = match &e {
            RegistryError::UnknownPlugin(_) | RegistryError::UnknownVersion { .. } => {
                Kind::NotFound
            }
            RegistryError::Builtin(_) | RegistryError::InFolder { .. } => Kind::Conflict,
            RegistryError::Io(_) | RegistryError::TrustedKey { .. } => {
                Kind::Other(StatusCode::INTERNAL_SERVER_ERROR)
            }
        };
        ApiError::new(kind, e.to_string())
    }
}

pub(super) async fn upload(
    State(state): State<AppState>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    if body.is_empty() {
        return Err(ApiError::unreadable_body(
            "the body must be the component's bytes (Content-Type: application/wasm)",
        ));
    }
    let signature = match headers.get(SIGNATURE_HEADER) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| {
                    ApiError::invalid_parameter("header `X-Drover-Signature`: must be base64 text")
                })?
                .to_owned(),
        ),
    };
    let published = state
        .runs
        .registry()
        .publish(Upload {
            name: query.name,
            version: query.version,
            bytes: body.to_vec().into(),
            signature,
            origin: Origin::Upload,
        })
        .await?;
    let status = if published.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(published.plugin)).into_response())
}

/// A version of a plugin, in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct VersionPath {
    /// The plugin's name.
    name: String,
    /// A semver version (each number at most nine digits).
    #[param(
        pattern = r"^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})(-(0|[1-9][0-9]{0,8}|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(\.(0|[1-9][0-9]{0,8}|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
    )]
    version: String,
}

/// One plugin in the list.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PluginSummary)]
pub(super) struct Summary {
    name: String,
    /// Every version, oldest first.
    versions: Vec<String>,
    /// The version a bare name resolves to now.
    latest: Option<String>,
    builtin: bool,
}

/// Every plugin.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PluginList {
    plugins: Vec<Summary>,
}

pub(super) async fn list(State(state): State<AppState>) -> Json<PluginList> {
    let plugins: Vec<Summary> = state
        .runs
        .registry()
        .list()
        .into_iter()
        .map(|(name, versions)| Summary {
            latest: versions
                .iter()
                .rev()
                .find(|v| v.blocked.is_none())
                .map(|v| v.version.to_string()),
            builtin: versions.iter().any(|v| v.origin == Origin::Builtin),
            versions: versions.iter().map(|v| v.version.to_string()).collect(),
            name,
        })
        .collect();
    Json(PluginList { plugins })
}

/// A plugin's versions, each with its digest, capabilities, description and world.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PluginVersions)]
pub(super) struct Versions {
    name: String,
    /// Oldest first.
    versions: Vec<PluginVersion>,
}

/// A version that was withdrawn.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Removed {
    removed: PluginVersion,
    /// Whether runs still use it (they keep it until they end).
    in_use: bool,
}

pub(super) async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Versions>, ApiError> {
    let versions = state.runs.registry().versions(&name).await?;
    Ok(Json(Versions { name, versions }))
}

pub(super) async fn remove(
    State(state): State<AppState>,
    Path(VersionPath { name, version }): Path<VersionPath>,
) -> Result<Json<Removed>, ApiError> {
    if let Err(e) = version.parse::<semver::Version>() {
        return Err(ApiError::invalid_parameter(format!(
            "path parameter `version`: `{}` is not a semver version ({e})",
            quoted(&version)
        )));
    }
    let registry = state.runs.registry();
    let removed = registry.remove(&name, &version)?;
    let in_use = registry.in_use(&removed.digest);
    Ok(Json(Removed { removed, in_use }))
}
