//! `stipple serve` killed with SIGKILL in the middle of a job, then started again on the same
//! folders: the gallery holds exactly the images of the jobs that finished, every row has its
//! file and every file its row. And SIGTERM stops it cleanly, cancelling the running job.

#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::stipple;
use serde_json::Value;

/// A server on a free loopback port with its folders under `dir`, and its address.
fn start(dir: &Path) -> (Child, SocketAddr) {
    let mut child = stipple()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .arg("--models")
        .arg(dir.join("models"))
        .arg("--runs")
        .arg(dir.join("runs"))
        .arg("--gallery")
        .arg(dir.join("gallery"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (child, addr.parse().unwrap())
}

/// One HTTP/1.1 request (Connection: close); the status and the JSON body.
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.unwrap_or("");
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp);
    let status = text[9..12].parse().unwrap();
    let json = text.split_once("\r\n\r\n").map(|(_, b)| b).filter(|b| !b.is_empty()).map_or(Value::Null, |b| serde_json::from_str(b).unwrap_or(Value::Null));
    (status, json)
}

fn job_outcome(addr: SocketAddr, id: u64) -> Option<String> {
    let (_, v) = http(addr, "GET", &format!("/api/jobs/{id}"), None);
    v["outcome"]["outcome"].as_str().map(str::to_string)
}

fn submit(addr: SocketAddr, body: &str) -> u64 {
    let (status, v) = http(addr, "POST", "/api/jobs", Some(body));
    assert_eq!(status, 202, "{v}");
    v["id"].as_u64().unwrap()
}

fn gallery_ids(addr: SocketAddr) -> Vec<u64> {
    let (status, v) = http(addr, "GET", "/api/images?limit=500", None);
    assert_eq!(status, 200, "{v}");
    v["records"].as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap()).collect()
}

#[test]
fn a_killed_server_restarts_with_a_consistent_gallery_and_sigterm_stops_it_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start(dir.path());
    let quick = submit(addr, r#"{"kind":"generate","prompt":"red apple","steps":4,"count":3}"#);
    let deadline = Instant::now() + Duration::from_secs(120);
    while job_outcome(addr, quick).is_none() {
        assert!(Instant::now() < deadline, "the quick job did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(job_outcome(addr, quick).as_deref(), Some("done"));
    let done = gallery_ids(addr);
    assert_eq!(done.len(), 3);
    // A long job, killed while it runs (after its first steps).
    let long = submit(addr, r#"{"kind":"generate","prompt":"rocket","steps":150,"count":64,"batch_size":1}"#);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = http(addr, "GET", &format!("/api/jobs/{long}"), None);
        if v["state"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "the long job did not start: {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill().unwrap();
    server.wait().unwrap();

    let (mut server, addr) = start(dir.path());
    let mut after = gallery_ids(addr);
    after.sort();
    assert_eq!(after, { let mut d = done.clone(); d.sort(); d }, "exactly the finished job's images");
    let files: Vec<String> = std::fs::read_dir(dir.path().join("gallery").join("images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut expected: Vec<String> = after.iter().map(|id| format!("{id}.png")).collect();
    let mut files_sorted = files.clone();
    files_sorted.sort();
    expected.sort();
    assert_eq!(files_sorted, expected, "every file has its row and no temporary file is left");
    for id in &after {
        let (status, _) = http(addr, "GET", &format!("/api/images/{id}"), None);
        assert_eq!(status, 200);
    }

    // SIGTERM while a job runs: the job is cancelled at its next step and the server exits 0.
    let long = submit(addr, r#"{"kind":"generate","prompt":"rocket","steps":150,"count":64,"batch_size":1}"#);
    let deadline = Instant::now() + Duration::from_secs(60);
    while http(addr, "GET", &format!("/api/jobs/{long}"), None).1["state"] != "running" {
        assert!(Instant::now() < deadline, "the job did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = server.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "SIGTERM did not stop the server");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
