//! The OpenAPI 3 document, generated from the route table.

use axum::Json;
use serde_json::{Map, Value, json};

use super::ROUTES;
use super::problem::{Kind, MEDIA_TYPE as PROBLEM};

pub(super) async fn document() -> Json<Value> {
    Json(build())
}

/// The document for every route in [`ROUTES`].
pub fn build() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let mut parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| {
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
            })
            .collect();
        parameters.extend(route.query.iter().map(|(name, kind, description)| {
            json!({"name": name, "in": "query", "required": false,
                   "description": description, "schema": {"type": kind}})
        }));
        if route.path.ends_with("/events") {
            parameters.push(
                json!({"name": "Last-Event-ID", "in": "header", "required": false,
                "description": "Resume after this event id", "schema": {"type": "integer"}}),
            );
        }
        let mut responses = Map::new();
        for (status, description, schema) in route.responses {
            let content = match *schema {
                "text" => json!({"text/plain": {"schema": {"type": "string"}}}),
                "sse" => json!({"text/event-stream": {"schema": {"type": "string"}}}),
                "object" => json!({"application/json": {"schema": {"type": "object"}}}),
                "Problem" => {
                    json!({PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}})
                }
                name => {
                    json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}})
                }
            };
            responses.insert(
                status.to_string(),
                json!({"description": description, "content": content}),
            );
        }
        let mut operation = json!({
            "summary": route.summary,
            "tags": [route.tag],
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(body) = route.body {
            let content = if body == super::routes::PLUGIN_BODY {
                json!({"application/wasm": {"schema": {"type": "string", "format": "binary"}}})
            } else {
                json!({
                    "application/json": {"schema": {"type": "object"}},
                    "application/yaml": {"schema": {"type": "string"}},
                })
            };
            operation["requestBody"] = json!({
                "required": true,
                "description": body,
                "content": content,
            });
        }
        if let Some(role) = route.role {
            operation["security"] = json!([{"bearer": []}]);
            operation["x-drover-role"] = json!(role.as_str());
        }
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[route.method.to_lowercase()] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "drover",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Run DAGs of work through sandboxed WebAssembly drivers.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
        },
    })
}

