//! A kohya-format LoRA merged at load matches the weights `W + 0.8 · (alpha/rank) · up·down`
//! that `tests/reference/make_sd_fixture.py` (`make_lora`) merged into diffusers' modules: the
//! U-Net (attention projections, a 1×1-convolution projection, 3×3 convolutions) and the text
//! encoder. Tolerance 1e-5 of max(1, max |reference|), as for any single network call.

mod common;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use common::*;
use stipple_sd::{LoadOptions, SdError, SdPipeline};

fn lora_file() -> std::path::PathBuf {
    repo().join("tests/fixtures/sd/tiny-sd15-lora.safetensors")
}

fn check(sd: &SdPipeline, what: &str) {
    let (g, m) = (goldens(), meta());
    let out = sd.unet.forward(&g["unet.sample"], &g["unet.timesteps"], &g["unet.encoder_hidden_states"]).unwrap();
    assert_close(&format!("{what} U-Net"), &out, &g["lora.unet_out"], 1e-5);
    let text = sd.encode_prompt(&[m["prompt"].as_str().unwrap()], 1).unwrap();
    assert_close(&format!("{what} text encoder"), &text, &g["lora.text_out"], 1e-5);
    // The LoRA changed both networks.
    assert!(max_abs_diff(&out, &g["unet.out"]) > 1e-3);
}

#[test]
fn lora_merged_into_a_folder_matches_the_reference() {
    let options = LoadOptions { loras: vec![(lora_file(), 0.8)], ..Default::default() };
    check(&SdPipeline::load_with(&folder(), &options, &Device::Cpu).unwrap(), "folder + LoRA");
}

#[test]
fn lora_merged_into_a_single_file_matches_the_reference() {
    let options = LoadOptions { config_dir: Some(folder()), loras: vec![(lora_file(), 0.8)], ..Default::default() };
    check(&SdPipeline::load_with(&single_file(), &options, &Device::Cpu).unwrap(), "single file + LoRA");
}

#[test]
fn multiplier_zero_leaves_the_model_unchanged() {
    let options = LoadOptions { loras: vec![(lora_file(), 0.0)], ..Default::default() };
    let sd = SdPipeline::load_with(&folder(), &options, &Device::Cpu).unwrap();
    let g = goldens();
    let out = sd.unet.forward(&g["unet.sample"], &g["unet.timesteps"], &g["unet.encoder_hidden_states"]).unwrap();
    assert_close("multiplier 0", &out, &g["unet.out"], 1e-5);
}

#[test]
fn lora_for_another_model_is_refused_with_its_modules() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("xl.safetensors");
    let t = |s: (usize, usize)| Tensor::zeros(s, DType::F32, &Device::Cpu).unwrap();
    let map: HashMap<String, Tensor> = [
        ("lora_unet_input_blocks_40_1_proj_in.lora_down.weight".to_string(), t((2, 640))),
        ("lora_unet_input_blocks_40_1_proj_in.lora_up.weight".to_string(), t((640, 2))),
    ]
    .into();
    candle_core::safetensors::save(&map, &path).unwrap();
    let options = LoadOptions { loras: vec![(path, 1.0)], ..Default::default() };
    let e = SdPipeline::load_with(&folder(), &options, &Device::Cpu).err().unwrap();
    assert!(matches!(&e, SdError::Lora { message, .. } if message.contains("1 LoRA modules match no weight") && message.contains("lora_unet_input_blocks_40_1_proj_in")), "{e}");
}

/// An SDXL LoRA in the kohya format: U-Net modules under their SGM names
/// (`lora_unet_input_blocks_3_1_…`, `output_blocks_0_0_in_layers_2`, `middle_block_1_proj_in`,
/// `label_emb_0_0`), both text encoders (`lora_te1_`, `lora_te2_`); reference from
/// `make_sdxl_lora`, folder and single file.
#[test]
fn sdxl_lora_with_sgm_names_matches_the_reference() {
    let xl = repo().join("tests/fixtures/sd/tiny-sdxl");
    let lora = repo().join("tests/fixtures/sd/tiny-sdxl-lora.safetensors");
    let (g, m) = (goldens_named("goldens-sdxl"), meta_named("goldens-sdxl"));
    let folder_options = LoadOptions { loras: vec![(lora.clone(), 0.8)], ..Default::default() };
    let single_options = LoadOptions { config_dir: Some(xl.clone()), loras: vec![(lora, 0.8)], ..Default::default() };
    for (path, options, what) in [
        (xl.clone(), folder_options, "SDXL folder + LoRA"),
        (repo().join("tests/fixtures/sd/tiny-sdxl.safetensors"), single_options, "SDXL single file + LoRA"),
    ] {
        let sd = SdPipeline::load_with(&path, &options, &Device::Cpu).unwrap();
        let added = stipple_sd::AddedCond { text_embeds: g["unet.text_embeds"].clone(), time_ids: g["unet.time_ids"].clone() };
        let out = sd.unet.forward_added(&g["unet.sample"], &g["unet.timesteps"], &g["unet.encoder_hidden_states"], Some(&added)).unwrap();
        assert_close(&format!("{what} U-Net"), &out, &g["lora.unet_out"], 1e-5);
        assert!(max_abs_diff(&out, &g["unet.out"]) > 1e-3);
        let c = sd.encode(&[m["prompt"].as_str().unwrap()], 1).unwrap();
        assert_close(&format!("{what} context"), &c.context, &g["lora.cond"], 1e-5);
        assert_close(&format!("{what} pooled"), &c.pooled.unwrap(), &g["lora.pooled_cond"], 1e-5);
    }
}
