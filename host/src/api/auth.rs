//! Bearer tokens and roles: who may call what.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use sha2::{Digest, Sha256};

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

    /// The role of a request with this `Authorization` header.
    fn role_of(&self, header: Option<&str>) -> Result<Role, ApiError> {
        if self.is_open() {
            return Ok(Role::Admin);
        }
        let header = header.ok_or_else(|| {
            ApiError::unauthorized("this server needs `Authorization: Bearer <token>`")
        })?;
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
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth.role_of(header) {
        Ok(role) if role >= needed => next.run(request).await,
        Ok(role) => ApiError::forbidden(format!(
            "this needs the `{}` role; the token has `{}`",
            needed.as_str(),
            role.as_str()
        ))
        .into_response(),
        Err(e) => e.into_response(),
    }
}
