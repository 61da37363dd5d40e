//! Bearer tokens and roles: who may call what.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, ORIGIN};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use sha2::{Digest, Sha256};

use super::browser;
use super::session::{self, Caller};
use super::{ApiError, AppState};
use crate::config::{Role, TokenSetting};

/// The environment variable with extra tokens: `role:token,role:token`.
pub const TOKENS_ENV: &str = "DROVER_TOKENS";

/// The known tokens. With none, every caller is an admin: fit only for a
/// server on a loopback address.
#[derive(Debug, Default)]
pub struct Auth {
    /// sha256 of each token → its role; looking up digests does not leak
    /// how much of a guessed token was right.
    tokens: HashMap<[u8; 32], Role>,
}

impl Auth {
    /// The tokens of the config file plus those of `env` (the value of
    /// [`TOKENS_ENV`], if set).
    pub fn new(config: &[TokenSetting], env: Option<&str>) -> Result<Auth, String> {
        let mut tokens = HashMap::new();
        for setting in config {
            if setting.token.is_empty() {
                return Err("server.tokens: a token is empty".into());
            }
            tokens.insert(digest(&setting.token), setting.role);
        }
        for entry in env.unwrap_or_default().split(',').map(str::trim) {
            if entry.is_empty() {
                continue;
            }
            let Some((role, token)) = entry.split_once(':') else {
                return Err(format!(
                    "{TOKENS_ENV}: `{}…` is not `role:token`",
                    entry.chars().take(8).collect::<String>()
                ));
            };
            let role = match role {
                "admin" => Role::Admin,
                "operator" => Role::Operator,
                "viewer" => Role::Viewer,
                other => {
                    return Err(format!(
                        "{TOKENS_ENV}: unknown role `{other}` (admin, operator or viewer)"
                    ));
                }
            };
            if token.is_empty() {
                return Err(format!(
                    "{TOKENS_ENV}: the token for role `{}` is empty",
                    role.as_str()
                ));
            }
            tokens.insert(digest(token), role);
        }
        Ok(Auth { tokens })
    }

    /// Whether no token is required.
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The key of `token`'s sessions, if it is one of the server's tokens.
    pub(super) fn key_of(&self, token: &str) -> Option<[u8; 32]> {
        let key = digest(token);
        self.tokens.contains_key(&key).then_some(key)
    }

    /// Who a request is: by its `Authorization` header if it has one, else
    /// by its session cookie.
    pub(super) fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        if self.is_open() {
            return Ok(Caller {
                role: Role::Admin,
                session_expires: None,
            });
        }
        if let Some(header) = headers.get(AUTHORIZATION) {
            let header = header.to_str().unwrap_or("");
            return self.role_of_bearer(header).map(|role| Caller {
                role,
                session_expires: None,
            });
        }
        let Some(value) = session::cookie(headers) else {
            return Err(ApiError::unauthorized(
                "this server needs `Authorization: Bearer <token>` (or, from a browser, \
                 a session: POST /api/v1/session)",
            ));
        };
        let now = session::now();
        self.tokens
            .iter()
            .find(|(key, _)| session::verify(key, value, now))
            .map(|(_, role)| Caller {
                role: *role,
                session_expires: value.split_once('.').and_then(|(at, _)| at.parse().ok()),
            })
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "the session has expired or its token was removed: log in again",
                )
            })
    }

    fn role_of_bearer(&self, header: &str) -> Result<Role, ApiError> {
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            })?
            .trim();
        self.tokens
            .get(&digest(token))
            .copied()
            .ok_or_else(|| ApiError::unauthorized("unknown token"))
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// `route`, callable only with a token of at least `role` (by anyone when `None`).
pub fn guard(
    route: MethodRouter<AppState>,
    state: &AppState,
    role: Option<Role>,
) -> MethodRouter<AppState> {
    match role {
        None => route,
        Some(role) => route.route_layer(middleware::from_fn_with_state(
            (Arc::clone(&state.auth), role),
            check,
        )),
    }
}

async fn check(
    State((auth, needed)): State<(Arc<Auth>, Role)>,
    request: Request,
    next: Next,
) -> Response {
    let caller = match auth.caller(request.headers()) {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    if caller.role < needed {
        return ApiError::forbidden(format!(
            "this needs the `{}` role; the caller has `{}`",
            needed.as_str(),
            caller.role.as_str()
        ))
        .into_response();
    }
    if caller.session_expires.is_some()
        && let Some(refusal) = cross_site(&request)
    {
        tracing::warn!(method = %request.method(), uri = %request.uri(), reason = %refusal.detail(), "refused a cross-site request with a session cookie");
        return refusal.into_response();
    }
    next.run(request).await
}

/// A state-changing request that rides on a session cookie must come from
/// a page of this very server. SameSite=Strict already keeps the cookie off
/// other sites' requests; this also holds against a sibling site on the
/// same registrable domain, which SameSite counts as the same site.
fn cross_site(request: &Request) -> Option<ApiError> {
    if !browser::changes_state(request.method()) {
        return None;
    }
    let headers = request.headers();
    if headers
        .get("sec-fetch-site")
        .is_some_and(|site| site != "same-origin" && site != "none")
    {
        return Some(ApiError::forbidden(
            "a session may change things only from drover's own pages (Sec-Fetch-Site is not same-origin)",
        ));
    }
    let origin = headers.get(ORIGIN)?.to_str().unwrap_or("");
    if !browser::host(request).is_some_and(|host| browser::same_origin(origin, host)) {
        return Some(ApiError::forbidden(format!(
            "a session may change things only from drover's own pages; Origin `{}` is not this server",
            origin.escape_default()
        )));
    }
    None
}
