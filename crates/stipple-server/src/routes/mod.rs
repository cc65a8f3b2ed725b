//! The router: Stipple's own API (`/api/`), the web UI's (`/sdapi/v1/`) and OpenAI's images
//! API (`/v1/`), behind the key and origin guard and a body limit.

mod api;
mod openai;
mod page;
mod webui;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::json;
use stipple_pipeline::{GenerateRequest, ImageInput};

use crate::engine::{GenerateJob, GeneratedImages, Job, JobResult, Progress};
use crate::error::ApiError;
use crate::queue::{JobEvent, JobId, Outcome};
use crate::state::Shared;

/// The whole HTTP application over `state`.
pub fn app(state: Shared) -> Router {
    let limit = state.config.limits.max_body_bytes;
    Router::new()
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .merge(api::routes())
        .merge(webui::routes())
        .merge(openai::routes())
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::security::guard))
        .merge(page::routes())
        // Every body is read by an extractor (`ApiJson`, `Multipart`) that honours this limit
        // and answers a JSON 413.
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Decodes a base64 image field (a `data:image/…;base64,` prefix is accepted, as the web UI
/// does) into an input image; `field` names it in the error.
pub(crate) fn decode_image(field: &str, text: &str) -> Result<ImageInput, ApiError> {
    let data = match text.split_once(";base64,") {
        Some((head, rest)) if head.starts_with("data:") => rest,
        _ => text,
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| ApiError::field(field, format!("expected a base64-encoded PNG, JPEG or WebP image: {e}")))?;
    Ok(ImageInput::from_bytes(bytes))
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Checks a request against the server's limits before it is queued; `field` names a
/// library setting in the API's terms.
pub(crate) fn check_limits(state: &Shared, r: &GenerateRequest, field: impl Fn(&str) -> String) -> Result<(), ApiError> {
    let l = &state.config.limits;
    // The server's limits first (the library's own ranges are wider), then the library's
    // checks with the defaults applied, so a default that breaks a limit is refused too.
    if let Some(s) = r.steps.filter(|&s| s > l.max_steps) {
        return Err(ApiError::field(field("steps"), format!("this server allows at most {} steps, got {s}", l.max_steps)));
    }
    if let Some(c) = r.count.filter(|&c| c > l.max_images) {
        return Err(ApiError::field(field("count"), format!("this server makes at most {} images per request, got {c}", l.max_images)));
    }
    let spec = r.validate().map_err(|e| match e.bad_input() {
        Some((s, expected)) => ApiError::field(field(s), expected),
        None => ApiError::internal(e),
    })?;
    if spec.steps > l.max_steps {
        return Err(ApiError::field(field("steps"), format!("this server allows at most {} steps; the default is {}, set fewer", l.max_steps, spec.steps)));
    }
    if spec.count > l.max_images {
        return Err(ApiError::field(field("count"), format!("this server makes at most {} images per request; the default is {}, set fewer", l.max_images, spec.count)));
    }
    Ok(())
}

/// Queues a generation and waits for its end (the synchronous routes of the web UI and
/// OpenAI APIs); `None` when it was cancelled or interrupted.
pub(crate) async fn generate_and_wait(
    state: &Shared,
    model: String,
    request: GenerateRequest,
    field: impl Fn(&str) -> String,
    track_webui: bool,
) -> Result<Option<GeneratedImages>, ApiError> {
    let job = Job::Generate(GenerateJob { model, request, preview_every: state.config.limits.preview_every, attention: false, trajectory: false });
    let id = state.queue.submit(job)?;
    if track_webui {
        *state.webui_job.lock().expect("lock") = Some(id);
    }
    let outcome = wait(state, id).await;
    match outcome {
        Some(Outcome::Done(JobResult::Images(images))) => Ok(Some(images)),
        Some(Outcome::Done(JobResult::Trained { .. })) => Err(ApiError::internal("a generation job ended as a training")),
        Some(Outcome::Failed(e)) => Err(ApiError::from_job(&e, field)),
        Some(Outcome::Cancelled) => Ok(None),
        Some(Outcome::TimedOut) => Err(ApiError::new(axum::http::StatusCode::GATEWAY_TIMEOUT, "the job ran out of time")),
        Some(Outcome::Panicked(m)) => Err(ApiError::internal(m)),
        None => Err(ApiError::internal("the job was forgotten before it finished")),
    }
}

/// The outcome of job `id`, waited for on its event stream.
pub(crate) async fn wait(state: &Shared, id: JobId) -> Option<Outcome<JobResult, crate::engine::JobError>> {
    let mut sub = state.queue.subscribe(id)?;
    loop {
        match tokio::time::timeout(Duration::from_secs(3600), sub.next()).await {
            Ok(Some(JobEvent::Finished(o))) => return Some(o),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

/// The latest sampling progress of a job, if it is running.
pub(crate) fn sampling_progress(p: &Option<Progress>) -> Option<(usize, usize, f64)> {
    match p {
        Some(Progress::Sampling { step, steps, eta_seconds, .. }) => Some((*step, *steps, *eta_seconds)),
        _ => None,
    }
}
