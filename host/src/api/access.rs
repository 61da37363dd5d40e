//! The access log: a span around each request, which the handler's own
//! logs nest under, and one line per answer (target `drover::access`, level
//! info: on by default for `drover serve`).

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The middleware. A streamed answer (events, logs) is logged when its
/// headers go out, with the time taken until then.
pub async fn log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let method = request.method().clone();
    // The path only: a query may carry what does not belong in a log.
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!("request", %method, %path);
    let response = next.run(request).instrument(span).await;
    tracing::info!(
        target: "drover::access",
        peer = peer.map(tracing::field::display),
        %method,
        %path,
        status = response.status().as_u16(),
        ms = (started.elapsed().as_secs_f64() * 1e4).round() / 10.0,
        "answered"
    );
    response
}
