//! Stable Diffusion checkpoints through the one generate path ([`Model`]): img2img,
//! inpainting (the masked-latent method, and a 9-channel inpainting U-Net), the memory check,
//! and the cheap preview, on the tiny random-weight fixtures of
//! `tests/reference/make_sd_fixture.py`.

use std::ops::ControlFlow;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use image::{DynamicImage, Rgb, RgbImage};
use stipple_nn::TensorLatent;
use stipple_pipeline::{encode_png_with_text, load_init_image, GenerateRequest, ImageInput, Model, SeededNoise};
use stipple_sample::{Observer, StepInfo};
use stipple_sd::SdPipeline;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sd").join(name)
}

fn model(name: &str) -> Model {
    Model::Sd(Box::new(SdPipeline::load(&fixture(name), &Device::Cpu).unwrap()))
}

/// A 40×30 picture with a gradient, so a crop or resize would show.
fn picture() -> ImageInput {
    let img = RgbImage::from_fn(40, 30, |x, y| Rgb([(x * 6) as u8, (y * 8) as u8, 128]));
    ImageInput::from_bytes(encode_png_with_text(&DynamicImage::ImageRgb8(img), &[]).unwrap())
}

/// Black (keep) everywhere but a white (repaint) rectangle in the upper left.
fn mask() -> ImageInput {
    mask_of(20, 16)
}

/// White (repaint) where x < w and y < h, black elsewhere, 40×30.
fn mask_of(w: u32, h: u32) -> ImageInput {
    let img = RgbImage::from_fn(40, 30, |x, y| if x < w && y < h { Rgb([255; 3]) } else { Rgb([0; 3]) });
    ImageInput::from_bytes(encode_png_with_text(&DynamicImage::ImageRgb8(img), &[]).unwrap())
}

/// `extra` with Euler, 4 steps, one image of 32×24, a prompt and guidance 3 where it sets none.
fn request(extra: GenerateRequest) -> GenerateRequest {
    GenerateRequest {
        sampler: Some("euler".into()),
        steps: extra.steps.or(Some(4)),
        count: Some(1),
        prompts: vec!["a red apple".into()],
        guidance_scale: Some(3.0),
        width: extra.width.or(Some(32)),
        height: extra.height.or(Some(24)),
        ..extra
    }
}

/// Records the latents after every step and the σ each step moved to.
#[derive(Default)]
struct Steps(Vec<(f64, Tensor)>);

