//! Text conditioning end to end: a tiny prompt model trained on the fixture's captions,
//! prompted sampling with classifier-free guidance that `rerun` reproduces, img2img and
//! inpainting under a prompt, and the errors of bad prompts.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

mod common;

use common::{assert_fails, fixture, pixels, stipple, text, train_tiny};

/// A text-conditioned model (8×8, prompts of up to 22 tokens) trained once for all tests.
fn model() -> &'static Path {
    static MODEL: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, run) = MODEL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("prompts");
        train_tiny(&fixture(), &run, &[
            "--batch-size", "8", "--sample-count", "4", "--steps", "4",
            "--captions", "caption", "--text-width", "16", "--max-tokens", "24", "--vocab-size", "800",
        ]);
        (dir, run)
    });
    run
}

fn sample(out: &Path, extra: &[&str]) -> Output {
    stipple().args(["sample", "--steps", "4", "--model"]).arg(model()).arg("--out").arg(out).args(extra).output().unwrap()
}

/// Samples one image per seed into `dir/name/` and returns its pixels.
fn one(dir: &Path, name: &str, extra: &[&str]) -> Vec<u8> {
    let out = dir.join(name);
    let o = sample(&out, &[&["-n", "1", "--separate", "--seed", "5", "--sampler", "euler_ancestral"], extra].concat());
    assert!(o.status.success(), "{}", text(&o));
    pixels(&out.join("seed-5.png"))
}

#[test]
fn prompt_models_store_their_text_encoder() {
    let o = stipple().arg("inspect").arg(model().join("model.safetensors")).output().unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("text_encoder") && t.contains("cross_attention_dim"), "{t}");
}

#[test]
fn guidance_scale_one_is_the_prompt_and_zero_the_empty_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cond = one(d, "c", &["--prompt", "red apple", "--guidance-scale", "1"]);
    let uncond = one(d, "u", &[]);
    assert_ne!(cond, uncond, "the prompt must change the image");
    assert_eq!(one(d, "s0", &["--prompt", "red apple", "--guidance-scale", "0"]), uncond);
    assert_eq!(one(d, "s1", &["--prompt", "red apple", "--negative-prompt", "flag", "--guidance-scale", "1"]), cond);
    let guided = one(d, "s3", &["--prompt", "red apple", "--guidance-scale", "3"]);
    let negative = one(d, "n3", &["--prompt", "red apple", "--negative-prompt", "flag", "--guidance-scale", "3"]);
    assert_ne!(guided, cond);
    assert_ne!(guided, negative, "the negative prompt must change the guided image");
    // Without --guidance-scale a prompt is guided at 4.
    assert_eq!(one(d, "default", &["--prompt", "red apple"]), one(d, "s4", &["--prompt", "red apple", "--guidance-scale", "4"]));
}

#[test]
fn several_prompts_make_columns_and_rerun_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grid");
    let o = sample(&out, &[
        "--prompt", "red apple", "--prompt", "cat face", "--guidance-scale", "2.5", "--negative-prompt", "flag",
        "-n", "4", "--separate", "--sampler", "dpmpp_2m_sde",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // Image 3 got the second prompt: a one-prompt run at its seed gives the same pixels.
    let alone = dir.path().join("alone");
    let o = sample(&alone, &[
        "--prompt", "cat face", "--guidance-scale", "2.5", "--negative-prompt", "flag", "-n", "1", "--separate",
        "--seed", "3", "--sampler", "dpmpp_2m_sde",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(pixels(&out.join("seed-3.png")), pixels(&alone.join("seed-3.png")));
    // The web-UI parameters text opens with the image's own prompt and the negative one.
    let texts = stipple_pipeline::read_png_text(&std::fs::read(out.join("seed-3.png")).unwrap(), "seed-3.png").unwrap();
    let params = texts.iter().find(|(k, _)| k == "parameters").map(|(_, v)| v.clone()).unwrap();
    assert!(params.starts_with("cat face\nNegative prompt: flag\nSteps: 4, "), "{params}");
    let again = dir.path().join("again.png");
    let o = stipple().arg("rerun").arg(out.join("seed-3.png")).arg("--out").arg(&again).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(pixels(&again), pixels(&out.join("seed-3.png")));
}

#[test]
fn img2img_and_inpainting_under_a_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let init = dir.path().join("init.png");
    image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([(x * 30) as u8, (y * 30) as u8, 128])).save(&init).unwrap();
    let init_s = init.to_str().unwrap();
    let same = one(dir.path(), "s0", &["--prompt", "red apple", "--guidance-scale", "3", "--init-image", init_s, "--strength", "0"]);
    assert_eq!(same, pixels(&init), "strength 0 returns the init image");
    let mask = dir.path().join("mask.png");
    image::GrayImage::from_fn(8, 8, |_, y| image::Luma([if y < 4 { 0 } else { 255 }])).save(&mask).unwrap();
    let painted = one(dir.path(), "in", &["--prompt", "red apple", "--guidance-scale", "3", "--init-image", init_s, "--mask", mask.to_str().unwrap()]);
    let before = pixels(&init);
    let row = 8 * 3;
    assert_eq!(&painted[..4 * row], &before[..4 * row], "kept rows changed");
    assert_ne!(&painted[4 * row..], &before[4 * row..], "nothing was repainted");
}

#[test]
fn bad_prompts_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.png");
    let fails = |args: &[&str], wanted: &[&str]| assert_fails(&sample(&out, args), args, wanted);
    fails(&["--prompt", "  "], &["--prompt: is empty"]);
    fails(&["--prompt", "red apple", "--negative-prompt", ""], &["--negative-prompt: is empty"]);
    fails(&["--prompt", "red apple red apple red apple red apple red apple red apple red apple red apple red apple"], &["at most 22"]);
    fails(&["--class", "Flags"], &["--class:", "conditioned on text prompts", "give a prompt"]);
    fails(&["--prompt", "red apple", "--class", "Flags"], &["not both"]);
    let long = "a".repeat(1001);
    fails(&["--prompt", &long], &["at most 1000 characters"]);
}

