//! Sound end to end: train a tiny 1-D model on WAV clips written by the test (one at another
//! sample rate, resampled), sample clips as WAV files that carry their recipe, read it back
//! with `info`; files that are not WAV are refused with messages naming them. A labelled
//! folder (one sub-folder per "word") trains a class-conditional model sampled by class with
//! classifier-free guidance, and `rerun` regenerates a clip bit for bit from its WAV.

use std::path::Path;

mod common;

use common::{assert_fails, stipple, text};
use stipple_audio::{decode_wav, encode_wav, read_info, Clip};

const RATE: u32 = 8000;

/// A clip of `n` samples of a tone at `hz` Hz (amplitude 0.5) at `rate` Hz.
fn tone(hz: f32, n: usize, rate: u32) -> Clip {
    let samples = (0..n).map(|i| 0.5 * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin()).collect();
    Clip { rate, samples }
}

fn write(path: &Path, clip: &Clip) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, encode_wav(clip, "").unwrap()).unwrap();
}

fn train(data: &Path, run: &Path) -> std::process::Output {
    train_with(data, run, &[])
}

fn train_with(data: &Path, run: &Path, extra: &[&str]) -> std::process::Output {
    stipple()
        .args(["train", "--quiet", "--sound", "--clip-length", "256", "--channels", "16,32", "--layers-per-block", "1"])
        .args(extra)
        .args(["--batch-size", "8", "--steps", "3", "--sample-every", "0", "--sample-count", "2"])
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(run)
        .output()
        .unwrap()
}

#[test]
fn train_on_clips_then_sample_wav_with_recipe() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("clips");
    for (k, hz) in [220.0, 330.0, 440.0].iter().enumerate() {
        write(&data.join(format!("tone{k}.wav")), &tone(*hz, 1000, RATE));
    }
    // A sub-folder is searched too; a clip at another rate is resampled, a short one padded.
    write(&data.join("more/short.wav"), &tone(550.0, 100, RATE));
    write(&data.join("more/fast.wav"), &tone(660.0, 2000, 16_000));
    let run = dir.path().join("run");
    let o = train(&data, &run);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("sample:  stipple sample --model") && !text(&o).contains("forecast"), "a sound run points to `sample`: {}", text(&o));
    let o = stipple().arg("inspect").arg(&run).output().unwrap();
    assert!(text(&o).contains("\"sample_rate\": 8000") && text(&o).contains("\"unet1d\""), "{}", text(&o));

    let out = dir.path().join("out");
    let trajectory = dir.path().join("steps.png");
    let o = stipple().args(["sample", "--steps", "3", "-n", "2", "--seed", "5", "--model"]).arg(&run).arg("-o").arg(&out).arg("--trajectory").arg(&trajectory).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // The trajectory: one row of spectrograms of x̂₀ per step, one column per clip.
    let steps = image::open(&trajectory).unwrap();
    for seed in [5, 6] {
        let path = out.join(format!("seed-{seed}.wav"));
        // Each clip's spectrogram beside it, the size of one cell of the trajectory.
        let picture = image::open(path.with_extension("png")).unwrap();
        assert_eq!((steps.width(), steps.height()), (2 * picture.width() + 3 * 2, 3 * picture.height() + 4 * 2), "3 steps × 2 clips with 2-pixel borders");
        let bytes = std::fs::read(&path).unwrap();
        let clip = decode_wav(&bytes, "clip").unwrap();
        assert_eq!((clip.rate, clip.samples.len()), (RATE, 256));
        let recipe: serde_json::Value = serde_json::from_str(&read_info(&bytes).unwrap()).unwrap();
        assert_eq!(recipe["seed"], seed);
        assert_eq!((recipe["width"].as_u64(), recipe["height"].as_u64()), (Some(256), Some(1)));
        let o = stipple().arg("info").arg(&path).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains(&format!("Seed: {seed}")), "{}", text(&o));
    }
    // One clip to a named file; several clips to one file is refused.
    let one = dir.path().join("one.wav");
    let o = stipple().args(["sample", "--steps", "2", "-n", "1", "--model"]).arg(&run).arg("-o").arg(&one).output().unwrap();
    assert!(o.status.success() && one.is_file(), "{}", text(&o));
    let o = stipple().args(["sample", "--steps", "2", "-n", "3", "--model"]).arg(&run).arg("-o").arg(&one).output().unwrap();
    assert_fails(&o, &["3 clips to one file"], &["--out", "3 clips"]);
    // A trajectory is a PNG of spectrograms: another file type is refused before sampling.
    let o = stipple().args(["sample", "--steps", "2", "-n", "1", "--model"]).arg(&run).arg("-o").arg(dir.path().join("x.wav")).args(["--trajectory", "t.gif"]).output().unwrap();
    assert_fails(&o, &["a GIF trajectory"], &["--trajectory", "PNG of spectrograms"]);
    // A sound model makes no images, and forecasts nothing.
    let csv = dir.path().join("s.csv");
    std::fs::write(&csv, "y\n1\n2\n").unwrap();
    let o = stipple().args(["forecast", "--model"]).arg(&run).arg("--data").arg(&csv).output().unwrap();
    assert_fails(&o, &["forecast with a sound model"], &["forecast window"]);
}

