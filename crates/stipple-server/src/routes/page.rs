//! The studio page: one HTML file, its style sheet and its JavaScript modules, compiled into
//! the binary and served at `/` and `/static/…`. No build step: the files in `page/` are the
//! files the browser gets.
//!
//! The page is public (it holds no data; every request it makes goes to `/api`, which the
//! key guard covers), so these routes are merged after the guard: a server started with
//! `--api-key` still shows the page, which then asks for the key.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The embedded files: name under `/static/`, media type, contents.
const FILES: &[(&str, &str, &str)] = &[
    ("style.css", "text/css; charset=utf-8", include_str!("../../page/style.css")),
    ("app.js", JS, include_str!("../../page/app.js")),
    ("api.js", JS, include_str!("../../page/api.js")),
    ("form.js", JS, include_str!("../../page/form.js")),
    ("create.js", JS, include_str!("../../page/create.js")),
    ("attention.js", JS, include_str!("../../page/attention.js")),
    ("mask.js", JS, include_str!("../../page/mask.js")),
    ("gallery.js", JS, include_str!("../../page/gallery.js")),
    ("train.js", JS, include_str!("../../page/train.js")),
    ("chart.js", JS, include_str!("../../page/chart.js")),
    ("names.js", JS, include_str!("../../page/names.js")),
];

const JS: &str = "text/javascript; charset=utf-8";

const INDEX: &str = include_str!("../../page/index.html");

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(index)).route("/static/{file}", get(file))
}

async fn index() -> Response {
    page_response("text/html; charset=utf-8", INDEX)
}

async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, media_type, body)) => page_response(media_type, body),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// A page file, revalidated on each load (`no-cache`), so a rebuilt server is never shown
/// with an old script; no sniffing, no framing by other sites.
fn page_response(media_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, media_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        body,
    )
        .into_response()
}
