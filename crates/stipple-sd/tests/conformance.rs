//! Conformance of the Stable Diffusion components with diffusers and transformers, on the
//! tiny random-weight SD 1.x fixture and the goldens of `tests/reference/make_sd_fixture.py`
//! (diffusers 0.42.1, transformers 5.25.0, torch 2.15.0, CPU, float32).
//!
//! Tolerances, relative to max(1, max |reference|): 1e-5 for one network call (float32
//! rounding in a different order of operations), 1e-4 for the 4-step pipeline, whose
//! guidance scale 7.5 multiplies the branches' rounding differences at every step.

mod common;

use candle_core::{Device, Tensor};
use common::*;
use stipple_nn::TensorLatent;
use stipple_sample::{euler, samplers::Churn, SigmaSchedule};
use stipple_sd::{LoadOptions, SdPipeline};

fn pipeline() -> SdPipeline {
    SdPipeline::load(&folder(), &Device::Cpu).unwrap()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

fn ids(v: &serde_json::Value) -> Vec<Vec<u32>> {
    v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()).collect()
}

#[test]
fn tokens_match_clip_tokenizer_exactly() {
    let sd = pipeline();
    let m = meta();
    let prompts = strings(&m["prompts"]);
    for (p, want) in prompts.iter().zip(ids(&m["tokens"])) {
        assert_eq!(sd.tokenizer.tokens(p).unwrap(), want, "tokens of {p:?}");
    }
    let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let got: Vec<Vec<u32>> = sd.token_ids(&refs).unwrap().to_vec2().unwrap();
    assert_eq!(got, ids(&m["input_ids"]), "framed, padded and cut rows");
}

#[test]
fn text_encoder_matches_transformers() {
    let sd = pipeline();
    let (g, m) = (goldens(), meta());
    let pair = [m["prompt"].as_str().unwrap(), m["negative_prompt"].as_str().unwrap()];
    assert_close("last hidden state", &sd.encode_prompt(&pair, 1).unwrap(), &g["text.last_hidden_state"], 1e-5);
    assert_close("clip skip 2", &sd.encode_prompt(&pair, 2).unwrap(), &g["text.clip_skip_2"], 1e-5);
}

#[test]
fn unet_matches_diffusers() {
    let sd = pipeline();
    let g = goldens();
    let out = sd.unet.forward(&g["unet.sample"], &g["unet.timesteps"], &g["unet.encoder_hidden_states"]).unwrap();
    assert_close("U-Net", &out, &g["unet.out"], 1e-5);
}

#[test]
fn vae_decode_and_encode_match_diffusers() {
    let sd = pipeline();
    let g = goldens();
    assert_close("VAE decode", &sd.vae.decode(&g["vae.latents"]).unwrap(), &g["vae.decoded"], 1e-5);
    assert_close("VAE encode mean", &sd.vae.encode(&g["vae.image"]).unwrap(), &g["vae.encoded_mean"], 1e-5);
    let (mean, std) = sd.vae.encode_distribution(&g["vae.image"]).unwrap();
    assert_eq!(max_abs_diff(&mean, &sd.vae.encode(&g["vae.image"]).unwrap()), 0.0);
    assert_close("VAE encode std", &std, &g["vae.encoded_std"], 1e-5);
}

/// diffusers' tiled decoding and encoding (`enable_tiling`) of inputs larger than a tile.
#[test]
fn tiled_vae_decode_and_encode_match_diffusers() {
    let sd = pipeline();
    let g = goldens();
    let out = sd.vae.decode_tiled(&g["vae.tiled_latents"]).unwrap();
    assert_close("VAE tiled decode", &out, &g["vae.tiled_decoded"], 1e-5);
    // Tiling changes the result: decoding whole differs.
    let whole = sd.vae.decode(&g["vae.tiled_latents"]).unwrap();
    assert!(max_abs_diff(&whole, &g["vae.tiled_decoded"]) > 1e-3);
    // And tiled encoding (diffusers' `_tiled_encode`) of a 48×40 image with 32×32 tiles.
    let mean = sd.vae.encode_tiled(&g["vae.tiled_image"]).unwrap();
    assert_close("VAE tiled encode", &mean, &g["vae.tiled_encoded_mean"], 1e-5);
    let whole = sd.vae.encode(&g["vae.tiled_image"]).unwrap();
    assert!(max_abs_diff(&whole, &g["vae.tiled_encoded_mean"]) > 1e-3);
}

