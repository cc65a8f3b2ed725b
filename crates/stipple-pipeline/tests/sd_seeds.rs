//! Same seed, same picture: a Stable Diffusion run with the CPU random number source remakes
//! diffusers' picture made with one `torch.Generator("cpu")` per image (the web UI's "CPU"
//! source draws the same way); the NV source starts from the web UI's NV numbers. Reference:
//! tests/reference/make_seed_reference.py on the tiny SD 1.x fixture.

use std::ops::ControlFlow;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use stipple_nn::TensorLatent;
use stipple_pipeline::{GenerateRequest, Model};
use stipple_sample::{Observer, Philox4x32, StepInfo, TorchCpuGenerator};
use stipple_sd::SdPipeline;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn request(meta: &serde_json::Value, rng: &str) -> GenerateRequest {
    let run = &meta["euler_a"];
    GenerateRequest {
        sampler: Some("euler_ancestral".into()),
        schedule: Some("trailing".into()),
        steps: Some(run["steps"].as_u64().unwrap() as usize),
        seed: Some(run["seeds"][0].as_u64().unwrap()),
        rng: Some(rng.into()),
        count: Some(2),
        batch_size: Some(2),
        width: Some(32),
        height: Some(32),
        prompts: vec![run["prompt"].as_str().unwrap().into()],
        negative_prompt: Some(run["negative_prompt"].as_str().unwrap().into()),
        guidance_scale: run["guidance_scale"].as_f64(),
        ..GenerateRequest::default()
    }
}

/// Keeps the starting latent.
#[derive(Default)]
struct Start(Option<Tensor>);

impl Observer<TensorLatent> for Start {
    fn on_start(&mut self, x: &TensorLatent, _sigma: f64) {
        self.0 = Some(x.0.clone());
    }
    fn on_step(&mut self, _: &StepInfo<'_, TensorLatent>) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

/// Row `i` of the starting latent is `normals · σ₀` (to f32 rounding).
fn starts_from(x: &Tensor, i: usize, normals: &[f32], sigma0: f32) -> bool {
    let row: Vec<f32> = x.get(i).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    row.len() == normals.len() && row.iter().zip(normals).all(|(x, n)| (x - n * sigma0).abs() <= 1e-5 * sigma0)
}

#[test]
fn cpu_source_remakes_the_diffusers_picture_and_nv_starts_from_the_webui_numbers() {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("tests/reference/sd/goldens-seeds.json")).unwrap()).unwrap();
    let goldens = candle_core::safetensors::load(repo().join("tests/reference/sd/goldens-seeds.safetensors"), &Device::Cpu).unwrap();
    let want = &goldens["euler_a.image"]; // (2, 3, 32, 32) in [0, 1]
    let sd = Model::Sd(Box::new(SdPipeline::load(&repo().join("tests/fixtures/sd/tiny-sd15"), &Device::Cpu).unwrap()));
    let latent_len = 4 * 16 * 16;

    let spec = request(&meta, "cpu").validate().unwrap();
    let mut start = Start::default();
    let sigmas = sd.sigmas(&spec).unwrap();
    let images = sd.generate(&spec, &sigmas, &Device::Cpu, &mut start).unwrap();
    let diffusers_sigmas: Vec<f64> = meta["euler_a"]["sigmas"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(sigmas.as_slice().len(), diffusers_sigmas.len());
    for (a, b) in sigmas.as_slice().iter().zip(&diffusers_sigmas) {
        assert!((a - b).abs() <= 1e-5 * b.max(1.0), "σ's {:?} vs diffusers' {diffusers_sigmas:?}", sigmas.as_slice());
    }
    let got = ((images + 1.0).unwrap() / 2.0).unwrap();
    let worst = max_abs(&got, want);
    eprintln!("worst pixel difference against diffusers: {worst:e}");
    assert!(worst <= 1e-4, "the CPU source's picture differs from diffusers' by {worst}");
    let s0 = sigmas.as_slice()[0] as f32;
    let x = start.0.unwrap();
    assert!(starts_from(&x, 1, &TorchCpuGenerator::new(43).randn(latent_len), s0), "image 1 starts from seed 43's torch.randn");

    // The NV source: image 0 starts from the web UI's NV numbers of seed 42, another picture.
    let spec = request(&meta, "nv").validate().unwrap();
    let mut start = Start::default();
    let nv_images = sd.generate(&spec, &sigmas, &Device::Cpu, &mut start).unwrap();
    assert!(starts_from(&start.0.unwrap(), 0, &Philox4x32::new(42).normals(latent_len), s0), "image 0 starts from NV seed 42");
    let nv = ((nv_images + 1.0).unwrap() / 2.0).unwrap();
    assert!(max_abs(&nv, want) > 1e-2, "another source, another picture");
}

/// SD-Turbo's recipe (Euler a, trailing spacing, 1–2 steps, diffusers' `guidance_scale=0.0`,
/// i.e. no guidance, which is Stipple's guidance scale 1) gives diffusers' picture.
#[test]
fn few_step_turbo_recipe_matches_diffusers() {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("tests/reference/sd/goldens-seeds.json")).unwrap()).unwrap();
    let goldens = candle_core::safetensors::load(repo().join("tests/reference/sd/goldens-seeds.safetensors"), &Device::Cpu).unwrap();
    let sd = Model::Sd(Box::new(SdPipeline::load(&repo().join("tests/fixtures/sd/tiny-sd15"), &Device::Cpu).unwrap()));
    let turbo = &meta["turbo"];
    for steps in [1, 2] {
        let spec = GenerateRequest {
            sampler: Some("euler_ancestral".into()),
            schedule: Some("trailing".into()),
            steps: Some(steps),
            seed: turbo["seed"].as_u64(),
            rng: Some("cpu".into()),
            count: Some(1),
            width: Some(32),
            height: Some(32),
            prompts: vec![turbo["prompt"].as_str().unwrap().into()],
            guidance_scale: Some(1.0),
            ..GenerateRequest::default()
        }
        .validate()
        .unwrap();
        let images = sd.generate(&spec, &sd.sigmas(&spec).unwrap(), &Device::Cpu, &mut ()).unwrap();
        let got = ((images + 1.0).unwrap() / 2.0).unwrap();
        let worst = max_abs(&got, &goldens[&format!("turbo.{steps}.image")]);
        eprintln!("{steps}-step turbo recipe: worst pixel difference {worst:e}");
        assert!(worst <= 1e-4, "{steps} steps: {worst}");
    }
}
