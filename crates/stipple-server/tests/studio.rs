//! The studio's views of a generation and its data uploads, driven in-process on the shipped
//! prompt model: x_t previews in the events, attention maps kept per image, the recorded
//! trajectory as JSON frames, GIF, APNG and grid; zip uploads into the data root, and the
//! hostile archives refused with a 4xx that names the field.

use std::io::{Cursor, Write};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};
use stipple_server::{app, Limits};

mod support;
use support::{call, get, json_of, post};

fn studio(dir: &std::path::Path, limits: Limits) -> Router {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    app(support::state(dir, None, Some(dir.join("data")), limits))
}

/// The `data:` payloads of the events named `name` in a whole event stream.
fn events_named(stream: &str, name: &str) -> Vec<Value> {
    stream
        .split("\n\n")
        .filter(|block| block.lines().any(|l| l == format!("event: {name}")))
        .map(|block| json_of(block.lines().find_map(|l| l.strip_prefix("data: ")).unwrap().as_bytes()))
        .collect()
}

/// Submits `body` and reads its events to the end.
async fn run_job(app: &Router, body: Value) -> (u64, String) {
    let (status, _, bytes) = call(app, post("/api/jobs", body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&bytes));
    let id = json_of(&bytes)["id"].as_u64().unwrap();
    let (_, _, events) = call(app, get(&format!("/api/jobs/{id}/events"))).await;
    (id, String::from_utf8(events).unwrap())
}

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

