//! CLIP score against transformers on a tiny random-weight `CLIPModel` (hidden 32, 2 layers,
//! 4 heads, 16×16 images in 4×4 patches, projection 16; text quick GELU, vision GELU): token
//! ids, the image processor's pixel values, `get_image_features`, `get_text_features` and the
//! CLIP scores of two pairings. Reference: tests/reference/make_clip_reference.py, fixture
//! tests/fixtures/clip/.
//!
//! Worst differences seen when this test was written: pixel values 2.9e-7 against
//! `CLIPImageProcessorPil` (f32 rounding; the 11×13 and 30×23 images, resized, match PIL's
//! bicubic exactly) and one 8-bit level (0.015) against the torchvision backend in 2 resized
//! values; features 9.2e-7 (text) and 6.0e-7 (image), for values up to 2.3 in size; scores 4.2e-6.

use std::path::{Path, PathBuf};

use candle_core::Device;
use serde_json::Value;
use stipple_eval::{clip_score, ClipModel, NamedImage};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/clip")
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("reference.json")).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(floats).collect()
}

/// The largest absolute difference of two equally shaped tables.
fn worst<A: Copy + Into<f64>>(got: &[Vec<A>], want: &[Vec<f64>]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .flat_map(|(g, w)| {
            assert_eq!(g.len(), w.len());
            g.iter().zip(w).map(|(a, b)| ((*a).into() - b).abs())
        })
        .fold(0.0, f64::max)
}

fn names(r: &Value) -> Vec<String> {
    r["images"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect()
}

/// The fixture's images in the reference's order.
fn images(r: &Value) -> Vec<NamedImage> {
    names(r)
        .iter()
        .map(|n| {
            let path = fixtures().join("images").join(n);
            NamedImage { image: image::open(&path).unwrap(), path }
        })
        .collect()
}

fn model() -> ClipModel {
    ClipModel::load(&fixtures().join("tiny-clip"), &Device::Cpu).unwrap()
}

#[test]
fn token_ids_match_transformers_clip_tokenizer() {
    let (r, clip) = (reference(), model());
    for (p, ids) in r["prompts"].as_array().unwrap().iter().zip(r["input_ids"].as_array().unwrap()) {
        let want: Vec<u32> = ids.as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as u32).collect();
        assert_eq!(clip.token_ids(p.as_str().unwrap()).unwrap(), want, "{p}");
    }
}

#[test]
fn pixel_values_match_clip_image_processor() {
    let (r, clip) = (reference(), model());
    let pixels: Vec<Vec<f32>> = images(&r).iter().map(|im| clip.pixel_values(im).unwrap().flatten_all().unwrap().to_vec1().unwrap()).collect();
    // CLIPImageProcessorPil, the resized images included: f32 rounding only.
    let pil = worst(&pixels, &rows(&r["pixel_values"]));
    assert!(pil < 1e-6, "pixel values vs CLIPImageProcessorPil: {pil:e}");
    // The torchvision backend's uint8 bicubic rounds a few resized pixels one 8-bit level
    // apart from PIL's (2 of the 11×13 image's 768 values here): at most 1/255 over the
    // smallest image_std.
    let level = 1.0 / (255.0 * 0.26130258) + 1e-6;
    let tv = worst(&pixels, &rows(&r["pixel_values_torchvision"]));
    println!("pixel values: worst |Δ| {pil:e} against PIL, {tv:e} against torchvision");
    assert!(tv <= level, "pixel values vs CLIPImageProcessor (torchvision): {tv:e} > one level {level:e}");
}

#[test]
fn features_match_get_image_and_text_features() {
    let (r, clip) = (reference(), model());
    let prompts: Vec<&str> = r["prompts"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    let text = clip.text_features(&prompts).unwrap().to_vec2::<f32>().unwrap();
    let image = clip.image_features(&images(&r)).unwrap().to_vec2::<f32>().unwrap();
    let (text_err, image_err) = (worst(&text, &rows(&r["text_embeds"])), worst(&image, &rows(&r["image_embeds"])));
    println!("features: worst |Δ| text {text_err:e}, image {image_err:e}");
    assert!(text_err < 2e-6 && image_err < 2e-6, "text {text_err:e}, image {image_err:e}");
    // Against the torchvision backend's features, no further than PIL's own are from them.
    let tv = rows(&r["image_embeds_torchvision"]);
    let gap = worst(&rows(&r["image_embeds"]), &tv);
    assert!(worst(&image, &tv) <= gap + 2e-6, "{} vs {gap}", worst(&image, &tv));
}

#[test]
fn clip_scores_match_the_formula_on_transformers_features() {
    let (r, clip) = (reference(), model());
    let ims = images(&r);
    let one = &r["one_prompt"];
    let against_one = clip_score(&clip, &ims, &[one["prompt"].as_str().unwrap().to_string()]).unwrap();
    let captions = stipple_train::data::csv_column(&fixtures().join("images"), &names(&r), "caption").unwrap();
    let own = clip_score(&clip, &ims, &captions).unwrap();
    for (got, want) in [(&against_one, one), (&own, &r["own_captions"])] {
        let per: Vec<f64> = got.pairs.iter().map(|p| p.score).collect();
        let err = worst(std::slice::from_ref(&per), &[floats(&want["per_pair"])]);
        println!("scores: worst |Δ| {err:e}, mean {:e}", (got.mean - want["mean"].as_f64().unwrap()).abs());
        assert!(err < 1e-4, "{per:?} vs {}", want["per_pair"]);
        assert!((got.mean - want["mean"].as_f64().unwrap()).abs() < 1e-4, "mean {} vs {}", got.mean, want["mean"]);
        assert!((got.std.unwrap() - want["std"].as_f64().unwrap()).abs() < 1e-4, "std {:?} vs {}", got.std, want["std"]);
        // torchmetrics' figure, 100·max(mean cosine, 0), from the same cosines.
        let mean_cos = got.pairs.iter().map(|p| p.cosine).sum::<f64>() / got.pairs.len() as f64;
        assert!((100.0 * mean_cos.max(0.0) - want["torchmetrics"].as_f64().unwrap()).abs() < 1e-4);
    }
    // Random weights give negative cosines, so the per-pair clamp matters.
    assert!(own.pairs.iter().any(|p| p.cosine < 0.0 && p.score == 0.0));
    assert_eq!(against_one.pairs[0].image, ims[0].path);
}
