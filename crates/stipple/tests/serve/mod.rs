//! A `stipple serve` process for the end-to-end tests of the server: started on a free
//! loopback port with temporary models, gallery and runs folders, ended when dropped; plus a
//! minimal HTTP/1.1 client (one connection per request, via hyper) that reports exactly what
//! the server answered.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// The shipped prompt model (16×16), as committed.
pub const SHIPPED: &str = "emoji-prompts";
/// A second name for the shipped model's file, so clients can switch between two models.
pub const SPARE: &str = "spare-emoji";

/// A running server. Its folders live as long as it does.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// Everything the server wrote on stdout and stderr so far, for failure messages.
    log: Arc<Mutex<String>>,
    pub dirs: tempfile::TempDir,
}

impl Server {
    /// Starts `stipple serve` on `127.0.0.1:0` with fresh folders (the models folder holds a
    /// copy of the shipped model named `SPARE`) and the `extra` flags, and waits until it
    /// answers `/health`.
    pub fn start(extra: &[&str]) -> Server {
        let dirs = tempfile::tempdir().unwrap();
        let models = dirs.path().join("models");
        std::fs::create_dir_all(&models).unwrap();
        std::fs::copy(shipped_model_file(), models.join(format!("{SPARE}.safetensors"))).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_stipple"))
            .env("RUST_LOG", "warn")
            .args(["serve", "--addr", "127.0.0.1:0", "--models"])
            .arg(&models)
            .arg("--gallery")
            .arg(dirs.path().join("gallery"))
            .arg("--runs")
            .arg(dirs.path().join("runs"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start stipple serve");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        drain(child.stdout.take().unwrap(), log.clone(), Some(tx));
        drain(child.stderr.take().unwrap(), log.clone(), None);
        let mut server = Server { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)), log, dirs };
        server.addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => panic!("stipple serve printed no \"listening on http://ADDR\" within 60 s:\n{}", server.log()),
        };
        server.wait_healthy();
        server
    }

    fn wait_healthy(&mut self) {
        let until = Instant::now() + Duration::from_secs(30);
        let rt = runtime();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("stipple serve exited with {status}:\n{}", self.log());
            }
            if let Ok(reply) = rt.block_on(call(self.addr, "GET", "/health", &[], Vec::new())) {
                assert_eq!(reply.status, 200, "/health: {reply:?}");
                return;
            }
            assert!(Instant::now() < until, "/health did not answer within 30 s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's output so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Resident memory of the server process (VmRSS), in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS in /proc/PID/status");
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies `from` into `log` line by line; sends the address of the first
/// `listening on http://ADDR` line to `addr`.
fn drain(from: impl Read + Send + 'static, log: Arc<Mutex<String>>, addr: Option<mpsc::Sender<SocketAddr>>) {
    std::thread::spawn(move || {
        let mut addr = addr;
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if let Some(found) = line.split("listening on http://").nth(1) {
                let text = found.split_whitespace().next().unwrap_or("").trim_end_matches('/');
                if let (Some(tx), Ok(parsed)) = (addr.as_ref(), text.parse::<SocketAddr>()) {
                    let _ = tx.send(parsed);
                    addr = None;
                }
            }
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
}

/// The committed shipped model file.
pub fn shipped_model_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/emoji-prompts.safetensors")
}

/// A multi-threaded tokio runtime for the client side.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap()
}

/// What the server answered.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON, or a message saying why it is not.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        if !self.content_type.as_deref().is_some_and(|t| t.starts_with("application/json")) {
            return Err(format!("content type {:?}, not JSON: {}", self.content_type, self.text()));
        }
        serde_json::from_slice(&self.body).map_err(|e| format!("{e}: {}", self.text()))
    }

    /// The body as text, cut to 300 characters.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).chars().take(300).collect()
    }
}

/// One request on a fresh connection to `addr`; `headers` are (name, value) pairs.
pub async fn call(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Result<Reply, String> {
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder().method(method).uri(path).header("host", addr.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::new(Bytes::from(body))).map_err(|e| format!("request: {e}"))?;
    let resp = sender.send_request(req).await.map_err(|e| format!("send: {e}"))?;
    let header = |name| resp.headers().get(name).and_then(|v: &hyper::header::HeaderValue| v.to_str().ok()).map(str::to_owned);
    let (content_type, retry_after) = (header(hyper::header::CONTENT_TYPE), header(hyper::header::RETRY_AFTER));
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes().to_vec();
    Ok(Reply { status, content_type, retry_after, body })
}

/// A JSON request.
pub async fn post_json(addr: SocketAddr, path: &str, body: &serde_json::Value) -> Result<Reply, String> {
    call(addr, "POST", path, &[("content-type", "application/json")], serde_json::to_vec(body).unwrap()).await
}

/// A GET request.
pub async fn get(addr: SocketAddr, path: &str) -> Result<Reply, String> {
    call(addr, "GET", path, &[], Vec::new()).await
}