#[test]
fn non_wav_files_and_bad_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    write(&junk.join("a.wav"), &tone(220.0, 1000, RATE));
    std::fs::write(junk.join("c.wav"), b"not a wave file").unwrap();
    let o = train(&junk, &dir.path().join("r2"));
    assert_fails(&o, &["not a WAV"], &["c.wav", "not a readable WAV"]);
    let o = stipple().args(["train", "--sound", "--sample-rate", "0", "--data"]).arg(&junk).output().unwrap();
    assert_fails(&o, &["rate 0"], &["sample_rate", "above 0"]);
    let o = stipple().args(["train", "--sound", "--clip-length", "30", "--data"]).arg(&junk).output().unwrap();
    assert_fails(&o, &["odd length"], &["clip_length", "multiple of 4"]);
}

/// Samples one clip of `run` at seed 3 into `out` with `extra` settings.
fn sample_one(run: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    stipple().args(["sample", "--steps", "3", "-n", "1", "--seed", "3"]).args(extra).arg("--model").arg(run).arg("-o").arg(out).output().unwrap()
}

/// The samples of a WAV file.
fn samples(path: &Path) -> Vec<f32> {
    decode_wav(&std::fs::read(path).unwrap(), "clip").unwrap().samples
}

#[test]
fn labelled_words_sample_by_class_with_guidance_and_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("words");
    // Two "words", each a tone of its own frequency in its own folder.
    for (word, hz) in [("low", 220.0), ("high", 880.0)] {
        for k in 0..3 {
            write(&data.join(word).join(format!("{k}.wav")), &tone(hz + 10.0 * k as f32, 600, RATE));
        }
    }
    let run = dir.path().join("run");
    let o = train_with(&data, &run, &["--labels", "folders"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = stipple().arg("inspect").arg(&run).output().unwrap();
    assert!(text(&o).contains("\"classes\": [\n    \"high\",\n    \"low\"\n  ]"), "the model file lists both classes: {}", text(&o));

    // A class by name with guidance: deterministic, recorded in the recipe.
    let guided = dir.path().join("guided.wav");
    let o = sample_one(&run, &guided, &["--class", "low", "--guidance-scale", "3"]);
    assert!(o.status.success(), "{}", text(&o));
    let again = dir.path().join("again.wav");
    assert!(sample_one(&run, &again, &["--class", "low", "--guidance-scale", "3"]).status.success());
    assert_eq!(samples(&guided), samples(&again), "the same class, guidance and seed give the same clip");
    let recipe: serde_json::Value = serde_json::from_str(&read_info(&std::fs::read(&guided).unwrap()).unwrap()).unwrap();
    assert_eq!((recipe["conditioning"]["class"].as_str(), recipe["conditioning"]["guidance_scale"].as_f64()), (Some("low"), Some(3.0)));
    let o = stipple().arg("info").arg(&guided).output().unwrap();
    assert!(text(&o).contains("CFG scale: 3") && text(&o).contains("\"class\": \"low\""), "{}", text(&o));

    // The class by its index is the same class, and the recipe names it.
    let by_index = dir.path().join("index.wav");
    assert!(sample_one(&run, &by_index, &["--class", "1", "--guidance-scale", "3"]).status.success());
    assert_eq!(samples(&by_index), samples(&guided), "class 1 is \"low\"");
    assert!(read_info(&std::fs::read(&by_index).unwrap()).unwrap().contains("\"class\": \"low\""));

    // Guidance changes the clip: the conditional model alone (scale 1), and the other class.
    let plain = dir.path().join("plain.wav");
    assert!(sample_one(&run, &plain, &["--class", "low", "--guidance-scale", "1"]).status.success());
    assert_ne!(samples(&plain), samples(&guided), "a guided clip differs from an unguided one");
    let other = dir.path().join("other.wav");
    assert!(sample_one(&run, &other, &["--class", "high", "--guidance-scale", "3"]).status.success());
    assert_ne!(samples(&other), samples(&guided));

    // An unknown class is a clear error naming the known ones.
    let o = sample_one(&run, &dir.path().join("x.wav"), &["--class", "maybe"]);
    assert_fails(&o, &["--class maybe"], &["--class", "unknown class \"maybe\"", "high, low"]);
    assert!(!dir.path().join("x.wav").exists(), "nothing written");

    // rerun regenerates the clip bit for bit from the recipe in its WAV, spectrogram beside it.
    let rerun = dir.path().join("rerun.wav");
    let o = stipple().arg("rerun").arg(&guided).arg("-o").arg(&rerun).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(&rerun).unwrap(), std::fs::read(&guided).unwrap(), "the same WAV file, samples and recipe");
    assert!(rerun.with_extension("png").is_file());
    // One clip of a batch of several reruns alone to the same samples.
    let batch = dir.path().join("batch");
    assert!(stipple().args(["sample", "--steps", "3", "-n", "3", "--seed", "1", "--class", "high", "--guidance-scale", "2", "--model"]).arg(&run).arg("-o").arg(&batch).output().unwrap().status.success());
    let o = stipple().arg("rerun").arg(batch.join("seed-3.wav")).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(samples(&batch.join("seed-3.rerun.wav")), samples(&batch.join("seed-3.wav")));

    // A changed model file is refused, naming its hash; --force regenerates with a warning.
    let retrained = dir.path().join("retrained");
    assert!(train_with(&data, &retrained, &["--labels", "folders", "--seed", "7"]).status.success());
    let o = stipple().arg("rerun").arg(&guided).arg("--model").arg(&retrained).arg("-o").arg(dir.path().join("r2.wav")).output().unwrap();
    assert_fails(&o, &["rerun with another model"], &["--model", "SHA-256", "force"]);
    assert!(!dir.path().join("r2.wav").exists());
    let o = stipple().arg("rerun").arg(&guided).arg("--model").arg(&retrained).arg("--force").arg("-o").arg(dir.path().join("r3.wav")).output().unwrap();
    assert!(o.status.success() && text(&o).contains("warning"), "{}", text(&o));
    // A WAV without a recipe is refused.
    let bare = dir.path().join("bare.wav");
    write(&bare, &tone(220.0, 100, RATE));
    let o = stipple().arg("rerun").arg(&bare).output().unwrap();
    assert_fails(&o, &["rerun a bare WAV"], &["FILE", "carries no Stipple recipe"]);
}
