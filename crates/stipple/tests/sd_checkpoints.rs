//! `stipple sample` and `stipple inspect` on Stable Diffusion checkpoints: the tiny SD 1.x and
//! SDXL fixtures of `tests/reference/make_sd_fixture.py`, as a diffusers folder and as a
//! single original-layout file.

mod common;

use std::path::PathBuf;

use common::{pixels, stipple, text};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sd").join(name)
}

fn sample(model: &str, extra: &[&str], out: &std::path::Path) -> std::process::Output {
    stipple()
        .args(["sample", "--prompt", "a (red:1.2) apple", "--negative-prompt", "blur", "--steps", "3", "-n", "2", "--width", "32", "--height", "24"])
        .arg("--model")
        .arg(fixture(model))
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn a_diffusers_folder_and_its_single_file_make_the_same_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let (folder, single) = (dir.path().join("folder.png"), dir.path().join("single.png"));
    let o = sample("tiny-sd15", &[], &folder);
    assert!(o.status.success(), "{}", text(&o));
    let config = fixture("tiny-sd15");
    let o = sample("tiny-sd15.safetensors", &["--config-dir", config.to_str().unwrap()], &single);
    assert!(o.status.success(), "{}", text(&o));
    let (a, b) = (pixels(&folder), pixels(&single));
    assert_eq!(a.len(), b.len());
    let worst = a.iter().zip(&b).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
    assert!(worst <= 1, "the same weights in two layouts: pixels differ by at most one level, got {worst}");
    let img = image::open(&folder).unwrap();
    assert_eq!((img.width(), img.height()), (2 * 32 + 2 * 2 + 2, 24 + 2 * 2), "a grid of two 32×24 images");
    let info = text(&stipple().arg("info").arg(&folder).output().unwrap());
    assert!(info.contains("a (red:1.2) apple\nNegative prompt: blur\nSteps: 3") && info.contains("Size: 32x24"), "{info}");
    // A LoRA changes the picture.
    let lora = dir.path().join("lora.png");
    let l = format!("{}:0.8", fixture("tiny-sd15-lora.safetensors").display());
    let o = sample("tiny-sd15", &["--lora", &l], &lora);
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(pixels(&lora), a);
    // PyTorch's CPU generator instead of the NV numbers: another picture, and the web UI's
    // "RNG: CPU" in its parameters.
    let cpu = dir.path().join("cpu.png");
    let o = sample("tiny-sd15", &["--rng", "cpu"], &cpu);
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(pixels(&cpu), a);
    let info = text(&stipple().arg("info").arg(&cpu).output().unwrap());
    assert!(info.contains(", RNG: CPU") && info.contains("\"rng\": \"cpu\""), "{info}");
}

#[test]
fn sdxl_samples_and_inspect_tells_the_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("xl.png");
    let o = sample("tiny-sdxl", &["--sampler", "dpmpp_2m_sde"], &out);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Stable Diffusion XL base"), "{}", text(&o));
    let o = stipple().arg("inspect").arg(fixture("tiny-sd15.safetensors")).output().unwrap();
    assert!(o.status.success() && text(&o).contains("Stable Diffusion 1.x, single file"), "{}", text(&o));
}

#[test]
fn bad_sizes_and_a_single_file_without_tokenizer_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let o = stipple().args(["sample", "--prompt", "x", "--steps", "2", "-n", "1", "--width", "33", "--model"]).arg(fixture("tiny-sd15")).arg("--out").arg(dir.path().join("x.png")).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--width: must be a positive multiple of"), "{}", text(&o));
    let o = sample("tiny-sd15.safetensors", &[], &dir.path().join("y.png"));
    assert!(!o.status.success() && text(&o).contains("vocab.json"), "{}", text(&o));
    let o = sample("tiny-sd15", &["--lora", "nonsense"], &dir.path().join("z.png"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
