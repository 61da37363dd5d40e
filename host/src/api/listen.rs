//! The accept loop of `drover serve`, over TCP or TLS: a cap on open connections, time limits on the TLS handshake and on a request's headers, and a drain at shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::problem::MEDIA_TYPE;

/// How long a client has to complete its TLS handshake.
pub const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// How long a client has to send a request's headers, counted from when the
/// connection is ready for the next request: a client that trickles a
/// header a byte at a time, or keeps an idle connection, is closed then.
pub const HEADER_LIMIT: Duration = Duration::from_secs(10);

/// How long connections in progress may go on after shutdown.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// How many connections over the cap may be in the middle of being told so
/// at once; beyond that they are closed without a word.
const REFUSALS_AT_ONCE: usize = 64;

/// How often the log says that the cap is reached, at most.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// What the loop serves and how.
pub struct Listen {
    pub listener: TcpListener,
    pub router: Router,
    /// HTTPS with this configuration; plain HTTP without.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The most connections open at once (`server.max_connections`).
    pub max_connections: usize,
    pub shutdown: CancellationToken,
}

/// Accepts connections and serves the router on each until `shutdown`
/// fires; then stops accepting and lets the connections in progress finish
/// for up to [`DRAIN_LIMIT`]. A connection over the cap gets a 503 (plain
/// HTTP) or is closed (HTTPS, where an answer would cost a handshake).
pub(super) async fn serve(listen: Listen) -> std::io::Result<()> {
    let Listen {
        listener,
        router,
        tls,
        max_connections,
        shutdown,
    } = listen;
    let acceptor = tls.map(TlsAcceptor::from);
    let open = Arc::new(Semaphore::new(max_connections));
    let refusing = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    let refusal_logged = AtomicU64::new(0);
    let started = Instant::now();
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            let now = started.elapsed().as_secs();
            let last = refusal_logged.load(Ordering::Relaxed);
            if last == 0 || now >= last + REFUSAL_LOG_EVERY.as_secs() {
                refusal_logged.store(now.max(1), Ordering::Relaxed);
                tracing::warn!(
                    %peer,
                    max_connections,
                    "connection refused: {max_connections} connections are open \
                     (server.max_connections)"
                );
            }
            if acceptor.is_none()
                && let Ok(slot) = Arc::clone(&refusing).try_acquire_owned()
            {
                tokio::spawn(async move {
                    refuse(stream, max_connections).await;
                    drop(slot);
                });
            }
            continue;
        };
        // SSE events and small answers go out at once.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_LIMIT);
            let ended = match acceptor {
                None => {
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(connection).await
                }
                Some(acceptor) => {
                    let Some(tls) = handshake(&acceptor, stream, peer).await else {
                        return;
                    };
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                    watcher.watch(connection).await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_LIMIT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open {DRAIN_LIMIT:?} after shutdown; closing them");
    }
    Ok(())
}

/// The TLS handshake, within [`HANDSHAKE_LIMIT`]: a client that connects
/// and never finishes it would hold a descriptor and a task for as long as
/// it liked.
async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "no TLS handshake within {HANDSHAKE_LIMIT:?}; closing");
            None
        }
    }
}

/// Tells a plain-HTTP client over the cap why it is turned away, then
/// closes: the answer is written before the request is read, and what the
/// client sent is drained for a moment so that the close does not reset the
/// connection before the client has read the answer.
async fn refuse(mut stream: TcpStream, max_connections: usize) {
    let body = format!(
        r#"{{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"the server has {max_connections} connections open, as many as server.max_connections allows; try again shortly"}}"#
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: {MEDIA_TYPE}\r\nContent-Length: {}\r\n\
         Retry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let limit = Duration::from_secs(1);
    if let Ok(Ok(())) = tokio::time::timeout(limit, stream.write_all(answer.as_bytes())).await {
        let _ = stream.shutdown().await;
        let mut sink = [0u8; 4096];
        let _ = tokio::time::timeout(limit, async {
            while let Ok(n) = stream.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }
}
