//! OpenAI's images API as general clients call it: `POST /v1/images/generations` (answers
//! `b64_json`; there is no file host for `url`) and `GET /v1/models`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use stipple_pipeline::GenerateRequest;

use super::{b64, check_limits, generate_and_wait};
use crate::error::ApiError;

/// An error as OpenAI's API answers it (what its clients read): `{"error": {message, type,
/// param, code}}`, with 400 for an invalid parameter.
struct OpenAiError(ApiError);

impl From<ApiError> for OpenAiError {
    fn from(e: ApiError) -> Self {
        OpenAiError(e)
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = if e.status == axum::http::StatusCode::UNPROCESSABLE_ENTITY { axum::http::StatusCode::BAD_REQUEST } else { e.status };
        let kind = if status.is_server_error() { "server_error" } else { "invalid_request_error" };
        let mut resp = (status, Json(json!({ "error": { "message": e.message, "type": kind, "param": e.field, "code": null } }))).into_response();
        if let Some(s) = e.retry_after {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, s.into());
        }
        resp
    }
}
use crate::security::ApiJson;
use crate::state::Shared;

pub fn routes() -> Router<Shared> {
    Router::new().route("/v1/images/generations", post(generations)).route("/v1/models", get(models))
}

/// The library's setting names as OpenAI's fields.
fn field(setting: &str) -> String {
    match setting {
        "count" | "batch_size" => "n",
        "prompts" => "prompt",
        other => other,
    }
    .to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerationsBody {
    prompt: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    n: Option<usize>,
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    response_format: Option<String>,
    /// Accepted and ignored, as other OpenAI-compatible servers do: they name options of
    /// OpenAI's own models.
    #[serde(default)]
    quality: Option<String>,
    #[serde(default)]
    style: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

async fn generations(State(state): State<Shared>, body: Result<ApiJson<GenerationsBody>, ApiError>) -> Result<Response, OpenAiError> {
    let ApiJson(body) = body?;
    let _ignored = (&body.quality, &body.style, &body.user);
    match body.response_format.as_deref() {
        None | Some("b64_json") => {}
        Some("url") => return Err(OpenAiError(ApiError::field("response_format", "this server answers b64_json only (it hosts no image URLs)"))),
        Some(other) => return Err(OpenAiError(ApiError::field("response_format", format!("unknown \"{other}\"; accepted: b64_json")))),
    }
    let model = match body.model.as_deref() {
        // Clients fill in OpenAI's model names by default; those mean "the current model".
        None | Some("dall-e-2") | Some("dall-e-3") | Some("gpt-image-1") => state.current_model.lock().expect("lock").clone(),
        Some(m) if stipple_pipeline::is_model_name(m) => m.to_string(),
        Some(m) => return Err(OpenAiError(ApiError::field("model", format!("\"{m}\" is not a model name")))),
    };
    let n = body.n.unwrap_or(1);
    let mut request = GenerateRequest { prompts: vec![body.prompt.clone()], count: Some(n), batch_size: Some(n), ..GenerateRequest::default() };
    check_limits(&state, &request, field)?;
    if let Some(size) = &body.size {
        let (w, h) = size
            .split_once('x')
            .and_then(|(w, h)| Some((w.parse::<usize>().ok()?, h.parse::<usize>().ok()?)))
            .ok_or_else(|| ApiError::field("size", format!("expected WIDTHxHEIGHT such as 512x512, got \"{size}\"")))?;
        let store = state.engine.store.clone();
        let name = model.clone();
        let stored = tokio::task::spawn_blocking(move || store.load(&name)).await.map_err(ApiError::internal)?.map_err(|e| match e.bad_input() {
            Some((_, expected)) => ApiError::field("model", expected),
            None => ApiError::internal(stipple_pipeline::chain(&e)),
        })?;
        stored.model.size_for(Some(w), Some(h)).map_err(|e| ApiError::field("size", format!("the model {model}: {}", e.bad_input().map_or(e.to_string(), |b| b.1.to_string()))))?;
        (request.width, request.height) = (Some(w), Some(h));
    }
    let images = generate_and_wait(&state, model, request, field, false).await?;
    let data: Vec<Value> = images
        .iter()
        .flat_map(|g| g.pngs.iter().zip(&g.recipes))
        .map(|(png, r)| json!({ "b64_json": b64(png), "revised_prompt": r.conditioning.prompts.first() }))
        .collect();
    let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Ok(Json(json!({ "created": created, "data": data })).into_response())
}

async fn models(State(state): State<Shared>) -> Result<Json<Value>, OpenAiError> {
    let store = state.engine.store.clone();
    let list = tokio::task::spawn_blocking(move || store.list()).await.map_err(ApiError::internal)?.map_err(ApiError::internal)?;
    let data: Vec<Value> = list.iter().map(|e| json!({ "id": e.name, "object": "model", "created": 0, "owned_by": "stipple" })).collect();
    Ok(Json(json!({ "object": "list", "data": data })))
}