fn schemas() -> Value {
    let string = json!({"type": "string"});
    let time = json!({"type": "string", "format": "date-time", "nullable": true});
    let outputs = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let node_state = json!({"type": "string", "enum": ["initial", "to-run", "running", "success", "failure", "not-runnable", "timeout", "canceled"]});
    let problem_types: Vec<String> = Kind::TYPED
        .iter()
        .map(|kind| kind.uri())
        .chain(["about:blank".to_owned()])
        .collect();
    let run_state =
        json!({"type": "string", "enum": ["running", "success", "failure", "timeout", "canceled"]});
    json!({
        "Problem": {"type": "object", "description": "RFC 9457 problem details",
            "required": ["type", "title", "status", "detail"], "properties": {
            "type": {"type": "string", "format": "uri", "enum": problem_types,
                "description": "The kind of error; about:blank where none is more specific"},
            "title": {"type": "string", "description": "The same for every answer of a type"},
            "status": {"type": "integer", "description": "The HTTP status"},
            "detail": {"type": "string", "description": "What went wrong: names the parameter, node or field"},
            "instance": {"type": "string", "description": "The request's path"},
            "problems": {"type": "array", "description": "Every problem of a refused DAG (invalid-dag, unreadable-body)",
                "items": {"type": "object", "required": ["location", "message"], "properties": {
                "location": string, "message": string}}},
        }},
        "Created": {"type": "object", "required": ["id", "url"], "properties": {"id": string, "url": string}},
        "AttemptRecord": {"type": "object", "properties": {
            "attempt": {"type": "integer"}, "state": node_state, "exit_code": {"type": "integer", "nullable": true},
            "started_at": time, "finished_at": time, "error": {"type": "string", "nullable": true},
        }},
        "NodeRecord": {"type": "object", "properties": {
            "name": string, "state": node_state, "state_code": {"type": "integer"},
            "exit_code": {"type": "integer", "nullable": true}, "outputs": outputs,
            "attempts": {"type": "array", "items": {"$ref": "#/components/schemas/AttemptRecord"}},
            "started_at": time, "finished_at": time, "error": {"type": "string", "nullable": true},
        }},
        "RunRecord": {"type": "object", "properties": {
            "id": string, "name": string, "state": run_state,
            "nodes": {"type": "array", "items": {"$ref": "#/components/schemas/NodeRecord"}},
        }},
        "RunSummary": {"type": "object", "properties": {
            "id": string, "name": string, "state": run_state, "nodes": {"type": "integer"},
            "submitted_at": time, "finished_at": time, "url": string,
        }},
        "RunList": {"type": "object", "properties": {
            "runs": {"type": "array", "items": {"$ref": "#/components/schemas/RunSummary"}},
            "next": {"type": "string", "nullable": true},
        }},
        "DriverList": {"type": "object", "properties": {"drivers": {"type": "array", "items": {"type": "object"}}}},
        "Plugin": {"type": "object", "required": ["name", "version", "digest", "size", "origin"], "properties": {
            "name": string, "version": string,
            "digest": {"type": "string", "description": "sha256:<hex>"},
            "size": {"type": "integer"},
            "origin": {"type": "object", "properties": {"kind": {"type": "string", "enum": ["builtin", "upload", "folder"]}, "path": string}},
            "published_at": time,
            "signed_by": {"type": "string", "description": "The trusted public key (base64) that signed it"},
            "description": {"type": "object", "description": "What `describe` returned, capabilities included"},
            "world": {"type": "object", "properties": {"implements": string,
                "imports": {"type": "array", "items": string}, "exports": {"type": "array", "items": string}}},
            "blocked": {"type": "string", "description": "Why it cannot be used now"}}},
        "PluginList": {"type": "object", "properties": {"plugins": {"type": "array", "items": {"type": "object", "properties": {
            "name": string, "versions": {"type": "array", "items": string}, "latest": string, "builtin": {"type": "boolean"}}}}}},
        "PluginVersions": {"type": "object", "properties": {"name": string,
            "versions": {"type": "array", "items": {"$ref": "#/components/schemas/Plugin"}}}},
        "Drone": {"type": "object", "required": ["id", "alive"], "properties": {
            "id": string, "alive": {"type": "boolean", "description": "Its heartbeat has not expired"},
            "host": {"type": "string", "nullable": true}, "pid": {"type": "integer", "nullable": true},
            "pools": {"type": "array", "items": string},
            "concurrency": {"type": "integer", "nullable": true},
            "running": {"type": "integer", "nullable": true, "description": "Attempts it runs now (its load)"},
            "finished": {"type": "integer", "nullable": true},
            "started_at": time, "last_seen": time, "version": {"type": "string", "nullable": true}}},
        "Pool": {"type": "object", "properties": {"name": string,
            "queued": {"type": "integer", "description": "Jobs no drone has taken yet"},
            "running": {"type": "integer", "description": "Jobs taken and not finished"},
            "drones": {"type": "integer", "description": "Live drones serving it"}}},
        "DroneList": {"type": "object", "required": ["mode", "drones"], "properties": {
            "mode": {"type": "string", "enum": ["embedded", "distributed"]},
            "drones": {"type": "array", "items": {"$ref": "#/components/schemas/Drone"}},
            "pools": {"type": "array", "items": {"$ref": "#/components/schemas/Pool"}}}},
        "Health": {"type": "object", "properties": {"status": string, "version": string, "runs_running": {"type": "integer"}}},
        "TaskId": {"type": "object", "properties": {"id": string}},
        "TaskError": {"type": "object", "properties": {"code": {"type": "integer"}, "message": string}},
        "TaskList": {"type": "object", "properties": {"tasks": {"type": "array", "items": {"type": "object", "properties": {
            "id": string, "name": string, "state": string, "start_date": time, "stop_date": time}}}}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers_are_problems_on_drovers_api_and_task_errors_on_gorchestrators() {
        let document = build();
        let Some(paths) = document["paths"].as_object() else {
            panic!("no paths: {document}");
        };
        let mut checked = 0;
        for (path, operations) in paths {
            for (method, operation) in operations.as_object().into_iter().flatten() {
                let responses = operation["responses"].as_object().into_iter().flatten();
                for (status, response) in responses {
                    if !status.starts_with('4') && !status.starts_with('5') {
                        continue;
                    }
                    let content = &response["content"];
                    if path.starts_with("/v1/") {
                        assert_eq!(
                            content["application/json"]["schema"]["$ref"],
                            "#/components/schemas/TaskError",
                            "{method} {path} {status}"
                        );
                    } else {
                        assert_eq!(
                            content[PROBLEM]["schema"]["$ref"], "#/components/schemas/Problem",
                            "{method} {path} {status}"
                        );
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 40, "only {checked} error answers documented");
        let types = &document["components"]["schemas"]["Problem"]["properties"]["type"]["enum"];
        assert!(
            types
                .as_array()
                .is_some_and(|t| t.contains(&json!("https://drover.dev/problems/invalid-dag"))),
            "{types}"
        );
    }
}
