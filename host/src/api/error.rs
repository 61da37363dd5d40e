//! API errors: RFC 9457 problem details on drover's API, `{"code", "message"}` on gorchestrator's.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::problem::{Details, Kind, MEDIA_TYPE};
use crate::admission::Refused;
use crate::dag::Problem;
use crate::runs::RunsError;
use crate::store::StoreError;

/// An error answer. Handlers build it; [`super::edge`] then places it: the
/// request path becomes `instance`, and under gorchestrator's `/v1` the
/// answer takes that API's shape.
#[derive(Debug, Clone)]
pub struct ApiError {
    kind: Kind,
    detail: String,
    problems: Vec<Problem>,
    instance: Option<String>,
    gorchestrator: bool,
}

/// An error of gorchestrator's API, in its shape.
#[derive(Serialize, ToSchema)]
#[schema(as = TaskError)]
pub(super) struct Gorchestrator<'a> {
    /// The HTTP status.
    #[schema(minimum = 400, maximum = 599)]
    code: u16,
    /// What went wrong.
    message: &'a str,
}

impl ApiError {
    pub fn new(kind: Kind, detail: impl Into<String>) -> Self {
        ApiError {
            kind,
            detail: detail.into(),
            problems: Vec::new(),
            instance: None,
            gorchestrator: false,
        }
    }

    pub fn invalid_parameter(detail: impl Into<String>) -> Self {
        ApiError::new(Kind::InvalidParameter, detail)
    }

    pub fn unreadable_body(detail: impl Into<String>) -> Self {
        ApiError::new(Kind::UnreadableBody, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        ApiError::new(Kind::Unauthorized, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        ApiError::new(Kind::Forbidden, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(Kind::NotFound, detail)
    }

    /// An error with no more specific type than its status (`about:blank`).
    pub fn other(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError::new(Kind::Other(status), detail)
    }

    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// What went wrong, for people.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The same error answering a request for `path`.
    pub fn at(mut self, path: &str) -> Self {
        if super::gorchestrator::serves(path) {
            self.gorchestrator = true;
        } else {
            self.instance = Some(path.to_owned());
        }
        self
    }

    fn body(&self) -> Result<Vec<u8>, serde_json::Error> {
        if self.gorchestrator {
            serde_json::to_vec(&Gorchestrator {
                code: self.status().as_u16(),
                message: &self.detail,
            })
        } else {
            serde_json::to_vec(&Details {
                kind: self.kind.uri(),
                title: self.kind.title(),
                status: self.status().as_u16(),
                detail: &self.detail,
                instance: self.instance.as_deref(),
                problems: &self.problems,
            })
        }
    }
}

impl From<RunsError> for ApiError {
    fn from(error: RunsError) -> Self {
        match error {
            RunsError::Refused(refused) => {
                let (kind, what) = match &refused {
                    Refused::Unreadable(_) => {
                        (Kind::UnreadableBody, "the body is not valid YAML or JSON")
                    }
                    Refused::Invalid(_) => (Kind::InvalidDag, "the DAG is not valid"),
                };
                let problems = refused.problems().problems.clone();
                let detail = format!(
                    "{what} ({} problem{}): {}",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" },
                    problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                ApiError {
                    problems,
                    ..ApiError::new(kind, detail)
                }
            }
            RunsError::BadOption(message) => ApiError::invalid_parameter(message),
            RunsError::NotFound(_) => ApiError::not_found(error.to_string()),
            RunsError::Ended(_) | RunsError::Running(_) => {
                ApiError::new(Kind::Conflict, error.to_string())
            }
            RunsError::Store(StoreError::Unwritable { reason, full }) => ApiError::other(
                if full {
                    StatusCode::INSUFFICIENT_STORAGE
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                },
                format!(
                    "nothing was stored: {reason}; drover takes writes again by itself once it \
                     can (GET /readyz tells)"
                ),
            ),
            RunsError::Store(e @ StoreError::Reopening { .. }) => {
                ApiError::other(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            RunsError::Store(e) => {
                tracing::error!(error = %e, "store error");
                ApiError::other(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("storage failed: {e}"),
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (media_type, body) = match self.body() {
            Ok(body) if self.gorchestrator => ("application/json", body),
            Ok(body) => (MEDIA_TYPE, body),
            // Strings and numbers always serialize; this only keeps a
            // failure from becoming a panic.
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        };
        let mut response = (
            self.status(),
            [(header::CONTENT_TYPE, HeaderValue::from_static(media_type))],
            body,
        )
            .into_response();
        if self.status() == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        // Kept for the edge, which knows the request's path.
        response.extensions_mut().insert(self);
        response
    }
}

/// The answer for a path that is not in the API.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "no such endpoint: {}; GET /api/v1/openapi.json lists them all",
        uri.path()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn json_of(error: ApiError) -> Value {
        match error.body() {
            Ok(body) => serde_json::from_slice(&body).unwrap_or(Value::Null),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn native_errors_are_problem_details_with_the_path_as_instance() {
        let value = json_of(ApiError::not_found("no run has the id `x`").at("/api/v1/runs/x"));
        assert_eq!(value["type"], "https://drover.dev/problems/not-found");
        assert_eq!(value["title"], "Not found");
        assert_eq!(value["status"], 404);
        assert_eq!(value["detail"], "no run has the id `x`");
        assert_eq!(value["instance"], "/api/v1/runs/x");
        assert!(value.get("problems").is_none(), "{value}");
    }

    #[test]
    fn gorchestrator_keeps_its_code_and_message() {
        let value = json_of(ApiError::unauthorized("unknown token").at("/v1/tasks"));
        assert_eq!(
            value,
            serde_json::json!({"code": 401, "message": "unknown token"})
        );
    }
}
