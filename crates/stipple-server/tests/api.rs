//! The router driven in-process (`oneshot`) on the shipped emoji model: the key and origin
//! guard, errors that name the field in each API's terms, the full queue, cancel, and the
//! gallery's endpoints.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::Engine as _;
use serde_json::{json, Value};
use stipple_server::{app, Limits, ServerConfig, Shared};

mod support;
use support::{call, get, json_of, post};

fn state(dir: &std::path::Path, key: Option<&str>, limits: Limits) -> Shared {
    support::state(dir, key, None, limits)
}

#[tokio::test]
async fn a_key_guards_every_route_but_health_and_is_required_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let key = "0123456789abcdef-key";
    let app = app(state(dir.path(), Some(key), Limits::default()));
    assert_eq!(call(&app, get("/health")).await.0, StatusCode::OK);
    for uri in ["/api/models", "/sdapi/v1/options", "/v1/models"] {
        let (status, headers, body) = call(&app, get(uri)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert!(json_of(&body)["detail"].as_str().unwrap().contains("API key"));
        let wrong = Request::get(uri).header(header::AUTHORIZATION, "Bearer 0123456789abcdef-kez").body(Body::empty()).unwrap();
        assert_eq!(call(&app, wrong).await.0, StatusCode::UNAUTHORIZED, "{uri}");
        let right = Request::get(uri).header(header::AUTHORIZATION, format!("Bearer {key}")).body(Body::empty()).unwrap();
        assert_eq!(call(&app, right).await.0, StatusCode::OK, "{uri}");
    }
    let open = ServerConfig {
        addr: "0.0.0.0:7860".parse().unwrap(),
        api_key: None,
        data_dir: dir.path().into(),
        runs_dir: dir.path().into(),
        data_root: None,
        limits: Limits::default(),
    };
    assert!(open.validate().unwrap_err().to_string().contains("needs an API key"));
    assert!(ServerConfig { api_key: Some("short".into()), ..open.clone() }.validate().is_err());
    assert!(ServerConfig { api_key: Some(key.into()), ..open }.validate().is_ok());
}

#[tokio::test]
async fn cross_origin_writes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(state(dir.path(), None, Limits::default()));
    let req = Request::post("/sdapi/v1/interrupt")
        .header(header::HOST, "127.0.0.1:7860")
        .header(header::ORIGIN, "http://evil.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, req).await.0, StatusCode::FORBIDDEN);
    let same = Request::post("/sdapi/v1/interrupt")
        .header(header::HOST, "127.0.0.1:7860")
        .header(header::ORIGIN, "http://127.0.0.1:7860")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, same).await.0, StatusCode::OK);
}

#[tokio::test]
async fn errors_name_the_field_as_each_api_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(state(dir.path(), None, Limits::default()));
    let cases = [
        ("/sdapi/v1/txt2img", json!({"prompt": "red apple", "cfg_scale": 500, "width": 16, "height": 16}), "cfg_scale"),
        ("/sdapi/v1/txt2img", json!({"prompt": "red apple", "width": 512, "height": 512}), "width"),
        ("/sdapi/v1/txt2img", json!({"prompt": "red apple", "enable_hr": true}), "enable_hr"),
        ("/sdapi/v1/txt2img", json!({"prompt": "red apple", "sampler_name": "Restart"}), "sampler_name"),
        ("/sdapi/v1/txt2img", json!({"prompt": "red apple", "steps": 100000}), "steps"),
        ("/sdapi/v1/txt2img", json!({"prompt": "red apple", "override_settings": {"randn_source": "quantum"}}), "override_settings.randn_source"),
        ("/sdapi/v1/img2img", json!({"prompt": "red apple", "init_images": ["%%%"]}), "init_images"),
        ("/sdapi/v1/img2img", json!({"prompt": "red apple"}), "init_images"),
        ("/v1/images/generations", json!({"prompt": "red apple", "n": 1000}), "n"),
        ("/v1/images/generations", json!({"prompt": "red apple", "size": "1024x1024"}), "size"),
        ("/v1/images/generations", json!({"prompt": "red apple", "response_format": "url"}), "response_format"),
        ("/api/jobs", json!({"kind": "generate", "prompt": "red apple", "guidance_scale": 101}), "guidance_scale"),
        ("/api/jobs", json!({"kind": "generate", "model": "../etc", "prompt": "x"}), "model"),
        ("/api/jobs", json!({"kind": "generate", "strength": 0.5}), "strength"),
    ];
    for (uri, body, field) in cases {
        let (status, _, bytes) = call(&app, post(uri, body.clone())).await;
        let v = json_of(&bytes);
        if uri.starts_with("/v1/") {
            // OpenAI's shape: 400 and {"error": {message, type, param}}.
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} {body}: {v}");
            assert_eq!((v["error"]["param"].as_str(), v["error"]["type"].as_str()), (Some(field), Some("invalid_request_error")), "{v}");
            assert!(v["error"]["message"].as_str().unwrap().starts_with(&format!("{field}: ")), "{v}");
        } else {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri} {body}: {v}");
            assert_eq!(v["field"], field, "{uri} {body}: {v}");
            assert!(v["detail"].as_str().unwrap().starts_with(&format!("{field}: ")), "{v}");
        }
    }
    let (status, _, bytes) = call(&app, Request::post("/api/jobs").header(header::CONTENT_TYPE, "application/json").body(Body::from("{\"kind\":")).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&bytes));
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    let (status, _, _) = call(&app, Request::post("/sdapi/v1/txt2img").header(header::CONTENT_TYPE, "application/json").body(Body::from(deep)).unwrap()).await;
    assert!(status.is_client_error(), "{status}");
}

