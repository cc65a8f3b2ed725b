//! Stipple's own API: jobs (generation and training) with a server-sent-event stream each,
//! the gallery, models, samplers and schedules. Field names are the library's setting names.

use std::convert::Infallible;

use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::json;
use stipple_math::SigmaSchedule;
use stipple_pipeline::{encode_trajectory, noisy_images, to_images, GenerateRequest, TrajectoryFormat};
use stipple_sample::{SamplerKind, SamplerOptions};
use stipple_train::data::{unpack_data_archive, ArchiveError, ArchiveLimits};
use stipple_train::TrainSettings;

use super::{check_limits, decode_image};
use crate::engine::{preview_png, GenerateJob, Job, JobResult, TrainJob};
use crate::error::ApiError;
use crate::gallery::{ImageId, ListFilter};
use crate::queue::{JobEvent, JobId, JobState, Outcome};
use crate::security::ApiJson;
use crate::state::Shared;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/jobs", post(submit))
        .route("/api/jobs/{id}", get(status).delete(cancel))
        .route("/api/jobs/{id}/cancel", post(cancel))
        .route("/api/jobs/{id}/events", get(events))
        .route("/api/jobs/{id}/{file}", get(trajectory))
        .route("/api/images", get(list_images))
        .route("/api/images/{id}", get(get_image).delete(delete_image))
        .route("/api/images/{id}/attention", get(attention))
        .route("/api/data", post(upload_data))
        .route("/api/models", get(models))
        .route("/api/samplers", get(samplers))
}

/// A generation as the own API takes it: the library's settings by name, images as base64.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct GenerateBody {
    pub model: Option<String>,
    pub prompt: Option<String>,
    pub prompts: Vec<String>,
    pub negative_prompt: Option<String>,
    pub class: Option<String>,
    pub negative_class: Option<String>,
    pub sampler: Option<String>,
    pub schedule: Option<String>,
    pub steps: Option<usize>,
    pub final_sigma: Option<String>,
    pub noise: Option<String>,
    pub seed: Option<u64>,
    pub rng: Option<String>,
    pub eta_noise_seed_delta: Option<u64>,
    pub count: Option<usize>,
    pub batch_size: Option<usize>,
    /// Image size in pixels (a Stable Diffusion checkpoint: any multiple of 8; a Stipple model
    /// its own size only) [default: the model's].
    pub width: Option<usize>,
    pub height: Option<usize>,
    /// A Stable Diffusion checkpoint's VAE decodes in tiles (large sizes) [default: false].
    pub vae_tiling: Option<bool>,
    pub guidance_scale: Option<f64>,
    pub guidance_rescale: Option<f64>,
    pub guidance_interval: Option<(f64, f64)>,
    pub strength: Option<f64>,
    pub resample: Option<usize>,
    /// Blur of the inpainting mask, σ in pixels (the web UI's "mask blur") [default: 0].
    pub mask_blur: Option<f64>,
    /// Base64 image (PNG, JPEG, WebP).
    pub init_image: Option<String>,
    pub mask: Option<String>,
    #[serde(flatten)]
    pub options: SamplerOptionsBody,
    /// An x̂₀ preview every this many steps in the events (default: the server's).
    pub preview_every: Option<usize>,
    /// Keep each image's per-token cross-attention maps (`/api/images/{id}/attention`).
    pub attention: bool,
    /// Keep the denoising trajectory (`/api/jobs/{id}/trajectory[.gif|.apng|.png]`).
    pub trajectory: bool,
}

/// The sampler options by their library names.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SamplerOptionsBody {
    pub eta: Option<f64>,
    pub s_noise: Option<f64>,
    pub s_churn: Option<f64>,
    pub s_tmin: Option<f64>,
    pub s_tmax: Option<f64>,
    pub order: Option<usize>,
    pub r: Option<f64>,
}

