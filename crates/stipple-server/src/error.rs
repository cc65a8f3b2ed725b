//! Errors as HTTP answers: bad input is a 4xx whose message names the field as the API at
//! hand names it; internal failures are a 500 with a generic message (the cause is logged).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::engine::JobError;
use crate::queue::SubmitError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// The request field at fault, in the API's own naming.
    pub field: Option<String>,
    pub message: String,
    /// Seconds for `Retry-After` (a full queue).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, field: None, message: message.into(), retry_after: None }
    }

    /// 422: a field that parses but is out of range or unsupported.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field}: {}", message.into());
        ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, field: Some(field), message, retry_after: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 500 with a generic message; the cause goes to the log.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {cause}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error (see the server's log)")
    }

    /// A job's failure, with its setting named by `field_name` (the API's naming).
    pub fn from_job(e: &JobError, field_name: impl Fn(&str) -> String) -> Self {
        match e.setting {
            Some(s) => Self::field(field_name(s), e.message.clone()),
            None => Self::internal(&e.message),
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Full { retry_after } => ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                field: None,
                message: e.to_string(),
                retry_after: Some(retry_after.as_secs().max(1)),
            },
            SubmitError::ShuttingDown => Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        }
    }
}

impl From<crate::gallery::GalleryError> for ApiError {
    fn from(e: crate::gallery::GalleryError) -> Self {
        match e {
            crate::gallery::GalleryError::NotFound(id) => Self::not_found(format!("no image {id}")),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // `detail` is what the web UI's clients print; `error` names the kind.
        let kind = self.status.canonical_reason().unwrap_or("error");
        let body = json!({ "error": kind, "detail": self.message, "field": self.field });
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}
