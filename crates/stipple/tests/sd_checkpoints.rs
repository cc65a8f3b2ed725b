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
    // The same LoRA named in the prompt (from MODELS/loras/) makes the same picture, and the
    // recipe records it, so `rerun` merges it again; a changed LoRA file is refused.
    let models = dir.path().join("models");
    std::fs::create_dir_all(models.join("loras")).unwrap();
    std::fs::copy(fixture("tiny-sd15-lora.safetensors"), models.join("loras/style.safetensors")).unwrap();
    let tagged = dir.path().join("tagged.png");
    let o = stipple()
        .args(["sample", "--prompt", "a (red:1.2) apple <lora:style:0.8>", "--negative-prompt", "blur", "--steps", "3", "-n", "2", "--width", "32", "--height", "24"])
        .arg("--model")
        .arg(fixture("tiny-sd15"))
        .arg("--models")
        .arg(&models)
        .arg("--out")
        .arg(&tagged)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(pixels(&tagged), pixels(&lora), "a prompt tag merges the LoRA as --lora does");
    // The web UI's "Lora hashes": the first 12 digits of the SHA-256 of the file's tensor data
    // (hashlib over the bytes after the header; kohya's addnet_hash_safetensors).
    let info = text(&stipple().arg("info").arg(&tagged).output().unwrap());
    assert!(info.contains(r#"Lora hashes: "style: 6e0c83d6ea43""#), "{info}");
    let again = dir.path().join("again.png");
    let o = stipple().arg("rerun").arg(&lora).arg("--out").arg(&again).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(pixels(&again), pixels(&lora), "rerun merges the recorded LoRA");
    let info = text(&stipple().arg("info").arg(&tagged).output().unwrap());
    assert!(info.contains("style.safetensors") && info.contains("\"multiplier\": 0.8"), "{info}");
    let mut changed = std::fs::read(models.join("loras/style.safetensors")).unwrap();
    *changed.last_mut().unwrap() ^= 1;
    std::fs::write(models.join("loras/style.safetensors"), changed).unwrap();
    let o = stipple().arg("rerun").arg(&tagged).arg("--out").arg(dir.path().join("no.png")).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("LoRA file") && text(&o).contains("style.safetensors"), "{}", text(&o));
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

/// A 40×30 PNG of `f(x, y)`.
fn write_png(path: &std::path::Path, f: impl Fn(u32, u32) -> [u8; 3]) {
    image::RgbImage::from_fn(40, 30, |x, y| image::Rgb(f(x, y))).save(path).unwrap();
}

#[test]
fn img2img_and_inpainting_from_the_command_line_rerun_to_the_same_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let (init, mask) = (dir.path().join("init.png"), dir.path().join("mask.png"));
    write_png(&init, |x, y| [(x * 6) as u8, (y * 8) as u8, 128]);
    write_png(&mask, |x, y| if x < 20 && y < 16 { [255; 3] } else { [0; 3] });
    let txt2img = dir.path().join("txt2img.png");
    let o = stipple()
        .args(["sample", "--prompt", "a red apple", "--steps", "3", "-n", "1", "--width", "32", "--height", "24", "--sampler", "euler_ancestral", "--model"])
        .arg(fixture("tiny-sd15"))
        .arg("--out")
        .arg(&txt2img)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let m = mask.to_str().unwrap();
    let cases: [(&str, Vec<&str>); 3] =
        [("img2img.png", vec!["--strength", "0.6"]), ("inpaint.png", vec!["--mask", m]), ("inpaint-blur.png", vec!["--mask", m, "--mask-blur", "4"])];
    let mut made = vec![txt2img.clone()];
    for (name, extra) in cases {
        let out = dir.path().join(name);
        let o = stipple()
            .args(["sample", "--prompt", "a red apple", "--steps", "3", "-n", "1", "--width", "32", "--height", "24", "--model"])
            .arg(fixture("tiny-sd15"))
            .arg("--init-image")
            .arg(&init)
            .args(&extra)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", text(&o));
        made.push(out);
    }
    let (a, b) = (pixels(&made[1]), pixels(&txt2img));
    assert_ne!(a, b, "img2img starts from the init image");
    // Inpainting keeps the unmasked pixels (right and bottom of the 32×24 output) whatever the
    // seed; the masked corner is painted anew.
    let other = dir.path().join("inpaint-seed-5.png");
    let o = stipple()
        .args(["sample", "--prompt", "a red apple", "--steps", "3", "-n", "1", "--width", "32", "--height", "24", "--seed", "5", "--model"])
        .arg(fixture("tiny-sd15"))
        .args(["--init-image", init.to_str().unwrap(), "--mask", mask.to_str().unwrap(), "--out"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // (A grid of one image: 2 pixels of border.)
    let (p, q) = (image::open(&made[2]).unwrap().to_rgb8(), image::open(&other).unwrap().to_rgb8());
    assert_eq!(p.dimensions(), (32 + 4, 24 + 4));
    for (x, y) in [(0, 20), (31, 23), (25, 2), (16, 13)] {
        assert_eq!(p.get_pixel(x + 2, y + 2), q.get_pixel(x + 2, y + 2), "kept pixel ({x}, {y})");
    }
    assert!((2..14).any(|y| (2..16).any(|x| p.get_pixel(x, y) != q.get_pixel(x, y))), "the masked corner depends on the seed");
    // A blurred mask (σ 4 px of the 40×30 mask, about 8 rows of the 24-row output on either
    // side of its edge at row 12.8) fades the painted corner into the kept picture: the rows
    // below the corner that a hard mask keeps exactly take some of the painted picture, the
    // bottom rows are kept as before, and the web UI's parameters name the blur.
    let blurred = image::open(&made[3]).unwrap().to_rgb8();
    let below_corner = |img: &image::RgbImage| (13..17).flat_map(|y| (0..14).map(move |x| (x, y))).map(|(x, y)| *img.get_pixel(x + 2, y + 2)).collect::<Vec<_>>();
    assert_ne!(below_corner(&blurred), below_corner(&p), "the blur reaches below the corner");
    for (x, y) in [(0, 23), (31, 23), (25, 2), (16, 22)] {
        assert_eq!(blurred.get_pixel(x + 2, y + 2), p.get_pixel(x + 2, y + 2), "pixel ({x}, {y}) beyond the blur");
    }
    let texts = stipple_pipeline::read_png_text(&std::fs::read(&made[3]).unwrap(), "inpaint-blur.png").unwrap();
    let params = texts.iter().find(|(k, _)| k == "parameters").map(|(_, v)| v.clone()).unwrap();
    assert!(params.contains(", Mask blur: 4,"), "{params}");
    for png in &made {
        let o = stipple().arg("rerun").arg(png).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(pixels(&png.with_extension("rerun.png")), pixels(png), "rerun of {}", png.display());
    }
}

#[test]
fn trajectories_show_previews_and_huge_sizes_are_refused_with_the_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let traj = dir.path().join("traj.png");
    let o = sample("tiny-sd15", &["--trajectory", traj.to_str().unwrap()], &dir.path().join("t.png"));
    assert!(o.status.success(), "{}", text(&o));
    let img = image::open(&traj).unwrap();
    assert!(img.width() > 0 && img.height() > 0);
    let o = sample("tiny-sd15", &["--trajectory-json", dir.path().join("t.json").to_str().unwrap()], &dir.path().join("u.png"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--trajectory-json"), "{}", text(&o));
    let started = std::time::Instant::now();
    let o = stipple()
        .args(["sample", "--prompt", "x", "--steps", "2", "-n", "1", "--width", "16384", "--height", "16384", "--model"])
        .arg(fixture("tiny-sd15"))
        .arg("--out")
        .arg(dir.path().join("huge.png"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--width: 16384×16384 pixels with batch_size 1 needs an estimated"), "{}", text(&o));
    assert!(started.elapsed().as_secs() < 30, "refused before sampling");
}

#[test]
fn vae_tiling_decodes_large_pictures_in_tiles_and_reruns_them() {
    let dir = tempfile::tempdir().unwrap();
    // 96×64 pixels: three by two of the fixture VAE's 32-pixel tiles, overlapping.
    let run = |extra: &[&str], out: &std::path::Path| {
        stipple()
            .args(["sample", "--prompt", "a red apple", "--steps", "2", "-n", "1", "--width", "96", "--height", "64", "--model"])
            .arg(fixture("tiny-sd15"))
            .args(extra)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let (whole, tiled) = (dir.path().join("whole.png"), dir.path().join("tiled.png"));
    let o = run(&[], &whole);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["--vae-tiling"], &tiled);
    assert!(o.status.success(), "{}", text(&o));
    let (a, b) = (pixels(&whole), pixels(&tiled));
    assert_ne!(a, b, "the blended seams change some pixels");
    let mean = a.iter().zip(&b).map(|(x, y)| x.abs_diff(*y) as f64).sum::<f64>() / a.len() as f64;
    assert!(mean < 8.0, "tiles decode the same latents: mean difference {mean} levels");
    let info = text(&stipple().arg("info").arg(&tiled).output().unwrap());
    assert!(info.contains("\"vae_tiling\": true"), "{info}");
    let o = stipple().arg("rerun").arg(&tiled).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(pixels(&tiled.with_extension("rerun.png")), b, "rerun decodes in tiles again");
    // A Stipple model has no VAE.
    let o = stipple().args(["sample", "--vae-tiling", "--steps", "2", "-n", "1", "--out"]).arg(dir.path().join("p.png")).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--vae-tiling: is for Stable Diffusion checkpoints"), "{}", text(&o));
}
