//! drover's own API under `/api/v1`: submit, validate, list, read, cancel and re-run runs; drivers, health, metrics.

use std::time::SystemTime;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{Body, Path, Query, text};
use super::{ApiError, AppState};
use crate::backend;
use crate::engine::{RunRecord, RunState};
use crate::registry::Origin;
use crate::rfc3339;
use crate::runs::{Rerun, RunFilter, Submission};
use crate::runtime::Description;
use crate::store::{Api, RunMeta};
use drover_duration::parse_duration;

/// The options of a submission.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct SubmitQuery {
    /// How many nodes may run at once (at most the server's cap).
    #[param(minimum = 1, maximum = 65535)]
    parallelism: Option<u16>,
    /// Stop the run at the first failure.
    #[serde(default)]
    fail_fast: bool,
    /// Run-wide timeout, e.g. `10m`, `1.5h`, `30s` or seconds.
    #[param(pattern = r"^[0-9]{1,6}(\.[0-9]{1,9})?(ms|s|m|h)?$")]
    timeout: Option<String>,
}

/// A run that was accepted, or whose cancel was.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Created<'a> {
    /// The run's id.
    id: &'a str,
    /// The run's path.
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
            parallelism: query.parallelism.map(usize::from),
            fail_fast: query.fail_fast,
            timeout,
        })
        .await?;
    Ok(created(&meta.id))
}

/// `201 Created` for the new run `id`, with its path as `Location`.
fn created(id: &str) -> Response {
    let url = format!("/api/v1/runs/{id}");
    (
        StatusCode::CREATED,
        [(header::LOCATION, url.clone())],
        Json(Created { id, url }),
    )
        .into_response()
}

/// What a re-run runs again.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RerunQuery {
    /// `all` (the default): every node. `failed`: the nodes that did not
    /// succeed and those that need them; the others keep their outputs.
    #[param(inline)]
    from: Option<Rerun>,
}

pub(super) async fn rerun(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<RerunQuery>,
) -> Result<Response, ApiError> {
    let meta = state
        .runs
        .rerun(&id, query.from.unwrap_or_default())
        .await?;
    Ok(created(&meta.id))
}

/// A DAG that would be accepted as it is.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ValidDag)]
pub(super) struct Valid {
    /// The DAG's name.
    name: String,
    /// How many nodes it has.
    nodes: usize,
    /// Each driver it names, once, in name order.
    drivers: Vec<DagDriver>,
}

/// A driver as a DAG names it, and the component a run would get now.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DagDriver {
    /// As the DAG writes it: `shell`, `greet@1`, …
    name: String,
    #[schema(pattern = "^sha256:[0-9a-f]{64}$")]
    digest: String,
}

pub(super) async fn validate(
    State(state): State<AppState>,
    Body(body): Body,
) -> Result<Json<Valid>, ApiError> {
    let text = text(body)?;
    let accepted = state.runs.validate(&text).await?;
    let drivers = accepted
        .drivers
        .pins()
        .into_iter()
        .map(|(name, digest)| DagDriver {
            name,
            digest: format!("sha256:{digest}"),
        })
        .collect();
    Ok(Json(Valid {
        name: accepted.dag.name.clone(),
        nodes: accepted.dag.nodes.len(),
        drivers,
    }))
}

/// Which runs to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Only runs in this state.
    #[param(inline)]
    state: Option<RunState>,
    /// Only runs whose DAG name contains this, whatever the case.
    name: Option<String>,
    /// Only runs submitted at or after this time (RFC 3339).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Only runs submitted before this time (RFC 3339).
    #[param(format = DateTime)]
    until: Option<String>,
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u16>,
    /// The `next` of the previous page.
    before: Option<String>,
}

/// The time of query parameter `name`, if given.
fn time_parameter(name: &str, value: Option<&str>) -> Result<Option<SystemTime>, ApiError> {
    value
        .map(|text| {
            rfc3339::parse(text).ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "query parameter `{name}`: `{text}` is not an RFC 3339 time such as \
                     2026-01-02T03:04:05Z"
                ))
            })
        })
        .transpose()
}

