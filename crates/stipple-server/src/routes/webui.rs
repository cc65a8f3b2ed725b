//! The AUTOMATIC1111 web UI's API (`/sdapi/v1/`), which Krita's, Photoshop's and Blender's
//! plug-ins, chat front ends and scripts call. Requests are read as the web UI reads them;
//! fields that would change the result and that Stipple does not do are refused with 422,
//! the others ignored where the web UI ignores them. Responses have the web UI's shape:
//! `images` (base64 PNG with the recipe), `parameters` (the request echoed) and `info` (a
//! JSON string whose `infotexts` are the PNGs' parameters text).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use stipple_math::SigmaSchedule;
use stipple_pipeline::{read_png_text, GenerateRequest, PARAMETERS_KEY};
use stipple_sample::{parse_webui_sampler, parse_webui_schedule, webui_alias, RngSource, SamplerKind, SamplerOptions};

use super::{b64, check_limits, decode_image, generate_and_wait, sampling_progress};
use crate::engine::GeneratedImages;
use crate::error::ApiError;
use crate::security::ApiJson;
use crate::state::Shared;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/sdapi/v1/txt2img", post(txt2img))
        .route("/sdapi/v1/img2img", post(img2img))
        .route("/sdapi/v1/progress", get(progress))
        .route("/sdapi/v1/interrupt", post(interrupt))
        .route("/sdapi/v1/skip", post(interrupt))
        .route("/sdapi/v1/samplers", get(samplers))
        .route("/sdapi/v1/schedulers", get(schedulers))
        .route("/sdapi/v1/sd-models", get(sd_models))
        .route("/sdapi/v1/options", get(get_options).post(set_options))
        .route("/sdapi/v1/png-info", post(png_info))
        .route("/sdapi/v1/scripts", get(|| async { Json(json!({ "txt2img": [], "img2img": [] })) }))
        .route("/sdapi/v1/sd-vae", get(|| async { Json(json!([])) }))
        .route("/sdapi/v1/loras", get(loras))
        .route("/sdapi/v1/upscalers", get(|| async { Json(json!([])) }))
        .route("/sdapi/v1/embeddings", get(|| async { Json(json!({ "loaded": {}, "skipped": {} })) }))
}

/// The library's setting names as the web UI's fields.
fn field(setting: &str) -> String {
    match setting {
        "guidance_scale" => "cfg_scale",
        "sampler" => "sampler_name",
        "schedule" => "scheduler",
        "strength" => "denoising_strength",
        "init_image" => "init_images",
        "count" => "n_iter",
        "class" | "prompts" => "prompt",
        "model" => "override_settings.sd_model_checkpoint",
        other => other,
    }
    .to_string()
}

/// The fields of `StableDiffusionProcessingTxt2Img` / `Img2Img` Stipple reads; unknown ones
/// are ignored as the web UI's own clients expect (they send many).
#[derive(Deserialize, Default)]
#[serde(default)]
struct WebUiRequest {
    prompt: String,
    negative_prompt: String,
    styles: Vec<String>,
    seed: Option<i64>,
    subseed: Option<i64>,
    subseed_strength: Option<f64>,
    seed_resize_from_h: Option<i64>,
    seed_resize_from_w: Option<i64>,
    sampler_name: Option<String>,
    sampler_index: Option<String>,
    scheduler: Option<String>,
    batch_size: Option<usize>,
    n_iter: Option<usize>,
    steps: Option<usize>,
    cfg_scale: Option<f64>,
    width: Option<usize>,
    height: Option<usize>,
    restore_faces: Option<bool>,
    tiling: Option<bool>,
    eta: Option<f64>,
    s_churn: Option<f64>,
    s_tmin: Option<f64>,
    s_tmax: Option<f64>,
    s_noise: Option<f64>,
    denoising_strength: Option<f64>,
    override_settings: Map<String, Value>,
    enable_hr: Option<bool>,
    script_name: Option<String>,
    alwayson_scripts: Map<String, Value>,
    // img2img
    init_images: Vec<String>,
    mask: Option<String>,
    inpainting_mask_invert: Option<i64>,
    inpainting_fill: Option<i64>,
    inpaint_full_res: Option<bool>,
    mask_blur: Option<f64>,
    initial_noise_multiplier: Option<f64>,
    include_init_images: bool,
}

