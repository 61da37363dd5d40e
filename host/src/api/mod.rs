//! The HTTP API of `drover serve` (axum): drover's own under `/api/v1`,
//! gorchestrator's under `/v1`, bearer-token roles, and HTTP or HTTPS.

mod access;
mod auth;
mod browser;
mod edge;
mod error;
mod events;
mod extract;
mod fleet;
mod gorchestrator;
mod listen;
mod native;
mod openapi;
mod plugins;
mod probes;
pub mod problem;
mod routes;
mod session;
mod tls;
mod ui;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use tokio_util::sync::CancellationToken;

pub use auth::{Auth, TOKENS_ENV};
pub use error::ApiError;
pub use listen::Listen;
pub use routes::{ROUTES, Route};
pub use tls::{TlsError, load_tls};

use crate::runs::Runs;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub runs: Runs,
    pub auth: Arc<Auth>,
    /// Fires when the server stops: streams end so that connections close.
    pub shutdown: CancellationToken,
    /// Whether the server listens on more than loopback: without tokens
    /// (`--insecure`), any IP address is then a fine `Host`.
    pub beyond_loopback: bool,
    /// Whether the server speaks HTTPS: session cookies are then `Secure`.
    pub secure_cookies: bool,
}

impl AppState {
    /// The state of a server whose streams end when `shutdown` fires.
    pub fn new(runs: Runs, auth: Auth, shutdown: CancellationToken) -> Self {
        AppState {
            runs,
            auth: Arc::new(auth),
            shutdown,
            beyond_loopback: false,
            secure_cookies: false,
        }
    }

    /// The same state for a server that listens on more than loopback.
    pub fn beyond_loopback(mut self, beyond: bool) -> Self {
        self.beyond_loopback = beyond;
        self
    }

    /// The same state for a server that speaks HTTPS.
    pub fn secure_cookies(mut self, secure: bool) -> Self {
        self.secure_cookies = secure;
        self
    }
}

/// The whole API, built from [`ROUTES`] so that the OpenAPI document and
/// the router cannot disagree. Bodies over `max_body_bytes` get 413.
/// Without tokens, requests a web page could send are refused first
/// (see [`browser`]). Every error answer leaves through [`edge`]. The web
/// dashboard ([`ui`]) is served beside the API, behind the same guards.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let mut router = Router::new();
    for route in ROUTES {
        router = router.route(route.path, (route.handler)(&state, route.role));
    }
    let mut router = router
        .merge(ui::routes())
        .fallback(error::not_found)
        .layer(DefaultBodyLimit::max(max_body_bytes));
    if state.auth.is_open() {
        let guard = browser::Guard {
            any_ip_host: state.beyond_loopback,
        };
        router = router.layer(middleware::from_fn_with_state(guard, browser::check));
    }
    router
        .layer(middleware::from_fn(edge::edge))
        .layer(middleware::from_fn(access::log))
        .with_state(state)
}

/// Serves [`Listen::router`] until [`Listen::shutdown`] fires; connections
/// in progress are then let finish (see [`listen`]).
pub async fn serve(listen: Listen) -> std::io::Result<()> {
    listen::serve(listen).await
}
