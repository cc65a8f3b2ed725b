//! Conformance of the SD 2.x layout (linear transformer projections, one head count per
//! level, the exact GELU in the text encoder, v-prediction, the padding token "!", an
//! OpenCLIP-layout single file with one layer more than the encoder runs) with diffusers,
//! on the tiny fixture and goldens of `tests/reference/make_sd_fixture.py` (`make_sd2`).
//!
//! Tolerances as in `conformance.rs`: 1e-5 of max(1, max |reference|) for one network call,
//! 1e-4 for the 4-step guided pipeline.

mod common;

use candle_core::Device;
use common::*;
use stipple_nn::TensorLatent;
use stipple_sample::{euler, samplers::Churn, Prediction, SigmaSchedule};
use stipple_sd::{Architecture, LoadOptions, SdPipeline};

const GOLDENS: &str = "goldens-sd2";

fn check_unet_and_text(sd: &SdPipeline, what: &str) {
    let (g, m) = (goldens_named(GOLDENS), meta_named(GOLDENS));
    let out = sd.unet.forward(&g["unet.sample"], &g["unet.timesteps"], &g["unet.encoder_hidden_states"]).unwrap();
    assert_close(&format!("{what} U-Net"), &out, &g["unet.out"], 1e-5);
    let pair = [m["prompt"].as_str().unwrap(), m["negative_prompt"].as_str().unwrap()];
    assert_close(&format!("{what} text encoder"), &sd.encode_prompt(&pair, 1).unwrap(), &g["text.last_hidden_state"], 1e-5);
}

#[test]
fn sd2_folder_matches_diffusers() {
    let sd = SdPipeline::load(&folder_sd2(), &Device::Cpu).unwrap();
    assert_eq!(sd.architecture, Architecture::Sd2);
    assert_eq!(sd.scheduler.prediction_type, Prediction::VPrediction);
    let (g, m) = (goldens_named(GOLDENS), meta_named(GOLDENS));
    let prompts: Vec<&str> = m["prompts"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    let want: Vec<Vec<u32>> = serde_json::from_value(m["input_ids"].clone()).unwrap();
    assert_eq!(sd.token_ids(&prompts).unwrap().to_vec2::<u32>().unwrap(), want, "ids padded with \"!\"");
    check_unet_and_text(&sd, "SD 2.x folder");

    // diffusers' EulerDiscreteScheduler (leading, steps_offset 1) on a v-prediction model,
    // guidance 7.5 with a negative prompt, reproduced with Stipple's euler sampler.
    let cond = sd.encode_prompt(&[m["prompt"].as_str().unwrap()], 1).unwrap();
    let uncond = sd.encode_prompt(&[m["negative_prompt"].as_str().unwrap()], 1).unwrap();
    let sigmas = SigmaSchedule::Leading.build(&sd.schedule(), 4, sd.scheduler.steps_offset).unwrap();
    let x = (&g["pipeline.latents"] * (sigmas.first().powi(2) + 1.0).sqrt()).unwrap();
    let mut d = sd.denoiser(cond, Some(uncond), 7.5);
    let latents = euler(&mut d, TensorLatent(x), &sigmas, &Churn::NONE, &mut (), &mut ()).unwrap().0;
    assert_close("SD 2.x pipeline latents", &latents, &g["pipeline.final_latents"], 1e-4);
    assert_close("SD 2.x pipeline image", &sd.decode_latents(&latents).unwrap(), &g["pipeline.image"], 1e-4);
}

#[test]
fn sd2_single_file_in_open_clip_layout_matches_diffusers() {
    let options = LoadOptions { config_dir: Some(folder_sd2()), ..Default::default() };
    let sd = SdPipeline::load_with(&single_file_sd2(), &options, &Device::Cpu).unwrap();
    assert_eq!(sd.architecture, Architecture::Sd2);
    check_unet_and_text(&sd, "SD 2.x single file");
}

#[test]
fn prediction_type_can_be_set_for_a_single_file() {
    let options = LoadOptions { config_dir: Some(folder_sd2()), prediction: Some(Prediction::Epsilon), ..Default::default() };
    let sd = SdPipeline::load_with(&single_file_sd2(), &options, &Device::Cpu).unwrap();
    assert_eq!(sd.scheduler.prediction_type, Prediction::Epsilon);
}

/// diffusers' `StableDiffusionInpaintPipeline` (strength 1, 4 Euler steps, guidance 7.5) with
/// an inpainting U-Net of 9 input channels on the SD 2.x-shaped model: the extra channels
/// Stipple makes equal those diffusers fed its U-Net, and the run matches.
#[test]
fn sd2_inpainting_unet_matches_diffusers() {
    let sd = SdPipeline::load(&repo().join("tests/fixtures/sd/tiny-sd2-inpaint"), &Device::Cpu).unwrap();
    assert_eq!(sd.unet.config().in_channels, 9);
    let g = goldens_named("goldens-sd2-inpaint");
    let m = meta_named(GOLDENS);
    let (mask, masked) = sd.inpainting_inputs(&g["image"], &g["mask"]).unwrap();
    let fed = candle_core::Tensor::cat(&[&mask, &masked], 1).unwrap();
    assert_close("inpainting channels", &fed, &g["unet_extra"], 1e-5);
    let cond = sd.encode(&[m["prompt"].as_str().unwrap()], 1).unwrap();
    let uncond = sd.encode(&[m["negative_prompt"].as_str().unwrap()], 1).unwrap();
    let sigmas = SigmaSchedule::Leading.build(&sd.schedule(), 4, sd.scheduler.steps_offset).unwrap();
    let x = (&g["latents"] * (sigmas.first().powi(2) + 1.0).sqrt()).unwrap();
    let mut d = sd.denoiser_with(cond, Some(uncond), 7.5).with_inpainting(&mask, &masked).unwrap();
    let latents = euler(&mut d, TensorLatent(x), &sigmas, &Churn::NONE, &mut (), &mut ()).unwrap().0;
    assert_close("inpainting latents", &latents, &g["final_latents"], 1e-4);
}
