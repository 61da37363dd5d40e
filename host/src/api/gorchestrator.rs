//! gorchestrator's API under `/v1/tasks`, so that its clients keep working:
//! the graph goes in as posted and comes back with states and outputs filled.
//!
//! Errors here keep gorchestrator's `{"code", "message"}`: the edge layer
//! gives that shape to every error answered under `/v1/`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::extract::{Body, Path, text};
use super::{ApiError, AppState};
use crate::engine::RunState;
use crate::rfc3339;
use crate::runs::{RunFilter, Submission};
use crate::store::{Api, RunMeta};

/// Whether `path` is under gorchestrator's API, whose errors keep its shape.
pub(super) fn serves(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/")
}

/// A task's id.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TaskId {
    id: String,
}

/// Every task (gorchestrator's runs only).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TaskList {
    tasks: Vec<Task>,
}

/// A task in the list.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Task {
    id: String,
    name: String,
    /// The run's state, by name.
    state: RunState,
    #[schema(format = DateTime)]
    start_date: String,
    #[schema(format = DateTime)]
    stop_date: Option<String>,
}

/// gorchestrator's code for a run state (the node codes, applied to the run).
fn run_code(state: RunState) -> u8 {
    match state {
        RunState::Running => 2,
        RunState::Success => 3,
        RunState::Failure => 4,
        RunState::Timeout => 10,
        RunState::Canceled => 11,
    }
}

pub(super) async fn submit(
    State(state): State<AppState>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (text, has_digraph) = has_digraph(text(body)?).await?;
    if !has_digraph {
        return Err(ApiError::unreadable_body(
            "not gorchestrator's format: the object has no `digraph` (drover's own format goes to POST /api/v1/runs)",
        ));
    }
    let meta = state
        .runs
        .submit(Submission {
            api: Api::Gorchestrator,
            ..Submission::new(&text)
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(TaskId { id: meta.id })).into_response())
}

/// Whether the body is a JSON object with a `digraph`, read on a blocking
/// thread so that a large body never holds up an async worker; the text
/// comes back for the submission.
async fn has_digraph(text: String) -> Result<(String, bool), ApiError> {
    let read = tokio::task::spawn_blocking(move || {
        let value = serde_json::from_str::<Value>(&text);
        (text, value)
    })
    .await;
    let (text, value) = match read {
        Ok(read) => read,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => {
            return Err(ApiError::other(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is stopping",
            ));
        }
    };
    let value = value.map_err(|e| {
        ApiError::unreadable_body(format!(
            "invalid JSON at line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    Ok((text, value.get("digraph").is_some()))
}

pub(super) async fn list(State(state): State<AppState>) -> Result<Json<TaskList>, ApiError> {
    let mut tasks = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = state
            .runs
            .list(&RunFilter::default(), before.as_deref(), 1000)
            .await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id.clone());
        tasks.extend(
            page.iter()
                .filter(|meta| meta.api == Api::Gorchestrator)
                .map(task_summary),
        );
    }
    Ok(Json(TaskList { tasks }))
}

fn task_summary(meta: &RunMeta) -> Task {
    Task {
        id: meta.id.clone(),
        name: meta.name.clone(),
        state: meta.state,
        start_date: rfc3339::format(meta.submitted_at),
        stop_date: meta.finished_at.map(rfc3339::format),
    }
}

/// The run, if it is a gorchestrator task.
async fn task(state: &AppState, id: &str) -> Result<RunMeta, ApiError> {
    let not_found = || ApiError::not_found(format!("no task has the id `{id}`"));
    let meta = state.runs.meta(id).await.map_err(|_| not_found())?;
    if meta.api != Api::Gorchestrator {
        return Err(not_found());
    }
    Ok(meta)
}

pub(super) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    task(&state, &id).await?;
    let record = state.runs.record(&id).await?;
    let source = state.runs.source(&id).await?;
    let mut graph: Value = serde_json::from_str(&source).map_err(|e| {
        ApiError::other(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the stored graph does not parse: {e}"),
        )
    })?;
    graph["state"] = json!(run_code(record.state));
    if let Some(nodes) = graph.get_mut("nodes").and_then(Value::as_array_mut) {
        for node in nodes {
            let Some(name) = node.get("name").and_then(Value::as_str) else {
                continue;
            };
            let Some(done) = record.nodes.iter().find(|n| n.name == name) else {
                continue;
            };
            node["state"] = json!(done.state_code);
            let mut output = node
                .get("output")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (key, value) in done.outputs.iter() {
                output.insert(key.clone(), json!(value));
            }
            if !output.is_empty() {
                node["output"] = Value::Object(output);
            }
        }
    }
    Ok(Json(graph))
}

pub(super) async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TaskId>, ApiError> {
    task(&state, &id).await?;
    state.runs.cancel(&id).await?;
    Ok(Json(TaskId { id }))
}