/// A training job: a run name, a data folder name known to the server (none: the built-in
/// emoji), the run's settings, and its total steps.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainBody {
    pub name: String,
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub steps: Option<usize>,
    #[serde(default)]
    pub resume: bool,
    #[serde(default)]
    pub settings: TrainSettings,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum JobBody {
    Generate(Box<GenerateBody>),
    Train(Box<TrainBody>),
}

/// Library setting names are this API's field names.
fn same(s: &str) -> String {
    s.to_string()
}

impl GenerateBody {
    /// The library request (images decoded from base64), with the model name and the
    /// preview interval.
    pub fn request(self) -> Result<(Option<String>, GenerateRequest, Option<usize>), ApiError> {
        let mut prompts = self.prompts;
        if let Some(p) = self.prompt {
            prompts.insert(0, p);
        }
        let o = self.options;
        let request = GenerateRequest {
            sampler: self.sampler,
            schedule: self.schedule,
            steps: self.steps,
            final_sigma: self.final_sigma,
            noise: self.noise,
            rng: self.rng,
            eta_noise_seed_delta: self.eta_noise_seed_delta,
            seed: self.seed,
            count: self.count,
            batch_size: self.batch_size,
            options: SamplerOptions { eta: o.eta, s_noise: o.s_noise, s_churn: o.s_churn, s_tmin: o.s_tmin, s_tmax: o.s_tmax, order: o.order, r: o.r, ..SamplerOptions::default() },
            class: self.class,
            negative_class: self.negative_class,
            prompts,
            negative_prompt: self.negative_prompt,
            guidance_scale: self.guidance_scale,
            guidance_rescale: self.guidance_rescale,
            guidance_interval: self.guidance_interval,
            init_image: self.init_image.as_deref().map(|t| decode_image("init_image", t)).transpose()?,
            strength: self.strength,
            mask: self.mask.as_deref().map(|t| decode_image("mask", t)).transpose()?,
            resample: self.resample,
            mask_blur: self.mask_blur,
            width: self.width,
            height: self.height,
            vae_tiling: self.vae_tiling,
        };
        Ok((self.model, request, self.preview_every))
    }
}

/// `POST /api/jobs`: a JSON body (`{"kind": "generate", …}` or `{"kind": "train", …}`), or a
/// multipart form with a `request` JSON part and `init_image` / `mask` file parts.
async fn submit(State(state): State<Shared>, req: Request) -> Result<Response, ApiError> {
    let multipart = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("multipart/form-data"));
    let body = if multipart {
        let mut form = Multipart::from_request(req, &state).await.map_err(|e| ApiError::bad_request(e.body_text()))?;
        let (mut body, mut files): (Option<JobBody>, Vec<(String, Vec<u8>)>) = (None, vec![]);
        while let Some(field) = form.next_field().await.map_err(|e| ApiError::bad_request(e.body_text()))? {
            let name = field.name().unwrap_or("").to_string();
            let bytes = field.bytes().await.map_err(|e| ApiError::bad_request(e.body_text()))?;
            match name.as_str() {
                "request" => body = Some(serde_json::from_slice(&bytes).map_err(|e| ApiError::field("request", e.to_string()))?),
                "init_image" | "mask" => files.push((name, bytes.to_vec())),
                other => return Err(ApiError::field(other, "unknown part; expected request, init_image, mask")),
            }
        }
        let mut body = body.ok_or_else(|| ApiError::field("request", "the form needs a request part (JSON)"))?;
        if let JobBody::Generate(g) = &mut body {
            for (name, bytes) in files {
                let text = super::b64(&bytes);
                if name == "init_image" { g.init_image = Some(text) } else { g.mask = Some(text) }
            }
        } else if !files.is_empty() {
            return Err(ApiError::field("init_image", "a training job takes no images"));
        }
        body
    } else {
        ApiJson::<JobBody>::from_request(req, &state).await?.0
    };
    let job = match body {
        JobBody::Generate(g) => {
            let (attention, trajectory) = (g.attention, g.trajectory);
            let (model, request, preview_every) = g.request()?;
            check_limits(&state, &request, same)?;
            let model = model.unwrap_or_else(|| state.current_model.lock().expect("lock").clone());
            if !stipple_pipeline::is_model_name(&model) {
                return Err(ApiError::field("model", "a model name is letters, digits, '.', '_' and '-'"));
            }
            let preview_every = preview_every.unwrap_or(state.config.limits.preview_every);
            Job::Generate(GenerateJob { model, request, preview_every, attention, trajectory })
        }
        JobBody::Train(t) => {
            if t.steps.is_some_and(|s| s == 0 || s > 1_000_000) {
                return Err(ApiError::field("steps", "must be between 1 and 1000000"));
            }
            let t = *t;
            Job::Train(TrainJob { name: t.name, data: t.data, settings: t.settings, steps: t.steps, resume: t.resume })
        }
    };
    let id = state.queue.submit(job)?;
    let position = match state.queue.status(id).map(|s| s.state) {
        Some(crate::queue::JobState::Queued { position }) => Some(position),
        _ => None,
    };
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id, "position": position, "events": format!("/api/jobs/{id}/events") }))).into_response())
}