/// Refuses what would change the result and Stipple does not do; `what` is the route.
fn refuse_unsupported(r: &WebUiRequest, img2img: bool) -> Result<(), ApiError> {
    let on = |b: Option<bool>| b.unwrap_or(false);
    let checks: [(&str, bool, &str); 10] = [
        ("styles", !r.styles.is_empty(), "styles are not supported; put the text in the prompt"),
        ("subseed_strength", r.subseed_strength.is_some_and(|s| s != 0.0), "variation seeds are not supported (use 0)"),
        ("seed_resize_from_w", r.seed_resize_from_w.is_some_and(|w| w > 0) || r.seed_resize_from_h.is_some_and(|h| h > 0), "seed resizing is not supported"),
        ("restore_faces", on(r.restore_faces), "face restoration is not supported"),
        ("tiling", on(r.tiling), "tiling is not supported"),
        ("enable_hr", on(r.enable_hr), "hires fix is not supported"),
        ("script_name", r.script_name.as_deref().is_some_and(|s| !s.is_empty()), "scripts are not supported"),
        ("alwayson_scripts", !r.alwayson_scripts.is_empty(), "scripts are not supported"),
        // Only with a mask: without one the web UI ignores it (and its clients send `true` by default).
        ("inpaint_full_res", img2img && r.mask.as_deref().is_some_and(|m| !m.is_empty()) && on(r.inpaint_full_res), "\"only masked\" inpainting is not supported; the whole picture is inpainted"),
        ("initial_noise_multiplier", r.initial_noise_multiplier.is_some_and(|m| m != 1.0), "must be 1"),
    ];
    for (name, bad, why) in checks {
        if bad {
            return Err(ApiError::field(name, why));
        }
    }
    if img2img && r.inpainting_fill.is_some_and(|f| f != 1) && r.mask.is_some() {
        return Err(ApiError::field("inpainting_fill", "only 1 (\"original\": start from the init image) is supported"));
    }
    Ok(())
}

/// The model a request asks for: `override_settings.sd_model_checkpoint` (a name, or the web
/// UI's title "name [hash]"), else the current one.
fn requested_model(state: &Shared, r: &WebUiRequest) -> Result<String, ApiError> {
    match r.override_settings.get("sd_model_checkpoint") {
        Some(Value::String(title)) => model_from_title(title),
        Some(_) => Err(ApiError::field("override_settings.sd_model_checkpoint", "expected a model name")),
        None => Ok(state.current_model.lock().expect("lock").clone()),
    }
}

/// "name", "name.safetensors" or "name.safetensors [0123456789]" → "name".
fn model_from_title(title: &str) -> Result<String, ApiError> {
    let name = title.split(" [").next().unwrap_or(title).trim();
    let name = name.strip_suffix(".safetensors").unwrap_or(name);
    if stipple_pipeline::is_model_name(name) {
        Ok(name.to_string())
    } else {
        Err(ApiError::field("sd_model_checkpoint", format!("\"{title}\" is not a model name")))
    }
}

