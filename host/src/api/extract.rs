//! Extractors whose rejections are problem details naming what was wrong: query strings, path parameters, bodies.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use url::form_urlencoded;

use super::ApiError;
use super::problem::Kind;

/// How much of a bad value an error quotes back.
const QUOTED: usize = 64;

/// The query string, deserialized; a bad one is a 400 naming the parameter.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or_default()).map(Query)
    }
}

/// Reads `query` as `T`; on failure, says which parameter and its value.
fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let pairs = form_urlencoded::parse(query.as_bytes());
    serde_path_to_error::deserialize(serde_urlencoded::Deserializer::new(pairs)).map_err(|e| {
        let name = e.path().to_string();
        let value = form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value);
        match value {
            Some(value) => ApiError::invalid_parameter(format!(
                "query parameter `{name}`: `{}` is not valid here ({})",
                quoted(&value),
                e.inner()
            )),
            // Not about one parameter: a duplicate, or a missing one.
            None => ApiError::invalid_parameter(format!("query string: {}", e.inner())),
        }
    })
}

/// The path parameters, deserialized; a bad one is a 400 naming it.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(path_error(rejection)),
        }
    }
}

fn path_error(rejection: PathRejection) -> ApiError {
    use axum::extract::path::ErrorKind;
    let PathRejection::FailedToDeserializePathParams(failed) = &rejection else {
        // No parameters where the route has some: a mistake in drover.
        return ApiError::other(rejection.status(), rejection.body_text());
    };
    if failed.status().is_server_error() {
        return ApiError::other(failed.status(), failed.body_text());
    }
    let detail = match failed.kind() {
        ErrorKind::InvalidUtf8InPathParam { key } => {
            format!("path parameter `{key}`: not UTF-8 text once percent-decoded")
        }
        ErrorKind::ParseErrorAtKey {
            key,
            value,
            expected_type,
        } => format!(
            "path parameter `{key}`: `{}` is not a {expected_type}",
            quoted(value)
        ),
        other => format!("path parameter: {other}"),
    };
    ApiError::invalid_parameter(detail)
}

/// The whole request body; over the cap it is a 413.
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(request, state)
            .await
            .map(Body)
            .map_err(ApiError::from)
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                Kind::BodyTooLarge,
                "the request body is larger than this server accepts \
                 (server.max_body_mib; plugins.max_upload_mib for plugin uploads)",
            )
        } else {
            ApiError::unreadable_body(format!("cannot read the request body: {rejection}"))
        }
    }
}

/// The body as text, or where it stops being UTF-8.
pub fn text(body: Bytes) -> Result<String, ApiError> {
    String::from_utf8(body.into()).map_err(|e| {
        ApiError::unreadable_body(format!(
            "the body is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// `value` as an error may quote it: control characters escaped, long
/// values cut.
pub(super) fn quoted(value: &str) -> String {
    let mut quoted: String = value.chars().take(QUOTED).collect();
    if quoted.len() < value.len() {
        quoted.push('…');
    }
    quoted.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Options {
        parallelism: Option<usize>,
        #[serde(default)]
        fail_fast: bool,
    }

    #[test]
    fn a_bad_query_parameter_is_named_with_its_value() {
        let Err(error) = parse_query::<Options>("fail_fast=true&parallelism=-1") else {
            panic!("-1 is not a usize");
        };
        assert_eq!(error.kind(), Kind::InvalidParameter);
        assert!(
            error
                .detail()
                .starts_with("query parameter `parallelism`: `-1` is not valid here"),
            "{}",
            error.detail()
        );
        let Err(error) = parse_query::<Options>("fail_fast=maybe") else {
            panic!("maybe is not a bool");
        };
        assert!(
            error.detail().contains("`fail_fast`: `maybe`"),
            "{}",
            error.detail()
        );
    }

    #[test]
    fn good_queries_read_as_before() {
        let options: Options = parse_query("parallelism=3&unknown=x").unwrap_or_else(|e| {
            panic!("{}", e.detail());
        });
        assert_eq!(options.parallelism, Some(3));
        assert!(!options.fail_fast);
        let options: Options = parse_query("").unwrap_or_else(|e| panic!("{}", e.detail()));
        assert_eq!(options.parallelism, None);
    }

    #[test]
    fn quoted_values_are_escaped_and_cut() {
        assert_eq!(quoted("a\nb"), "a\\nb");
        let long = "x".repeat(100);
        assert_eq!(quoted(&long).chars().count(), QUOTED + 1);
    }
}