#[tokio::test]
async fn txt2img_answers_as_the_web_ui_and_the_gallery_keeps_the_images() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(state(dir.path(), None, Limits::default()));
    let body = json!({"prompt": "red apple", "negative_prompt": "blue", "steps": 3, "seed": 42, "batch_size": 2, "sampler_name": "DPM++ 2M Karras", "width": 16, "height": 16, "cfg_scale": 5});
    let (status, _, bytes) = call(&app, post("/sdapi/v1/txt2img", body.clone())).await;
    let v = json_of(&bytes);
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["parameters"], body);
    let info: Value = serde_json::from_str(v["info"].as_str().unwrap()).unwrap();
    assert_eq!(info["all_seeds"], json!([42, 43]));
    let images = v["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    let png = base64::engine::general_purpose::STANDARD.decode(images[0].as_str().unwrap()).unwrap();
    let texts = stipple_pipeline::read_png_text(&png, "image").unwrap();
    let parameters = &texts.iter().find(|(k, _)| k == "parameters").unwrap().1;
    assert_eq!(info["infotexts"][0].as_str().unwrap(), parameters, "info holds the PNG's parameters text");
    assert!(parameters.starts_with("red apple\nNegative prompt: blue\nSteps: 3, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5, Seed: 42"), "{parameters}");
    // png-info reads it back.
    let (_, _, bytes) = call(&app, post("/sdapi/v1/png-info", json!({"image": images[0]}))).await;
    assert_eq!(json_of(&bytes)["info"].as_str().unwrap(), parameters);
    // The gallery holds both, exactly.
    let (_, _, bytes) = call(&app, get("/api/images?prompt=APPLE&limit=10")).await;
    let page = json_of(&bytes);
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{page}");
    let newest = records[0]["id"].as_i64().unwrap();
    let (status, headers, file) = call(&app, get(&format!("/api/images/{newest}.png"))).await;
    assert_eq!((status, headers[header::CONTENT_TYPE].to_str().unwrap()), (StatusCode::OK, "image/png"));
    let second = base64::engine::general_purpose::STANDARD.decode(images[1].as_str().unwrap()).unwrap();
    assert_eq!(file, second, "the stored file is the one answered");
    let del = Request::delete(format!("/api/images/{newest}")).body(Body::empty()).unwrap();
    assert_eq!(call(&app, del).await.0, StatusCode::NO_CONTENT);
    assert_eq!(call(&app, get(&format!("/api/images/{newest}.png"))).await.0, StatusCode::NOT_FOUND);
    assert_eq!(call(&app, get("/api/images/..%2Fgallery.sqlite3")).await.0, StatusCode::NOT_FOUND);
    // The web UI's CPU random number source: the same seed, other numbers, said in the text.
    let cpu = json!({"prompt": "red apple", "negative_prompt": "blue", "steps": 3, "seed": 42, "sampler_name": "DPM++ 2M Karras", "width": 16, "height": 16, "cfg_scale": 5, "override_settings": {"randn_source": "CPU"}});
    let (status, _, bytes) = call(&app, post("/sdapi/v1/txt2img", cpu)).await;
    let v = json_of(&bytes);
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_ne!(v["images"][0], images[0], "another source, another picture");
    let info: Value = serde_json::from_str(v["info"].as_str().unwrap()).unwrap();
    assert!(info["infotexts"][0].as_str().unwrap().contains(", RNG: CPU"), "{info}");
    // The web UI's eta noise seed delta changes an ancestral sampler's noise after the start.
    let ancestral = |ensd: u64| json!({"prompt": "red apple", "steps": 3, "seed": 42, "sampler_name": "Euler a", "width": 16, "height": 16, "override_settings": {"eta_noise_seed_delta": ensd}});
    let (_, _, plain) = call(&app, post("/sdapi/v1/txt2img", ancestral(0))).await;
    let (status, _, bytes) = call(&app, post("/sdapi/v1/txt2img", ancestral(31337))).await;
    let v = json_of(&bytes);
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_ne!(v["images"][0], json_of(&plain)["images"][0]);
    let info: Value = serde_json::from_str(v["info"].as_str().unwrap()).unwrap();
    assert!(info["infotexts"][0].as_str().unwrap().contains(", ENSD: 31337"), "{info}");
}

#[tokio::test]
async fn a_full_queue_answers_429_and_jobs_can_be_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { queue_capacity: 1, ..Limits::default() };
    let state = state(dir.path(), None, limits);
    let app = app(state.clone());
    let long = json!({"kind": "generate", "prompt": "rocket", "steps": 150, "count": 64, "batch_size": 1});
    let mut ids = vec![];
    let mut full = None;
    for _ in 0..3 {
        let (status, headers, bytes) = call(&app, post("/api/jobs", long.clone())).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            full = Some(headers[header::RETRY_AFTER].to_str().unwrap().parse::<u64>().unwrap());
        } else {
            assert_eq!(status, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&bytes));
            ids.push(json_of(&bytes)["id"].as_u64().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(full.is_some_and(|s| s >= 1), "one running + one waiting fill a queue of 1");
    for id in &ids {
        let (status, _, bytes) = call(&app, post(&format!("/api/jobs/{id}/cancel"), json!({}))).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    }
    for id in &ids {
        let mut state_name = String::new();
        for _ in 0..100 {
            let (_, _, bytes) = call(&app, get(&format!("/api/jobs/{id}"))).await;
            let v = json_of(&bytes);
            state_name = v["outcome"]["outcome"].as_str().unwrap_or("").to_string();
            if !state_name.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(state_name, "cancelled", "job {id}");
    }
    let (_, _, bytes) = call(&app, get("/api/images")).await;
    assert_eq!(json_of(&bytes)["records"].as_array().unwrap().len(), 0, "cancelled jobs store nothing");
}
