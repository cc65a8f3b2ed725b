//! A load test of `stipple serve` on 127.0.0.1, bounded in count and time: 200 requests
//! from 16 concurrent clients against the shipped 16×16 model with few steps, mixing valid
//! generations (own API, web-UI API, OpenAI API), submissions into a full queue, cancels of
//! queued and running jobs, status queries, and malformed bodies (bad JSON, wrong types,
//! huge numbers, bad base64, truncated PNGs, deep nesting, oversized bodies).
//!
//! It checks that every request gets a well-formed answer (a status its route may give, a
//! JSON body with a `detail` on every error, `Retry-After` on 429), that nothing deadlocks
//! (one overall time limit), that the server's resident memory stays bounded, and that the
//! gallery then holds exactly the images of the generations that finished.

mod serve;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use serve::{call, get, post_json, Reply, Server};

const REQUESTS: usize = 200;
const CLIENTS: usize = 16;
/// The whole run, queue drained, well above what it takes (seconds on two busy cores).
const TIME_LIMIT: Duration = Duration::from_secs(120);
/// The server's default body limit (`Limits::max_body_bytes`).
const BODY_LIMIT: usize = 32 << 20;
/// A generous bound on the server's resident memory.
const MEMORY_LIMIT: u64 = 2 << 30;

/// What the clients saw and what the server accepted.
#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, usize>,
    /// Jobs accepted on `/api/jobs` (every one is followed to its end).
    jobs: Vec<u64>,
    /// Images returned by the synchronous routes (each is in the gallery too).
    sync_images: usize,
    /// Failures of the checks, with the request that caused each.
    problems: Vec<String>,
}

/// A small valid generation for the own API.
fn generate_body(i: usize) -> Value {
    json!({ "kind": "generate", "prompt": "red heart", "steps": 2 + i % 3, "count": 1 + i % 2, "seed": i, "preview_every": 0 })
}

/// A base64 PNG cut short: valid base64, invalid image.
fn truncated_png() -> String {
    use std::io::Cursor;
    let img = image::RgbImage::from_pixel(16, 16, image::Rgb([200, 30, 30]));
    let mut bytes = Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    let bytes = bytes.into_inner();
    base64::engine::general_purpose::STANDARD.encode(&bytes[..bytes.len() / 2])
}

