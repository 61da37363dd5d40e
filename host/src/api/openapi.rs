//! The OpenAPI 3.1 document, built from the route table with every schema derived from the Rust types the handlers read and answer.

use std::collections::BTreeMap;

use axum::Json;
use serde_json::Value;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, Parameter, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, Content, InfoBuilder, OpenApiBuilder, Paths, Ref, RefOr, Required, Schema,
};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::ROUTES;
use super::problem::{Details, MEDIA_TYPE as PROBLEM};
use crate::dag::schema::{NativeDag, NativeNode};

/// The schemas a document names, as `ToSchema` gathers them.
pub type Found = Vec<(String, RefOr<Schema>)>;

/// A schema for a body: registers what it names in `found`, and returns a
/// reference to it (or the schema itself, when it has no name).
pub type SchemaOf = fn(&mut Found) -> RefOr<Schema>;

/// An operation's query, header and path parameters.
pub type Params = fn() -> Vec<Parameter>;

/// A request body: its description and each media type it may come as.
pub struct Body {
    pub description: &'static str,
    pub media: &'static [(&'static str, SchemaOf)],
}

/// What an answer carries.
pub enum Media {
    /// JSON of this schema.
    Json(SchemaOf),
    /// An RFC 9457 problem (`application/problem+json`).
    Problem,
    /// Plain text.
    Text,
    /// Server-Sent Events.
    Sse,
    /// No body (204).
    Empty,
}

/// The schema of `T`, registered under its name.
pub fn schema<T: ToSchema>(found: &mut Found) -> RefOr<Schema> {
    T::schemas(found);
    found.push((T::name().into_owned(), T::schema()));
    Ref::from_schema_name(T::name()).into()
}

/// A native DAG: its node's schema too, which the DAG's own derive does not
/// gather (see [`crate::dag::schema`]).
pub fn dag(found: &mut Found) -> RefOr<Schema> {
    schema::<NativeNode>(found);
    schema::<NativeDag>(found)
}

/// Bytes, at least one, as a component's upload is.
pub fn binary(_: &mut Found) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
        .min_length(Some(1))
        .into()
}

/// The parameters of `T`, where its derive places them.
pub fn params<T: IntoParams>() -> Vec<Parameter> {
    T::into_params(|| None)
}

/// No parameters but those of the path.
pub fn no_params() -> Vec<Parameter> {
    Vec::new()
}

pub(super) async fn document() -> Json<Value> {
    Json(build())
}

/// The document for every route in [`ROUTES`].
pub fn build() -> Value {
    let mut found = Found::new();
    let mut paths = Paths::new();
    for route in ROUTES {
        let mut parameters = (route.params)();
        // Path parameters no type describes are plain strings.
        for name in route
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        {
            if !parameters.iter().any(|p| p.name == name) {
                parameters.push(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(String::schema()))
                        .build(),
                );
            }
        }
        let mut operation = OperationBuilder::new()
            .summary(Some(route.summary))
            .tag(route.tag)
            .parameters(Some(parameters));
        for (status, description, media) in route.responses {
            if let Media::Empty = media {
                let response = ResponseBuilder::new().description(*description).build();
                operation = operation.response(status.to_string(), response);
                continue;
            }
            let (media_type, schema) = match media {
                Media::Json(schema) => ("application/json", schema(&mut found)),
                Media::Problem => (PROBLEM, schema::<Details>(&mut found)),
                Media::Text => ("text/plain", String::schema()),
                Media::Sse => ("text/event-stream", String::schema()),
                Media::Empty => continue,
            };
            let response = ResponseBuilder::new()
                .description(*description)
                .content(media_type, Content::new(Some(schema)));
            operation = operation.response(status.to_string(), response.build());
        }
        if let Some(body) = &route.body {
            let mut request = RequestBodyBuilder::new()
                .description(Some(body.description))
                .required(Some(Required::True));
            for (media_type, schema) in body.media {
                request = request.content(*media_type, Content::new(Some(schema(&mut found))));
            }
            operation = operation.request_body(Some(request.build()));
        }
        if let Some(role) = route.role {
            operation = operation
                .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
                .extensions(Some(
                    ExtensionsBuilder::new()
                        .add("x-drover-role", role.as_str())
                        .build(),
                ));
        }
        let method = match route.method {
            "POST" => HttpMethod::Post,
            "DELETE" => HttpMethod::Delete,
            _ => HttpMethod::Get,
        };
        paths.add_path_operation(route.path, vec![method], operation.build());
    }
    let schemas: BTreeMap<String, RefOr<Schema>> = found.into_iter().collect();
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        )
        .build();
    let document = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("drover")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Run DAGs of work through sandboxed WebAssembly drivers.",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components))
        .build();
    // The document is plain data: it always serializes.
    serde_json::to_value(document).unwrap_or(Value::Null)
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
        let types = &document["components"]["schemas"]["ProblemType"]["enum"];
        assert!(
            types
                .as_array()
                .is_some_and(|t| t.contains(&serde_json::json!(
                    "https://drover.dev/problems/invalid-dag"
                ))),
            "{types}"
        );
    }

    /// Every `$ref` under `value`.
    fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    found.push(target);
                }
                map.values().for_each(|v| refs(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }

    #[test]
    fn the_document_is_openapi_3_1_whose_references_all_resolve() {
        let document = build();
        assert_eq!(document["openapi"], "3.1.0");
        assert!(document["info"]["title"].is_string());
        let mut found = Vec::new();
        refs(&document, &mut found);
        assert!(found.len() > 50, "only {} references", found.len());
        for target in found {
            let Some(pointer) = target.strip_prefix('#') else {
                panic!("{target} points outside the document");
            };
            assert!(
                document.pointer(pointer).is_some_and(Value::is_object),
                "{target} does not resolve"
            );
        }
        // Each operation: a summary, at least one answer, and every
        // parameter placed and typed.
        let Some(paths) = document["paths"].as_object() else {
            panic!("no paths");
        };
        for (path, operations) in paths {
            for (method, operation) in operations.as_object().into_iter().flatten() {
                assert!(operation["summary"].is_string(), "{method} {path}");
                assert!(
                    operation["responses"]
                        .as_object()
                        .is_some_and(|r| !r.is_empty()),
                    "{method} {path}"
                );
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    let place = parameter["in"].as_str().unwrap_or_default();
                    assert!(
                        ["path", "query", "header"].contains(&place),
                        "{method} {path}: {parameter}"
                    );
                    assert!(
                        parameter["schema"].is_object(),
                        "{method} {path}: {parameter}"
                    );
                    assert_ne!(
                        parameter["name"], "Authorization",
                        "{method} {path}: the bearer scheme says it"
                    );
                }
                // Path parameters are in the path, and the path's in the parameters.
                for name in path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                {
                    assert!(
                        operation["parameters"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|p| p["name"] == name
                                && p["in"] == "path"
                                && p["required"] == true),
                        "{method} {path}: {name}"
                    );
                }
            }
        }
        let bearer = &document["components"]["securitySchemes"]["bearer"];
        assert_eq!(bearer["scheme"], "bearer", "{bearer}");
    }
}
