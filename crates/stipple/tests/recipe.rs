//! Images carry their recipe; `info` prints it, `rerun` reproduces the image bit for bit;
//! trajectories are written as a grid, a GIF, an APNG and JSON statistics.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;

use common::{fixture, pixels, stipple, text};

/// A one-step tiny model trained on the fixture, in `dir/run`.
fn tiny_model(dir: &Path) -> PathBuf {
    tiny_model_with(dir, &[])
}

fn tiny_model_with(dir: &Path, extra: &[&str]) -> PathBuf {
    let run = dir.join("run");
    let fixture = fixture();
    let o = stipple()
        .args(["train", "--quiet", "--image-size", "8", "--channels", "8,16", "--layers-per-block", "1"])
        .args(["--batch-size", "4", "--steps", "2", "--sample-count", "1", "--sample-every", "0", "--data"])
        .arg(fixture)
        .arg("--out")
        .arg(&run)
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    run
}

fn sample(run: &Path, out: &Path, extra: &[&str]) -> Output {
    stipple()
        .args(["sample", "--steps", "4", "--count", "3", "--seed", "5", "--sampler", "euler_ancestral", "--model"])
        .arg(run)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn rerun_reproduces_grids_and_single_images_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let run = tiny_model(dir.path());
    let grid = dir.path().join("grid.png");
    assert!(sample(&run, &grid, &[]).status.success());
    let each = dir.path().join("each");
    assert!(sample(&run, &each, &["--separate"]).status.success());

    let o = stipple().arg("info").arg(&grid).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let info = text(&o);
    for needle in ["Steps: 4, Sampler: Euler a, Schedule type: Karras", "Seed: 5", "Size: 8x8", "Model hash: ", "\"sigmas\"", "\"sha256\""] {
        assert!(info.contains(needle), "{needle} not in {info}");
    }

    for img in [grid.clone(), each.join("seed-6.png")] {
        let again = dir.path().join("again.png");
        let o = stipple().arg("rerun").arg(&img).arg("-o").arg(&again).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(pixels(&img), pixels(&again), "{} not reproduced", img.display());
    }
    // The separate image of seed 6 is the second tile of the grid's batch: same noise stream.
    let single = image::open(each.join("seed-6.png")).unwrap().to_rgb8();
    let tile = image::imageops::crop_imm(&image::open(&grid).unwrap().to_rgb8(), 2 + 10, 2, 8, 8).to_image();
    assert_eq!(single, tile);
}

#[test]
fn training_sample_grids_carry_their_recipe_too() {
    let dir = tempfile::tempdir().unwrap();
    let run = tiny_model(dir.path());
    let grid = run.join("samples/latest.png");
    let again = dir.path().join("again.png");
    let o = stipple().arg("rerun").arg(&grid).arg("-o").arg(&again).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(pixels(&grid), pixels(&again));
}

#[test]
fn recipe_problems_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = tiny_model(dir.path());
    let img = dir.path().join("a.png");
    assert!(sample(&run, &img, &[]).status.success());

    // No recipe at all.
    let plain = dir.path().join("plain.png");
    image::RgbImage::new(4, 4).save(&plain).unwrap();
    let o = stipple().arg("rerun").arg(&plain).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("carries no Stipple recipe"), "{}", text(&o));

    // A foreign "stipple" text.
    let foreign = dir.path().join("foreign.png");
    stipple_pipeline::write_png_with_text(
        &image::DynamicImage::new_rgb8(4, 4),
        &foreign,
        &[("stipple", "{\"prompt\": \"a cat\"}".into())],
    )
    .unwrap();
    let o = stipple().arg("info").arg(&foreign).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("is not a Stipple recipe"), "{}", text(&o));

    // The model is missing.
    let model = run.join("model.safetensors");
    let moved = dir.path().join("moved.safetensors");
    std::fs::rename(&model, &moved).unwrap();
    let o = stipple().arg("rerun").arg(&img).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("is missing") && text(&o).contains("--model"), "{}", text(&o));
    let o = stipple().arg("rerun").arg(&img).arg("--model").arg(&moved).arg("-o").arg(dir.path().join("b.png")).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));

    // A different model: refused, then allowed with --force and a warning.
    let other = tiny_model_with(&dir.path().join("other"), &["--seed", "1"]);
    let o = stipple().arg("rerun").arg(&img).arg("--model").arg(&other).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--model: ") && text(&o).contains("SHA-256") && text(&o).contains("force"), "{}", text(&o));
    let o = stipple().arg("rerun").arg(&img).arg("--model").arg(&other).arg("--force").arg("-o").arg(dir.path().join("c.png")).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("warning"), "{}", text(&o));
}

