//! Browser sessions: a token traded once for an HttpOnly cookie, since a browser's `EventSource` cannot send a bearer header.
//!
//! The cookie holds no token and the server keeps no session table: its
//! value is an expiry and an HMAC of it, keyed by the digest of the token
//! that logged in. Any server with the same token (every leader of a fleet,
//! the same server after a restart) accepts it; removing the token from the
//! configuration ends every session it opened.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::Body;
use super::{ApiError, AppState};
use crate::config::Role;

/// The cookie's name.
pub const COOKIE_NAME: &str = "drover_session";

/// How long a session lasts: a working day, after which the page asks for
/// the token again.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Tags the MAC's message so that it can never be mistaken for another use
/// of the same key.
const CONTEXT: &str = "drover session v1";

/// The value of a session cookie for the token whose digest is `key`,
/// valid until `expires` (seconds since the epoch).
pub(super) fn mint(key: &[u8; 32], expires: u64) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), &message(expires));
    format!("{expires}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Whether `value` is a cookie minted with `key` that has not expired at `now`.
pub(super) fn verify(key: &[u8; 32], value: &str, now: u64) -> bool {
    let Some((expires, tag)) = value.split_once('.') else {
        return false;
    };
    let Ok(expires) = expires.parse::<u64>() else {
        return false;
    };
    let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
        return false;
    };
    expires > now
        && hmac::verify(
            &hmac::Key::new(hmac::HMAC_SHA256, key),
            &message(expires),
            &tag,
        )
        .is_ok()
}

fn message(expires: u64) -> Vec<u8> {
    format!("{CONTEXT} {expires}").into_bytes()
}

/// Seconds since the epoch.
pub(super) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The value of the session cookie among a request's `Cookie` headers.
pub(super) fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
}

/// Who the caller is, as the dashboard asks before drawing a page.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Session)]
pub(super) struct Whoami {
    /// The server has no tokens: every caller is an admin.
    open: bool,
    /// The caller's role (from its bearer token or its session cookie);
    /// `null` when it has neither or they are unknown or expired.
    #[schema(value_type = Option<String>, pattern = "^(admin|operator|viewer)$")]
    role: Option<&'static str>,
    /// When the session cookie expires (RFC 3339), if the role came from one.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

/// A login.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = Login)]
#[serde(deny_unknown_fields)]
pub(super) struct Login {
    /// One of the server's tokens.
    token: String,
}

pub(super) async fn whoami(State(state): State<AppState>, headers: HeaderMap) -> Json<Whoami> {
    let caller = state.auth.caller(&headers);
    Json(Whoami {
        open: state.auth.is_open(),
        role: caller.as_ref().ok().map(|c| c.role.as_str()),
        expires_at: caller
            .ok()
            .and_then(|c| c.session_expires)
            .map(|at| crate::rfc3339::format(UNIX_EPOCH + Duration::from_secs(at))),
    })
}

pub(super) async fn login(
    State(state): State<AppState>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let login: Login = serde_json::from_slice(&body)
        .map_err(|e| ApiError::unreadable_body(format!("expected {{\"token\": \"…\"}}: {e}")))?;
    if state.auth.is_open() {
        return Err(ApiError::new(
            super::problem::Kind::Conflict,
            "this server has no tokens: every caller is an admin, and there is nothing to log in to",
        ));
    }
    let Some(key) = state.auth.key_of(&login.token) else {
        tracing::warn!("a login with an unknown token");
        return Err(ApiError::unauthorized("unknown token"));
    };
    let expires = now() + LIFETIME.as_secs();
    let value = format!(
        "{COOKIE_NAME}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
        mint(&key, expires),
        LIFETIME.as_secs(),
        if state.secure_cookies { "; Secure" } else { "" },
    );
    set_cookie(value)
}

pub(super) async fn logout(State(state): State<AppState>) -> Result<Response, ApiError> {
    set_cookie(format!(
        "{COOKIE_NAME}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{}",
        if state.secure_cookies { "; Secure" } else { "" },
    ))
}

fn set_cookie(value: String) -> Result<Response, ApiError> {
    let value = HeaderValue::try_from(value).map_err(|e| {
        ApiError::other(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("session cookie: {e}"),
        )
    })?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(SET_COOKIE, value);
    // A login's answer is never for a cache to keep.
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// Who a request's credentials say it is.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub role: Role,
    /// When the role came from a session cookie: when it expires. A
    /// state-changing request so authenticated must come from drover's own
    /// pages (see [`super::auth`]).
    pub session_expires: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_cookie_verifies_until_it_expires() {
        let key = [7u8; 32];
        let value = mint(&key, 1000);
        assert!(verify(&key, &value, 999));
        assert!(!verify(&key, &value, 1000));
        assert!(!verify(&[8u8; 32], &value, 999), "another token's key");
    }

    #[test]
    fn a_forged_or_malformed_cookie_does_not() {
        let key = [7u8; 32];
        let value = mint(&key, 1000);
        let (_, tag) = value.split_once('.').unwrap();
        assert!(!verify(&key, &format!("2000.{tag}"), 999), "expiry moved");
        for bad in ["", "1000", "1000.", "x.abc", "1000.!!!", ".abc"] {
            assert!(!verify(&key, bad, 0), "{bad:?}");
        }
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; drover_session=v.x; b=2"),
        );
        assert_eq!(cookie(&headers), Some("v.x"));
        headers.insert(COOKIE, HeaderValue::from_static("drover_sessionx=1"));
        assert_eq!(cookie(&headers), None);
    }
}
