//! End-to-end tests of `stipple eval` on the committed emoji fixture: a domain feature
//! network trained in seconds, folders against folders, a model's samples against the data,
//! and the errors for too few images and a weights file of another network; CLIP score on the
//! tiny random-weight CLIP fixture (tests/fixtures/clip/, tests/reference/make_clip_reference.py).

use std::path::Path;

mod common;

use common::{assert_fails, fixture, stipple, text, train_tiny};

fn train_features(out: &Path) {
    let o = stipple()
        .args(["eval", "train-features", "--label-column", "category", "--size", "16", "--steps", "20", "--batch-size", "16", "--data"])
        .arg(fixture())
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("held out"), "{}", text(&o));
}

#[test]
fn a_set_against_itself_and_a_model_against_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("features.safetensors");
    train_features(&net);

    let json = dir.path().join("same.json");
    let o = stipple()
        .args(["eval", "folders"])
        .arg(fixture())
        .arg(fixture())
        .arg("--features")
        .arg(&net)
        .args(["--kid-subset-size", "64", "--kid-subsets", "4", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("FD"), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!((r["generated"].as_u64(), r["reference"].as_u64(), r["dim"].as_u64()), (Some(192), Some(192), Some(128)));
    assert!(r["fd"].as_f64().unwrap().abs() < 1e-5, "{r}");
    assert_eq!(r["precision_recall"]["precision"], 1.0);
    assert_eq!(r["precision_recall"]["recall"], 1.0);

    // A two-step tiny model's 8×8 samples, resized to the network's 16×16, are far from the data.
    let run = dir.path().join("run");
    train_tiny(&fixture(), &run, &["--batch-size", "4", "--steps", "2"]);
    let json = dir.path().join("model.json");
    let o = stipple()
        .args(["eval", "model", "--count", "8", "--steps", "2", "--sampler", "euler", "--kid-subset-size", "8", "--kid-subsets", "2", "--model"])
        .arg(&run)
        .arg("--data")
        .arg(fixture())
        .arg("--features")
        .arg(&net)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["generated"].as_u64(), Some(8));
    assert!(r["fd"].as_f64().unwrap() > 1e-3, "{r}");

    // The sweep: one point per sampler and step count; Heun's last step to σ = 0 is Euler's.
    let out = dir.path().join("sweep");
    let o = stipple()
        .args(["eval", "sweep", "--samplers", "euler,heun", "--steps", "1,2", "--count", "8", "--repeats", "2", "--model"])
        .arg(&run)
        .arg("--data")
        .arg(fixture())
        .arg("--features")
        .arg(&net)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("heun (orange)"), "{}", text(&o));
    let points: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    let nfe: Vec<(String, u64, u64)> = points.iter().map(|p| (p["sampler"].as_str().unwrap().to_string(), p["steps"].as_u64().unwrap(), p["nfe"].as_u64().unwrap())).collect();
    assert_eq!(nfe, [("euler".into(), 1, 1), ("euler".into(), 2, 2), ("heun".into(), 1, 1), ("heun".into(), 2, 3)]);
    assert!(points.iter().all(|p| p["fd"].as_f64().unwrap().is_finite() && p["repeats"] == 2));
    assert!(points.iter().all(|p| p["fd_ci95"].as_f64().unwrap() > 0.0), "two seed sets differ: {points:?}");
    assert_eq!(image::open(out.join("sweep.png")).unwrap().width(), 800);
}

#[test]
fn too_few_images_and_the_wrong_weights_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("features.safetensors");
    train_features(&net);
    let few = dir.path().join("few");
    std::fs::create_dir(&few).unwrap();
    for name in ["alien-monster.png", "admission-tickets.png", "1st-place-medal.png"] {
        std::fs::copy(fixture().join(name), few.join(name)).unwrap();
    }
    let args = ["eval", "folders", "--features"];
    let o = stipple().args(args).arg(&net).arg(&few).arg(fixture()).output().unwrap();
    assert_fails(&o, &args, &["needs at least 4 samples per set, got 3"]);
    assert_eq!(o.status.code(), Some(2), "bad input is bad usage");

    // A domain network is not Inception-v3.
    let args = ["eval", "folders", "--inception"];
    let o = stipple().args(args).arg(&net).arg(fixture()).arg(fixture()).output().unwrap();
    assert_fails(&o, &args, &["not a pytorch-fid Inception-v3 weights file", "Conv2d_1a_3x3"]);
    assert_eq!(o.status.code(), Some(2), "a wrong weights file is bad usage");

    let args = ["eval", "folders", "--features"];
    let o = stipple().args(args).arg(fixture().join("labels.csv")).arg(fixture()).arg(fixture()).output().unwrap();
    assert_fails(&o, &args, &["not a Stipple feature network"]);
}