/// The library request of a web-UI request (seed −1 drawn at random here, so it can be
/// reported); `width`/`height` are checked against the model by the caller.
fn to_request(r: &WebUiRequest, img2img: bool) -> Result<GenerateRequest, ApiError> {
    let (sampler, combined_schedule) = match r.sampler_name.as_deref().or(r.sampler_index.as_deref()) {
        None | Some("") => (None, None),
        Some(name) => {
            let (k, s) = parse_webui_sampler(name).ok_or_else(|| {
                let names: Vec<&str> = SamplerKind::ALL.iter().map(|k| k.display_name()).collect();
                ApiError::field("sampler_name", format!("unknown sampler \"{name}\"; available: {}", names.join(", ")))
            })?;
            (Some(k.name().to_string()), s)
        }
    };
    let schedule = match r.scheduler.as_deref() {
        Some(s) => parse_webui_schedule(s).map_err(|_| {
            let names: Vec<&str> = SigmaSchedule::ALL.iter().map(|s| s.name()).collect();
            ApiError::field("scheduler", format!("unknown schedule \"{s}\"; available: automatic, {}", names.join(", ")))
        })?,
        None => None,
    }
    .or(combined_schedule);
    let seed = match r.seed {
        None | Some(-1) => rand::rng().random_range(0..u32::MAX as u64),
        Some(s) if s >= 0 => s as u64,
        Some(s) => return Err(ApiError::field("seed", format!("must be −1 (random) or ≥ 0, got {s}"))),
    };
    let rng = match r.override_settings.get("randn_source") {
        None => None,
        Some(v) => Some(v.as_str().and_then(RngSource::from_webui).ok_or_else(|| {
            ApiError::field("override_settings.randn_source", format!("expected \"GPU\", \"NV\" or \"CPU\", got {v}"))
        })?),
    };
    let eta_noise_seed_delta = match r.override_settings.get("eta_noise_seed_delta") {
        None => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| ApiError::field("override_settings.eta_noise_seed_delta", format!("expected a whole number ≥ 0, got {v}")))?),
    };
    let batch = r.batch_size.unwrap_or(1).max(1);
    let iters = r.n_iter.unwrap_or(1).max(1);
    let (init_image, mask) = if img2img {
        let first = r.init_images.first().ok_or_else(|| ApiError::field("init_images", "img2img needs one init image"))?;
        let init = decode_image("init_images", first)?;
        let mask = match &r.mask {
            Some(m) if !m.is_empty() => {
                let input = decode_image("mask", m)?;
                Some(if r.inpainting_mask_invert.unwrap_or(0) == 1 { invert(&input)? } else { input })
            }
            _ => None,
        };
        (Some(init), mask)
    } else {
        (None, None)
    };
    let prompt = r.prompt.trim();
    Ok(GenerateRequest {
        sampler,
        schedule: schedule.map(|s| s.name().to_string()),
        steps: r.steps,
        seed: Some(seed),
        rng: rng.map(|s| s.name().to_string()),
        eta_noise_seed_delta,
        count: Some(batch * iters),
        batch_size: Some(batch),
        options: SamplerOptions { eta: r.eta, s_noise: r.s_noise, s_churn: r.s_churn, s_tmin: r.s_tmin, s_tmax: r.s_tmax, ..SamplerOptions::default() },
        prompts: if prompt.is_empty() { vec![] } else { vec![prompt.to_string()] },
        negative_prompt: Some(r.negative_prompt.trim()).filter(|n| !n.is_empty()).map(str::to_string),
        guidance_scale: r.cfg_scale,
        strength: if img2img { r.denoising_strength } else { None },
        // The web UI's clients send a blur with plain img2img too, where it does nothing.
        mask_blur: r.mask_blur.filter(|_| mask.is_some()),
        init_image,
        mask,
        width: r.width,
        height: r.height,
        ..GenerateRequest::default()
    })
}

/// The web UI's `inpainting_mask_invert = 1`: the mask with black and white swapped.
fn invert(input: &stipple_pipeline::ImageInput) -> Result<stipple_pipeline::ImageInput, ApiError> {
    let mut img = input.decode("mask").map_err(|e| ApiError::field("mask", e.to_string()))?.to_luma8();
    image::imageops::invert(&mut img);
    let png = stipple_pipeline::encode_png_with_text(&image::DynamicImage::ImageLuma8(img), &[]).map_err(ApiError::internal)?;
    Ok(stipple_pipeline::ImageInput::from_bytes(png))
}

