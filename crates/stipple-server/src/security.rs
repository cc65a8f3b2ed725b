//! Who may call the server: a Bearer key when one is set (compared in constant time), and no
//! cross-origin writes from web pages (a page on another site must not drive a local server,
//! as ComfyUI also refuses). Plus a JSON body extractor whose rejections are API errors.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::Shared;

/// Equality of two byte strings in time that depends only on their lengths (the key's
/// length is not secret; its bytes are). Eight lines do not justify a dependency.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Refuses requests without the configured Bearer key (every route but `/health`), and
/// state-changing requests whose `Origin` is not the server's own host.
pub async fn guard(State(state): State<Shared>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/health" {
        return next.run(req).await;
    }
    if let Some(key) = &state.config.api_key {
        let given = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), key.as_bytes())) {
            let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, "this server needs its API key: Authorization: Bearer KEY").into_response();
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            return resp;
        }
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        if let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
            let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
            if origin != "null" && origin_host != host {
                return ApiError::new(StatusCode::FORBIDDEN, format!("cross-origin request from {origin} refused")).into_response();
            }
        }
    }
    next.run(req).await
}

/// A JSON body; malformed JSON is a 400 and a body of the wrong shape a 422, both with the
/// parser's message (which names the field and the expected type).
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.body_text())),
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected a JSON body with Content-Type: application/json"))
            }
            Err(e) => Err(ApiError::new(e.status(), e.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn keys_compare_exactly() {
        assert!(constant_time_eq(b"secret-key-0123456", b"secret-key-0123456"));
        assert!(!constant_time_eq(b"secret-key-0123456", b"secret-key-0123457"));
        assert!(!constant_time_eq(b"short", b"shorter"));
    }
}
