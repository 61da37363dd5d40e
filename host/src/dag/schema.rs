//! The shapes of both DAG formats as Rust types, for the API's OpenAPI document; the readers check by hand, and a test keeps the field names the same.
//!
//! The readers work on an untyped tree so that they can report every
//! problem at once; these types only describe what they take. What a
//! schema cannot say (a `needs` naming another node, no cycle, a driver
//! this server has and the arguments it takes) the server answers with
//! 422 and every problem listed.

use std::collections::BTreeMap;

use serde::Deserialize;
use utoipa::ToSchema;

/// A DAG in drover's native format (as JSON, or the same in YAML).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Dag)]
#[allow(dead_code, reason = "a shape for the schema; never built")]
pub struct NativeDag {
    /// The DAG's name.
    #[schema(min_length = 1)]
    name: String,
    /// The nodes by name. A name has no whitespace, control character,
    /// `{`, `}` or `/`, and is not `.` or `..`.
    #[schema(schema_with = node_map)]
    nodes: BTreeMap<String, NativeNode>,
    /// Each node's `on_interrupt` unless it sets its own (default `rerun`).
    on_interrupt: Option<super::OnInterrupt>,
}

/// `nodes`: at least one, each a [`NativeNode`]. Written by hand for
/// `minProperties`, so the derive does not gather the node's schema: a
/// document naming [`NativeDag`] registers [`NativeNode`] itself.
fn node_map() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    use utoipa::openapi::Ref;
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Object))
        .additional_properties(Some(Ref::from_schema_name(NativeNode::name())))
        .min_properties(Some(1))
        .into()
}

/// One node of a native DAG.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DagNode)]
#[allow(dead_code, reason = "a shape for the schema; never built")]
pub struct NativeNode {
    /// The driver that runs it (`GET /api/v1/drivers` lists them).
    #[schema(min_length = 1)]
    driver: String,
    /// What the driver runs: a script or command, as the driver reads it.
    artifact: Option<String>,
    /// Arguments, as the driver reads them.
    args: Option<Vec<String>>,
    /// Environment variables of the node's processes.
    env: Option<BTreeMap<String, String>>,
    /// The nodes that must succeed before this one starts.
    needs: Option<Vec<String>>,
    /// The names of the outputs it produces.
    outputs: Option<Vec<String>>,
    /// How long one attempt may take: `30s`, `1.5m`, or a number of seconds.
    timeout: Option<String>,
    /// How often a failed attempt is retried.
    retries: Option<NativeRetries>,
    /// The pool of drones that runs it (distributed mode).
    pool: Option<String>,
    /// Less than the driver may do (never more).
    grants: Option<NativeGrants>,
    /// Secrets as environment variables: name → `vault:PATH#KEY`.
    secrets: Option<BTreeMap<String, String>>,
    /// When drover itself stopped (a crash, a restart) while the node ran:
    /// `rerun` it when the run is carried on (the default; not counted
    /// against `retries`), or `fail` it, for work that must not run twice.
    on_interrupt: Option<super::OnInterrupt>,
}

/// A node's retry policy.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DagRetries)]
#[allow(dead_code, reason = "a shape for the schema; never built")]
pub struct NativeRetries {
    /// Retries after the first attempt.
    #[schema(minimum = 0, maximum = 100)]
    max: Option<u32>,
    /// The wait before the first retry, doubled at each next one.
    backoff: Option<String>,
    /// The longest wait between two attempts.
    max_backoff: Option<String>,
}

/// What a node narrows its driver's grants to.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DagGrants)]
#[allow(dead_code, reason = "a shape for the schema; never built")]
pub struct NativeGrants {
    /// The programs its processes may start.
    exec: Option<Vec<String>>,
    /// Whether its processes get the network.
    network: Option<bool>,
    /// Whether it may start containers.
    container: Option<bool>,
    /// The memory its processes may take together, in MiB.
    #[schema(minimum = 1)]
    memory_mib: Option<u64>,
    /// The processes and threads it may have at once.
    #[schema(minimum = 1)]
    processes: Option<u64>,
}

/// A graph in gorchestrator's format, as `POST /v1/tasks` takes it and
/// `GET /v1/tasks/{id}` gives it back (then with `state` filled in).
#[derive(Deserialize, ToSchema)]
#[schema(as = Graph)]
#[allow(dead_code, reason = "a shape for the schema; never built")]
pub struct Graph {
    /// The graph's name.
    #[schema(min_length = 1)]
    name: String,
    /// gorchestrator's state code of the run (filled in when read back).
    state: Option<i64>,
    /// The adjacency matrix, row by row: `digraph[i * n + j]` is 1 when
    /// node `j` needs node `i`.
    digraph: Vec<u8>,
    /// The nodes, in matrix order.
    #[schema(min_items = 1)]
    nodes: Vec<GraphNode>,
}

/// One node of a gorchestrator graph.
#[derive(Deserialize, ToSchema)]
#[schema(as = GraphNode)]
#[allow(dead_code, reason = "a shape for the schema; never built")]
pub struct GraphNode {
    /// Its id, unique in the graph.
    id: Option<i64>,
    #[schema(min_length = 1)]
    name: String,
    /// The driver; `nil` for a node that does nothing.
    #[schema(min_length = 1)]
    engine: String,
    artifact: Option<String>,
    args: Option<Vec<String>>,
    /// Its outputs: names, with their values once it has run.
    output: Option<BTreeMap<String, String>>,
    /// The pool of drones that runs it.
    target: Option<String>,
    /// gorchestrator's state code (filled in when read back).
    state: Option<i64>,
}

/// The fields of a native DAG, its nodes, their retries and grants, as the
/// schema names them: a test compares them with what the reader takes.
#[cfg(test)]
pub(super) fn native_fields() -> [(&'static str, Vec<String>); 4] {
    use utoipa::PartialSchema;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;
    let names = |schema: RefOr<Schema>| match schema {
        RefOr::T(Schema::Object(object)) => object.properties.keys().cloned().collect(),
        _ => Vec::new(),
    };
    [
        ("top", names(NativeDag::schema())),
        ("node", names(NativeNode::schema())),
        ("retries", names(NativeRetries::schema())),
        ("grants", names(NativeGrants::schema())),
    ]
}