/// The most runs one page lists.
const MAX_PAGE: u16 = 1000;

/// One run in a list.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RunSummary)]
pub(super) struct Summary<'a> {
    id: &'a str,
    name: &'a str,
    state: RunState,
    /// How many nodes it has.
    nodes: usize,
    /// When it was accepted, which is when it started.
    #[schema(format = DateTime)]
    submitted_at: String,
    #[schema(format = DateTime)]
    finished_at: Option<String>,
    /// From `submitted_at` to `finished_at`; `null` while it runs.
    duration_ms: Option<u64>,
    /// Which API it was submitted through.
    api: Api,
    /// The run it re-runs, if it is a re-run.
    rerun_of: Option<&'a str>,
    /// The run's path.
    url: String,
}

/// A page of runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RunList<'a> {
    runs: Vec<Summary<'a>>,
    /// The `before` of the next page; `null` on the last one.
    next: Option<String>,
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
            duration_ms: meta.finished_at.map(|end| {
                let took = end.duration_since(meta.submitted_at).unwrap_or_default();
                u64::try_from(took.as_millis()).unwrap_or(u64::MAX)
            }),
            api: meta.api,
            rerun_of: meta.rerun_of.as_deref(),
            url: format!("/api/v1/runs/{}", meta.id),
        }
    }
}

pub(super) async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = match query.limit {
        None => 50,
        Some(limit @ 1..=MAX_PAGE) => usize::from(limit),
        Some(other) => {
            return Err(ApiError::invalid_parameter(format!(
                "query parameter `limit`: `{other}` is not between 1 and {MAX_PAGE}"
            )));
        }
    };
    let filter = RunFilter {
        state: query.state,
        name: query.name,
        since: time_parameter("since", query.since.as_deref())?,
        until: time_parameter("until", query.until.as_deref())?,
    };
    let runs = state
        .runs
        .list(&filter, query.before.as_deref(), limit)
        .await?;
    let next = (runs.len() == limit)
        .then(|| runs.last().map(|m| m.id.clone()))
        .flatten();
    let runs = runs.iter().map(Summary::of).collect();
    Ok(Json(RunList { runs, next }).into_response())
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

/// A driver a DAG can name.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Driver)]
pub(super) struct DriverSummary {
    name: String,
    /// The version a bare name resolves to now.
    version: String,
    #[schema(pattern = "^sha256:[0-9a-f]{64}$")]
    digest: String,
    builtin: bool,
    /// What `describe` returned, capabilities included.
    #[schema(value_type = Object)]
    description: Option<Description>,
}

/// The drivers this server has.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DriverList {
    drivers: Vec<DriverSummary>,
}

/// The driver each plugin name resolves to now, described.
pub(super) async fn drivers(State(state): State<AppState>) -> Result<Json<DriverList>, ApiError> {
    let registry = state.runs.registry();
    let mut found = Vec::new();
    for (name, _) in registry.list() {
        let versions = registry.versions(&name).await?;
        let Some(latest) = versions.into_iter().rev().find(|v| v.blocked.is_none()) else {
            continue;
        };
        found.push(DriverSummary {
            name,
            version: latest.version.to_string(),
            digest: format!("sha256:{}", latest.digest),
            builtin: latest.origin == Origin::Builtin,
            description: latest.description,
        });
    }
    Ok(Json(DriverList { drivers: found }))
}

/// The server is up.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Health {
    /// Always `ok`.
    #[schema(value_type = String, pattern = "^ok$")]
    status: &'static str,
    /// drover's version.
    version: &'static str,
    /// Runs in progress here.
    runs_running: usize,
}

pub(super) async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        runs_running: state.runs.running(),
    })
}

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = state.runs.metrics();
    if state.runs.backend().mode() == backend::Mode::Distributed {
        text.push_str(&super::fleet::pool_metrics(state.runs.backend()).await);
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
