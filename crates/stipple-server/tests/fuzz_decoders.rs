//! Property tests over the request decoders, against the whole router in-process: random
//! and mutated JSON bodies for `/sdapi/v1/txt2img`, `/sdapi/v1/img2img`,
//! `/v1/images/generations` and `/api/jobs`; random base64 text and truncated or garbled
//! PNG bytes as images; random multipart bodies. Whatever comes in, the server answers with
//! no 5xx and no panic, and every 4xx carries a JSON body with a message (`detail`, or
//! OpenAI's `error.message` on its routes).
//!
//! The server runs with tiny limits (2 steps, 2 images, 2 waiting jobs, 2 s per job) so that
//! a body that happens to be valid generates in milliseconds; jobs accepted on `/api/jobs`
//! are cancelled at once.

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, Response};
use axum::Router;
use base64::Engine as _;
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use stipple_pipeline::ModelStore;
use stipple_server::{app, build_state, Limits, ServerConfig};
use tower::ServiceExt;

/// The shipped 16×16 prompt model.
static SHIPPED: &[u8] = include_bytes!("../../../models/emoji-prompts.safetensors");

/// The router over a fresh server with tiny limits, and the runtime that drives it.
fn server() -> &'static (tokio::runtime::Runtime, Router, tempfile::TempDir) {
    static SERVER: OnceLock<(tokio::runtime::Runtime, Router, tempfile::TempDir)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            api_key: None,
            data_dir: dir.path().join("data"),
            runs_dir: dir.path().join("runs"),
            data_root: None,
            limits: Limits {
                max_steps: 2,
                max_images: 2,
                queue_capacity: 2,
                job_time_limit: Duration::from_secs(2),
                ..Limits::default()
            },
        };
        let store = ModelStore::new(dir.path().join("models"), dir.path().join("runs"), candle_core::Device::Cpu)
            .with_builtin("emoji-prompts", SHIPPED);
        let state = build_state(config, store).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        (rt, app(state), dir)
    })
}

/// Sends one request; returns its status, content type and body.
fn send(method: &str, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Option<String>, Vec<u8>) {
    let (rt, router, _) = server();
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "127.0.0.1")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap();
    rt.block_on(async {
        let resp: Response<Body> = router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let ty = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, ty, body)
    })
}

/// The property: no 5xx, and a JSON error body with a message on every 4xx. Jobs accepted
/// on `/api/jobs` are cancelled, so the queue stays free.
fn check(path: &str, content_type: &str, body: Vec<u8>) -> Result<(), TestCaseError> {
    let shown = String::from_utf8_lossy(&body).chars().take(300).collect::<String>();
    let (status, ty, answer) = send("POST", path, content_type, body);
    let text = String::from_utf8_lossy(&answer).chars().take(300).collect::<String>();
    prop_assert!(status < 500, "{path} answered {status} to {shown}: {text}");
    if status >= 400 {
        prop_assert!(ty.as_deref().is_some_and(|t| t.starts_with("application/json")), "{path}: {status} with {ty:?}: {text}");
        let v: Value = serde_json::from_slice(&answer).map_err(|e| TestCaseError::fail(format!("{path}: {status}: {e}: {text}")))?;
        // OpenAI's routes answer in OpenAI's shape, the others with `detail`.
        let message = if path.starts_with("/v1/") { &v["error"]["message"] } else { &v["detail"] };
        prop_assert!(message.is_string(), "{path}: {status} without a message: {text}");
    }
    if path == "/api/jobs" && status == 202 {
        let v: Value = serde_json::from_slice(&answer).unwrap();
        let id = v["id"].as_u64().unwrap();
        let (status, _, _) = send("POST", &format!("/api/jobs/{id}/cancel"), "application/json", Vec::new());
        prop_assert_eq!(status, 200);
    }
    Ok(())
}

