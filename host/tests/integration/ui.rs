//! The web dashboard as `drover serve` answers it over real HTTP: the page at every path, its assets with their types and validators, its security headers.

use crate::support;

use std::collections::BTreeSet;

use reqwest::StatusCode;
use reqwest::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, HOST, IF_NONE_MATCH, ORIGIN,
    REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use support::Drover;
use support::server::{Server, client, problem};

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

fn header<'a>(response: &'a reqwest::Response, name: &reqwest::header::HeaderName) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Checks the headers every answer of the dashboard carries.
fn assert_secured(response: &reqwest::Response, what: &str) {
    assert_eq!(header(response, &CONTENT_SECURITY_POLICY), POLICY, "{what}");
    assert_eq!(
        header(response, &X_CONTENT_TYPE_OPTIONS),
        "nosniff",
        "{what}"
    );
    assert_eq!(header(response, &REFERRER_POLICY), "no-referrer", "{what}");
}

async fn get(server: &Server, path: &str) -> reqwest::Response {
    client().get(server.url(path)).send().await.unwrap()
}

#[tokio::test]
async fn the_page_answers_at_the_root_and_at_every_dashboard_path_with_a_strict_policy() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let mut etags = BTreeSet::new();
    for path in [
        "/",
        "/ui",
        "/ui/",
        "/ui/runs",
        "/ui/runs/x",
        "/ui/runs/some-run?tab=json&node=a",
        "/ui/drivers",
        "/ui/login?next=%2Fui%2Fruns",
    ] {
        let response = get(&server, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            header(&response, &CONTENT_TYPE),
            "text/html; charset=utf-8",
            "{path}"
        );
        assert_eq!(header(&response, &CACHE_CONTROL), "no-cache", "{path}");
        assert_secured(&response, path);
        etags.insert(header(&response, &ETAG).to_owned());
        let page = response.text().await.unwrap();
        assert!(page.starts_with("<!doctype html>"), "{path}: {page}");
        assert!(
            page.contains(r#"<script type="module" src="/ui/assets/js/main.js"></script>"#),
            "{path}: {page}"
        );
        for nav in ["runs", "submit", "drivers", "drones"] {
            assert!(page.contains(&format!(r#"data-nav="{nav}""#)), "{path}");
        }
    }
    assert_eq!(etags.len(), 1, "one page for every path: {etags:?}");

    // The API keeps its own answers, and paths outside both stay unknown.
    let response = get(&server, "/api/v1/health").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, &CONTENT_TYPE).starts_with("application/json"));
    problem(
        get(&server, "/uix").await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    problem(
        get(&server, "/api/v1/ui").await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    // The page is not an API operation: the OpenAPI document leaves it out.
    let document: serde_json::Value = get(&server, "/api/v1/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    let paths = document["paths"].as_object().unwrap();
    assert!(
        paths.keys().all(|p| !p.starts_with("/ui") && p != "/"),
        "{paths:?}"
    );

    // Only reading: a page path takes no POST.
    let response = client().post(server.url("/ui/runs")).send().await.unwrap();
    problem(response, StatusCode::METHOD_NOT_ALLOWED, "about:blank").await;
}

#[tokio::test]
async fn every_asset_the_page_loads_is_served_with_its_type_and_a_strong_etag() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    let page = get(&server, "/").await.text().await.unwrap();

    // Walk what the page names and what each module imports: every one
    // must be in the binary, so that a forgotten file fails here.
    let mut queue: Vec<String> = ["src=\"", "href=\""]
        .iter()
        .flat_map(|attr| page.split(attr).skip(1))
        .filter_map(|rest| rest.split('"').next())
        .filter(|url| url.starts_with("/ui/assets/"))
        .map(str::to_owned)
        .collect();
    let mut seen = BTreeSet::new();
    while let Some(url) = queue.pop() {
        if !seen.insert(url.clone()) {
            continue;
        }
        let response = get(&server, &url).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert_secured(&response, &url);
        let expected = match url.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("{url}: an asset of an unexpected kind {other:?}"),
        };
        assert_eq!(header(&response, &CONTENT_TYPE), expected, "{url}");
        assert_eq!(header(&response, &CACHE_CONTROL), "no-cache", "{url}");
        let etag = header(&response, &ETAG).to_owned();
        assert!(
            etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
            "{url}: a strong ETag, not {etag:?}"
        );
        let body = response.text().await.unwrap();
        if url.ends_with(".js") {
            let folder = url.rsplit_once('/').map(|(f, _)| f).unwrap_or_default();
            for line in body.lines().filter(|l| l.starts_with("import ")) {
                let Some(target) = line.split(['\'', '"']).nth(1) else {
                    continue;
                };
                let target = target.strip_prefix("./").unwrap_or(target);
                queue.push(format!("{folder}/{target}"));
            }
        }

        // The same bytes again: 304 and no body; the validator again.
        let response = client()
            .get(server.url(&url))
            .header(IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{url}");
        assert_eq!(header(&response, &ETAG), etag, "{url}");
        assert_secured(&response, &url);
        assert!(response.bytes().await.unwrap().is_empty(), "{url}");
    }
    for needed in [
        "/ui/assets/app.css",
        "/ui/assets/js/main.js",
        "/ui/assets/js/run.js",
        "/ui/assets/js/layout.js",
    ] {
        assert!(
            seen.contains(needed),
            "{needed} is not reached from the page: {seen:?}"
        );
    }

    // A stale validator, or several of which none matches, gets the bytes.
    let response = client()
        .get(server.url("/ui/assets/app.css"))
        .header(IF_NONE_MATCH, "\"0123\", W/\"4567\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unknown_asset_is_a_404_problem_with_the_same_headers() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    for path in [
        "/ui/assets/nope.js",
        "/ui/assets/js/nope.js",
        "/ui/assets/",
        "/ui/assets/index.html",
        "/ui/assets/..%2F..%2FCargo.toml",
    ] {
        let response = get(&server, path).await;
        assert_secured(&response, path);
        let body = problem(response, StatusCode::NOT_FOUND, "not-found").await;
        assert!(
            body["instance"]
                .as_str()
                .is_some_and(|i| i.starts_with("/ui/")),
            "{body}"
        );
    }
}

#[tokio::test]
async fn the_page_needs_no_token_but_keeps_the_browser_guard_without_tokens() {
    let drover = Drover::new();
    let open = Server::start(&drover, &[]);
    let port = open.base.rsplit(':').next().unwrap().to_owned();
    // A page elsewhere cannot load it through DNS rebinding, nor pull its
    // scripts into its own origin.
    for (host, origin) in [
        (Some(format!("evil.example:{port}")), None),
        (None, Some("http://evil.example")),
    ] {
        let mut request = client().get(open.url("/ui/assets/js/main.js"));
        if let Some(host) = &host {
            request = request.header(HOST, host);
        }
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        let response = request.send().await.unwrap();
        problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let response = client()
        .get(open.url("/"))
        .header(HOST, format!("localhost:{port}"))
        .header(ORIGIN, format!("http://localhost:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // With tokens the page itself is public (it holds no data); the API is not.
    let guarded = Drover::new();
    let server = Server::start_with(
        &guarded,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("DROVER_TOKENS", "viewer:look")],
    );
    for path in ["/", "/ui/runs/x", "/ui/assets/app.css"] {
        let response = get(&server, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_secured(&response, path);
    }
    let response = get(&server, "/api/v1/runs").await;
    problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
}
