//! Class conditioning end to end: a tiny class-conditional run on the fixture's
//! categories, guided sampling that `rerun` reproduces, img2img, inpainting and the errors.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

mod common;

use common::{assert_fails, fixture, pixels, stipple, text, train_tiny};

fn train(out: &Path, labels: &[&str]) {
    train_tiny(&fixture(), out, &[&["--batch-size", "8", "--sample-count", "4", "--steps", "4"], labels].concat());
}

/// A class-conditional model trained once for all tests of this file.
fn model() -> &'static Path {
    static MODEL: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, run) = MODEL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("cond");
        train(&run, &["--labels", "csv", "--label-column", "category", "--cond-dropout", "0.2"]);
        (dir, run)
    });
    run
}

fn sample(out: &Path, extra: &[&str]) -> Output {
    stipple().args(["sample", "--steps", "4", "--model"]).arg(model()).arg("--out").arg(out).args(extra).output().unwrap()
}

#[test]
fn class_conditional_training_stores_the_classes() {
    let o = stipple().arg("inspect").arg(model().join("model.safetensors")).output().unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for class in ["Activities", "Food & Drink", "Travel & Places"] {
        assert!(t.contains(class), "{t}");
    }
}

#[test]
fn guided_images_rerun_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("guided");
    let o = sample(&out, &[
        "--class", "Food & Drink", "--negative-class", "Flags", "--guidance-scale", "3", "--guidance-rescale", "0.5",
        "--guidance-interval", "0.1,60", "--sampler", "euler_ancestral", "-n", "2", "--separate",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let first = out.join("seed-0.png");
    let again = dir.path().join("again.png");
    let o = stipple().arg("rerun").arg(&first).arg("--out").arg(&again).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(pixels(&first), pixels(&again));
    // The guidance is in the recipe: another class gives another image.
    let other = dir.path().join("other");
    let o = sample(&other, &["--class", "Animals & Nature", "--guidance-scale", "3", "--sampler", "euler_ancestral", "-n", "1", "--separate"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(pixels(&first), pixels(&other.join("seed-0.png")));
}

/// An 8×8 RGB image made by the model, used as init image.
fn init_image(dir: &Path) -> PathBuf {
    let out = dir.join("init");
    let o = sample(&out, &["-n", "1", "--separate", "--seed", "3"]);
    assert!(o.status.success(), "{}", text(&o));
    out.join("seed-3.png")
}

#[test]
fn img2img_at_strength_zero_returns_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let init = init_image(dir.path());
    let out = dir.path().join("same");
    let o = sample(&out, &["--init-image", init.to_str().unwrap(), "--strength", "0", "-n", "2", "--separate", "--class", "Flags"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(pixels(&out.join("seed-0.png")), pixels(&init));
    assert_eq!(pixels(&out.join("seed-1.png")), pixels(&init));
    // A real img2img run changes it, and reruns exactly.
    let o = sample(&out, &["--init-image", init.to_str().unwrap(), "--strength", "0.75", "-n", "1", "--separate"]);
    assert!(o.status.success(), "{}", text(&o));
    let again = dir.path().join("again.png");
    let o = stipple().arg("rerun").arg(out.join("seed-0.png")).arg("--out").arg(&again).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(pixels(&out.join("seed-0.png")), pixels(&again));
    // A changed init image is noticed.
    std::fs::copy(out.join("seed-0.png"), &init).unwrap();
    let o = stipple().arg("rerun").arg(out.join("seed-0.png")).arg("--out").arg(&again).output().unwrap();
    assert!(o.status.code() == Some(2) && text(&o).contains("--init-image: this image differs from the one the recipe was made with"), "{}", text(&o));
}

#[test]
fn inpainting_keeps_the_unmasked_pixels_with_every_kind_of_sampler() {
    let dir = tempfile::tempdir().unwrap();
    let init = init_image(dir.path());
    // Left half black (keep), right half white (repaint).
    let mask = dir.path().join("mask.png");
    image::GrayImage::from_fn(8, 8, |x, _| image::Luma([if x < 4 { 0 } else { 255 }])).save(&mask).unwrap();
    let before = pixels(&init);
    for sampler in ["euler", "euler_ancestral", "dpmpp_2m", "heun", "dpmpp_2m_sde", "ddim"] {
        let out = dir.path().join(sampler);
        let o = sample(&out, &[
            "--init-image", init.to_str().unwrap(), "--mask", mask.to_str().unwrap(), "--sampler", sampler,
            "--class", "Objects", "--guidance-scale", "2", "-n", "1", "--separate", "--seed", "11",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let after = pixels(&out.join("seed-11.png"));
        let mut changed = false;
        for (i, (a, b)) in after.iter().zip(&before).enumerate() {
            let x = (i / 3) % 8;
            if x < 4 {
                assert_eq!(a, b, "{sampler}: kept pixel {i} changed");
            } else {
                changed |= a != b;
            }
        }
        assert!(changed, "{sampler}: nothing was repainted");
    }
}

#[test]
fn repaint_resampling_keeps_the_unmasked_pixels_and_reruns() {
    let dir = tempfile::tempdir().unwrap();
    let init = init_image(dir.path());
    let mask = dir.path().join("mask.png");
    image::GrayImage::from_fn(8, 8, |_, y| image::Luma([if y < 3 { 0 } else { 255 }])).save(&mask).unwrap();
    let before = pixels(&init);
    let run = |name: &str, resample: &str| {
        let out = dir.path().join(name);
        let o = sample(&out, &[
            "--init-image", init.to_str().unwrap(), "--mask", mask.to_str().unwrap(), "--sampler", "euler_ancestral",
            "--class", "Objects", "--guidance-scale", "2", "-n", "1", "--separate", "--seed", "4", "--resample", resample,
        ]);
        assert!(o.status.success(), "{}", text(&o));
        out.join("seed-4.png")
    };
    let plain = pixels(&run("r1", "1"));
    let path = run("r3", "3");
    let resampled = pixels(&path);
    let row = 8 * 3;
    assert_eq!(&resampled[..3 * row], &before[..3 * row], "kept rows changed");
    assert_ne!(resampled, plain, "resampling must change the painted part");
    let again = dir.path().join("again.png");
    let o = stipple().arg("rerun").arg(&path).arg("--out").arg(&again).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(pixels(&again), resampled);
}

#[test]
fn bad_conditioning_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let init = init_image(dir.path());
    let out = dir.path().join("x.png");
    let fails = |args: &[&str], wanted: &[&str]| assert_fails(&sample(&out, args), args, wanted);
    fails(&["--class", "Dinosaurs"], &["unknown class \"Dinosaurs\"", "Activities", "Food & Drink"]);
    fails(&["--guidance-scale", "3"], &["needs a class"]);
    fails(&["--init-image", init.to_str().unwrap(), "--strength", "1.5"], &["--strength: must lie in [0, 1]"]);
    fails(&["--init-image", init.to_str().unwrap(), "--strength=-0.1"], &["strength"]);
    let big = dir.path().join("big-mask.png");
    image::GrayImage::new(9, 8).save(&big).unwrap();
    fails(&["--init-image", init.to_str().unwrap(), "--mask", big.to_str().unwrap()], &["9×8", "8×8", "same size"]);
    fails(&["--mask", big.to_str().unwrap()], &["needs an init image"]);
    fails(&["--init-image", init.to_str().unwrap(), "--resample", "3"], &["RePaint", "needs a mask"]);
    fails(&["--resample", "0"], &["--resample: must be between 1"]);
    let corrupt = dir.path().join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    fails(&["--init-image", corrupt.to_str().unwrap()], &["--init-image:", "corrupt.png", "cannot decode"]);

    // A model without class conditioning asked for a class.
    let plain = dir.path().join("plain");
    train(&plain, &[]);
    let o = stipple().args(["sample", "--steps", "2", "--class", "Flags", "--model"]).arg(&plain).arg("--out").arg(&out).output().unwrap();
    let t = text(&o);
    assert!(!o.status.success() && t.contains("not class-conditional"), "{t}");
}

#[test]
fn label_flags_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture();
    let run = |args: &[&str]| {
        stipple().args(["train", "--quiet", "--steps", "1", "--data"]).arg(&fixture).arg("--out").arg(dir.path().join("r")).args(args).output().unwrap()
    };
    let o = run(&["--labels", "csv"]);
    assert!(!o.status.success() && text(&o).contains("no column \"label\""), "{}", text(&o));
    assert!(text(&o).contains("category"), "{}", text(&o));
    let o = run(&["--labels", "folders"]);
    assert!(!o.status.success() && text(&o).contains("sub-folder"), "{}", text(&o));
    let o = run(&["--labels", "tags"]);
    assert!(!o.status.success() && text(&o).contains("csv, folders"), "{}", text(&o));
}