async fn txt2img(State(state): State<Shared>, ApiJson(body): ApiJson<Value>) -> Result<Response, ApiError> {
    run(state, body, false).await
}

async fn img2img(State(state): State<Shared>, ApiJson(body): ApiJson<Value>) -> Result<Response, ApiError> {
    run(state, body, true).await
}

async fn run(state: Shared, body: Value, img2img: bool) -> Result<Response, ApiError> {
    if !body.is_object() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "expected a JSON object of generation settings"));
    }
    let r: WebUiRequest = serde_json::from_value(body.clone()).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    refuse_unsupported(&r, img2img)?;
    let model = requested_model(&state, &r)?;
    let request = to_request(&r, img2img)?;
    check_limits(&state, &request, field)?;
    check_size(&state, &model, &r).await?;
    let seed = request.seed.unwrap_or(0);
    let images = generate_and_wait(&state, model.clone(), request, field, true).await?;
    let mut parameters = body;
    if img2img && !r.include_init_images {
        parameters["init_images"] = Value::Null;
        parameters["mask"] = Value::Null;
    }
    Ok(Json(webui_response(images.as_ref(), parameters, &r, seed)).into_response())
}

/// The web UI generates at any size, as does a Stable Diffusion checkpoint (a multiple of 8);
/// a Stipple model at its own: other sizes are refused (resizing would change the result).
async fn check_size(state: &Shared, model: &str, r: &WebUiRequest) -> Result<(), ApiError> {
    let store = state.engine.store.clone();
    let name = model.to_string();
    let loaded = tokio::task::spawn_blocking(move || store.load(&name)).await.map_err(ApiError::internal)?;
    let stored = loaded.map_err(|e| match e.bad_input() {
        Some((s, expected)) => ApiError::field(field(s), expected),
        None => ApiError::internal(stipple_pipeline::chain(&e)),
    })?;
    stored.model.size_for(r.width, r.height).map(|_| ()).map_err(|e| match e.bad_input() {
        Some((s, expected)) => ApiError::field(s, format!("the model {model}: {expected}")),
        None => ApiError::internal(stipple_pipeline::chain(&e)),
    })
}

/// `{images, parameters, info}` as the web UI shapes them; no images after an interrupt.
fn webui_response(images: Option<&GeneratedImages>, parameters: Value, r: &WebUiRequest, seed: u64) -> Value {
    let (pngs, infotexts, seeds, hash, model): (Vec<String>, Vec<String>, Vec<u64>, String, String) = match images {
        Some(g) => (
            g.pngs.iter().map(|p| b64(p)).collect(),
            g.recipes.iter().map(|r| r.parameters()).collect(),
            g.seeds.clone(),
            g.recipes.first().map(|r| r.model.sha256[..10.min(r.model.sha256.len())].to_string()).unwrap_or_default(),
            g.model.clone(),
        ),
        None => (vec![], vec![], vec![], String::new(), String::new()),
    };
    let first = images.and_then(|g| g.recipes.first());
    let info = json!({
        "prompt": r.prompt,
        "all_prompts": seeds.iter().map(|_| r.prompt.clone()).collect::<Vec<_>>(),
        "negative_prompt": r.negative_prompt,
        "all_negative_prompts": seeds.iter().map(|_| r.negative_prompt.clone()).collect::<Vec<_>>(),
        "seed": seed,
        "all_seeds": seeds,
        "subseed": r.subseed.unwrap_or(-1),
        "all_subseeds": seeds.iter().map(|_| r.subseed.unwrap_or(-1)).collect::<Vec<_>>(),
        "subseed_strength": 0,
        "width": first.map_or(0, |r| r.width),
        "height": first.map_or(0, |r| r.height),
        "sampler_name": first.map(|r| r.sampler.display_name()),
        "cfg_scale": first.map(|r| r.conditioning.guidance_scale),
        "steps": first.map(|r| r.steps),
        "batch_size": r.batch_size.unwrap_or(1),
        "restore_faces": false,
        "sd_model_name": model,
        "sd_model_hash": hash,
        "denoising_strength": first.map(|r| r.conditioning.strength),
        "extra_generation_params": {},
        "index_of_first_image": 0,
        "infotexts": infotexts,
        "styles": [],
        "job_timestamp": chrono_like_now(),
        "clip_skip": 1,
        "is_using_inpainting_conditioning": false,
        "version": stipple_pipeline::software(),
    });
    json!({ "images": pngs, "parameters": parameters, "info": info.to_string() })
}

