//! What the in-process router tests share: a server state on the shipped prompt model in a
//! temporary folder, and one-shot requests with their answers.

#![allow(dead_code)] // each test file uses a subset

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use candle_core::Device;
use http_body_util::BodyExt;
use serde_json::Value;
use stipple_pipeline::ModelStore;
use stipple_server::{build_state, Limits, ServerConfig, Shared};
use tower::ServiceExt;

static SHIPPED: &[u8] = include_bytes!("../../../../models/emoji-prompts.safetensors");

/// A server state in `dir` (models, runs and gallery below it) with the shipped model built in,
/// an optional API key, and training data under `data_root` when given.
pub fn state(dir: &Path, key: Option<&str>, data_root: Option<PathBuf>, limits: Limits) -> Shared {
    let store = ModelStore::new(dir.join("models"), dir.join("runs"), Device::Cpu).with_builtin("emoji-prompts", SHIPPED);
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        api_key: key.map(str::to_string),
        data_dir: dir.join("gallery"),
        runs_dir: dir.join("runs"),
        data_root,
        limits,
    };
    build_state(config, store).unwrap()
}

/// One request through the router: status, headers and body bytes.
pub async fn call(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes().to_vec())
}

pub fn post(uri: &str, body: Value) -> Request<Body> {
    Request::post(uri).header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())).unwrap()
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

pub fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}
