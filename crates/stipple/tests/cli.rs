//! End-to-end tests of the `stipple` binary on the committed fixture (tiny networks).

use std::path::Path;
use std::process::Command;

mod common;

use common::{fixture, pixels, stipple, text, TINY_NET};

/// Flags for a seconds-long run: an 8×8 two-level U-Net.
fn tiny_train(data: &Path, out: &Path, steps: usize) -> Command {
    let mut c = stipple();
    c.args(["train", "--quiet"])
        .args(TINY_NET)
        .args(["--batch-size", "4", "--sample-count", "4", "--checkpoint-every", "1"])
        .args(["--steps", &steps.to_string(), "--sample-every", "0"])
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out);
    c
}

#[test]
fn train_then_sample_then_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let o = tiny_train(&fixture(), &run, 3).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    for f in ["model.safetensors", "checkpoint/state.json", "samples/latest.png", "samples/step-000003.png", "train.jsonl"] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    assert_eq!(std::fs::read_to_string(run.join("train.jsonl")).unwrap().lines().count(), 3);
    assert_eq!(saved_config(&run)["random_flip"], false, "flips are opt-in");

    let grid = dir.path().join("grid.png");
    let o = stipple()
        .args(["sample", "--steps", "3", "--count", "5", "--sampler", "euler_ancestral", "--model"])
        .arg(&run)
        .arg("--out")
        .arg(&grid)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let img = image::open(&grid).unwrap();
    // 3 columns × 2 rows of 8-px tiles with 2-px borders.
    assert_eq!((img.width(), img.height()), (3 * 10 + 2, 2 * 10 + 2));

    let sep = dir.path().join("each");
    let o = stipple()
        .args(["sample", "--steps", "2", "--count", "2", "--seed", "7", "--separate", "--model"])
        .arg(run.join("model.safetensors"))
        .arg("--out")
        .arg(&sep)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(sep.join("seed-7.png").is_file() && sep.join("seed-8.png").is_file());

    let o = stipple().arg("inspect").arg(&run).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    for needle in ["format: stipple-model", "format_version: 1", "step: 3", "block_out_channels", "prediction_type"] {
        assert!(out.contains(needle), "{needle} not in {out}");
    }
}

#[test]
fn same_seed_same_image_whatever_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    assert!(tiny_train(&fixture(), &run, 1).status().unwrap().success());
    let mut files = vec![];
    for (bs, name) in [("1", "a"), ("3", "b")] {
        let out = dir.path().join(name);
        let o = stipple()
            .args(["sample", "--steps", "3", "--count", "3", "--separate", "--sampler", "euler_ancestral"])
            .args(["--batch-size", bs, "--model"])
            .arg(&run)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        files.push(out.join("seed-2.png"));
    }
    // The same pixels; the recipes differ in the batch recorded for `rerun`.
    assert_eq!(pixels(&files[0]), pixels(&files[1]));
}

#[test]
fn missing_data_folder_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder");
    let o = tiny_train(&missing, &dir.path().join("run"), 1).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no-such-folder"), "{}", text(&o));
}

#[test]
fn unknown_sampler_schedule_and_rng_list_the_accepted_names() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, bad, names) in [
        ("--sampler", "eulr", &["ddpm", "ddim", "euler", "euler_ancestral", "heun", "dpmpp_2m"][..]),
        ("--schedule", "karas", &["karras", "exponential", "leading", "trailing", "linspace"][..]),
        ("--rng", "gpu", &["nv", "cpu"][..]),
    ] {
        let o = stipple().args(["sample", flag, bad, "--model"]).arg(dir.path()).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "bad usage: {}", text(&o));
        assert!(text(&o).contains(&format!("error: {flag}: unknown")), "the flag is named: {}", text(&o));
        for n in names {
            assert!(text(&o).contains(n), "{n} not in {}", text(&o));
        }
    }
}