/// A 16×16 PNG.
fn png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([x as u8 * 16, y as u8 * 16, 128]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Text for an image field: a PNG cut short or with bytes overwritten (base64, with or
/// without a data-URL prefix), or random text that may not be base64 at all.
fn image_text() -> impl Strategy<Value = String> {
    let garbled = (any::<usize>(), prop::collection::vec((any::<usize>(), any::<u8>()), 0..8), any::<bool>()).prop_map(|(cut, flips, prefix)| {
        let mut bytes = png();
        bytes.truncate(1 + cut % bytes.len());
        let n = bytes.len();
        for (at, b) in flips {
            bytes[at % n] = b;
        }
        if prefix { format!("data:image/png;base64,{}", b64(&bytes)) } else { b64(&bytes) }
    });
    prop_oneof![garbled, "[A-Za-z0-9+/=]{0,64}", ".{0,64}", Just(b64(&png()))]
}

/// Any JSON value, nested a little, with numbers at the edges of the types.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![Just(-1i64), Just(0), Just(1), Just(2), Just(16), Just(17), Just(i64::MAX)].prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,12}", inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A request body built from the route's own field names with random values (images among
/// them), so decoding gets past the first field.
fn body_with(fields: &'static [&'static str], images: &'static [&'static str], base: Value) -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        (prop::sample::select(fields), any_json()).prop_map(|(k, v)| (k.to_string(), v)),
        (prop::sample::select(images), image_text()).prop_map(|(k, v)| (k.to_string(), Value::String(v))),
        (prop::sample::select(images), prop::collection::vec(image_text(), 0..3)).prop_map(|(k, v)| (k.to_string(), json!(v))),
    ];
    prop::collection::vec(field, 0..8).prop_map(move |kv| {
        let mut body: Map<String, Value> = base.as_object().cloned().unwrap_or_default();
        body.extend(kv);
        Value::Object(body)
    })
}

const WEBUI_FIELDS: &[&str] = &[
    "prompt", "negative_prompt", "styles", "seed", "subseed", "subseed_strength", "sampler_name", "sampler_index", "scheduler",
    "batch_size", "n_iter", "steps", "cfg_scale", "width", "height", "restore_faces", "tiling", "eta", "s_churn", "s_tmin",
    "s_tmax", "s_noise", "denoising_strength", "override_settings", "enable_hr", "script_name", "alwayson_scripts",
    "inpainting_mask_invert", "inpainting_fill", "inpaint_full_res", "mask_blur", "initial_noise_multiplier", "include_init_images",
];
const OPENAI_FIELDS: &[&str] = &["prompt", "model", "n", "size", "response_format", "quality", "style", "user"];
const JOB_FIELDS: &[&str] = &[
    "kind", "model", "prompt", "prompts", "negative_prompt", "class", "negative_class", "sampler", "schedule", "steps",
    "final_sigma", "noise", "seed", "count", "batch_size", "guidance_scale", "guidance_rescale", "guidance_interval",
    "strength", "resample", "mask_blur", "eta", "s_noise", "s_churn", "s_tmin", "s_tmax", "order", "r", "preview_every", "name", "data",
    "resume", "settings",
];

/// A body that mostly works, as a start for the mutations: 16×16, 1 step.
fn webui_base() -> Value {
    json!({ "prompt": "red heart", "steps": 1, "width": 16, "height": 16 })
}