/// The malformed requests: (route, content type, body, statuses it may get).
fn malformed(i: usize) -> (&'static str, &'static str, Vec<u8>, &'static [u16]) {
    let cases: [(&str, &str, Vec<u8>, &[u16]); 16] = [
        ("/api/jobs", "application/json", br#"{"kind": "generate", "prompt": "red"#.to_vec(), &[400]),
        ("/api/jobs", "application/json", br#"{"kind": "generate", "steps": "many"}"#.to_vec(), &[422]),
        ("/api/jobs", "application/json", br#"{"kind": "generate", "steps": 1e300}"#.to_vec(), &[422]),
        ("/api/jobs", "application/json", br#"{"kind": "generate", "count": 18446744073709551616}"#.to_vec(), &[422]),
        ("/api/jobs", "application/json", br#"{"kind": "generate", "steps": 1000000}"#.to_vec(), &[422]),
        ("/api/jobs", "application/json", br#"{"kind": "generate", "init_image": "@@ not base64 @@"}"#.to_vec(), &[422]),
        ("/api/jobs", "application/json", br#"{"kind": "explode"}"#.to_vec(), &[422]),
        ("/api/jobs", "application/json", format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(), &[400, 422]),
        ("/api/jobs", "text/plain", br#"{"kind": "generate"}"#.to_vec(), &[415]),
        ("/api/jobs", "application/json", Vec::new(), &[400]),
        ("/sdapi/v1/txt2img", "application/json", br#"{"prompt": "x", "steps": -5}"#.to_vec(), &[422]),
        ("/sdapi/v1/txt2img", "application/json", br#"{"prompt": "x", "width": 99999999999999999999}"#.to_vec(), &[422]),
        ("/sdapi/v1/img2img", "application/json", br#"{"prompt": "x", "init_images": ["%%%"]}"#.to_vec(), &[422]),
        ("/sdapi/v1/img2img", "application/json", json!({"prompt": "x", "width": 16, "height": 16, "steps": 2, "init_images": [truncated_png()]}).to_string().into_bytes(), &[422, 429]),
        ("/v1/images/generations", "application/json", br#"{"prompt": 5}"#.to_vec(), &[400]),
        ("/v1/images/generations", "application/json", br#"{"n": 1}"#.to_vec(), &[400]),
    ];
    let (route, ty, body, ok) = cases[i % cases.len()].clone();
    (route, ty, body, ok)
}

/// Checks one answer: its status is one of `ok`, errors carry a JSON message, a 429 a
/// `Retry-After` of whole seconds; returns the JSON body when there is one.
fn check(what: &str, reply: &Result<Reply, String>, ok: &[u16], tally: &Mutex<Tally>) -> Option<Value> {
    let mut t = tally.lock().unwrap();
    let reply = match reply {
        Ok(r) => r,
        Err(e) => {
            t.problems.push(format!("{what}: no answer: {e}"));
            return None;
        }
    };
    *t.statuses.entry(reply.status).or_default() += 1;
    if !ok.contains(&reply.status) {
        t.problems.push(format!("{what}: status {} not in {ok:?}: {}", reply.status, reply.text()));
    }
    let body = match reply.json() {
        Ok(v) => v,
        Err(e) => {
            t.problems.push(format!("{what}: status {}, body not JSON: {e}", reply.status));
            return None;
        }
    };
    // OpenAI's routes answer errors in OpenAI's shape (`error.message`), the others with `detail`.
    let message = body.get("detail").or_else(|| body.get("error").and_then(|e| e.get("message")));
    if reply.status >= 400 && !message.is_some_and(Value::is_string) {
        t.problems.push(format!("{what}: error without a message: {body}"));
    }
    let retry_after = reply.retry_after.as_deref().and_then(|s| s.parse::<u64>().ok());
    if reply.status == 429 && retry_after.is_none_or(|s| s < 1) {
        t.problems.push(format!("{what}: 429 without a Retry-After in seconds: {:?}", reply.retry_after));
    }
    (reply.status < 300).then_some(body)
}

/// Request number `i`: its kind is chosen by `i`, so the mix is fixed.
async fn one_request(addr: SocketAddr, i: usize, tally: &Mutex<Tally>) {
    let accepted = |tally: &Mutex<Tally>, body: &Option<Value>| -> Option<u64> {
        let id = body.as_ref()?.get("id")?.as_u64()?;
        tally.lock().unwrap().jobs.push(id);
        Some(id)
    };
    match i % 10 {
        // Valid generations in bursts: the queue (16 places) fills, and answers 429.
        0..=2 => {
            let r = post_json(addr, "/api/jobs", &generate_body(i)).await;
            let body = check(&format!("#{i} submit"), &r, &[202, 429], tally);
            accepted(tally, &body);
        }
        // Submit, then cancel at once (queued: removed; running: stops at its next step).
        3 => {
            let r = post_json(addr, "/api/jobs", &generate_body(i)).await;
            if let Some(id) = accepted(tally, &check(&format!("#{i} submit"), &r, &[202, 429], tally)) {
                let r = call(addr, "POST", &format!("/api/jobs/{id}/cancel"), &[], Vec::new()).await;
                if let Some(b) = check(&format!("#{i} cancel {id}"), &r, &[200], tally) {
                    let how = b["cancel"].as_str().unwrap_or("");
                    if !["removed", "signalled", "already_finished"].contains(&how) {
                        tally.lock().unwrap().problems.push(format!("#{i} cancel {id}: {b}"));
                    }
                }
            }
        }
        // The synchronous routes of the web UI's and OpenAI's APIs.
        4 => {
            let body = json!({ "prompt": "blue heart", "steps": 2, "width": 16, "height": 16, "seed": i });
            let r = post_json(addr, "/sdapi/v1/txt2img", &body).await;
            if let Some(b) = check(&format!("#{i} txt2img"), &r, &[200, 429], tally) {
                tally.lock().unwrap().sync_images += b["images"].as_array().map_or(0, Vec::len);
            }
        }
        5 => {
            let body = json!({ "prompt": "alien monster", "n": 1, "size": "16x16", "response_format": "b64_json" });
            let r = post_json(addr, "/v1/images/generations", &body).await;
            if let Some(b) = check(&format!("#{i} images/generations"), &r, &[200, 429], tally) {
                tally.lock().unwrap().sync_images += b["data"].as_array().map_or(0, Vec::len);
            }
        }
        // Status and cancel of a job some client submitted earlier (it may have ended).
        6 | 7 => {
            let id = { tally.lock().unwrap().jobs.iter().rev().nth(i % 5).copied() };
            let id = id.unwrap_or(1);
            if i % 10 == 6 {
                let r = get(addr, &format!("/api/jobs/{id}")).await;
                check(&format!("#{i} status {id}"), &r, &[200, 404], tally);
            } else {
                let r = call(addr, "DELETE", &format!("/api/jobs/{id}"), &[], Vec::new()).await;
                check(&format!("#{i} delete {id}"), &r, &[200, 404], tally);
            }
        }
        // Oversized: one byte over the body limit (twice in the run: each is 32 MiB).
        8 if i % 100 == 8 => {
            let mut body = br#"{"prompt": ""#.to_vec();
            body.resize(BODY_LIMIT + 1 - 2, b'a');
            body.extend_from_slice(br#""}"#);
            let r = call(addr, "POST", "/sdapi/v1/txt2img", &[("content-type", "application/json")], body).await;
            check(&format!("#{i} oversized"), &r, &[413], tally);
        }
        // Malformed bodies.
        _ => {
            let (route, ty, body, ok) = malformed(i / 10);
            let r = call(addr, "POST", route, &[("content-type", ty)], body).await;
            let b = check(&format!("#{i} malformed {route} ({ty})"), &r, ok, tally);
            if route == "/api/jobs" {
                accepted(tally, &b);
            }
        }
    }
}

/// Waits for job `id` to finish; its image ids when it finished done.
async fn finished_images(addr: SocketAddr, id: u64) -> Result<Vec<i64>, String> {
    loop {
        let r = get(addr, &format!("/api/jobs/{id}")).await?;
        let v = r.json()?;
        if r.status != 200 {
            return Err(format!("job {id}: {} {v}", r.status));
        }
        if v["state"] == "finished" {
            return Ok(match v["outcome"]["outcome"].as_str() {
                Some("done") => v["outcome"]["value"]["ids"].as_array().ok_or(format!("job {id}: {v}"))?.iter().filter_map(Value::as_i64).collect(),
                _ => Vec::new(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every image id in the gallery, page by page.
async fn gallery_ids(addr: SocketAddr) -> Result<Vec<i64>, String> {
    let (mut ids, mut before) = (Vec::new(), None::<i64>);
    loop {
        let path = match before {
            Some(b) => format!("/api/images?limit=500&before={b}"),
            None => "/api/images?limit=500".to_string(),
        };
        let r = get(addr, &path).await?;
        let page = r.json()?;
        ids.extend(page["records"].as_array().ok_or(format!("{page}"))?.iter().filter_map(|r| r["id"].as_i64()));
        match page["next_before"].as_i64() {
            Some(b) => before = Some(b),
            None => return Ok(ids),
        }
    }
}

#[test]
fn two_hundred_mixed_requests_from_sixteen_clients() {
    let mut server = Server::start(&[]);
    let addr = server.addr;
    let rt = serve::runtime();
    let started = Instant::now();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let rss_before = rt.block_on(async {
        // One generation first, so the model is loaded and the memory measured is the
        // server's working set, not its start-up.
        let r = post_json(addr, "/api/jobs", &generate_body(0)).await.unwrap();
        let id = r.json().unwrap()["id"].as_u64().unwrap();
        finished_images(addr, id).await.unwrap();
        tally.lock().unwrap().jobs.push(id);
        server.rss_bytes()
    });
    let run = async {
        let next = Arc::new(AtomicUsize::new(0));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (next, tally) = (next.clone(), tally.clone());
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= REQUESTS {
                            break;
                        }
                        one_request(addr, i, &tally).await;
                    }
                })
            })
            .collect();
        for c in clients {
            c.await.unwrap();
        }
        let jobs = tally.lock().unwrap().jobs.clone();
        let mut expected = BTreeSet::new();
        for id in jobs {
            expected.extend(finished_images(addr, id).await.unwrap());
        }
        (expected, gallery_ids(addr).await.unwrap())
    };
    let (expected, gallery) = rt.block_on(async { tokio::time::timeout(TIME_LIMIT, run).await }).unwrap_or_else(|_| {
        panic!("the load test did not finish within {TIME_LIMIT:?} (deadlock?)\n{}", server.log())
    });
    let elapsed = started.elapsed();
    assert!(server.is_running(), "the server died:\n{}", server.log());
    let rss_after = server.rss_bytes();
    let t = tally.lock().unwrap();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "load: {REQUESTS} requests from {CLIENTS} clients in {:.1} s; statuses {:?}; {} jobs accepted, {} images from them, \
         {} from the synchronous routes, gallery {}; server VmRSS {:.0} MiB before, {:.0} MiB after",
        elapsed.as_secs_f64(),
        t.statuses,
        t.jobs.len(),
        expected.len(),
        t.sync_images,
        gallery.len(),
        mib(rss_before),
        mib(rss_after)
    );
    assert!(t.problems.is_empty(), "{} requests were answered badly:\n{}\n--- server log ---\n{}", t.problems.len(), t.problems.join("\n"), server.log());
    assert!(t.statuses.contains_key(&429), "the queue never filled: {:?}", t.statuses);
    assert!(t.statuses.contains_key(&202) && t.statuses.contains_key(&200), "{:?}", t.statuses);
    // The gallery: every image of a finished job, plus those of the synchronous routes, and
    // nothing else (cancelled and failed jobs leave no image).
    let in_gallery: BTreeSet<i64> = gallery.iter().copied().collect();
    assert_eq!(in_gallery.len(), gallery.len(), "an image is listed twice");
    let missing: Vec<_> = expected.difference(&in_gallery).collect();
    assert!(missing.is_empty(), "images of finished jobs missing from the gallery: {missing:?}");
    assert_eq!(gallery.len(), expected.len() + t.sync_images, "the gallery holds images of no finished job");
    assert!(rss_after < MEMORY_LIMIT, "the server's memory grew to {:.0} MiB", mib(rss_after));
}

/// The first requests to a fresh server, all at once: each one loads the shipped model (which
/// the store writes into the empty models folder on first use), and each gets its images.
#[test]
fn first_requests_at_once_on_a_fresh_server() {
    let server = Server::start(&[]);
    let addr = server.addr;
    let rt = serve::runtime();
    let replies = rt.block_on(async {
        let requests: Vec<_> = (0..8)
            .map(|seed| {
                tokio::spawn(async move {
                    let body = json!({ "prompt": "red heart", "steps": 2, "width": 16, "height": 16, "seed": seed });
                    post_json(addr, "/sdapi/v1/txt2img", &body).await
                })
            })
            .collect();
        let mut replies = Vec::new();
        for r in requests {
            replies.push(r.await.unwrap());
        }
        replies
    });
    for r in replies {
        let r = r.unwrap();
        assert_eq!(r.status, 200, "{}\n--- server log ---\n{}", r.text(), server.log());
        assert_eq!(r.json().unwrap()["images"].as_array().map(Vec::len), Some(1));
    }
}