/// The web UI's job timestamp format, `YYYYMMDDhhmmss` (UTC).
fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[derive(Deserialize)]
struct ProgressQuery {
    #[serde(default)]
    skip_current_image: bool,
}

/// `GET /sdapi/v1/progress`: the web-UI job's progress, ETA and x̂₀ preview.
async fn progress(State(state): State<Shared>, Query(q): Query<ProgressQuery>) -> Json<Value> {
    let id = *state.webui_job.lock().expect("lock");
    let status = id.and_then(|id| state.queue.status(id));
    let interrupted = matches!(
        status.as_ref().map(|s| &s.state),
        Some(crate::queue::JobState::Finished { outcome: crate::queue::Outcome::Cancelled })
    );
    let running = match status.as_ref().map(|s| &s.state) {
        Some(crate::queue::JobState::Running { progress }) => Some(sampling_progress(progress).unwrap_or((0, 1, 0.0))),
        _ => None,
    };
    let waiting = state.queue.snapshot().waiting.len();
    let (step, steps, eta) = running.unwrap_or((0, 0, 0.0));
    let preview = if running.is_some() && !q.skip_current_image {
        state.engine.preview.lock().expect("lock").as_ref().and_then(|p| p.png_base64.clone())
    } else {
        None
    };
    let fraction = if steps > 0 { step as f64 / steps as f64 } else { 0.0 };
    Json(json!({
        "progress": fraction,
        "eta_relative": eta,
        "state": {
            "skipped": false,
            "interrupted": interrupted,
            "job": id.map(|i| format!("job {i}")).unwrap_or_default(),
            "job_count": usize::from(running.is_some()) + waiting,
            "job_timestamp": "0",
            "job_no": 0,
            "sampling_step": step,
            "sampling_steps": steps,
        },
        "current_image": preview,
        "textinfo": null,
    }))
}

/// `POST /sdapi/v1/interrupt` (and `skip`, which Stipple treats the same: the running
/// web-UI job stops at its next step and answers without images).
async fn interrupt(State(state): State<Shared>) -> Json<Value> {
    if let Some(id) = *state.webui_job.lock().expect("lock") {
        state.queue.cancel(id);
    }
    Json(json!({}))
}

async fn samplers() -> Json<Value> {
    let list: Vec<Value> = SamplerKind::ALL
        .iter()
        .map(|k| json!({ "name": k.display_name(), "aliases": [webui_alias(*k), k.name()], "options": {} }))
        .collect();
    Json(Value::Array(list))
}

async fn schedulers() -> Json<Value> {
    let mut list = vec![json!({ "name": "automatic", "label": "Automatic", "aliases": null, "default_rho": -1, "need_inner_model": false })];
    for s in SigmaSchedule::ALL {
        let rho = if s == SigmaSchedule::Karras { SigmaSchedule::KARRAS_RHO } else { -1.0 };
        list.push(json!({ "name": s.name(), "label": s.display_name(), "aliases": null, "default_rho": rho, "need_inner_model": false }));
    }
    Json(Value::Array(list))
}

