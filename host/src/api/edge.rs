//! The outermost layer: places every error answer at its request path, and gives axum's own bare error answers (405) a body.

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use super::problem::MEDIA_TYPE;

/// How much of a bare error body is read to become a problem's detail.
const BARE_BODY: usize = 16 * 1024;

/// The middleware.
pub async fn edge(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let mut response = next.run(request).await;
    if let Some(error) = response.extensions_mut().remove::<ApiError>() {
        // Rendered again now that the path is known: cheap, and only on errors.
        return placed(error, &path);
    }
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_problem(&response) {
        return response;
    }
    // Answers axum makes itself: 405 (empty; its `Allow` header is added
    // after this layer, which axum applies to each route's methods) and any
    // rejection that no drover extractor wraps (text/plain).
    let detail = if status == StatusCode::METHOD_NOT_ALLOWED {
        format!("{method} is not allowed on {path}; the Allow header lists the methods it takes")
    } else {
        let text = to_bytes(response.into_body(), BARE_BODY)
            .await
            .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
            .unwrap_or_default();
        if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_owned()
        } else {
            text
        }
    };
    placed(ApiError::other(status, detail), &path)
}

/// The answer to a request for `path` that failed with `error`.
fn placed(error: ApiError, path: &str) -> Response {
    let mut answer = error.at(path).into_response();
    answer.extensions_mut().remove::<ApiError>();
    answer
}

fn is_problem(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == MEDIA_TYPE.as_bytes())
}
