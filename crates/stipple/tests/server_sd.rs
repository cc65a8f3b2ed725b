//! The server with a Stable Diffusion checkpoint in its models folder (the tiny SD 1.x
//! fixture of `tests/reference/make_sd_fixture.py` as a diffusers folder): listed by the web
//! UI's `sd-models`, chosen by name in `/sdapi/v1/txt2img` and `img2img` (with a mask),
//! `/v1/images/generations` and `/api/jobs`, with previews of every step; a LoRA named by a
//! prompt's `<lora:NAME:M>` tag; per-token attention maps.

mod serve;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{json, Value};
use serve::{get, post_json, runtime, Server};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sd").join(name)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The size of a base64 PNG.
fn png_size(text: &str) -> (u32, u32) {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).unwrap();
    let img = image::load_from_memory(&bytes).unwrap();
    (img.width(), img.height())
}

fn png(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb(f(x, y)));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img).write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

#[test]
fn a_checkpoint_in_the_models_folder_is_served_by_name() {
    let server = Server::start(&[]);
    copy_dir(&fixture("tiny-sd15"), &server.dirs.path().join("models").join("sd15"));
    let loras = server.dirs.path().join("models").join("loras");
    std::fs::create_dir_all(&loras).unwrap();
    std::fs::copy(fixture("tiny-sd15-lora.safetensors"), loras.join("style.safetensors")).unwrap();
    let addr = server.addr;
    runtime().block_on(async move {
        let r = get(addr, "/sdapi/v1/sd-models").await.unwrap();
        let list = r.json().unwrap();
        let row = list.as_array().unwrap().iter().find(|m| m["model_name"] == "sd15").unwrap_or_else(|| panic!("{list}"));
        assert_eq!(row["architecture"], "Stable Diffusion 1.x");
        assert_eq!(row["filename"], "sd15");
        let over = json!({ "sd_model_checkpoint": "sd15" });

        let body = json!({ "prompt": "a red apple", "steps": 2, "width": 32, "height": 24, "seed": 3, "override_settings": over });
        let r = post_json(addr, "/sdapi/v1/txt2img", &body).await.unwrap();
        let v = r.json().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 200, "{v}");
        assert_eq!(png_size(v["images"][0].as_str().unwrap()), (32, 24));
        let info: Value = serde_json::from_str(v["info"].as_str().unwrap()).unwrap();
        assert_eq!(info["sd_model_name"], "sd15");

        // A LoRA in models/loras/ named by the prompt's tag: listed, merged, and an unknown
        // name refused by field.
        let r = get(addr, "/sdapi/v1/loras").await.unwrap();
        assert_eq!(r.json().unwrap()[0]["name"], "style", "{}", r.text());
        let plain = v["images"][0].as_str().unwrap().to_string();
        let tagged = json!({ "prompt": "a red apple <lora:style:0.8>", "steps": 2, "width": 32, "height": 24, "seed": 3, "override_settings": over });
        let r = post_json(addr, "/sdapi/v1/txt2img", &tagged).await.unwrap();
        let t = r.json().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 200, "{t}");
        assert_ne!(t["images"][0].as_str().unwrap(), plain, "the LoRA changes the picture");
        let gone = json!({ "prompt": "a red apple <lora:gone:1>", "steps": 1, "width": 32, "height": 24, "override_settings": over });
        let r = post_json(addr, "/sdapi/v1/txt2img", &gone).await.unwrap();
        assert_eq!(r.status, 422, "{}", r.text());
        assert!(r.text().contains("prompt") && r.text().contains("gone.safetensors"), "{}", r.text());

        // Without a size: the checkpoint's own (512 for SD 1.x) would be slow; a size that is not
        // a multiple of the VAE's scale is refused by name.
        let bad = json!({ "prompt": "a red apple", "steps": 1, "width": 33, "height": 24, "override_settings": over });
        let r = post_json(addr, "/sdapi/v1/txt2img", &bad).await.unwrap();
        assert_eq!(r.status, 422, "{}", r.text());
        assert!(r.text().contains("width"), "{}", r.text());

        let init = png(32, 24, |x, y| [(x * 8) as u8, (y * 10) as u8, 90]);
        let mask = png(32, 24, |x, _| if x < 16 { [255; 3] } else { [0; 3] });
        let body = json!({
            "prompt": "a red apple", "steps": 2, "width": 32, "height": 24, "denoising_strength": 1.0,
            "init_images": [b64(&init)], "mask": b64(&mask), "override_settings": over,
        });
        let r = post_json(addr, "/sdapi/v1/img2img", &body).await.unwrap();
        let v = r.json().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 200, "{v}");
        let out = base64::engine::general_purpose::STANDARD.decode(v["images"][0].as_str().unwrap()).unwrap();
        let out = image::load_from_memory(&out).unwrap().to_rgb8();
        let init = image::load_from_memory(&init).unwrap().to_rgb8();
        for (x, y) in [(20, 3), (31, 23), (16, 12)] {
            assert_eq!(out.get_pixel(x, y), init.get_pixel(x, y), "kept pixel ({x}, {y})");
        }
        // The web UI's mask blur (its clients send 4 by default): the painted half fades into
        // the kept one over about 10 pixels beyond the mask's edge at x = 16, and the info
        // names it.
        let mut blurred = body.clone();
        blurred["mask_blur"] = json!(4);
        let r = post_json(addr, "/sdapi/v1/img2img", &blurred).await.unwrap();
        let v = r.json().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 200, "{v}");
        let info: Value = serde_json::from_str(v["info"].as_str().unwrap()).unwrap();
        assert!(info["infotexts"][0].as_str().unwrap().contains("Mask blur: 4"), "{info}");
        let soft = base64::engine::general_purpose::STANDARD.decode(v["images"][0].as_str().unwrap()).unwrap();
        let soft = image::load_from_memory(&soft).unwrap().to_rgb8();
        assert!((16..22).any(|x| (0..24).any(|y| soft.get_pixel(x, y) != init.get_pixel(x, y))), "the blur reaches past the mask's edge");
        for (x, y) in [(31, 23), (30, 3)] {
            assert_eq!(soft.get_pixel(x, y), init.get_pixel(x, y), "pixel ({x}, {y}) beyond the blur");
        }

        let body = json!({ "model": "sd15", "prompt": "a red apple", "size": "32x24" });
        let r = post_json(addr, "/v1/images/generations", &body).await.unwrap();
        let v = r.json().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 200, "{v}");
        assert_eq!(png_size(v["data"][0]["b64_json"].as_str().unwrap()), (32, 24));

        let body = json!({ "kind": "generate", "model": "sd15", "prompt": "a red apple", "steps": 3, "count": 1, "width": 32, "height": 24, "preview_every": 1 });
        let r = post_json(addr, "/api/jobs", &body).await.unwrap();
        let v = r.json().unwrap_or_else(|e| panic!("{e}"));
        let id = v["id"].as_str().map(str::to_string).unwrap_or_else(|| v["id"].to_string());
        let events = get(addr, &format!("/api/jobs/{id}/events")).await.unwrap();
        let text = String::from_utf8(events.body).unwrap();
        let progress: Vec<Value> = text
            .split("\n\n")
            .filter(|e| e.contains("event: progress"))
            .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data:")).map(|d| serde_json::from_str(d.trim()).unwrap()))
            .collect();
        assert_eq!(progress.len(), 3, "{text}");
        for p in &progress {
            // The linear latent preview at latent resolution (the fixture's VAE scales by 2: 16×12),
            // as a grid of one with a 1-pixel border.
            assert_eq!(png_size(p["preview"].as_str().unwrap_or_else(|| panic!("{p}"))), (16 + 2, 12 + 2));
        }
        assert!(text.contains("event: done"), "{text}");

        // The per-token attention maps of a checkpoint's image, at its pixel size.
        let body = json!({ "kind": "generate", "model": "sd15", "prompt": "a red apple", "steps": 2, "count": 1, "width": 32, "height": 24, "attention": true });
        let r = post_json(addr, "/api/jobs", &body).await.unwrap();
        let id = r.json().unwrap()["id"].to_string();
        let events = String::from_utf8(get(addr, &format!("/api/jobs/{id}/events")).await.unwrap().body).unwrap();
        let done: Value = events
            .split("\n\n")
            .find(|e| e.contains("event: done"))
            .and_then(|e| e.lines().find_map(|l| l.strip_prefix("data:")))
            .map(|d| serde_json::from_str(d.trim()).unwrap())
            .unwrap_or_else(|| panic!("{events}"));
        let image = &done["ids"][0];
        let r = get(addr, &format!("/api/images/{image}/attention")).await.unwrap();
        let v = r.json().unwrap_or_else(|e| panic!("{e}: {}", r.text()));
        assert_eq!(v["tokens"], json!(["a", "red", "apple"]), "{v}");
        assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(32), Some(24)));
        assert_eq!(v["maps"][2].as_array().unwrap().len(), 32 * 24);
    });
}
