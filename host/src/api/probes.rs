//! The probes orchestrators and scrapers expect at the root: `/healthz`
//! (the process answers), `/readyz` (runs can be accepted: the store's
//! writer is alive and Redis answers, in distributed mode) and `/metrics`.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};

/// How long the backend may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(2);

/// A plain-text answer.
fn text(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// `GET /healthz`: 200 while the process answers at all.
pub(super) async fn healthz() -> Response {
    text("ok\n")
}

/// `GET /readyz`: 200 when runs can be accepted, 503 saying why not.
pub(super) async fn readyz(State(state): State<AppState>) -> Result<Response, ApiError> {
    let unready =
        |why: String| ApiError::other(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}"));
    if state.shutdown.is_cancelled() {
        return Err(unready("the server is stopping".to_owned()));
    }
    match tokio::time::timeout(READY_WITHIN, state.runs.backend().ready()).await {
        Ok(Ok(())) => Ok(text("ready\n")),
        Ok(Err(e)) => Err(unready(e.to_string())),
        Err(_) => Err(unready(format!(
            "the store did not answer within {READY_WITHIN:?}"
        ))),
    }
}
