//! The kinds of error drover's API answers: RFC 9457 problem types, each with a stable URI and title.

use axum::http::StatusCode;
use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::dag::Problem;

/// The media type of a problem details answer (RFC 9457, section 3).
pub const MEDIA_TYPE: &str = "application/problem+json";

/// Where the problem types' URIs live; `host/docs/serving.md` (Errors) documents each.
const BASE: &str = "https://drover.dev/problems/";

/// A kind of error, which fixes the answer's `type`, `title` and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A query or path parameter, or a header, is malformed or out of range.
    InvalidParameter,
    /// The body is not UTF-8, YAML or JSON, or could not be read.
    UnreadableBody,
    /// The DAG was read but breaks the rules.
    InvalidDag,
    /// An uploaded component is not a drover driver.
    InvalidPlugin,
    /// No bearer token, or an unknown one.
    Unauthorized,
    /// The caller may not do this.
    Forbidden,
    /// No such run, node, plugin, version or endpoint.
    NotFound,
    /// The resource's state forbids it (a run that has ended, a version
    /// published with other bytes, a built-in plugin).
    Conflict,
    /// The body is over the server's cap.
    BodyTooLarge,
    /// The body's Content-Type is refused.
    UnsupportedMediaType,
    /// Anything with no more specific type: `about:blank`, titled with the
    /// status's reason phrase (405, 500, 503).
    Other(StatusCode),
}

impl Kind {
    /// Every kind with a URI of its own, for the documentation and tests.
    pub const TYPED: [Kind; 10] = [
        Kind::InvalidParameter,
        Kind::UnreadableBody,
        Kind::InvalidDag,
        Kind::InvalidPlugin,
        Kind::Unauthorized,
        Kind::Forbidden,
        Kind::NotFound,
        Kind::Conflict,
        Kind::BodyTooLarge,
        Kind::UnsupportedMediaType,
    ];

    /// The last segment of the type's URI; `None` for `about:blank`.
    fn slug(self) -> Option<&'static str> {
        Some(match self {
            Kind::InvalidParameter => "invalid-parameter",
            Kind::UnreadableBody => "unreadable-body",
            Kind::InvalidDag => "invalid-dag",
            Kind::InvalidPlugin => "invalid-plugin",
            Kind::Unauthorized => "unauthorized",
            Kind::Forbidden => "forbidden",
            Kind::NotFound => "not-found",
            Kind::Conflict => "conflict",
            Kind::BodyTooLarge => "body-too-large",
            Kind::UnsupportedMediaType => "unsupported-media-type",
            Kind::Other(_) => return None,
        })
    }

    /// The `type` member.
    pub fn uri(self) -> String {
        match self.slug() {
            Some(slug) => format!("{BASE}{slug}"),
            None => "about:blank".to_owned(),
        }
    }

    /// The `title` member: the same for every answer of this type.
    pub fn title(self) -> &'static str {
        match self {
            Kind::InvalidParameter => "Invalid request parameter",
            Kind::UnreadableBody => "Unreadable request body",
            Kind::InvalidDag => "Invalid DAG",
            Kind::InvalidPlugin => "Invalid plugin component",
            Kind::Unauthorized => "Authentication required",
            Kind::Forbidden => "Forbidden",
            Kind::NotFound => "Not found",
            Kind::Conflict => "Conflict with the resource's state",
            Kind::BodyTooLarge => "Request body too large",
            Kind::UnsupportedMediaType => "Unsupported media type",
            // RFC 9457 section 4.2.1: about:blank's title is the status's phrase.
            Kind::Other(status) => status.canonical_reason().unwrap_or("Error"),
        }
    }

    /// The HTTP status answers of this kind have.
    pub fn status(self) -> StatusCode {
        match self {
            Kind::InvalidParameter | Kind::UnreadableBody => StatusCode::BAD_REQUEST,
            Kind::InvalidDag | Kind::InvalidPlugin => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::Other(status) => status,
        }
    }
}

/// The JSON of a problem details answer (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct Details<'a> {
    /// The kind of error; `about:blank` where none is more specific.
    #[serde(rename = "type")]
    #[schema(value_type = ProblemType)]
    pub kind: String,
    /// The same for every answer of a type.
    pub title: &'static str,
    /// The HTTP status.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong: names the parameter, node or field.
    pub detail: &'a str,
    /// The request's path.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub instance: Option<&'a str>,
    /// drover's extension member: every problem of a refused DAG
    /// (invalid-dag, unreadable-body).
    #[serde(skip_serializing_if = "<[Problem]>::is_empty")]
    #[schema(value_type = Vec<Problem>, required = false)]
    pub problems: &'a [Problem],
}

/// The `type` of a problem: one URI per [`Kind`], or `about:blank`.
pub struct ProblemType;

impl PartialSchema for ProblemType {
    fn schema() -> RefOr<Schema> {
        let uris = Kind::TYPED
            .iter()
            .map(|kind| kind.uri())
            .chain(["about:blank".to_owned()]);
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .format(Some(SchemaFormat::Custom("uri".to_owned())))
            .enum_values(Some(uris))
            .into()
    }
}

impl ToSchema for ProblemType {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_typed_kind_has_its_own_uri_and_title_and_the_readme_lists_it() {
        let mut uris: Vec<String> = Kind::TYPED.iter().map(|k| k.uri()).collect();
        uris.sort();
        uris.dedup();
        assert_eq!(uris.len(), Kind::TYPED.len());
        for kind in Kind::TYPED {
            assert!(kind.uri().starts_with(BASE), "{kind:?}");
            assert!(kind.status().is_client_error(), "{kind:?}");
        }
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/serving.md"));
        for kind in Kind::TYPED {
            let slug = kind.slug().unwrap_or_default();
            assert!(
                readme.contains(&format!("| `{slug}` |")),
                "host/docs/serving.md lacks {slug}"
            );
        }
        let other = Kind::Other(StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(other.uri(), "about:blank");
        assert_eq!(other.title(), "Method Not Allowed");
        assert_eq!(other.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