#[test]
fn broken_model_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    assert!(tiny_train(&fixture(), &run, 1).status().unwrap().success());
    let good = std::fs::read(run.join("model.safetensors")).unwrap();
    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let foreign = dir.path().join("foreign.safetensors");
    std::fs::write(&foreign, b"definitely not a safetensors file").unwrap();
    for (path, needle) in [(&truncated, "truncated"), (&foreign, "foreign.safetensors")] {
        let sample = stipple().args(["sample", "--model"]).arg(path).arg("--out").arg(dir.path().join("x.png")).output();
        let inspect = stipple().arg("inspect").arg(path).output();
        for o in [sample.unwrap(), inspect.unwrap()] {
            assert_eq!(o.status.code(), Some(1), "{}", text(&o));
            assert!(text(&o).contains(needle), "{needle} not in {}", text(&o));
        }
    }
}

#[test]
fn a_loss_that_turns_nan_stops_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    // An absurd learning rate sends the weights to ±1e30 after the first update, so the
    // second step's loss overflows.
    let o = tiny_train(&fixture(), &run, 50).args(["--lr", "1e30", "--warmup", "0", "--grad-clip", "0"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let msg = text(&o);
    assert!(msg.contains("at step 2") && msg.contains("last good checkpoint (1 steps)"), "{msg}");
    let state = std::fs::read_to_string(run.join("checkpoint/state.json")).unwrap();
    assert!(state.contains("\"step\": 1"), "{state}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_leaves_a_valid_checkpoint_that_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut child = tiny_train(&fixture(), &run, 100_000).stdout(std::process::Stdio::null()).spawn().unwrap();
    let state = run.join("checkpoint/state.json");
    let t0 = std::time::Instant::now();
    while !state.is_file() {
        assert!(t0.elapsed().as_secs() < 120, "no checkpoint appeared");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let ok = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    // The checkpoint loads: resume to one step beyond it.
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let step = saved["step"].as_u64().unwrap() as usize;
    let o = tiny_train(&fixture(), &run, step + 1).arg("--resume").output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(&format!("now at step {}", step + 1)), "{}", text(&o));
}

/// The configuration in the checkpoint of `run`.
fn saved_config(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("checkpoint/config.json")).unwrap()).unwrap()
}

#[test]
fn resume_keeps_the_runs_total_and_its_flips() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let o = tiny_train(&fixture(), &run, 3).arg("--random-flip").output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(saved_config(&run)["random_flip"], true);
    // Without --steps the run keeps its own total (3), not the default of a new run.
    let resume = || {
        let mut c = stipple();
        c.args(["train", "--quiet", "--resume", "--out"]).arg(&run);
        c
    };
    let o = resume().output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("trained 0 steps") && text(&o).contains("now at step 3"), "{}", text(&o));
    // --steps extends it; the stored flips stay on although the flag is absent.
    let o = resume().args(["--steps", "4"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("trained 1 steps") && text(&o).contains("now at step 4"), "{}", text(&o));
    assert_eq!(saved_config(&run)["steps"], 4);
    assert_eq!(saved_config(&run)["random_flip"], true);
    let log = std::fs::read_to_string(run.join("train.jsonl")).unwrap();
    let steps: Vec<u64> = log.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [1, 2, 3, 4]);
}

#[test]
fn a_second_run_in_the_same_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    assert!(tiny_train(&fixture(), &run, 1).status().unwrap().success());
    let o = tiny_train(&fixture(), &run, 1).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("--resume"), "{}", text(&o));
}

#[test]
fn every_flag_is_explained_in_help() {
    for sub in ["train", "sample", "inspect"] {
        let o = stipple().args([sub, "-h"]).output().unwrap();
        assert!(o.status.success());
        let help = text(&o);
        // clap prints each flag with its doc on the same line or, when long, the next one;
        // an undocumented flag stands alone.
        let lines: Vec<&str> = help.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate().filter(|(_, l)| l.starts_with('-')) {
            let same_line = line.split_once("  ").map(|x| x.1).is_some_and(|d| !d.trim().is_empty());
            let next_line = lines.get(i + 1).is_some_and(|n| !n.is_empty() && !n.starts_with('-'));
            assert!(same_line || next_line, "{sub}: flag without help: {line}");
        }
    }
}
