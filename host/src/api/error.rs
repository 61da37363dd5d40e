//! API errors: a status and a message that says what to do, as JSON.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::dag::Problem;
use crate::runs::RunsError;
use crate::transport::Refused;

/// An error answer: `{"error", "problems"}` on drover's API,
/// `{"code", "message"}` on gorchestrator's.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub problems: Vec<Problem>,
    gorchestrator: bool,
}

#[derive(Serialize)]
struct Native<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "<[Problem]>::is_empty")]
    problems: &'a [Problem],
}

#[derive(Serialize)]
struct Gorchestrator<'a> {
    code: u16,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            problems: Vec::new(),
            gorchestrator: false,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// The same error in gorchestrator's shape.
    pub fn for_gorchestrator(mut self) -> Self {
        self.gorchestrator = true;
        self
    }
}

impl From<RunsError> for ApiError {
    fn from(error: RunsError) -> Self {
        match error {
            RunsError::Refused(refused) => {
                let (status, what) = match &refused {
                    Refused::Unreadable(_) => (
                        StatusCode::BAD_REQUEST,
                        "the body is not valid YAML or JSON",
                    ),
                    Refused::Invalid(_) => {
                        (StatusCode::UNPROCESSABLE_ENTITY, "the DAG is not valid")
                    }
                };
                let problems = refused.problems().problems.clone();
                let message = format!(
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
                    ..ApiError::new(status, message)
                }
            }
            RunsError::BadOption(message) => ApiError::bad_request(message),
            RunsError::NotFound(_) => ApiError::not_found(error.to_string()),
            RunsError::Ended(_) => ApiError::new(StatusCode::CONFLICT, error.to_string()),
            RunsError::Store(e) => {
                tracing::error!(error = %e, "store error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("storage failed: {e}"),
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = if self.gorchestrator {
            Json(Gorchestrator {
                code: self.status.as_u16(),
                message: &self.message,
            })
            .into_response()
        } else {
            Json(Native {
                error: &self.message,
                problems: &self.problems,
            })
            .into_response()
        };
        *response.status_mut() = self.status;
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
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
