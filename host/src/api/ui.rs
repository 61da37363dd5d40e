//! The web dashboard: its page, style and scripts, embedded in the binary and served at `/` and `/ui/…`.
//!
//! The page holds no data (the scripts fetch it from the API, which checks
//! who asks), so these routes need no token. They are not API operations
//! and stay out of [`super::ROUTES`] and the OpenAPI document.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};

/// What the dashboard's answers allow a browser to do: its own scripts,
/// styles and API, nothing inline, nothing from elsewhere, no framing.
pub const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Where the assets are served from; `index.html` names them under it.
const ASSETS_PREFIX: &str = "assets/";

/// The page every dashboard path answers: the scripts route on the client.
const INDEX: &str = "index.html";

/// An embedded file, by its path under `host/ui/`.
macro_rules! embed {
    ($path:literal) => {
        (
            $path,
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/", $path)) as &[u8],
        )
    };
}

/// Every file of `host/ui/` (a unit test checks that none is left out).
const FILES: &[(&str, &[u8])] = &[
    embed!("index.html"),
    embed!("app.css"),
    embed!("favicon.svg"),
    embed!("js/ansi.js"),
    embed!("js/api.js"),
    embed!("js/dom.js"),
    embed!("js/drivers.js"),
    embed!("js/drones.js"),
    embed!("js/format.js"),
    embed!("js/graph.js"),
    embed!("js/layout.js"),
    embed!("js/log.js"),
    embed!("js/login.js"),
    embed!("js/main.js"),
    embed!("js/model.js"),
    embed!("js/nodelist.js"),
    embed!("js/router.js"),
    embed!("js/run.js"),
    embed!("js/runs.js"),
    embed!("js/submit.js"),
    embed!("js/timeline.js"),
];

/// An embedded file with what its answers carry.
struct Asset {
    path: &'static str,
    bytes: &'static [u8],
    media_type: &'static str,
    /// A strong validator: the bytes' digest, so that a new binary's
    /// changed file never matches a cached one.
    etag: HeaderValue,
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(path, bytes)| {
            let digest = Sha256::digest(bytes);
            let etag = format!("\"{}\"", hex::encode(&digest[..16]));
            Asset {
                path,
                bytes,
                media_type: media_type(path),
                etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")),
            }
        })
        .collect()
});

fn media_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.path == path)
}

/// The dashboard's routes, to merge beside the API's.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/{*path}", get(page_or_asset))
}

async fn index(headers: HeaderMap) -> Response {
    match find(INDEX) {
        Some(asset) => answer(asset, &headers),
        None => missing("/", "the dashboard's page is not in this binary"),
    }
}

async fn page_or_asset(Path(path): Path<String>, uri: Uri, headers: HeaderMap) -> Response {
    let Some(file) = path.strip_prefix(ASSETS_PREFIX) else {
        // A page of the dashboard: the scripts read the path.
        return index(headers).await;
    };
    match find(file).filter(|asset| asset.path != INDEX) {
        Some(asset) => answer(asset, &headers),
        None => missing(
            uri.path(),
            &format!("the dashboard has no asset `{}`", file.escape_default()),
        ),
    }
}

/// `asset`, or `304 Not Modified` when the client holds these bytes.
fn answer(asset: &Asset, headers: &HeaderMap) -> Response {
    let fresh = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").as_bytes() == asset.etag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(CONTENT_TYPE, HeaderValue::from_static(asset.media_type))],
            asset.bytes,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(ETAG, asset.etag.clone());
    // Revalidated at each load (a cheap 304), so a new binary's files are
    // never mixed with an old binary's.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(response)
}

/// A 404 problem, placed at `path` here rather than by the edge, so that it
/// keeps the dashboard's headers.
fn missing(path: &str, detail: &str) -> Response {
    let mut response = ApiError::not_found(detail).at(path).into_response();
    response.extensions_mut().remove::<ApiError>();
    secure(response)
}

/// Adds the headers every dashboard answer carries.
fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under `host/ui/`, relative to it.
    fn files_on_disk() -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        let mut found = Vec::new();
        let mut folders = vec![root.clone()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).expect("host/ui is readable") {
                let path = entry.expect("a folder entry").path();
                if path.is_dir() {
                    folders.push(path);
                } else if let Ok(relative) = path.strip_prefix(&root) {
                    found.push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        found.sort();
        found
    }

    #[test]
    fn every_file_of_host_ui_is_embedded_with_a_known_type() {
        let mut embedded: Vec<String> = FILES.iter().map(|(path, _)| path.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, files_on_disk(), "FILES and host/ui/ differ");
        for (path, _) in FILES {
            assert_ne!(media_type(path), "application/octet-stream", "{path}");
        }
    }

    #[test]
    fn etags_differ_by_content_and_are_quoted() {
        let tags: Vec<&HeaderValue> = ASSETS.iter().map(|a| &a.etag).collect();
        for (i, tag) in tags.iter().enumerate() {
            let text = tag.to_str().unwrap_or_default();
            assert!(text.starts_with('"') && text.ends_with('"') && text.len() == 34);
            assert!(!tags[i + 1..].contains(tag), "{text} repeats");
        }
    }

    #[test]
    fn the_page_loads_no_script_or_style_from_elsewhere_or_inline() {
        let page = std::str::from_utf8(find(INDEX).map(|a| a.bytes).unwrap_or_default())
            .unwrap_or_default();
        assert!(page.contains("<script type=\"module\" src=\"/ui/assets/js/main.js\">"));
        assert!(
            !page.contains("style="),
            "inline styles are refused by the policy"
        );
        assert!(
            !page.contains("<style"),
            "inline styles are refused by the policy"
        );
        assert!(!page.contains("http://") && !page.contains("https://"));
        for (path, bytes) in FILES.iter().filter(|(p, _)| p.ends_with(".js")) {
            let text = std::str::from_utf8(bytes).unwrap_or_default();
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "eval(",
                "new Function",
            ] {
                assert!(!text.contains(banned), "{path} uses {banned}");
            }
        }
    }
}
