//! Every route of the API in one table: the router and the OpenAPI document are both built from it.

use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, delete, get, post};

use super::openapi::{Body, Media, Params, no_params, params, schema};
use super::{
    AppState, auth, events, fleet, gorchestrator, native, openapi, plugins, probes, session,
};
use crate::config::Role;
use crate::dag::schema::Graph;
use crate::engine::RunRecord;
use crate::registry::PluginVersion;

/// One operation of the API.
pub struct Route {
    /// `GET`, `POST` or `DELETE`.
    pub method: &'static str,
    /// The path, with `{name}` parameters (axum and OpenAPI agree on the syntax).
    pub path: &'static str,
    /// The least role that may call it; `None` for anyone.
    pub role: Option<Role>,
    /// A short summary, and the OpenAPI tag.
    pub summary: &'static str,
    pub tag: &'static str,
    /// Its query and header parameters, from the types the handler reads.
    pub params: Params,
    /// The request body it takes, if any.
    pub body: Option<Body>,
    /// Status codes, each with a description and what the answer carries.
    pub responses: &'static [Answer],
    /// Builds the axum handler, guarded by `role`.
    pub handler: fn(&AppState, Option<Role>) -> MethodRouter<AppState>,
}

/// An answer: status, description, body.
pub type Answer = (u16, &'static str, Media);

const DAG_BODY: Body = Body {
    description: "A DAG in drover's native format, as JSON or YAML (gorchestrator's JSON is taken too)",
    media: &[
        ("application/json", openapi::dag),
        ("application/yaml", openapi::dag),
    ],
};
const GRAPH_BODY: Body = Body {
    description: "gorchestrator's {name, state, digraph, nodes}",
    media: &[("application/json", schema::<Graph>)],
};
const PLUGIN_BODY: Body = Body {
    description: "The component's bytes; an optional X-Drover-Signature header carries a \
         base64 ed25519 signature over `sha256:<hex digest>`.",
    media: &[
        ("application/wasm", openapi::binary),
        ("application/octet-stream", openapi::binary),
    ],
};
const LOGIN_BODY: Body = Body {
    description: "`{\"token\": \"…\"}`: one of the server's tokens",
    media: &[("application/json", schema::<session::Login>)],
};
/// gorchestrator's errors keep its `{"code", "message"}`.
const TASK_ERROR: Media = Media::Json(schema::<super::error::Gorchestrator<'static>>);
const UNAUTHORIZED: Answer = (401, "No or unknown bearer token", Media::Problem);
/// Every route can answer it: without tokens, the browser guard refuses a
/// Host or Origin that is not loopback.
const FORBIDDEN: Answer = (
    403,
    "The token's role may not do this; without tokens, a Host or Origin that is not loopback",
    Media::Problem,
);
const OPEN_FORBIDDEN: Answer = (
    403,
    "Without tokens, a Host or Origin that is not loopback",
    Media::Problem,
);
const BAD_PARAMETER: Answer = (
    400,
    "A query or path parameter is malformed",
    Media::Problem,
);
/// Without tokens, state-changing requests must carry a type no web page sends unasked.
const UNSUPPORTED: Answer = (
    415,
    "Without tokens: a body with no Content-Type, or one a web page could send",
    Media::Problem,
);
const NO_RUN: Answer = (404, "No such run", Media::Problem);
const TASK_UNAUTHORIZED: Answer = (401, "No or unknown bearer token", TASK_ERROR);
const TASK_FORBIDDEN: Answer = (
    403,
    "The token's role may not do this; without tokens, a Host or Origin that is not loopback",
    TASK_ERROR,
);
const TASK_UNSUPPORTED: Answer = (
    415,
    "Without tokens: a body with no Content-Type, or one a web page could send",
    TASK_ERROR,
);

/// The API.
pub const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/api/v1/runs",
        role: Some(Role::Operator),
        summary: "Submit a DAG to run",
        tag: "runs",
        params: params::<native::SubmitQuery>,
        body: Some(DAG_BODY),
        responses: &[
            (
                201,
                "Accepted and durable",
                Media::Json(schema::<native::Created>),
            ),
            (
                400,
                "Not UTF-8, YAML or JSON (with line and column), or a bad query parameter",
                Media::Problem,
            ),
            (413, "Body over server.max_body_mib", Media::Problem),
            (
                422,
                "The DAG breaks the rules; every problem listed",
                Media::Problem,
            ),
            UNAUTHORIZED,
            FORBIDDEN,
            UNSUPPORTED,
        ],
        handler: |s, r| auth::guard(post(native::submit), s, r),
    },
    Route {
        method: "POST",
        path: "/api/v1/dags/validate",
        role: Some(Role::Operator),
        summary: "Check a DAG as a submission would, without storing or running it",
        tag: "runs",
        params: no_params,
        body: Some(DAG_BODY),
        responses: &[
            (
                200,
                "The DAG would be accepted",
                Media::Json(schema::<native::Valid>),
            ),
            (
                400,
                "Not UTF-8, YAML or JSON (with line and column)",
                Media::Problem,
            ),
            (413, "Body over server.max_body_mib", Media::Problem),
            (
                422,
                "The DAG breaks the rules; every problem listed",
                Media::Problem,
            ),
            UNAUTHORIZED,
            FORBIDDEN,
            UNSUPPORTED,
        ],
        handler: |s, r| auth::guard(post(native::validate), s, r),
    },
    Route {
        method: "GET",
        path: "/api/v1/runs",
        role: Some(Role::Viewer),
        summary: "List runs, newest first",
        tag: "runs",
        params: params::<native::ListQuery>,
        body: None,
        responses: &[
            (
                200,
                "A page of runs",
                Media::Json(schema::<native::RunList>),
            ),
            BAD_PARAMETER,
            UNAUTHORIZED,
            FORBIDDEN,
        ],
        handler: |s, r| auth::guard(get(native::list), s, r),
    },
    Route {
        method: "GET",
        path: "/api/v1/runs/{id}",
        role: Some(Role::Viewer),
        summary: "The run record, while it runs and after",
        tag: "runs",
        params: no_params,
        body: None,
        responses: &[
            (200, "The run record", Media::Json(schema::<RunRecord>)),
            BAD_PARAMETER,
            UNAUTHORIZED,
            FORBIDDEN,
            NO_RUN,
        ],
        handler: |s, r| auth::guard(get(native::get), s, r),
    },
    Route {
        method: "POST",
        path: "/api/v1/runs/{id}/cancel",
        role: Some(Role::Operator),
        summary: "Cancel a run",
        tag: "runs",
        params: no_params,
        body: None,
        responses: &[
            (
                202,
                "Cancel requested",
                Media::Json(schema::<native::Created>),
            ),
            BAD_PARAMETER,
            UNAUTHORIZED,
            FORBIDDEN,
            NO_RUN,
            (409, "The run has already ended", Media::Problem),
            UNSUPPORTED,
        ],
        handler: |s, r| auth::guard(post(native::cancel), s, r),
    },
    Route {
        method: "POST",
        path: "/api/v1/runs/{id}/rerun",
        role: Some(Role::Operator),
        summary: "Run an ended run's DAG again as a new run, with the same options: every node, or only what did not succeed",
        tag: "runs",
        params: params::<native::RerunQuery>,
        body: None,
        responses: &[
            (
                201,
                "The new run, accepted and durable",
                Media::Json(schema::<native::Created>),
            ),
            BAD_PARAMETER,
            UNAUTHORIZED,
            FORBIDDEN,
            NO_RUN,
            (409, "The run is still running", Media::Problem),
            UNSUPPORTED,
            (
                422,
                "The DAG is no longer accepted (a driver it names is gone); every problem listed",
                Media::Problem,
            ),
        ],
        handler: |s, r| auth::guard(post(native::rerun), s, r),
    },
    Route {
        method: "GET",
        path: "/api/v1/runs/{id}/events",
        role: Some(Role::Viewer),
        summary: "Server-Sent Events of a run: node states, attempts, log lines, the end. Resumes after `Last-Event-ID`",
        tag: "runs",
        params: || {
            let mut all = params::<events::EventsQuery>();
            all.extend(params::<events::EventsHeaders>());
            all
        },
        body: None,
        responses: &[
            (
                200,
                "An event stream; each event's id is its sequence number",
                Media::Sse,
            ),
            (
                400,
                "A malformed `after`, Last-Event-ID or path parameter",
                Media::Problem,
            ),
            UNAUTHORIZED,
            FORBIDDEN,
            NO_RUN,
        ],
        handler: |s, r| auth::guard(get(events::stream), s, r),
    },
    Route {
        method: "GET",
        path: "/api/v1/runs/{id}/nodes/{node}/logs",
        role: Some(Role::Viewer),
        summary: "A node's log as plain text",
        tag: "runs",
        params: params::<events::LogsQuery>,
        body: None,
        responses: &[
            (200, "The log, one line per line", Media::Text),
            BAD_PARAMETER,
            UNAUTHORIZED,
            FORBIDDEN,
            (404, "No such run or node", Media::Problem),
        ],
        handler: |s, r| auth::guard(get(events::logs), s, r),
    },
    Route {
        method: "GET",
        path: "/api/v1/drivers",
        role: Some(Role::Viewer),
        summary: "The drivers this server has",
        tag: "server",
        params: no_params,
        body: None,
        responses: &[
            (
                200,
                "Each driver's description",
                Media::Json(schema::<native::DriverList>),
            ),
            UNAUTHORIZED,
            FORBIDDEN,
        ],
        handler: |s, r| auth::guard(get(native::drivers), s, r),
    },
    Route {
        method: "POST",
        path: "/api/v1/plugins",
        role: Some(Role::Admin),
        summary: "Publish a driver component (a plugin is code: admin only)",
        tag: "plugins",
        params: || {
            let mut all = params::<plugins::UploadQuery>();
            all.extend(params::<plugins::UploadHeaders>());
            all
        },
        body: Some(PLUGIN_BODY),
        responses: &[
            (
                201,
                "Published; usable at once",
                Media::Json(schema::<PluginVersion>),
            ),
            (
                200,
                "The same component was already published as this version",
                Media::Json(schema::<PluginVersion>),
            ),
            (
                400,
                "No body, a bad query parameter or a signature that is not text",
                Media::Problem,
            ),
            UNAUTHORIZED,
            (
                403,
                "The token is not an admin's; unsigned, badly signed, or asking for more than the policy allows",
                Media::Problem,
            ),
            (
                409,
                "This version is published with another component",
                Media::Problem,
            ),
            (413, "Larger than plugins.max_upload_mib", Media::Problem),
            UNSUPPORTED,
            (
                422,
                "Not a drover driver component, with the reason",
                Media::Problem,
            ),
        ],
        handler: |s, r| {
            let cap = s.runs.runtime().config().plugins.max_upload_mib;
            let cap = usize::try_from(cap.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
            auth::guard(post(plugins::upload), s, r).layer(DefaultBodyLimit::max(cap))
        },
    },
    Route {
        method: "GET",
        path: "/api/v1/plugins",
        role: Some(Role::Viewer),
        summary: "List plugins and their versions",
        tag: "plugins",
        params: no_params,
        body: None,
        responses: &[
            (
                200,
                "Every plugin",
                Media::Json(schema::<plugins::PluginList>),
            ),
            UNAUTHORIZED,
            FORBIDDEN,
        ],
        handler: |s, r| auth::guard(get(plugins::list), s, r),
    },
    Route {
        method: "GET",
        path: "/api/v1/plugins/{name}",
        role: Some(Role::Viewer),
        summary: "A plugin's versions: digests, capabilities, description, world",
        tag: "plugins",
        params: no_params,
        body: None,
        responses: &[
            (
                200,
                "Every version, oldest first",
                Media::Json(schema::<plugins::Versions>),
            ),
            BAD_PARAMETER,
            UNAUTHORIZED,
            FORBIDDEN,
            (404, "No such plugin", Media::Problem),
        ],
        handler: |s, r| auth::guard(get(plugins::show), s, r),
    },
    Route {
        method: "DELETE",
        path: "/api/v1/plugins/{name}/{version}",
        role: Some(Role::Admin),
        summary: "Withdraw a version; runs using it keep it until they end",
        tag: "plugins",
        params: params::<plugins::VersionPath>,
        body: None,
        responses: &[
            (200, "Withdrawn", Media::Json(schema::<plugins::Removed>)),
            (
                400,
                "The version is not semver, or a path parameter is malformed",
                Media::Problem,
            ),
            UNAUTHORIZED,
            FORBIDDEN,
            (404, "No such plugin or version", Media::Problem),
            (409, "Built in, or from the plugins folder", Media::Problem),
            UNSUPPORTED,
        ],
        handler: |s, r| auth::guard(delete(plugins::remove), s, r),
    },
    Route {
        method: "GET",
        path: "/api/v1/drones",
        role: Some(Role::Viewer),
        summary: "The drones of a distributed leader (pools, load, last seen, alive) and each pool's queue; empty in embedded mode",
        tag: "server",
        params: no_params,
        body: None,
        responses: &[
            (
                200,
                "Every drone seen, and every pool",
                Media::Json(schema::<fleet::DroneList>),
            ),
            UNAUTHORIZED,
            FORBIDDEN,
            (503, "Redis did not answer", Media::Problem),
        ],
        handler: |s, r| auth::guard(get(fleet::drones), s, r),
    },
    Route {
        method: "GET",
        path: "/api/v1/health",
        role: None,
        summary: "Whether the server is up",
        tag: "server",
        params: no_params,
        body: None,
        responses: &[
            (200, "Up", Media::Json(schema::<native::Health>)),
            OPEN_FORBIDDEN,
        ],
        handler: |s, r| auth::guard(get(native::health), s, r),
    },
    Route {
        method: "GET",
        path: "/api/v1/session",
        role: None,
        summary: "Who the caller is: its role by bearer token or session cookie, and whether the server has tokens at all",
        tag: "session",
        params: no_params,
        body: None,
        responses: &[
            (200, "The caller", Media::Json(schema::<session::Whoami>)),
            OPEN_FORBIDDEN,
        ],
        handler: |s, r| auth::guard(get(session::whoami), s, r),
    },
    Route {
        method: "POST",
        path: "/api/v1/session",
        role: None,
        summary: "Log in from a browser: trade a token for an HttpOnly, SameSite=Strict session cookie (12 h)",
        tag: "session",
        params: no_params,
        body: Some(LOGIN_BODY),
        responses: &[
            (204, "Logged in; the answer sets the cookie", Media::Empty),
            (400, "Not `{\"token\": \"…\"}`", Media::Problem),
            (401, "Unknown token", Media::Problem),
            (
                409,
                "The server has no tokens: there is nothing to log in to",
                Media::Problem,
            ),
            (413, "Body over server.max_body_mib", Media::Problem),
            OPEN_FORBIDDEN,
            UNSUPPORTED,
        ],
        handler: |s, r| auth::guard(post(session::login), s, r),
    },
    Route {
        method: "DELETE",
        path: "/api/v1/session",
        role: None,
        summary: "Log out: the answer clears the session cookie",
        tag: "session",
        params: no_params,
        body: None,
        responses: &[
            (204, "The cookie is cleared", Media::Empty),
            OPEN_FORBIDDEN,
            UNSUPPORTED,
        ],
        handler: |s, r| auth::guard(delete(session::logout), s, r),
    },
    Route {
        method: "GET",
        path: "/api/v1/metrics",
        role: Some(Role::Viewer),
        summary: "Metrics in Prometheus' text format",
        tag: "server",
        params: no_params,
        body: None,
        responses: &[
            (
                200,
                "Runs and nodes by state, node durations, queue depth (per pool when distributed)",
                Media::Text,
            ),
            UNAUTHORIZED,
            FORBIDDEN,
        ],
        handler: |s, r| auth::guard(get(native::metrics), s, r),
    },
    Route {
        method: "GET",
        path: "/healthz",
        role: None,
        summary: "Liveness: the process answers",
        tag: "probes",
        params: no_params,
        body: None,
        responses: &[(200, "`ok`", Media::Text), OPEN_FORBIDDEN],
        handler: |s, r| auth::guard(get(probes::healthz), s, r),
    },
    Route {
        method: "GET",
        path: "/readyz",
        role: None,
        summary: "Readiness: runs can be accepted (the store's writer is alive; Redis answers when distributed)",
        tag: "probes",
        params: no_params,
        body: None,
        responses: &[
            (200, "`ready`", Media::Text),
            OPEN_FORBIDDEN,
            (503, "Not ready, and why", Media::Problem),
        ],
        handler: |s, r| auth::guard(get(probes::readyz), s, r),
    },
    Route {
        method: "GET",
        path: "/metrics",
        role: None,
        summary: "Metrics in Prometheus' text format, for scrapers without a token",
        tag: "probes",
        params: no_params,
        body: None,
        responses: &[
            (200, "The same as /api/v1/metrics", Media::Text),
            OPEN_FORBIDDEN,
        ],
        handler: |s, r| auth::guard(get(native::metrics), s, r),
    },
    Route {
        method: "GET",
        path: "/api/v1/openapi.json",
        role: None,
        summary: "This document",
        tag: "server",
        params: no_params,
        body: None,
        responses: &[
            (200, "OpenAPI 3.1", Media::Json(schema::<serde_json::Value>)),
            OPEN_FORBIDDEN,
        ],
        handler: |s, r| auth::guard(get(openapi::document), s, r),
    },
    Route {
        method: "POST",
        path: "/v1/tasks",
        role: Some(Role::Operator),
        summary: "gorchestrator: submit a graph",
        tag: "gorchestrator",
        params: no_params,
        body: Some(GRAPH_BODY),
        responses: &[
            (
                202,
                "Accepted",
                Media::Json(schema::<gorchestrator::TaskId>),
            ),
            (400, "Not gorchestrator's JSON", TASK_ERROR),
            TASK_UNAUTHORIZED,
            TASK_FORBIDDEN,
            (413, "Body over server.max_body_mib", TASK_ERROR),
            TASK_UNSUPPORTED,
            (422, "Invalid graph", TASK_ERROR),
        ],
        handler: |s, r| auth::guard(post(gorchestrator::submit), s, r),
    },
    Route {
        method: "GET",
        path: "/v1/tasks",
        role: Some(Role::Viewer),
        summary: "gorchestrator: list tasks",
        tag: "gorchestrator",
        params: no_params,
        body: None,
        responses: &[
            (
                200,
                "Every task",
                Media::Json(schema::<gorchestrator::TaskList>),
            ),
            TASK_UNAUTHORIZED,
            TASK_FORBIDDEN,
        ],
        handler: |s, r| auth::guard(get(gorchestrator::list), s, r),
    },
    Route {
        method: "GET",
        path: "/v1/tasks/{id}",
        role: Some(Role::Viewer),
        summary: "gorchestrator: the graph with each node's state and output",
        tag: "gorchestrator",
        params: no_params,
        body: None,
        responses: &[
            (
                200,
                "The graph as submitted, states filled in",
                Media::Json(schema::<Graph>),
            ),
            (400, "A malformed path parameter", TASK_ERROR),
            TASK_UNAUTHORIZED,
            TASK_FORBIDDEN,
            (404, "No such task", TASK_ERROR),
        ],
        handler: |s, r| auth::guard(get(gorchestrator::get), s, r),
    },
    Route {
        method: "DELETE",
        path: "/v1/tasks/{id}",
        role: Some(Role::Operator),
        summary: "gorchestrator: cancel a task",
        tag: "gorchestrator",
        params: no_params,
        body: None,
        responses: &[
            (
                200,
                "Cancel requested",
                Media::Json(schema::<gorchestrator::TaskId>),
            ),
            (400, "A malformed path parameter", TASK_ERROR),
            TASK_UNAUTHORIZED,
            TASK_FORBIDDEN,
            (404, "No such task", TASK_ERROR),
            TASK_UNSUPPORTED,
        ],
        handler: |s, r| auth::guard(delete(gorchestrator::cancel), s, r),
    },
];
