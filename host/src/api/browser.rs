//! Tokenless mode's guard against web pages: loopback `Host` and `Origin` only, and no body a browser may send unasked.
//!
//! Without tokens every caller is an admin, and a browser on the same
//! machine is a caller too. A page elsewhere can POST to localhost with a
//! "simple" request (text/plain, a form, a typed-less blob) that no CORS
//! preflight stops, and DNS rebinding lets a page under its own name read
//! the answers. The three checks close both doors.

use std::net::IpAddr;

use axum::body::HttpBody;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::http::header::{CONTENT_TYPE, HOST, ORIGIN};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use super::problem::Kind;

/// The body types a state-changing request may carry: none of them is one a
/// browser sends across origins without a preflight, which drover never
/// answers.
const BODY_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
    "application/wasm",
    "application/octet-stream",
];

/// What the guard lets through.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    /// Whether any IP address is a fine `Host` too (a tokenless server on a
    /// public address, `--insecure`): rebinding needs a DNS name, never an
    /// address.
    pub any_ip_host: bool,
}

/// The middleware: refuses what a web page could send, before any handler.
pub async fn check(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    match refusal(guard, &request) {
        Some(error) => {
            tracing::warn!(
                method = %request.method(),
                uri = %request.uri(),
                reason = %error.detail(),
                "refused a request a browser could have sent"
            );
            error.into_response()
        }
        None => next.run(request).await,
    }
}

fn refusal(guard: Guard, request: &Request) -> Option<ApiError> {
    let headers = request.headers();
    let host = host(request);
    if let Some(host) = host
        && !authority_is_loopback(host, guard.any_ip_host)
    {
        return Some(ApiError::forbidden(format!(
            "Host `{}` is not a loopback name: a server without tokens answers only \
             localhost, 127.0.0.1 or [::1] (configure tokens to serve other names)",
            host.escape_default()
        )));
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        // The server's own pages (the dashboard, served under an IP address
        // with `--insecure`) send their own origin: the Host check above
        // already vouched for it.
        if !origin_is_loopback(origin) && !host.is_some_and(|host| same_origin(origin, host)) {
            return Some(ApiError::forbidden(format!(
                "requests from the web page at `{}` are refused: a server without tokens \
                 takes requests from loopback origins only",
                origin.escape_default()
            )));
        }
    }
    if changes_state(request.method()) {
        match headers.get(CONTENT_TYPE) {
            Some(value) => {
                let essence = value
                    .to_str()
                    .unwrap_or("")
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                if !BODY_TYPES.contains(&essence.as_str()) {
                    return Some(unsupported(format!(
                        "Content-Type `{}` is refused",
                        essence.escape_default()
                    )));
                }
            }
            None if request.body().size_hint().exact() != Some(0) => {
                return Some(unsupported(
                    "a request with a body needs a Content-Type".into(),
                ));
            }
            None => {}
        }
    }
    None
}

fn unsupported(what: String) -> ApiError {
    ApiError::new(
        Kind::UnsupportedMediaType,
        format!(
            "{what}: send application/json or application/yaml (application/wasm for \
             plugins); a server without tokens refuses the types a web page can send \
             unasked"
        ),
    )
}

/// The host a request names: its `Host` header, or (HTTP/2) its URI's authority.
pub(super) fn host(request: &Request) -> Option<&str> {
    match request.headers().get(HOST) {
        Some(value) => Some(value.to_str().unwrap_or("")),
        None => request.uri().authority().map(|a| a.as_str()),
    }
}

pub(super) fn changes_state(method: &Method) -> bool {
    [Method::POST, Method::PUT, Method::PATCH, Method::DELETE].contains(method)
}

/// Whether `authority` (`name[:port]`) names this machine: `localhost`, an
/// address in 127.0.0.0/8 or `[::1]`; with `any_ip`, any IP address.
fn authority_is_loopback(authority: &str, any_ip: bool) -> bool {
    let Some(name) = host_of(authority) else {
        return false;
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.parse::<IpAddr>()
        .is_ok_and(|ip| any_ip || ip.is_loopback())
}

/// The host of `name[:port]` or `[v6][:port]`; `None` when the port is not one.
fn host_of(authority: &str) -> Option<&str> {
    let is_port = |port: &str| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = authority.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            None if after.is_empty() => Some(ip),
            Some(port) if is_port(port) => Some(ip),
            _ => None,
        };
    }
    match authority.split_once(':') {
        None => Some(authority),
        Some((name, port)) if is_port(port) => Some(name),
        Some(_) => None,
    }
}

/// Whether `origin` is the page's own: `http(s)://` and the request's `Host`.
pub(super) fn same_origin(origin: &str, host: &str) -> bool {
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|authority| !host.is_empty() && authority.eq_ignore_ascii_case(host))
}

/// Whether a browser's `Origin` is a page served from this machine.
fn origin_is_loopback(origin: &str) -> bool {
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|authority| authority_is_loopback(authority, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LocalHost:8080",
            "127.0.0.1",
            "127.0.0.1:80",
            "127.3.4.5:9",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(authority_is_loopback(host, false), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "localhost:80:80",
            "localhost:",
            "127.0.0.1.nip.io",
            "10.0.0.1",
            "[::2]",
            "[::1]x",
            "::1",
            "",
        ] {
            assert!(!authority_is_loopback(host, false), "{host}");
        }
        assert!(authority_is_loopback("10.0.0.1:8080", true));
        assert!(!authority_is_loopback("evil.example", true));
    }

    #[test]
    fn a_page_of_the_server_itself_is_its_own_origin() {
        assert!(same_origin("http://10.0.0.1:8080", "10.0.0.1:8080"));
        assert!(same_origin("https://10.0.0.1", "10.0.0.1"));
        for (origin, host) in [
            ("http://evil.example", "10.0.0.1:8080"),
            ("http://10.0.0.1:8081", "10.0.0.1:8080"),
            ("null", "10.0.0.1"),
            ("http://", ""),
            ("10.0.0.1:8080", "10.0.0.1:8080"),
        ] {
            assert!(!same_origin(origin, host), "{origin} vs {host}");
        }
    }

    #[test]
    fn loopback_origins() {
        assert!(origin_is_loopback("http://localhost:3000"));
        assert!(origin_is_loopback("https://127.0.0.1"));
        assert!(origin_is_loopback("http://[::1]:8080"));
        for origin in [
            "null",
            "http://evil.example",
            "file://",
            "http://localhost.evil.example",
            "http://localhost/path",
        ] {
            assert!(!origin_is_loopback(origin), "{origin}");
        }
    }
}