fn job_id(text: &str) -> Result<JobId, ApiError> {
    text.parse().map_err(|e: crate::queue::ParseJobIdError| ApiError::not_found(e.to_string()))
}

/// `GET /api/jobs/{id}`.
async fn status(State(state): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let s = state.queue.status(id).ok_or_else(|| ApiError::not_found(format!("no job {id} (finished jobs are forgotten after a while)")))?;
    Ok(Json(s).into_response())
}

/// `POST /api/jobs/{id}/cancel` or `DELETE /api/jobs/{id}`: a queued job is removed, a
/// running one stops at its next step.
async fn cancel(State(state): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let outcome = state.queue.cancel(id).ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    Ok(Json(json!({ "id": id, "cancel": outcome })).into_response())
}

/// `GET /api/jobs/{id}/events`: server-sent events `queued` (position), `started`,
/// `progress` (sampling: step, σ, preview; training: loss, lr, steps/s; checkpoint;
/// sample_grid), then one of `done` (image ids, or the trained model), `failed` (the error,
/// with the field at fault), `cancelled`, `timed_out`.
async fn events(State(state): State<Shared>, Path(id): Path<String>) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = job_id(&id)?;
    let sub = state.queue.subscribe(id).ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    let stream = stream::unfold(Some(sub), |sub| async move {
        let mut sub = sub?;
        let event = sub.next().await?;
        let last = event.is_finished();
        Some((Ok(sse_event(event)), if last { None } else { Some(sub) }))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn sse_event(event: JobEvent<crate::engine::Progress, JobResult, crate::engine::JobError>) -> Event {
    let (name, data) = match event {
        JobEvent::Queued { position } => ("queued", json!({ "position": position })),
        JobEvent::Started => ("started", json!({})),
        JobEvent::Progress(p) => ("progress", serde_json::to_value(p).unwrap_or_default()),
        JobEvent::Finished(Outcome::Done(r)) => ("done", serde_json::to_value(r).unwrap_or_default()),
        JobEvent::Finished(Outcome::Failed(e)) => ("failed", json!({ "field": e.setting, "detail": e.message })),
        JobEvent::Finished(Outcome::Cancelled) => ("cancelled", json!({})),
        JobEvent::Finished(Outcome::TimedOut) => ("timed_out", json!({})),
        JobEvent::Finished(Outcome::Panicked(_)) => ("failed", json!({ "field": null, "detail": "internal error (see the server's log)" })),
    };
    Event::default().event(name).data(data.to_string())
}

/// `GET /api/images?prompt=&model=&limit=&before=`: a page of the gallery, newest first.
async fn list_images(State(state): State<Shared>, Query(filter): Query<ListFilter>) -> Result<Response, ApiError> {
    let gallery = state.engine.gallery.clone();
    let page = tokio::task::spawn_blocking(move || gallery.list(&filter)).await.map_err(ApiError::internal)??;
    Ok(Json(page).into_response())
}

/// `GET /api/images/{id}` (the record) or `/api/images/{id}.png` (the exact file).
async fn get_image(State(state): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let (digits, png) = match id.strip_suffix(".png") {
        Some(d) => (d, true),
        None => (id.as_str(), false),
    };
    let id: ImageId = digits.parse().map_err(|_| ApiError::not_found(format!("no image {digits:?}")))?;
    let gallery = state.engine.gallery.clone();
    if png {
        let bytes = tokio::task::spawn_blocking(move || gallery.read_png(id)).await.map_err(ApiError::internal)??;
        Ok(([(header::CONTENT_TYPE, "image/png")], bytes).into_response())
    } else {
        let record = tokio::task::spawn_blocking(move || gallery.get(id)).await.map_err(ApiError::internal)??;
        Ok(Json(record).into_response())
    }
}

/// `DELETE /api/images/{id}`: the row and the file (and its kept attention maps).
async fn delete_image(State(state): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id: ImageId = id.parse().map_err(|_| ApiError::not_found(format!("no image {id:?}")))?;
    let gallery = state.engine.gallery.clone();
    tokio::task::spawn_blocking(move || gallery.delete(id)).await.map_err(ApiError::internal)??;
    state.engine.forget_attention(id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/images/{id}/attention`: the per-token cross-attention maps of an image whose
/// job asked for them (`{tokens, width, height, maps}`, one row-major array per token).
async fn attention(State(state): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id: ImageId = id.parse().map_err(|_| ApiError::not_found(format!("no image {id:?}")))?;
    let maps = state.engine.attention_maps(id).ok_or_else(|| {
        ApiError::not_found(format!(
            "no attention maps for image {id}: a generation keeps them when it asks (\"attention\": true), for the latest {} images while the server runs",
            crate::engine::ATTENTION_KEPT
        ))
    })?;
    Ok(Json(&*maps).into_response())
}

/// `GET /api/jobs/{id}/trajectory` (the frames as JSON: step, steps, σ, and PNGs of x_t and
/// of x̂₀, each a grid of the job's pictures as in the previews), or `trajectory.gif`, `trajectory.apng` (animations) and
/// `trajectory.png` (a grid): what `sample --trajectory` writes, for a finished generation
/// that asked for its trajectory.
async fn trajectory(State(state): State<Shared>, Path((id, file)): Path<(String, String)>) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let format = match file.as_str() {
        "trajectory" => None,
        "trajectory.gif" => Some((TrajectoryFormat::Gif, "image/gif")),
        "trajectory.apng" => Some((TrajectoryFormat::Apng, "image/apng")),
        "trajectory.png" => Some((TrajectoryFormat::Grid, "image/png")),
        other => return Err(ApiError::not_found(format!("no {other:?} for a job: expected trajectory, trajectory.gif, trajectory.apng or trajectory.png"))),
    };
    let frames = match state.queue.status(id).map(|s| s.state) {
        Some(JobState::Finished { outcome: Outcome::Done(JobResult::Images(images)) }) => images.trajectory.ok_or_else(|| {
            ApiError::not_found(format!("job {id} kept no trajectory: a generation keeps it when it asks (\"trajectory\": true)"))
        })?,
        Some(JobState::Finished { .. }) => return Err(ApiError::not_found(format!("job {id} made no images"))),
        Some(_) => return Err(ApiError::new(StatusCode::CONFLICT, format!("job {id} has not finished; its trajectory comes when it is done"))),
        None => return Err(ApiError::not_found(format!("no job {id} (finished jobs are forgotten after a while)"))),
    };
    let answer = tokio::task::spawn_blocking(move || -> Result<Response, ApiError> {
        let frames = &frames.0;
        Ok(match format {
            Some((format, mime)) => ([(header::CONTENT_TYPE, mime)], encode_trajectory(frames, format).map_err(ApiError::internal)?).into_response(),
            None => {
                let mut rows = Vec::with_capacity(frames.len());
                for f in frames.iter() {
                    let x = noisy_images(&f.x, f.sigma).and_then(|i| preview_png(&i)).map_err(ApiError::internal)?;
                    let x0 = to_images(&f.denoised).and_then(|i| preview_png(&i)).map_err(ApiError::internal)?;
                    rows.push(json!({ "step": f.step, "steps": f.steps, "sigma": f.sigma, "x": x, "x0": x0 }));
                }
                Json(json!({ "frames": rows })).into_response()
            }
        })
    });
    answer.await.map_err(ApiError::internal)?
}

/// Where an uploaded data archive goes.
#[derive(Deserialize)]
struct UploadQuery {
    name: Option<String>,
}

/// `POST /api/data?name=NAME` with a zip archive as the body: unpacked into the new data
/// folder NAME under the server's data root (images and `labels.csv` only, see
/// `stipple_train::data::unpack_data_archive`), for training jobs to name as `data`.
async fn upload_data(State(state): State<Shared>, Query(q): Query<UploadQuery>, req: Request) -> Result<Response, ApiError> {
    let root = state
        .engine
        .data_root
        .clone()
        .ok_or_else(|| ApiError::field("zip", "this server has no data folder to unpack into (start it with --data-root DIR)"))?;
    let name = q.name.ok_or_else(|| ApiError::field("name", "name the new data folder: /api/data?name=NAME"))?;
    if !stipple_pipeline::is_model_name(&name) {
        return Err(ApiError::field("name", "a data folder name is letters, digits, '.', '_' and '-', not starting with '.'"));
    }
    let bytes = axum::body::Bytes::from_request(req, &state).await.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let dest = root.join(&name);
    let unpacked = tokio::task::spawn_blocking(move || unpack_data_archive(&bytes, &dest, &ArchiveLimits::default()))
        .await
        .map_err(ApiError::internal)?;
    match unpacked {
        Ok(u) => Ok((StatusCode::CREATED, Json(json!({ "data": name, "images": u.images, "skipped": u.skipped }))).into_response()),
        Err(e @ ArchiveError::Io { .. }) => Err(ApiError::internal(stipple_pipeline::chain(&e))),
        Err(e @ ArchiveError::Exists(_)) => Err(ApiError { status: StatusCode::CONFLICT, ..ApiError::field("name", e.to_string()) }),
        Err(e) if e.is_too_large() => Err(ApiError { status: StatusCode::PAYLOAD_TOO_LARGE, ..ApiError::field("zip", e.to_string()) }),
        Err(e) => Err(ApiError::field("zip", e.to_string())),
    }
}

/// `GET /api/models`: the store's models and the current one.
async fn models(State(state): State<Shared>) -> Result<Response, ApiError> {
    let store = state.engine.store.clone();
    let list = tokio::task::spawn_blocking(move || store.list()).await.map_err(ApiError::internal)?.map_err(ApiError::internal)?;
    let current = state.current_model.lock().expect("lock").clone();
    // Names and sources only: where the files lie is the server's business.
    let models: Vec<_> = list.iter().map(|e| json!({ "name": e.name, "source": e.source, "architecture": e.architecture })).collect();
    Ok(Json(json!({ "current": current, "models": models })).into_response())
}

/// `GET /api/samplers`: every sampler and schedule with its properties.
async fn samplers() -> Json<serde_json::Value> {
    let samplers: Vec<_> = SamplerKind::ALL.iter().map(|k| k.row()).collect();
    let schedules: Vec<_> = SigmaSchedule::ALL.iter().map(|s| json!({ "name": s.to_string(), "display_name": s.display_name() })).collect();
    Json(json!({ "samplers": samplers, "schedules": schedules }))
}