#[tokio::test]
async fn a_generation_keeps_attention_maps_x_t_previews_and_its_trajectory() {
    let dir = tempfile::tempdir().unwrap();
    let app = studio(dir.path(), Limits::default());
    let body = json!({"kind": "generate", "prompt": "red apple", "steps": 4, "seed": 3, "count": 2, "attention": true, "trajectory": true});
    let (job, events) = run_job(&app, body).await;
    let done = events_named(&events, "done");
    assert_eq!(done.len(), 1, "{events}");
    assert_eq!(done[0]["attention"], json!(true));
    // Every step's event carries both previews, and they differ (noise vs prediction).
    let progress = events_named(&events, "progress");
    assert_eq!(progress.len(), 4);
    for p in &progress {
        let (x0, xt) = (b64(p["preview"].as_str().unwrap()), b64(p["preview_x"].as_str().unwrap()));
        assert!(xt.starts_with(b"\x89PNG"));
        if p["step"] != json!(4) {
            assert_ne!(x0, xt, "x_t is not x̂₀ before the last step");
        }
    }
    // Attention maps of each image: the prompt's tokens, maps of the image's size.
    for id in done[0]["ids"].as_array().unwrap() {
        let (status, _, bytes) = call(&app, get(&format!("/api/images/{id}/attention"))).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
        let v = json_of(&bytes);
        // The shipped tokenizer's pieces of the prompt ("red", then "apple" in pieces).
        let tokens: Vec<&str> = v["tokens"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        assert_eq!((tokens[0], tokens.concat()), ("red", "redapple".to_string()), "{tokens:?}");
        let (w, h) = (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap());
        assert_eq!((w, h), (16, 16));
        let maps = v["maps"].as_array().unwrap();
        assert_eq!(maps.len(), tokens.len());
        for m in maps {
            let m = m.as_array().unwrap();
            assert_eq!(m.len() as u64, w * h);
            assert!(m.iter().all(|x| x.as_f64().unwrap() >= 0.0));
        }
    }
    // The trajectory: four frames as JSON, and the three file forms.
    let (status, _, bytes) = call(&app, get(&format!("/api/jobs/{job}/trajectory"))).await;
    assert_eq!(status, StatusCode::OK);
    let frames = json_of(&bytes)["frames"].as_array().unwrap().clone();
    assert_eq!(frames.iter().map(|f| f["step"].as_u64().unwrap()).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    for f in &frames {
        let (x, x0) = (b64(f["x"].as_str().unwrap()), b64(f["x0"].as_str().unwrap()));
        assert!(x.starts_with(b"\x89PNG") && x0.starts_with(b"\x89PNG"));
        assert_ne!(x, x0, "x_t entering a step is not the x̂₀ made from it");
    }
    assert_eq!(frames[3]["x0"], progress[3]["preview"], "the last x̂₀ is the last preview");
    assert_eq!(frames[1]["x"], progress[0]["preview_x"], "x_t entering step 1 is where step 0 went");
    for (file, mime, magic) in [("gif", "image/gif", &b"GIF89a"[..]), ("apng", "image/apng", b"\x89PNG"), ("png", "image/png", b"\x89PNG")] {
        let (status, headers, bytes) = call(&app, get(&format!("/api/jobs/{job}/trajectory.{file}"))).await;
        assert_eq!((status, headers[header::CONTENT_TYPE].to_str().unwrap()), (StatusCode::OK, mime), "{file}");
        assert!(bytes.starts_with(magic), "{file}");
    }
    let apng = call(&app, get(&format!("/api/jobs/{job}/trajectory.apng"))).await.2;
    assert!(apng.windows(4).any(|w| w == b"acTL"), "the APNG is animated");
    assert_eq!(call(&app, get(&format!("/api/jobs/{job}/trajectory.bmp"))).await.0, StatusCode::NOT_FOUND);
    // Deleting an image forgets its maps.
    let first = done[0]["ids"][0].as_u64().unwrap();
    assert_eq!(call(&app, Request::delete(format!("/api/images/{first}")).body(Body::empty()).unwrap()).await.0, StatusCode::NO_CONTENT);
    assert_eq!(call(&app, get(&format!("/api/images/{first}/attention"))).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn what_a_job_did_not_keep_is_a_404_that_says_how_to_ask() {
    let dir = tempfile::tempdir().unwrap();
    let app = studio(dir.path(), Limits::default());
    let (job, events) = run_job(&app, json!({"kind": "generate", "prompt": "cat face", "steps": 2})).await;
    let id = events_named(&events, "done")[0]["ids"][0].clone();
    let (status, _, bytes) = call(&app, get(&format!("/api/images/{id}/attention"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(json_of(&bytes)["detail"].as_str().unwrap().contains("\"attention\": true"));
    let (status, _, bytes) = call(&app, get(&format!("/api/jobs/{job}/trajectory.gif"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(json_of(&bytes)["detail"].as_str().unwrap().contains("\"trajectory\": true"));
    assert_eq!(call(&app, get("/api/jobs/999/trajectory")).await.0, StatusCode::NOT_FOUND);
}

fn png() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(8, 8, image::Rgb([10, 200, 10]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in files {
        w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn upload(name: &str, bytes: Vec<u8>) -> Request<Body> {
    Request::post(format!("/api/data?name={name}")).header(header::CONTENT_TYPE, "application/zip").body(Body::from(bytes)).unwrap()
}

#[tokio::test]
async fn a_zip_upload_becomes_a_data_folder_that_trains() {
    let dir = tempfile::tempdir().unwrap();
    let app = studio(dir.path(), Limits::default());
    let png = png();
    let (status, _, bytes) = call(&app, upload("greens", zip_of(&[("a.png", &png), ("b/c.png", &png), ("notes.txt", b"x")]))).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(json_of(&bytes), json!({"data": "greens", "images": 2, "skipped": ["notes.txt"]}));
    assert!(dir.path().join("data/greens/b/c.png").is_file() && !dir.path().join("data/greens/notes.txt").exists());
    // The same name again is a conflict on the name.
    let (status, _, bytes) = call(&app, upload("greens", zip_of(&[("a.png", &png)]))).await;
    assert_eq!((status, json_of(&bytes)["field"].as_str()), (StatusCode::CONFLICT, Some("name")));
    // A short training run on it.
    let settings = json!({"image_size": 8, "channels": [8, 16], "batch_size": 2, "sample_every": 0, "checkpoint_every": 2});
    let (_, events) = run_job(&app, json!({"kind": "train", "name": "greens-run", "data": "greens", "steps": 2, "settings": settings})).await;
    let done = events_named(&events, "done");
    assert_eq!(done.len(), 1, "{events}");
    assert_eq!(done[0]["model"], json!("greens-run"));
}

#[tokio::test]
async fn hostile_or_broken_zips_are_refused_with_a_4xx_on_the_zip() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { max_body_bytes: 1 << 20, ..Limits::default() };
    let app = studio(dir.path(), limits);
    let png = png();
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        ("escape", zip_of(&[("a.png", &png), ("../../evil.png", &png)]), StatusCode::UNPROCESSABLE_ENTITY, "outside the data folder"),
        ("absolute", zip_of(&[("/tmp/evil.png", &png)]), StatusCode::UNPROCESSABLE_ENTITY, "outside the data folder"),
        ("garbage", b"PK\x03\x04 garbage".to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "not a readable zip"),
        ("empty", zip_of(&[("readme.md", b"# hi")]), StatusCode::UNPROCESSABLE_ENTITY, "no image"),
        ("bomb", {
            // 40 MiB of zeros, deflated to well under the 1 MiB body limit: over 32 MiB a file.
            let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
            let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            w.start_file("big.png", opts).unwrap();
            w.write_all(&png).unwrap();
            w.write_all(&vec![0u8; 40 << 20]).unwrap();
            w.finish().unwrap().into_inner()
        }, StatusCode::PAYLOAD_TOO_LARGE, "more than"),
    ];
    for (name, bytes, want, says) in cases {
        assert!(bytes.len() < 1 << 20, "{name} fits the body limit");
        let (status, _, body) = call(&app, upload(name, bytes)).await;
        let v = json_of(&body);
        assert_eq!(status, want, "{name}: {v}");
        assert_eq!(v["field"], json!("zip"), "{name}");
        assert!(v["detail"].as_str().unwrap().contains(says), "{name}: {v}");
        assert!(!dir.path().join("data").join(name).exists(), "{name} left a folder");
    }
    assert!(!dir.path().join("evil.png").exists() && !dir.path().join("data/evil.png").exists());
    assert_eq!(std::fs::read_dir(dir.path().join("data")).unwrap().count(), 0, "nothing left in the data root");
    // Bad names, and a body over the server's limit.
    let (status, _, body) = call(&app, upload("..", zip_of(&[("a.png", &png)]))).await;
    assert_eq!((status, json_of(&body)["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("name")));
    let (status, _, _) = call(&app, upload("big", vec![0u8; 2 << 20])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}
