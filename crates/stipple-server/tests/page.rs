//! The embedded studio page: served at `/` without the key (it holds no data), every file it
//! or its modules load is served with its media type, and nothing else is.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use candle_core::Device;
use http_body_util::BodyExt;
use stipple_pipeline::ModelStore;
use stipple_server::{app, build_state, Limits, ServerConfig};
use tower::ServiceExt;

static SHIPPED: &[u8] = include_bytes!("../../../models/emoji-prompts.safetensors");

fn app_with_key(dir: &std::path::Path) -> Router {
    let store = ModelStore::new(dir.join("models"), dir.join("runs"), Device::Cpu).with_builtin("emoji-prompts", SHIPPED);
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        api_key: Some("0123456789abcdef-key".into()),
        data_dir: dir.join("gallery"),
        runs_dir: dir.join("runs"),
        data_root: None,
        limits: Limits::default(),
    };
    app(build_state(config, store).unwrap())
}

async fn get(app: &Router, uri: &str) -> (StatusCode, String, String) {
    let resp = app.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status();
    let media_type = resp.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, media_type, String::from_utf8(body.to_vec()).unwrap())
}

/// The quoted text after each `marker` in `text`.
fn quoted_after<'a>(text: &'a str, marker: &str) -> Vec<&'a str> {
    text.match_indices(marker).filter_map(|(i, _)| text[i + marker.len()..].split('"').next()).collect()
}

#[tokio::test]
async fn the_page_and_every_file_it_loads_are_served_without_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with_key(dir.path());
    let (status, media_type, html) = get(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(media_type.starts_with("text/html"), "{media_type}");
    assert!(html.contains("Stipple"), "{html}");
    // The API stays behind the key.
    assert_eq!(get(&app, "/api/models").await.0, StatusCode::UNAUTHORIZED);

    // Follow the page's links and every module's imports, as the browser does.
    let mut pending: Vec<String> = quoted_after(&html, "href=\"/static/").into_iter().chain(quoted_after(&html, "src=\"/static/")).map(str::to_string).collect();
    let mut seen = std::collections::BTreeSet::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let (status, media_type, body) = get(&app, &format!("/static/{name}")).await;
        assert_eq!(status, StatusCode::OK, "/static/{name}");
        if name.ends_with(".js") {
            assert!(media_type.starts_with("text/javascript"), "{name}: {media_type}");
            pending.extend(quoted_after(&body, "from \"./").into_iter().map(str::to_string));
        } else {
            assert!(media_type.starts_with("text/css"), "{name}: {media_type}");
        }
    }
    assert!(seen.contains("app.js") && seen.contains("create.js") && seen.contains("style.css"), "{seen:?}");
    assert_eq!(get(&app, "/static/missing.js").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, "/static/..%2Fsrc%2Flib.rs").await.0, StatusCode::NOT_FOUND);
}