#[test]
fn guidance_table_per_scale_for_a_class_model() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("features.safetensors");
    train_features(&net);
    let run = dir.path().join("run");
    train_tiny(&fixture(), &run, &["--batch-size", "4", "--steps", "2", "--label-column", "category"]);
    let json = dir.path().join("guidance.json");
    let args = ["eval", "guidance", "--scales", "0,3", "--per-class", "2", "--steps", "2", "--sampler", "euler", "--model"];
    let o = stipple().args(args).arg(&run).arg("--data").arg(fixture()).arg("--features").arg(&net).arg("--json").arg(&json).arg("--clip").arg(clip_fixture().join("tiny-clip")).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("| guidance scale | samples | classifier agrees | FD | precision | recall | CLIP score |"), "{}", text(&o));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let classes = 9; // the fixture's categories
    assert_eq!(rows.iter().map(|r| r["scale"].as_f64().unwrap()).collect::<Vec<_>>(), [0.0, 3.0]);
    for r in &rows {
        assert_eq!(r["samples"].as_u64(), Some(2 * classes), "{r}");
        let acc = r["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc) && ((acc * 18.0).round() - acc * 18.0).abs() < 1e-9, "a count out of 18: {r}");
        assert!(r["fd"].as_f64().unwrap() > 0.0, "{r}");
        assert!((0.0..=100.0).contains(&r["clip_score"].as_f64().unwrap()), "{r}");
    }
    assert_ne!(rows[0]["fd"], rows[1]["fd"], "the scale changes the samples");

    // An unconditional model cannot be guided towards a class.
    let plain = dir.path().join("plain");
    train_tiny(&fixture(), &plain, &["--batch-size", "4", "--steps", "1"]);
    let o = stipple().args(args).arg(&plain).arg("--data").arg(fixture()).arg("--features").arg(&net).output().unwrap();
    assert_fails(&o, &args, &["guidance needs a class-conditional or prompt model"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

fn metric_steps(run: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .inspect(|v| assert!(v["fd"].as_f64().unwrap().is_finite() && v["recall"].as_f64().is_some(), "{v}"))
        .map(|v| v["step"].as_u64().unwrap())
        .collect()
}

#[test]
fn sample_quality_is_logged_while_training_and_after_a_resume() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("features.safetensors");
    train_features(&net);
    let run = dir.path().join("run");
    let eval = ["--batch-size", "4", "--steps", "3", "--eval-every", "2", "--eval-count", "8", "--eval-features", net.to_str().unwrap()];
    train_tiny(&fixture(), &run, &eval);
    assert_eq!(metric_steps(&run), [2, 3], "every 2 steps and at the last");
    assert_eq!(image::open(run.join("metrics.png")).unwrap().width(), 800);
    let events: Vec<u8> = std::fs::read_dir(run.join("tensorboard")).unwrap().flat_map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect();
    assert!(events.windows(7).any(|w| w == b"eval/fd"), "TensorBoard scalars under eval/");
    // A resumed run measures on, once per step.
    let o = stipple()
        .args(["train", "--quiet", "--resume", "--steps", "4", "--eval-every", "2", "--eval-count", "8", "--eval-features"])
        .arg(&net)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(metric_steps(&run), [2, 3, 4]);

    let args = ["train", "--eval-every", "2", "--eval-count", "3", "--eval-features"];
    let o = stipple().args(args).arg(&net).arg("--out").arg(dir.path().join("other")).output().unwrap();
    assert_fails(&o, &args, &["--eval-count: at least 4 images are needed"]);
    assert_eq!(o.status.code(), Some(2));

    // A run on a series has no images to measure.
    let csv = dir.path().join("s.csv");
    std::fs::write(&csv, (0..64).fold(String::from("y\n"), |s, i| s + &format!("{}\n", (i as f64 / 3.0).sin()))).unwrap();
    let args = ["train", "--steps", "2", "--context", "12", "--horizon", "4", "--eval-every", "1", "--eval-features"];
    let o = stipple().args(args).arg(&net).arg("--data").arg(&csv).arg("--out").arg(dir.path().join("series")).output().unwrap();
    assert_fails(&o, &args, &["measures the quality of images", "trains on sequences"]);
}

fn clip_fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/clip")
}

#[test]
fn clip_score_against_one_prompt_and_against_captions() {
    let (dir, clip) = (tempfile::tempdir().unwrap(), clip_fixture());
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(clip.join("reference.json")).unwrap()).unwrap();
    let images = clip.join("images");
    let json = dir.path().join("score.json");
    let run = |extra: &[&str]| {
        stipple().args(["eval", "clip-score", "--clip"]).arg(clip.join("tiny-clip")).arg(&images).args(extra).arg("--json").arg(&json).output().unwrap()
    };
    for (extra, want) in [
        (vec!["--prompt", "a photo of a cat"], &reference["one_prompt"]),
        (vec!["--prompts-from", images.join("labels.csv").to_str().unwrap(), "--column", "caption"], &reference["own_captions"]),
    ] {
        let o = run(&extra);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("over 6 image–prompt pairs"), "{}", text(&o));
        let got: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert!((got["mean"].as_f64().unwrap() - want["mean"].as_f64().unwrap()).abs() < 1e-4, "{extra:?}: {} vs {}", got["mean"], want["mean"]);
        assert!((got["std"].as_f64().unwrap() - want["std"].as_f64().unwrap()).abs() < 1e-4, "{extra:?}");
        assert_eq!(got["pairs"].as_array().unwrap().len(), 6);
    }
    let args = ["eval", "clip-score", "--prompts-from", "captions.txt"];
    let o = run(&["--prompts-from", "captions.txt"]);
    assert_fails(&o, &args, &["--prompts-from must name a labels.csv"]);
    let o = run(&["--prompt", "a watercolor lighthouse at dusk by the sea"]);
    assert_fails(&o, &args, &["18 tokens long, 4 more than the 14"]);
    assert_eq!(o.status.code(), Some(2), "bad input: {}", text(&o));
    let o = stipple().args(["eval", "clip-score", "--prompt", "a", "--clip"]).arg(&clip).arg(&images).output().unwrap();
    assert_fails(&o, &args, &["missing config.json, model.safetensors"]);
    assert_eq!(o.status.code(), Some(2), "bad input: {}", text(&o));
}