/// `GET /sdapi/v1/sd-models`: title "name.safetensors [hash10]" (a diffusers folder: "name
/// [hash10]", hashed by its U-Net weights), hash, sha256, filename, and the architecture of a
/// Stable Diffusion checkpoint (null for a Stipple model).
/// The LoRAs prompts can name (`<lora:NAME:M>`), as the web UI's Lora extension lists them.
async fn loras(State(state): State<Shared>) -> Result<Json<Value>, ApiError> {
    let store = state.engine.store.clone();
    let list = tokio::task::spawn_blocking(move || store.list_loras()).await.map_err(ApiError::internal)?.map_err(|e| ApiError::internal(stipple_pipeline::chain(&e)))?;
    Ok(Json(list.into_iter().map(|(name, path)| json!({ "name": name, "alias": name, "path": path, "metadata": {} })).collect()))
}

async fn sd_models(State(state): State<Shared>) -> Result<Json<Value>, ApiError> {
    let store = state.engine.store.clone();
    let list = tokio::task::spawn_blocking(move || -> Result<Vec<Value>, stipple_pipeline::PipelineError> {
        let mut out = vec![];
        for e in store.list()? {
            let path = store.path_of(&e.name)?;
            let sha = store.sha256(&path)?;
            // A diffusers folder is named by its folder, a file by its file name.
            let filename = if path.is_dir() { e.name.clone() } else { format!("{}.safetensors", e.name) };
            out.push(json!({
                "title": format!("{filename} [{}]", &sha[..10]),
                "model_name": e.name,
                "hash": &sha[..10],
                "sha256": sha,
                "filename": filename,
                "config": null,
                "architecture": e.architecture,
            }));
        }
        Ok(out)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::internal(stipple_pipeline::chain(&e)))?;
    Ok(Json(Value::Array(list)))
}

async fn get_options(State(state): State<Shared>) -> Json<Value> {
    let current = state.current_model.lock().expect("lock").clone();
    Json(json!({ "sd_model_checkpoint": current, "samples_format": "png", "CLIP_stop_at_last_layers": 1, "eta_noise_seed_delta": 0, "randn_source": RngSource::default().webui_name() }))
}

/// `POST /sdapi/v1/options`: `sd_model_checkpoint` switches the model (it must exist);
/// other settings are accepted and ignored, as the web UI accepts settings it does not use.
async fn set_options(State(state): State<Shared>, ApiJson(body): ApiJson<Map<String, Value>>) -> Result<Json<Value>, ApiError> {
    if let Some(v) = body.get("sd_model_checkpoint") {
        let title = v.as_str().ok_or_else(|| ApiError::field("sd_model_checkpoint", "expected a model name"))?;
        let name = model_from_title(title)?;
        let store = state.engine.store.clone();
        let check = name.clone();
        tokio::task::spawn_blocking(move || store.load(&check)).await.map_err(ApiError::internal)?.map_err(|e| match e.bad_input() {
            Some((_, expected)) => ApiError::field("sd_model_checkpoint", expected),
            None => ApiError::internal(stipple_pipeline::chain(&e)),
        })?;
        *state.current_model.lock().expect("lock") = name;
    }
    Ok(Json(Value::Null))
}

#[derive(Deserialize)]
struct PngInfoBody {
    image: String,
}

/// `POST /sdapi/v1/png-info`: the parameters text and the other text chunks of a PNG.
async fn png_info(ApiJson(body): ApiJson<PngInfoBody>) -> Result<Json<Value>, ApiError> {
    let input = decode_image("image", &body.image)?;
    let texts = read_png_text(input.bytes(), "image").map_err(|e| ApiError::field("image", e))?;
    let info = texts.iter().find(|(k, _)| k == PARAMETERS_KEY).map(|(_, v)| v.clone()).unwrap_or_default();
    let items: Map<String, Value> = texts.into_iter().filter(|(k, _)| k != PARAMETERS_KEY).map(|(k, v)| (k, Value::String(v))).collect();
    Ok(Json(json!({ "info": info, "items": items, "parameters": {} })))
}
