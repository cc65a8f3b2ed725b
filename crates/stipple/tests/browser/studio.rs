//! The harness of the browser tests: `stipple serve` on a free loopback port with fresh
//! folders, Debian's ChromeDriver and headless Chromium, and a `Page` handle with the few
//! operations the tests need. One browser at a time (the tests share a small machine).

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

/// Chromium's flags for a headless run as root in a container, with nothing reaching out.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
];

pub const ESCAPE: &str = "\u{E00C}";
pub const CONTROL: &str = "\u{E009}";
pub const ENTER: &str = "\u{E007}";

static ONE_BROWSER: Mutex<()> = Mutex::new(());

/// The first of `names` found on the PATH.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |n| dir.join(n))).find(|p| p.is_file())
}

fn missing(what: &str) -> ! {
    panic!(
        "{what} is not installed: the browser tests drive Debian's headless Chromium through ChromeDriver. \
         Install them with `apt-get install -y chromium chromium-driver` (.ci/run does so when they are missing)."
    )
}

/// A process killed (by its id) and reaped when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `stipple serve` on a free port; its address is what it prints.
struct Server {
    _process: Process,
    base: String,
    // Kept open: the server's stdout must not become a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Server {
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_stipple"))
            .env("RUST_LOG", "warn")
            .args(["serve", "--addr", "127.0.0.1:0"])
            .arg("--models")
            .arg(dir.join("models"))
            .arg("--runs")
            .arg(dir.join("runs"))
            .arg("--gallery")
            .arg(dir.join("gallery"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let process = Process(child);
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let base = match line.trim().strip_prefix("listening on ") {
            Some(url) => url.to_string(),
            None => panic!("stipple serve did not start: {line:?}\n{}", std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()),
        };
        Server { _process: process, base, _stdout: stdout }
    }
}

/// ChromeDriver on a free port, ready to take a session.
struct Driver {
    _process: Process,
    url: String,
}

impl Driver {
    fn start(dir: &Path) -> Driver {
        let binary = on_path(&["chromedriver"]).unwrap_or_else(|| missing("chromedriver"));
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::File::create(dir.join("chromedriver.log")).unwrap();
        let child = Command::new(binary).arg(format!("--port={port}")).stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
        let mut process = Process(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = process.0.try_wait() {
                panic!("chromedriver exited ({status}): {}", std::fs::read_to_string(dir.join("chromedriver.log")).unwrap_or_default());
            }
            assert!(started.elapsed() < Duration::from_secs(30), "chromedriver did not listen on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { _process: process, url: format!("http://127.0.0.1:{port}") }
    }

    async fn connect(&self, profile: &Path) -> Client {
        let chromium = on_path(&["chromium", "chromium-browser"]).unwrap_or_else(|| missing("chromium"));
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push("--window-size=1280,900".into());
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let Value::Object(caps) = caps else { unreachable!() };
        ClientBuilder::new(HttpConnector::new()).capabilities(caps).connect(&self.url).await.unwrap_or_else(|e| panic!("no browser session from chromedriver: {e}"))
    }
}

/// The studio page in the browser, and the server behind it.
#[derive(Clone)]
pub struct Page {
    pub client: Client,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

/// Runs `scenario` on a fresh server (started with `serve_args` more) and a fresh browser,
/// then closes the browser whether the scenario passed or not.
pub fn run<Fut>(serve_args: &[&str], scenario: impl FnOnce(Page) -> Fut)
where
    Fut: Future<Output = ()> + Send + 'static,
{
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), serve_args);
    let driver = Driver::start(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let client = driver.connect(&dir.path().join("chromium-profile")).await;
        let page = Page { client: client.clone(), base: server.base.clone() };
        let outcome = tokio::spawn(scenario(page)).await;
        let _ = client.close().await;
        if let Err(e) = outcome {
            if e.is_panic() {
                let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                eprintln!("server log:\n{log}");
                std::panic::resume_unwind(e.into_panic());
            }
            panic!("the scenario did not finish: {e}");
        }
    });
    drop(driver);
    drop(server);
}

impl Page {
    /// Opens the page and waits until it has loaded its models and samplers.
    pub async fn open(&self, fragment: &str) {
        self.client.goto(&format!("{}/{fragment}", self.base)).await.unwrap();
        self.wait("window.stippleErrors !== undefined", "the page's script to run", 20).await;
        self.wait("document.getElementById('model').options.length > 0 && document.getElementById('sampler').options.length > 0", "the model and sampler menus", 20).await;
    }

    /// The value of a JavaScript expression.
    pub async fn js(&self, expression: &str) -> Value {
        self.client.execute(&format!("return ({expression});"), vec![]).await.unwrap_or_else(|e| panic!("{expression}: {e}"))
    }

    /// Runs JavaScript statements.
    pub async fn run_js(&self, statements: &str) {
        self.client.execute(statements, vec![]).await.unwrap_or_else(|e| panic!("{statements}: {e}"));
    }

    /// Waits until `condition` (a JavaScript expression) holds; fails after `seconds`
    /// with `what` and what the page shows.
    pub async fn wait(&self, condition: &str, what: &str, seconds: u64) {
        let started = Instant::now();
        loop {
            if self.js(&format!("!!({condition})")).await == Value::Bool(true) {
                return;
            }
            if started.elapsed() > Duration::from_secs(seconds) {
                let shown = self
                    .js("[...document.querySelectorAll('.status, .error')].map(e => e.id + ': ' + e.textContent).filter(t => !t.endsWith(': ')).join(' | ') + ' | problems: ' + JSON.stringify(window.stippleErrors)")
                    .await;
                panic!("waited {seconds} s for {what} ({condition}); the page shows: {shown}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn text(&self, id: &str) -> String {
        self.js(&format!("document.getElementById('{id}').textContent")).await.as_str().unwrap().to_string()
    }

    pub async fn value(&self, id: &str) -> String {
        self.js(&format!("document.getElementById('{id}').value")).await.as_str().unwrap().to_string()
    }

    /// Types `text` into the control `id` (emptied first), as a user does.
    pub async fn fill(&self, id: &str, text: &str) {
        let e = self.client.find(Locator::Id(id)).await.unwrap_or_else(|e| panic!("#{id}: {e}"));
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    pub async fn choose(&self, id: &str, value: &str) {
        self.client.find(Locator::Id(id)).await.unwrap().select_by_value(value).await.unwrap_or_else(|e| panic!("#{id} = {value}: {e}"));
    }

    pub async fn click(&self, css: &str) {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Sends keys to the focused element.
    pub async fn keys(&self, keys: &str) {
        self.client.active_element().await.unwrap().send_keys(keys).await.unwrap();
    }

    /// Fails if the page recorded an uncaught error or a console error.
    pub async fn assert_no_problems(&self) {
        let problems = self.js("window.stippleErrors").await;
        assert_eq!(problems, json!([]), "the page reported errors");
    }

    /// `GET path` on the server, from the test (not the page): the body.
    pub fn get(&self, path: &str) -> Vec<u8> {
        let host = self.base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(host).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        let split = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer");
        let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "GET {path}: {head}");
        assert!(head.contains("content-length:"), "GET {path}: expected a sized body: {head}");
        answer[split + 4..].to_vec()
    }

    pub fn get_json(&self, path: &str) -> Value {
        serde_json::from_slice(&self.get(path)).unwrap()
    }
}