#[test]
fn a_model_without_text_refuses_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("plain");
    train_tiny(&fixture(), &run, &["--batch-size", "4", "--sample-count", "1", "--steps", "1"]);
    let o = stipple().args(["sample", "--steps", "2", "--prompt", "red apple", "--model"]).arg(&run).arg("--out").arg(dir.path().join("x.png")).output().unwrap();
    let t = text(&o);
    assert!(!o.status.success() && o.status.code() == Some(2) && t.contains("--prompt: this model was not trained with text") && t.contains("captions"), "{t}");
    // Captions from a column that does not exist: the error lists the columns.
    let o = stipple().args(["train", "--quiet", "--steps", "1", "--captions", "title", "--data"]).arg(fixture()).arg("--out").arg(dir.path().join("r")).output().unwrap();
    let t = text(&o);
    assert!(!o.status.success() && t.contains("no column \"title\"") && t.contains("caption"), "{t}");
    // Captions longer than the encoder reads: the error names the image and the flag.
    let o = stipple().args(["train", "--quiet", "--steps", "1", "--captions", "caption", "--max-tokens", "4", "--data"]).arg(fixture()).arg("--out").arg(dir.path().join("r")).output().unwrap();
    let t = text(&o);
    assert!(!o.status.success() && t.contains("1st-place-medal.png") && t.contains("--max-tokens"), "{t}");
}

#[test]
fn a_pretrained_clip_encoder_is_used_frozen() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let captions = ["red apple", "cat", "alien monster", "red cat", "apple", "monster", "red", "alien"];
    let mut csv = String::from("file,caption\n");
    for (i, entry) in std::fs::read_dir(fixture()).unwrap().filter_map(Result::ok).filter(|e| e.path().extension().is_some_and(|x| x == "png")).take(8).enumerate() {
        std::fs::copy(entry.path(), data.join(format!("{i}.png"))).unwrap();
        csv.push_str(&format!("{i}.png,{}\n", captions[i]));
    }
    std::fs::write(data.join("labels.csv"), csv).unwrap();
    let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("../stipple-nn/tests/fixtures/tiny-clip");
    let run = dir.path().join("run");
    let clip_dir = clip.to_str().unwrap();
    train_tiny(&data, &run, &["--batch-size", "4", "--sample-count", "2", "--steps", "3", "--captions", "caption", "--clip", clip_dir]);
    let dev = candle_core::Device::Cpu;
    let model = stipple_nn::load_model_file(&run.join("model.safetensors"), &dev).unwrap();
    let ours = model.text.unwrap().encode(&["red apple", ""], &dev).unwrap();
    let theirs = stipple_nn::text::load_clip_folder(&clip, &dev).unwrap().encode(&["red apple", ""], &dev).unwrap();
    assert_eq!(ours.to_vec3::<f32>().unwrap(), theirs.to_vec3::<f32>().unwrap(), "the CLIP encoder must stay frozen");
    let o = stipple().args(["sample", "--steps", "3", "-n", "2", "--prompt", "red cat", "--guidance-scale", "3", "--model"]).arg(&run).arg("--out").arg(dir.path().join("s.png")).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = stipple().args(["train", "--quiet", "--steps", "1", "--clip"]).arg(&clip).arg("--out").arg(dir.path().join("r2")).output().unwrap();
    assert!(!o.status.success() && text(&o).contains("clip: needs captions"), "{}", text(&o));
}
