//! Every route of the API in one table: the router and the OpenAPI document are both built from it.

use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, delete, get, post};

use super::{AppState, auth, events, fleet, gorchestrator, native, openapi, plugins};
use crate::config::Role;

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
    /// Query parameters: name, OpenAPI type, description.
    pub query: &'static [(&'static str, &'static str, &'static str)],
    /// The request body's description, if it takes one.
    pub body: Option<&'static str>,
    /// Status codes with a description and, for JSON bodies, a schema name
    /// under `components/schemas` (or `text`/`sse`).
    pub responses: &'static [Answer],
    /// Builds the axum handler, guarded by `role`.
    pub handler: fn(&AppState, Option<Role>) -> MethodRouter<AppState>,
}

/// The upload body, sent as `application/wasm`.
pub const PLUGIN_BODY: &str = "The component's bytes (application/wasm); an optional \
     X-Drover-Signature header carries a base64 ed25519 signature over `sha256:<hex digest>`.";
const DAG_BODY: &str = "A DAG in drover's native format (YAML or JSON) or gorchestrator's JSON.";
/// An answer: status, description, schema (see [`Route::responses`]).
type Answer = (u16, &'static str, &'static str);
const UNAUTHORIZED: Answer = (401, "No or unknown bearer token", "Problem");
/// Every route can answer it: without tokens, the browser guard refuses a
/// Host or Origin that is not loopback.
const FORBIDDEN: Answer = (
    403,
    "The token's role may not do this; without tokens, a Host or Origin that is not loopback",
    "Problem",
);
const OPEN_FORBIDDEN: Answer = (
    403,
    "Without tokens, a Host or Origin that is not loopback",
    "Problem",
);
const BAD_PARAMETER: Answer = (400, "A query or path parameter is malformed", "Problem");
/// Without tokens, state-changing requests must carry a type no web page sends unasked.
const UNSUPPORTED: Answer = (
    415,
    "Without tokens: a body with no Content-Type, or one a web page could send",
    "Problem",
);
const NO_RUN: Answer = (404, "No such run", "Problem");
const TASK_UNAUTHORIZED: Answer = (401, "No or unknown bearer token", "TaskError");
const TASK_FORBIDDEN: Answer = (
    403,
    "The token's role may not do this; without tokens, a Host or Origin that is not loopback",
    "TaskError",
);
const TASK_UNSUPPORTED: Answer = (
    415,
    "Without tokens: a body with no Content-Type, or one a web page could send",
    "TaskError",
);