/// diffusers' `StableDiffusionImg2ImgPipeline` at strength 0.5 of 4 Euler steps (leading):
/// the latents sampled from the VAE's distribution, noised to the σ of the third of the four
/// steps, and the last two steps, with Stipple's `euler` over the tail of the σ schedule.
#[test]
fn img2img_at_half_strength_matches_diffusers() {
    let sd = pipeline();
    let (g, m) = (goldens(), meta());
    let cond = sd.encode_prompt(&[m["prompt"].as_str().unwrap()], 1).unwrap();
    let uncond = sd.encode_prompt(&[m["negative_prompt"].as_str().unwrap()], 1).unwrap();
    let z0 = sd.encode_images_sampled(&g["img2img.image"], &g["img2img.sample_noise"]).unwrap();
    let all = SigmaSchedule::Leading.build(&sd.schedule(), 4, sd.scheduler.steps_offset).unwrap();
    // diffusers: init_timestep = int(steps · strength) = 2, so the first 4 − 2 steps are skipped.
    let tail = stipple_sample::Sigmas::new(all.as_slice()[2..].to_vec()).unwrap();
    let x = (&z0 + (&g["img2img.noise"] * tail.first()).unwrap()).unwrap();
    let mut d = sd.denoiser(cond, Some(uncond), 7.5);
    let latents = euler(&mut d, TensorLatent(x), &tail, &Churn::NONE, &mut (), &mut ()).unwrap().0;
    assert_close("img2img latents", &latents, &g["img2img.final_latents"], 1e-4);
}

/// diffusers' `StableDiffusionPipeline` with `EulerDiscreteScheduler` (leading spacing,
/// `steps_offset = 1`, 4 steps, guidance 7.5, negative prompt), reproduced with Stipple's own
/// `euler` sampler over σ of the model's discrete schedule. diffusers starts from
/// `latents · init_noise_sigma`, which for leading spacing is √(σ_max² + 1).
fn run_euler(sd: &SdPipeline) -> (Tensor, Tensor) {
    let (g, m) = (goldens(), meta());
    let cond = sd.encode_prompt(&[m["prompt"].as_str().unwrap()], 1).unwrap();
    let uncond = sd.encode_prompt(&[m["negative_prompt"].as_str().unwrap()], 1).unwrap();
    let sigmas = SigmaSchedule::Leading.build(&sd.schedule(), 4, sd.scheduler.steps_offset).unwrap();
    let want: Vec<f64> = m["pipeline.sigmas"].as_array().unwrap().iter().map(|s| s.as_f64().unwrap()).collect();
    for (a, b) in sigmas.as_slice().iter().zip(&want) {
        assert!((a - b).abs() <= 1e-6 * b.max(1.0), "σ {a} vs diffusers' {b}");
    }
    let x = (&g["pipeline.latents"] * (sigmas.first().powi(2) + 1.0).sqrt()).unwrap();
    let mut d = sd.denoiser(cond, Some(uncond), 7.5);
    let latents = euler(&mut d, TensorLatent(x), &sigmas, &Churn::NONE, &mut (), &mut ()).unwrap().0;
    let image = sd.decode_latents(&latents).unwrap();
    (latents, image)
}

#[test]
fn four_euler_steps_with_guidance_match_diffusers() {
    let sd = pipeline();
    let g = goldens();
    let (latents, image) = run_euler(&sd);
    assert_close("pipeline latents", &latents, &g["pipeline.final_latents"], 1e-4);
    assert_close("pipeline image", &image, &g["pipeline.image"], 1e-4);
}

#[test]
fn single_file_gives_the_same_model() {
    let options = LoadOptions { config_dir: Some(folder()), ..Default::default() };
    let sd = SdPipeline::load_with(&single_file(), &options, &Device::Cpu).unwrap();
    assert_eq!(sd.architecture, stipple_sd::Architecture::Sd1);
    let g = goldens();
    let out = sd.unet.forward(&g["unet.sample"], &g["unet.timesteps"], &g["unet.encoder_hidden_states"]).unwrap();
    assert_close("single-file U-Net", &out, &g["unet.out"], 1e-5);
    assert_close("single-file VAE decode", &sd.vae.decode(&g["vae.latents"]).unwrap(), &g["vae.decoded"], 1e-5);
    assert_close("single-file VAE encode", &sd.vae.encode(&g["vae.image"]).unwrap(), &g["vae.encoded_mean"], 1e-5);
    let m = meta();
    let pair = [m["prompt"].as_str().unwrap(), m["negative_prompt"].as_str().unwrap()];
    assert_close("single-file text encoder", &sd.encode_prompt(&pair, 1).unwrap(), &g["text.last_hidden_state"], 1e-5);
}