/// Mutations of a serialized body: cut short, bytes replaced, or a byte inserted.
fn mutated(body: Value) -> impl Strategy<Value = Vec<u8>> {
    let bytes = serde_json::to_vec(&body).unwrap();
    (any::<usize>(), prop::collection::vec((any::<usize>(), any::<u8>()), 0..4), any::<bool>()).prop_map(move |(cut, edits, insert)| {
        let mut b = bytes.clone();
        for (at, v) in edits {
            let at = at % b.len();
            if insert { b.insert(at, v) } else { b[at] = v }
        }
        b.truncate(1 + cut % b.len());
        b
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn txt2img_decodes_any_body(body in body_with(WEBUI_FIELDS, &["init_images", "mask"], webui_base())) {
        check("/sdapi/v1/txt2img", "application/json", serde_json::to_vec(&body).unwrap())?;
    }

    #[test]
    fn img2img_decodes_any_image(body in body_with(WEBUI_FIELDS, &["init_images", "mask"], json!({"prompt": "red heart", "steps": 1, "width": 16, "height": 16, "inpaint_full_res": false, "inpainting_fill": 1}))) {
        check("/sdapi/v1/img2img", "application/json", serde_json::to_vec(&body).unwrap())?;
    }

    #[test]
    fn png_info_decodes_any_image(image in image_text()) {
        check("/sdapi/v1/png-info", "application/json", serde_json::to_vec(&json!({ "image": image })).unwrap())?;
    }

    #[test]
    fn openai_decodes_any_body(body in body_with(OPENAI_FIELDS, &["image"], json!({"prompt": "red heart", "size": "16x16"}))) {
        check("/v1/images/generations", "application/json", serde_json::to_vec(&body).unwrap())?;
    }

    #[test]
    fn jobs_decode_any_body(body in body_with(JOB_FIELDS, &["init_image", "mask"], json!({"kind": "generate", "prompt": "red heart", "steps": 1}))) {
        check("/api/jobs", "application/json", serde_json::to_vec(&body).unwrap())?;
    }

    #[test]
    fn bodies_cut_or_garbled_are_refused_cleanly(
        route in prop::sample::select(vec!["/sdapi/v1/txt2img", "/sdapi/v1/img2img", "/v1/images/generations", "/api/jobs", "/sdapi/v1/options"]),
        bytes in mutated(json!({"kind": "generate", "prompt": "red heart", "steps": 1, "width": 16, "height": 16, "size": "16x16"})),
    ) {
        check(route, "application/json", bytes)?;
    }

    #[test]
    fn any_json_value_is_refused_or_served(route in prop::sample::select(vec!["/sdapi/v1/txt2img", "/v1/images/generations", "/api/jobs", "/sdapi/v1/options"]), body in any_json()) {
        check(route, "application/json", serde_json::to_vec(&body).unwrap())?;
    }

    #[test]
    fn multipart_jobs_decode_any_form(
        parts in prop::collection::vec((prop::sample::select(vec!["request", "init_image", "mask", "other", ""]), prop_oneof![
            body_with(JOB_FIELDS, &["init_image", "mask"], json!({"kind": "generate", "prompt": "red heart", "steps": 1})).prop_map(|v| serde_json::to_vec(&v).unwrap()),
            image_text().prop_map(String::into_bytes),
            Just(png()),
            prop::collection::vec(any::<u8>(), 0..64),
        ]), 0..4),
        close in any::<bool>(),
        boundary in "[a-zA-Z0-9]{1,20}",
    ) {
        let mut body = Vec::new();
        for (name, content) in &parts {
            body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"x\"\r\n\r\n").as_bytes());
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        if close {
            body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        }
        check("/api/jobs", &format!("multipart/form-data; boundary={boundary}"), body)?;
    }
}

/// A PNG whose header claims 100,000 × 100,000 pixels (the rest cut): refused from its
/// header, before any pixel is decoded.
#[test]
fn a_png_that_claims_to_be_huge_is_refused() {
    let mut bytes = png();
    // IHDR's width and height follow the 8-byte signature, the chunk length and its type.
    bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    let body = json!({ "prompt": "red heart", "steps": 1, "width": 16, "height": 16, "inpaint_full_res": false, "init_images": [b64(&bytes)] });
    let (status, _, answer) = send("POST", "/sdapi/v1/img2img", "application/json", serde_json::to_vec(&body).unwrap());
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&answer));
}

/// CRC-32 of PNG chunks (ISO 3309, as the PNG specification's annex D computes it).
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    c ^ 0xffff_ffff
}
