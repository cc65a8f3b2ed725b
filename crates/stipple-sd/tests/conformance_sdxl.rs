//! Conformance of the SDXL layout (two text encoders, penultimate states side by side, the
//! projected pooled embedding, size conditioning through `add_embedding`, 1 and 2 transformer
//! blocks per level) with diffusers' `StableDiffusionXLPipeline`, on the tiny fixture and
//! goldens of `tests/reference/make_sd_fixture.py` (`make_sdxl`).
//!
//! Tolerances as in `conformance.rs`: 1e-5 of max(1, max |reference|) for one network call,
//! 1e-4 for the 4-step guided pipeline.

mod common;

use candle_core::Device;
use common::*;
use stipple_nn::TensorLatent;
use stipple_sample::{euler, samplers::Churn, SigmaSchedule};
use stipple_sd::{AddedCond, Architecture, LoadOptions, SdPipeline};

const GOLDENS: &str = "goldens-sdxl";

fn pipeline() -> SdPipeline {
    SdPipeline::load(&repo().join("tests/fixtures/sd/tiny-sdxl"), &Device::Cpu).unwrap()
}

#[test]
fn sdxl_text_encoders_match_diffusers() {
    let sd = pipeline();
    assert_eq!(sd.architecture, Architecture::SdxlBase);
    let (g, m) = (goldens_named(GOLDENS), meta_named(GOLDENS));
    for (prompt, ctx, pooled) in [("prompt", "text.cond", "text.pooled_cond"), ("negative_prompt", "text.uncond", "text.pooled_uncond")] {
        let c = sd.encode(&[m[prompt].as_str().unwrap()], 1).unwrap();
        assert_close(&format!("SDXL {ctx}"), &c.context, &g[ctx], 1e-5);
        assert_close(&format!("SDXL {pooled}"), &c.pooled.unwrap(), &g[pooled], 1e-5);
    }
}

#[test]
fn sdxl_unet_with_size_conditioning_matches_diffusers() {
    check_unet(&pipeline(), "SDXL U-Net");
}

fn check_unet(sd: &SdPipeline, what: &str) {
    let g = goldens_named(GOLDENS);
    let added = AddedCond { text_embeds: g["unet.text_embeds"].clone(), time_ids: g["unet.time_ids"].clone() };
    let out = sd.unet.forward_added(&g["unet.sample"], &g["unet.timesteps"], &g["unet.encoder_hidden_states"], Some(&added)).unwrap();
    assert_close(what, &out, &g["unet.out"], 1e-5);
    // Without its additional conditioning the network refuses to run.
    assert!(sd.unet.forward(&g["unet.sample"], &g["unet.timesteps"], &g["unet.encoder_hidden_states"]).is_err());
}

#[test]
fn sdxl_four_euler_steps_with_guidance_match_diffusers() {
    let sd = pipeline();
    let (g, m) = (goldens_named(GOLDENS), meta_named(GOLDENS));
    let cond = sd.encode(&[m["prompt"].as_str().unwrap()], 1).unwrap();
    let uncond = sd.encode(&[m["negative_prompt"].as_str().unwrap()], 1).unwrap();
    let sigmas = SigmaSchedule::Leading.build(&sd.schedule(), 4, sd.scheduler.steps_offset).unwrap();
    let x = (&g["pipeline.latents"] * (sigmas.first().powi(2) + 1.0).sqrt()).unwrap();
    let mut d = sd.denoiser_with(cond, Some(uncond), 7.5);
    let latents = euler(&mut d, TensorLatent(x), &sigmas, &Churn::NONE, &mut (), &mut ()).unwrap().0;
    assert_close("SDXL pipeline latents", &latents, &g["pipeline.final_latents"], 1e-4);
    assert_close("SDXL pipeline image", &sd.decode_latents(&latents).unwrap(), &g["pipeline.image"], 1e-4);
}

/// The SGM single file (CLIP under `conditioner.embedders.0.transformer`, the second encoder in
/// OpenCLIP's layout under `conditioner.embedders.1.model`, `label_emb` for `add_embedding`).
#[test]
fn sdxl_single_file_gives_the_same_model() {
    let folder = repo().join("tests/fixtures/sd/tiny-sdxl");
    let options = LoadOptions { config_dir: Some(folder), ..Default::default() };
    let sd = SdPipeline::load_with(&repo().join("tests/fixtures/sd/tiny-sdxl.safetensors"), &options, &Device::Cpu).unwrap();
    assert_eq!(sd.architecture, Architecture::SdxlBase);
    check_unet(&sd, "SDXL single-file U-Net");
    let (g, m) = (goldens_named(GOLDENS), meta_named(GOLDENS));
    let c = sd.encode(&[m["prompt"].as_str().unwrap()], 1).unwrap();
    assert_close("SDXL single-file context", &c.context, &g["text.cond"], 1e-5);
    assert_close("SDXL single-file pooled", &c.pooled.unwrap(), &g["text.pooled_cond"], 1e-5);
}
