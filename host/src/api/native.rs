//! drover's own API under `/api/v1`: submit, list, read and cancel runs; drivers, health, metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::extract::{Body, Path, Query, text};
use super::{ApiError, AppState};
use crate::engine::{RunRecord, RunState};
use crate::registry::Origin;
use crate::rfc3339;
use crate::runs::Submission;
use crate::store::{Api, RunMeta};
use drover_duration::parse_duration;

#[derive(Debug, Deserialize)]
pub(super) struct SubmitQuery {
    parallelism: Option<usize>,
    #[serde(default)]
    fail_fast: bool,
    timeout: Option<String>,
}

#[derive(Debug, Serialize)]
struct Created<'a> {
    id: &'a str,
    url: String,
}

pub(super) async fn submit(
    State(state): State<AppState>,
    Query(query): Query<SubmitQuery>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let text = text(body)?;
    let timeout = query
        .timeout
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| ApiError::invalid_parameter(format!("query parameter `timeout`: {e}")))?;
    let meta = state
        .runs
        .submit(Submission {
            text: &text,
            api: Api::Native,
            parallelism: query.parallelism,
            fail_fast: query.fail_fast,
            timeout,
        })
        .await?;
    let url = format!("/api/v1/runs/{}", meta.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, url.clone())],
        Json(Created { id: &meta.id, url }),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    state: Option<String>,
    limit: Option<usize>,
    before: Option<String>,
}

/// One run in a list.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    id: &'a str,
    name: &'a str,
    state: RunState,
    nodes: usize,
    submitted_at: String,
    finished_at: Option<String>,
    url: String,
}

impl<'a> Summary<'a> {
    fn of(meta: &'a RunMeta) -> Self {
        Summary {
            id: &meta.id,
            name: &meta.name,
            state: meta.state,
            nodes: meta.nodes,
            submitted_at: rfc3339::format(meta.submitted_at),
            finished_at: meta.finished_at.map(rfc3339::format),
            url: format!("/api/v1/runs/{}", meta.id),
        }
    }
}

/// A run state named in a query.
pub(super) fn run_state(name: &str) -> Result<RunState, ApiError> {
    match name {
        "running" => Ok(RunState::Running),
        "success" => Ok(RunState::Success),
        "failure" => Ok(RunState::Failure),
        "timeout" => Ok(RunState::Timeout),
        "canceled" => Ok(RunState::Canceled),
        other => Err(ApiError::invalid_parameter(format!(
            "query parameter `state`: unknown run state `{other}` (running, success, failure, timeout or canceled)"
        ))),
    }
}

pub(super) async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let filter = query.state.as_deref().map(run_state).transpose()?;
    let limit = query.limit.unwrap_or(50).clamp(1, 1000);
    let runs = state
        .runs
        .list(filter, query.before.as_deref(), limit)
        .await?;
    let next = (runs.len() == limit)
        .then(|| runs.last().map(|m| m.id.clone()))
        .flatten();
    let summaries: Vec<Summary> = runs.iter().map(Summary::of).collect();
    Ok(Json(json!({ "runs": summaries, "next": next })).into_response())
}

pub(super) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RunRecord>, ApiError> {
    Ok(Json(state.runs.record(&id).await?))
}

pub(super) async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let meta = state.runs.cancel(&id).await?;
    let url = format!("/api/v1/runs/{}", meta.id);
    Ok((StatusCode::ACCEPTED, Json(Created { id: &meta.id, url })).into_response())
}

/// The driver each plugin name resolves to now, described.
pub(super) async fn drivers(State(state): State<AppState>) -> Result<Response, ApiError> {
    let registry = state.runs.registry();
    let mut found = Vec::new();
    for (name, _) in registry.list() {
        let versions = registry.versions(&name).await?;
        let Some(latest) = versions.into_iter().rev().find(|v| v.blocked.is_none()) else {
            continue;
        };
        found.push(json!({
            "name": name,
            "version": latest.version.to_string(),
            "digest": format!("sha256:{}", latest.digest),
            "builtin": latest.origin == Origin::Builtin,
            "description": latest.description,
        }));
    }
    Ok(Json(json!({ "drivers": found })).into_response())
}

pub(super) async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "runs_running": state.runs.running(),
    }))
}

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = state.runs.metrics();
    if let Some(dispatcher) = &state.dispatcher {
        text.push_str(&super::fleet::pool_metrics(dispatcher).await);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
