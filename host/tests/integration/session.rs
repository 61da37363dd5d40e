//! Browser sessions over real HTTP: a token traded for an HttpOnly cookie, the cookie's role, and what a cookie may not do from another site.

use crate::support;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};
use serde_json::{Value, json};
use support::Drover;
use support::server::{Server, client, problem};

const TOKENS: &str = "viewer:view-secret,operator:op-secret";
const DAG: &str = "name: from-a-page\nnodes:\n  a: {driver: noop}\n";

fn serve(drover: &Drover) -> Server {
    Server::start_with(
        drover,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("DROVER_TOKENS", TOKENS)],
    )
}

/// Logs in with `token`; the `name=value` of the cookie the answer sets.
async fn login(server: &Server, token: &str) -> String {
    let response = client()
        .post(server.url("/api/v1/session"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let set = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attribute in ["Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=43200"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(
        !set.contains("Secure"),
        "a plain-HTTP server's cookie: {set}"
    );
    set.split(';').next().unwrap().to_owned()
}

async fn whoami(server: &Server, cookie: Option<&str>) -> Value {
    let mut request = client().get(server.url("/api/v1/session"));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn run_count(server: &Server) -> usize {
    let list: Value = client()
        .get(server.url("/api/v1/runs"))
        .bearer_auth("op-secret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["runs"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_token_is_traded_for_a_cookie_that_carries_its_role() {
    let drover = Drover::new();
    let server = serve(&drover);
    let nobody = whoami(&server, None).await;
    assert_eq!(
        nobody,
        json!({"open": false, "role": null, "expires_at": null})
    );

    let response = client()
        .post(server.url("/api/v1/session"))
        .json(&json!({"token": "guess"}))
        .send()
        .await
        .unwrap();
    assert!(response.headers().get(SET_COOKIE).is_none());
    problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let response = client()
        .post(server.url("/api/v1/session"))
        .header("content-type", "application/json")
        .body("token=view-secret")
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::BAD_REQUEST, "unreadable-body").await;

    let viewer = login(&server, "view-secret").await;
    let me = whoami(&server, Some(&viewer)).await;
    assert_eq!(me["role"], "viewer", "{me}");
    assert!(
        me["expires_at"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z')),
        "{me}"
    );
    let read = client()
        .get(server.url("/api/v1/runs"))
        .header(COOKIE, &viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let submit = client()
        .post(server.url("/api/v1/runs"))
        .header(COOKIE, &viewer)
        .header("content-type", "application/yaml")
        .body(DAG)
        .send()
        .await
        .unwrap();
    problem(submit, StatusCode::FORBIDDEN, "forbidden").await;

    // The browser's EventSource sends the cookie and nothing else.
    let operator = login(&server, "op-secret").await;
    let created: Value = client()
        .post(server.url("/api/v1/runs"))
        .header(COOKIE, &operator)
        .header(ORIGIN, server.url(""))
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/yaml")
        .body(DAG)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let events = client()
        .get(server.url(&format!("/api/v1/runs/{id}/events")))
        .header(COOKIE, &viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    assert!(events.text().await.unwrap().contains("event: finished"));

    // A bearer header wins over the cookie, whatever the cookie says.
    let wrong = client()
        .get(server.url("/api/v1/runs"))
        .header(COOKIE, &operator)
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let out = client()
        .delete(server.url("/api/v1/session"))
        .header(COOKIE, &viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let cleared = out.headers()[SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("drover_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
}

#[tokio::test]
async fn a_cookie_may_not_change_anything_from_another_site() {
    let drover = Drover::new();
    let server = serve(&drover);
    let operator = login(&server, "op-secret").await;
    let before = run_count(&server).await;
    let from = |origin: Option<&str>, site: Option<&str>| {
        let mut request = client()
            .post(server.url("/api/v1/runs"))
            .header(COOKIE, &operator)
            .header("content-type", "application/yaml")
            .body(DAG);
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        request.send()
    };
    for (origin, site) in [
        (Some("http://evil.example"), None),
        (Some("http://evil.example"), Some("cross-site")),
        (None, Some("same-site")),
        (Some("null"), None),
    ] {
        let refused = problem(
            from(origin, site).await.unwrap(),
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
        assert!(
            refused["detail"]
                .as_str()
                .unwrap()
                .contains("drover's own pages"),
            "{refused}"
        );
    }
    assert_eq!(
        run_count(&server).await,
        before,
        "a refused request stored a run"
    );
    // The same token in a bearer header is no browser's doing: any origin.
    let bearer = client()
        .post(server.url("/api/v1/runs"))
        .bearer_auth("op-secret")
        .header(ORIGIN, "http://evil.example")
        .header("content-type", "application/yaml")
        .body(DAG)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::CREATED);
    // From the server's own page, or from a client that is no browser.
    let own = server.url("");
    assert_eq!(
        from(Some(&own), Some("same-origin"))
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        from(None, None).await.unwrap().status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_cookie_outlives_a_restart_but_not_its_token_or_a_forgery() {
    let drover = Drover::new();
    let mut server = serve(&drover);
    let viewer = login(&server, "view-secret").await;
    server.terminate();
    let server = serve(&drover);
    assert_eq!(whoami(&server, Some(&viewer)).await["role"], "viewer");

    let (name, value) = viewer.split_once('=').unwrap();
    let (expires, tag) = value.split_once('.').unwrap();
    let later: u64 = expires.parse::<u64>().unwrap() + 86_400;
    let forged = format!("{name}={later}.{tag}");
    assert_eq!(whoami(&server, Some(&forged)).await["role"], Value::Null);
    let response = client()
        .get(server.url("/api/v1/runs"))
        .header(COOKIE, &forged)
        .send()
        .await
        .unwrap();
    let refused = problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert!(
        refused["detail"].as_str().unwrap().contains("log in again"),
        "{refused}"
    );
    drop(server);

    // Without the viewer token, its sessions are over.
    let server = Server::start_with(
        &drover,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("DROVER_TOKENS", "operator:op-secret")],
    );
    assert_eq!(whoami(&server, Some(&viewer)).await["role"], Value::Null);
}

#[tokio::test]
async fn without_tokens_there_is_nothing_to_log_in_to() {
    let drover = Drover::new();
    let server = Server::start(&drover, &[]);
    assert_eq!(
        whoami(&server, None).await,
        json!({"open": true, "role": "admin", "expires_at": null})
    );
    let response = client()
        .post(server.url("/api/v1/session"))
        .json(&json!({"token": "anything"}))
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::CONFLICT, "conflict").await;
}