impl Observer<TensorLatent> for Steps {
    fn on_step(&mut self, info: &StepInfo<'_, TensorLatent>) -> ControlFlow<()> {
        self.0.push((info.sigma_next, info.x.0.clone()));
        ControlFlow::Continue(())
    }
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn strength_zero_returns_the_init_image_and_img2img_walks_the_tail() {
    let m = model("tiny-sd15");
    let dev = Device::Cpu;
    let spec = request(GenerateRequest { init_image: Some(picture()), strength: Some(0.0), ..Default::default() }).validate().unwrap();
    let sigmas = m.sigmas(&spec).unwrap();
    let mut steps = Steps::default();
    let out = m.generate(&spec, &sigmas, &dev, &mut steps).unwrap();
    let (init, _) = load_init_image(&picture(), (32, 24), 3, &dev).unwrap();
    assert_eq!(out.dims(), &[1, 3, 24, 32]);
    assert_eq!(max_abs(&out, &init), 0.0, "strength 0 is the init image itself");
    assert!(steps.0.is_empty(), "and calls no model");
    // Strength 0.5 of 4 steps walks the last 2 (diffusers: int(4 · 0.5)).
    let spec = request(GenerateRequest { init_image: Some(picture()), strength: Some(0.5), ..Default::default() }).validate().unwrap();
    let mut steps = Steps::default();
    let half = m.generate(&spec, &sigmas, &dev, &mut steps).unwrap();
    assert_eq!(steps.0.len(), 2);
    assert!(max_abs(&half, &init) > 0.0);
}

/// The masked-latent method: after every step the kept latents are the init's latents
/// re-noised to that step's σ with the image's own starting noise, `z₀ + σ·ε`; the kept pixels
/// of the output are the init's exactly, and the painted ones are the model's.
#[test]
fn inpainting_keeps_the_unmasked_latents_at_the_renoised_init() {
    let m = model("tiny-sd15");
    let Model::Sd(sd) = &m else { unreachable!() };
    let dev = Device::Cpu;
    let spec = request(GenerateRequest { init_image: Some(picture()), mask: Some(mask()), seed: Some(7), ..Default::default() }).validate().unwrap();
    assert_eq!(spec.conditioning.strength, 1.0, "inpainting's default strength");
    let sigmas = m.sigmas(&spec).unwrap();
    let mut steps = Steps::default();
    let out = m.generate(&spec, &sigmas, &dev, &mut steps).unwrap();
    assert_eq!(steps.0.len(), 4);
    let (init, _) = load_init_image(&picture(), (32, 24), 3, &dev).unwrap();
    let z0 = sd.encode_images(&((&init + 1.0).unwrap() / 2.0).unwrap()).unwrap();
    let eps = SeededNoise::new([7], spec.noise, &dev).draw(&[4, 12, 16]).unwrap();
    // Latent pixel (row, col) of the 16×12 latents: rows ≥ 8 or cols ≥ 10 are kept (the mask's
    // 20×16 white corner of 40×30 covers 8 of 16 columns and 6.4 of 12 rows at latent size).
    let kept = |t: &Tensor| t.narrow(2, 8, 4).unwrap();
    let painted = |t: &Tensor| t.narrow(2, 0, 5).unwrap().narrow(3, 0, 7).unwrap();
    for (sigma, x) in &steps.0 {
        let want = (&z0 + (&eps * *sigma).unwrap()).unwrap();
        let err = max_abs(&kept(x), &kept(&want));
        assert!(err <= 1e-4 * (1.0 + *sigma as f32), "σ {sigma}: kept latents differ from z₀ + σε by {err}");
        assert!(max_abs(&painted(x), &painted(&want)) > 1e-2, "σ {sigma}: the painted latents are the model's");
    }
    let keep_rows = |t: &Tensor| t.narrow(2, 16, 8).unwrap();
    assert_eq!(max_abs(&keep_rows(&out), &keep_rows(&init)), 0.0, "kept pixels are the init's exactly");
    let corner = |t: &Tensor| t.narrow(2, 0, 10).unwrap().narrow(3, 0, 14).unwrap();
    assert!(max_abs(&corner(&out), &corner(&init)) > 1e-2, "the masked corner is repainted");
}

/// A 9-channel inpainting U-Net takes the mask and the masked image's latents as input: the
/// kept pixels stay the init's, a region painted under two masks differs between them (the
/// U-Net sees the mask), and the model also samples without an init image (all painted).
#[test]
fn inpainting_unet_paints_the_masked_region() {
    let m = model("tiny-sd2-inpaint");
    let dev = Device::Cpu;
    let spec = request(GenerateRequest { init_image: Some(picture()), mask: Some(mask()), ..Default::default() }).validate().unwrap();
    let sigmas = m.sigmas(&spec).unwrap();
    let out = m.generate(&spec, &sigmas, &dev, &mut ()).unwrap();
    let (init, _) = load_init_image(&picture(), (32, 24), 3, &dev).unwrap();
    let keep_rows = |t: &Tensor| t.narrow(2, 16, 8).unwrap();
    assert_eq!(max_abs(&keep_rows(&out), &keep_rows(&init)), 0.0);
    let all = request(GenerateRequest { init_image: Some(picture()), mask: Some(mask_of(40, 30)), ..Default::default() }).validate().unwrap();
    let whole = m.generate(&all, &sigmas, &dev, &mut ()).unwrap();
    let corner = |t: &Tensor| t.narrow(2, 0, 10).unwrap().narrow(3, 0, 14).unwrap();
    assert!(max_abs(&corner(&out), &corner(&whole)) > 1e-3, "the U-Net sees the mask");
    let txt2img = request(GenerateRequest::default()).validate().unwrap();
    assert_eq!(m.generate(&txt2img, &sigmas, &dev, &mut ()).unwrap().dims(), &[1, 3, 24, 32]);
}

#[test]
fn sizes_the_memory_cannot_hold_are_refused_before_sampling() {
    let m = model("tiny-sd15");
    let spec = request(GenerateRequest { width: Some(16_384), height: Some(16_384), ..Default::default() }).validate().unwrap();
    let sigmas = m.sigmas(&spec).unwrap();
    let started = std::time::Instant::now();
    let e = m.generate(&spec, &sigmas, &Device::Cpu, &mut ()).unwrap_err();
    let (setting, msg) = e.bad_input().expect("bad input");
    assert_eq!(setting, "width", "{msg}");
    assert!(msg.contains("16384×16384") && msg.contains("batch_size 1") && msg.contains("GiB") && msg.contains("available"), "{msg}");
    assert!(started.elapsed().as_secs() < 5, "refused before any work");
    // A Stipple-sized request is not affected.
    let small = request(GenerateRequest { steps: Some(1), ..Default::default() }).validate().unwrap();
    assert!(m.generate(&small, &m.sigmas(&small).unwrap(), &Device::Cpu, &mut ()).is_ok());
}

#[test]
fn the_preview_is_rgb_at_latent_resolution() {
    let m = model("tiny-sdxl");
    let z = Tensor::zeros((2, 4, 6, 5), candle_core::DType::F32, &Device::Cpu).unwrap();
    let rgb = m.preview(&z).unwrap();
    assert_eq!(rgb.dims(), &[2, 3, 6, 5]);
    // Zero latents show the bias of SDXL's fit.
    let (_, bias) = stipple_sd::preview_factors(stipple_sd::Architecture::SdxlBase);
    let px = rgb.narrow(2, 0, 1).unwrap().narrow(3, 0, 1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for c in 0..3 {
        assert!((px[c] - bias[c]).abs() < 1e-7);
    }
}
