//! `stipple serve` driven by real third-party clients, installed from the package registry
//! into a venv (pinned in `tests/clients/requirements.txt`, kept under the target folder and
//! rebuilt when that file changes): the AUTOMATIC1111 client `webuiapi` against `/sdapi/v1`
//! and the official `openai` package against `/v1`. The scripts in `tests/clients/` make the
//! calls and check what the clients got; their output records each call and its answer.
//!
//! Needs `python3` with `venv` and a reachable registry (as CI has): without them the test
//! fails and says so, it does not skip.

mod serve;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serve::{Server, SHIPPED, SPARE};

/// The clients' scripts and requirements.
fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// The target folder this test binary was built in (`target/<profile>/deps/<binary>`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).expect("the test binary lies in target/<profile>/deps").to_path_buf()
}

/// Runs `cmd`, panicking with its output and `hint` if it fails.
fn run(cmd: &mut Command, hint: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}. {hint}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed ({}). {hint}\n{text}", out.status);
    text
}

/// The venv's python, creating the venv first if it is missing or was made from another
/// requirements file. Once per test binary.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let requirements = clients_dir().join("requirements.txt");
        let wanted = std::fs::read_to_string(&requirements).unwrap();
        let venv = target_dir().join("client-venv");
        let stamp = venv.join("requirements.txt");
        let python = venv.join("bin/python");
        if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && python.exists() {
            return python;
        }
        let _ = std::fs::remove_dir_all(&venv);
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "The real-client tests need python3 with venv (Debian: apt-get install python3-venv).",
        );
        run(
            Command::new(&python)
                .args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q", "-r"])
                .arg(&requirements),
            "The real-client tests install their clients from the package registry with pip: is it reachable?",
        );
        // Written last: a half-made venv is rebuilt next time.
        std::fs::write(&stamp, wanted).unwrap();
        python
    })
}

/// Runs the client script `script` with `args` against `server`; returns its output after
/// checking that it passed.
fn drive(server: &Server, script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(clients_dir().join(script))
        .arg(server.port().to_string())
        .args(args)
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "{script} failed:\n{text}\n--- server log ---\n{}", server.log());
    text
}

#[test]
fn webuiapi_drives_the_a1111_api() {
    let server = Server::start(&[]);
    let out = drive(&server, "webui_client.py", &[SHIPPED, SPARE]);
    assert!(out.contains("webuiapi: all checks passed"), "{out}");
}

#[test]
fn openai_client_drives_the_images_api() {
    let key = "test-key-0123456789abcdef";
    let server = Server::start(&["--api-key", key]);
    let out = drive(&server, "openai_client.py", &[key, SHIPPED]);
    assert!(out.contains("openai: all checks passed"), "{out}");
}
