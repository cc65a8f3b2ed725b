//! Helpers shared by the end-to-end tests of the `stipple` binary (each test file uses some).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test, with warnings only in its log.
pub fn stipple() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stipple"));
    c.env("RUST_LOG", "warn");
    c
}

/// stdout and stderr of a finished command, for assertion messages.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The committed 16×16 emoji fixture (192 icons with a `labels.csv` of captions and categories).
pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/emoji16")
}

/// The network flags of a seconds-long run: an 8×8 two-level U-Net with attention at 4×4.
pub const TINY_NET: &[&str] = &["--image-size", "8", "--channels", "8,16", "--layers-per-block", "1", "--attention-at", "4"];

/// RGB pixels of a PNG.
pub fn pixels(p: &Path) -> Vec<u8> {
    image::open(p).unwrap().to_rgb8().into_raw()
}

/// Trains the tiny network (`TINY_NET`, `--sample-every 0`) on `data` into `out` with the
/// `extra` flags (batch size, steps, conditioning, …), and asserts that it succeeded.
pub fn train_tiny(data: &Path, out: &Path, extra: &[&str]) {
    let o = stipple()
        .args(["train", "--quiet", "--sample-every", "0"])
        .args(TINY_NET)
        .args(extra)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

/// Asserts that the command run with `args` failed cleanly (no panic) and that its output
/// names every one of `wanted`.
pub fn assert_fails(o: &Output, args: &[&str], wanted: &[&str]) {
    let t = text(o);
    assert!(!o.status.success(), "{args:?} should fail: {t}");
    assert!(!t.contains("panicked"), "{t}");
    for w in wanted {
        assert!(t.contains(w), "{args:?}: no \"{w}\" in: {t}");
    }
}