#[test]
fn trajectories_as_grid_gif_apng_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let run = tiny_model(dir.path());
    let (png, gif, apng, json) = (dir.path().join("t.png"), dir.path().join("t.gif"), dir.path().join("t.apng"), dir.path().join("t.json"));
    let o = sample(&run, &dir.path().join("s.png"), &["--trajectory", png.to_str().unwrap(), "--every", "2", "--trajectory-json", json.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    // Steps 0, 2 and the last (3) of 4: three columns; three images: three rows.
    let grid = image::open(&png).unwrap();
    let cell = 2 * 8 + 1; // x_t | x̂₀ at 8 px, zoomed ×6 to reach 48 px
    assert_eq!(grid.width(), 3 * (cell * 6 + 2) + 2);
    let stats: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let steps: Vec<u64> = stats.as_array().unwrap().iter().map(|s| s["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, vec![0, 2, 3]);
    let last = stats.as_array().unwrap().last().unwrap();
    let sigma0 = stats[0]["sigma"].as_f64().unwrap();
    assert!(sigma0 > last["sigma"].as_f64().unwrap());
    // The last step to σ = 0 returns its prediction: the final image.
    assert!(last["denoised_rms_to_final"].as_f64().unwrap() < 1e-6, "{last}");

    for (path, n_frames) in [(&gif, 4usize), (&apng, 4)] {
        let o = sample(&run, &dir.path().join("s.png"), &["--trajectory", path.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
        let bytes = std::fs::read(path).unwrap();
        let frames = if path.extension().unwrap() == "gif" {
            use image::AnimationDecoder;
            image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes)).unwrap().into_frames().count()
        } else {
            let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
            let reader = decoder.read_info().unwrap();
            reader.info().animation_control().expect("APNG has an acTL chunk").num_frames as usize
        };
        assert_eq!(frames, n_frames, "{}", path.display());
    }
    let o = sample(&run, &dir.path().join("s.png"), &["--trajectory", "t.bmp"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains(".png (grid), .gif or .apng"), "{}", text(&o));
}

#[test]
fn samplers_lists_every_name() {
    let o = stipple().arg("samplers").output().unwrap();
    assert!(o.status.success());
    let t = text(&o);
    for n in ["dpmpp_2m", "DPM++ 2M", "DPMSolverMultistepScheduler", "sample_euler_ancestral", "Euler a", "karras", "Karras"] {
        assert!(t.contains(n), "{n} not in {t}");
    }
}

#[test]
fn final_sigma_and_noise_are_recorded_and_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let run = tiny_model(dir.path());
    let make = |out: &Path, extra: &[&str]| {
        let o = stipple()
            .args(["sample", "--steps", "4", "--count", "2", "--seed", "5", "--sampler", "dpmpp_2m_sde", "--model"])
            .arg(&run)
            .arg("--out")
            .arg(out)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    };
    let brownian = dir.path().join("brownian.png");
    make(&brownian, &["--final-sigma", "sigma_min"]);
    let o = stipple().arg("info").arg(&brownian).output().unwrap();
    let info = text(&o);
    for needle in ["\"final_sigma\": \"sigma_min\"", "\"noise\": \"brownian\""] {
        assert!(info.contains(needle), "{needle} not in {info}");
    }
    let again = dir.path().join("again.png");
    let o = stipple().arg("rerun").arg(&brownian).arg("-o").arg(&again).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(pixels(&brownian), pixels(&again), "Brownian noise reproduced from the recipe");

    let independent = dir.path().join("independent.png");
    make(&independent, &["--final-sigma", "sigma_min", "--noise", "independent"]);
    assert!(text(&stipple().arg("info").arg(&independent).output().unwrap()).contains("\"noise\": \"independent\""));
    assert_ne!(pixels(&brownian), pixels(&independent), "the noise source matters");

    let o = stipple().args(["sample", "--final-sigma", "min", "--model"]).arg(&run).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("sigma_min"), "{}", text(&o));
}

#[test]
fn output_must_be_png_and_a_missing_model_says_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = tiny_model(dir.path());
    for bad in ["a.txt", "a.jpg"] {
        let out = dir.path().join(bad);
        let o = sample(&run, &out, &[]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("--out: ") && text(&o).contains("must end in .png"), "{}", text(&o));
        assert!(!out.exists(), "nothing is written under {bad}");
    }
    let missing = dir.path().join("missing.safetensors");
    let o = stipple().args(["inspect"]).arg(&missing).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = stipple().args(["sample", "--model"]).arg(dir.path().join("gone").join("x.safetensors")).output().unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.matches("No such file or directory").count() <= 1, "the cause is printed once: {t}");
}

#[test]
fn x0_clamping_reaches_generation_and_its_recipe() {
    let dir = tempfile::tempdir().unwrap();
    let run = tiny_model(dir.path());
    let plain = dir.path().join("plain.png");
    let clipped = dir.path().join("clipped.png");
    assert!(sample(&run, &plain, &[]).status.success());
    let o = sample(&run, &clipped, &["--clip-sample", "0.05"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(pixels(&plain), pixels(&clipped), "clamping x̂₀ to ±0.05 changes the images");
    let info = text(&stipple().arg("info").arg(&clipped).output().unwrap());
    assert!(info.contains("\"clip_sample\": true") && info.contains("\"clip_sample_range\": 0.05"), "{info}");
    let again = dir.path().join("again.png");
    let o = stipple().arg("rerun").arg(&clipped).arg("-o").arg(&again).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(pixels(&clipped), pixels(&again));
    let o = sample(&run, &dir.path().join("bad.png"), &["--thresholding", "1.5"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