/// The API.
pub const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/api/v1/runs",
        role: Some(Role::Operator),
        summary: "Submit a DAG to run",
        tag: "runs",
        query: &[
            ("parallelism", "integer", "How many nodes may run at once"),
            ("fail_fast", "boolean", "Stop the run at the first failure"),
            ("timeout", "string", "Run-wide timeout, e.g. `10m`"),
        ],
        body: Some(DAG_BODY),
        responses: &[
            (201, "Accepted and durable", "Created"),
            (
                400,
                "Not UTF-8, YAML or JSON (with line and column), or a bad query parameter",
                "Problem",
            ),
            (413, "Body over server.max_body_bytes", "Problem"),
            (
                422,
                "The DAG breaks the rules; every problem listed",
                "Problem",
            ),
            UNAUTHORIZED,
            FORBIDDEN,
            UNSUPPORTED,
        ],
        handler: |s, r| auth::guard(post(native::submit), s, r),
    },
    Route {
        method: "GET",
        path: "/api/v1/runs",
        role: Some(Role::Viewer),
        summary: "List runs, newest first",
        tag: "runs",
        query: &[
            (
                "state",
                "string",
                "Only runs in this state (running, success, failure, timeout, canceled)",
            ),
            (
                "limit",
                "integer",
                "At most this many (default 50, at most 1000)",
            ),
            ("before", "string", "The `next` of the previous page"),
        ],
        body: None,
        responses: &[
            (200, "A page of runs", "RunList"),
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
        query: &[],
        body: None,
        responses: &[
            (200, "The run record", "RunRecord"),
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
        query: &[],
        body: None,
        responses: &[
            (202, "Cancel requested", "Created"),
            BAD_PARAMETER,
            UNAUTHORIZED,
            FORBIDDEN,
            NO_RUN,
            (409, "The run has already ended", "Problem"),
            UNSUPPORTED,
        ],
        handler: |s, r| auth::guard(post(native::cancel), s, r),
    },
    Route {
        method: "GET",
        path: "/api/v1/runs/{id}/events",
        role: Some(Role::Viewer),
        summary: "Server-Sent Events of a run: node states, attempts, log lines, the end. Resumes after `Last-Event-ID`",
        tag: "runs",
        query: &[(
            "after",
            "integer",
            "Start after this event id (like Last-Event-ID)",
        )],
        body: None,
        responses: &[
            (
                200,
                "An event stream; each event's id is its sequence number",
                "sse",
            ),
            (
                400,
                "A malformed `after`, Last-Event-ID or path parameter",
                "Problem",
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
        query: &[("follow", "boolean", "Keep streaming until the node ends")],
        body: None,
        responses: &[
            (200, "The log, one line per line", "text"),
            BAD_PARAMETER,
            UNAUTHORIZED,
            FORBIDDEN,
            (404, "No such run or node", "Problem"),
        ],
        handler: |s, r| auth::guard(get(events::logs), s, r),
    },
    Route {
        method: "GET",
        path: "/api/v1/drivers",
        role: Some(Role::Viewer),
        summary: "The drivers this server has",
        tag: "server",
        query: &[],
        body: None,
        responses: &[
            (200, "Each driver's description", "DriverList"),
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
        query: &[
            (
                "name",
                "string",
                "The plugin's name; defaults to the one it describes",
            ),
            (
                "version",
                "string",
                "Its semver version; defaults to the one it describes",
            ),
        ],
        body: Some(PLUGIN_BODY),
        responses: &[
            (201, "Published; usable at once", "Plugin"),
            (
                200,
                "The same component was already published as this version",
                "Plugin",
            ),
            (
                400,
                "No body, a bad query parameter or a signature that is not text",
                "Problem",
            ),
            UNAUTHORIZED,
            (
                403,
                "The token is not an admin's; unsigned, badly signed, or asking for more than the policy allows",
                "Problem",
            ),
            (
                409,
                "This version is published with another component",
                "Problem",
            ),
            (413, "Larger than plugins.max_upload_mib", "Problem"),
            UNSUPPORTED,
            (
                422,
                "Not a drover driver component, with the reason",
                "Problem",
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
        query: &[],
        body: None,
        responses: &[(200, "Every plugin", "PluginList"), UNAUTHORIZED, FORBIDDEN],
        handler: |s, r| auth::guard(get(plugins::list), s, r),
    },
    Route {
        method: "GET",
        path: "/api/v1/plugins/{name}",
        role: Some(Role::Viewer),
        summary: "A plugin's versions: digests, capabilities, description, world",
        tag: "plugins",
        query: &[],
        body: None,
        responses: &[
            (200, "Every version, oldest first", "PluginVersions"),
            BAD_PARAMETER,
            UNAUTHORIZED,
            FORBIDDEN,
            (404, "No such plugin", "Problem"),
        ],
        handler: |s, r| auth::guard(get(plugins::show), s, r),
    },
    Route {
        method: "DELETE",
        path: "/api/v1/plugins/{name}/{version}",
        role: Some(Role::Admin),
        summary: "Withdraw a version; runs using it keep it until they end",
        tag: "plugins",
        query: &[],
        body: None,
        responses: &[
            (200, "Withdrawn", "object"),
            (
                400,
                "The version is not semver, or a path parameter is malformed",
                "Problem",
            ),
            UNAUTHORIZED,
            FORBIDDEN,
            (404, "No such plugin or version", "Problem"),
            (409, "Built in, or from the plugins folder", "Problem"),
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
        query: &[],
        body: None,
        responses: &[
            (200, "Every drone seen, and every pool", "DroneList"),
            UNAUTHORIZED,
            FORBIDDEN,
            (503, "Redis did not answer", "Problem"),
        ],
        handler: |s, r| auth::guard(get(fleet::drones), s, r),
    },
    Route {
        method: "GET",
        path: "/api/v1/health",
        role: None,
        summary: "Whether the server is up",
        tag: "server",
        query: &[],
        body: None,
        responses: &[(200, "Up", "Health"), OPEN_FORBIDDEN],
        handler: |s, r| auth::guard(get(native::health), s, r),
    },
    Route {
        method: "GET",
        path: "/api/v1/metrics",
        role: Some(Role::Viewer),
        summary: "Metrics in Prometheus' text format",
        tag: "server",
        query: &[],
        body: None,
        responses: &[
            (
                200,
                "Runs and nodes by state, node durations, queue depth (per pool when distributed)",
                "text",
            ),
            UNAUTHORIZED,
            FORBIDDEN,
        ],
        handler: |s, r| auth::guard(get(native::metrics), s, r),
    },
    Route {
        method: "GET",
        path: "/api/v1/openapi.json",
        role: None,
        summary: "This document",
        tag: "server",
        query: &[],
        body: None,
        responses: &[(200, "OpenAPI 3", "object"), OPEN_FORBIDDEN],
        handler: |s, r| auth::guard(get(openapi::document), s, r),
    },
    Route {
        method: "POST",
        path: "/v1/tasks",
        role: Some(Role::Operator),
        summary: "gorchestrator: submit a graph",
        tag: "gorchestrator",
        query: &[],
        body: Some("gorchestrator's {name, state, digraph, nodes}"),
        responses: &[
            (202, "Accepted", "TaskId"),
            (400, "Not gorchestrator's JSON", "TaskError"),
            TASK_UNAUTHORIZED,
            TASK_FORBIDDEN,
            (413, "Body over server.max_body_bytes", "TaskError"),
            TASK_UNSUPPORTED,
            (422, "Invalid graph", "TaskError"),
        ],
        handler: |s, r| auth::guard(post(gorchestrator::submit), s, r),
    },
    Route {
        method: "GET",
        path: "/v1/tasks",
        role: Some(Role::Viewer),
        summary: "gorchestrator: list tasks",
        tag: "gorchestrator",
        query: &[],
        body: None,
        responses: &[
            (200, "Every task", "TaskList"),
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
        query: &[],
        body: None,
        responses: &[
            (200, "The graph as submitted, states filled in", "object"),
            (400, "A malformed path parameter", "TaskError"),
            TASK_UNAUTHORIZED,
            TASK_FORBIDDEN,
            (404, "No such task", "TaskError"),
        ],
        handler: |s, r| auth::guard(get(gorchestrator::get), s, r),
    },
    Route {
        method: "DELETE",
        path: "/v1/tasks/{id}",
        role: Some(Role::Operator),
        summary: "gorchestrator: cancel a task",
        tag: "gorchestrator",
        query: &[],
        body: None,
        responses: &[
            (200, "Cancel requested", "TaskId"),
            (400, "A malformed path parameter", "TaskError"),
            TASK_UNAUTHORIZED,
            TASK_FORBIDDEN,
            (404, "No such task", "TaskError"),
            TASK_UNSUPPORTED,
        ],
        handler: |s, r| auth::guard(delete(gorchestrator::cancel), s, r),
    },
];
