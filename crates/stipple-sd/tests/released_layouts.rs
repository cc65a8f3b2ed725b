//! The tensor names of the released SD 1.5, SD 2.1 and SDXL base single files
//! (`tests/reference/sd/released-names.json`, made by `tests/reference/make_sd_fixture.py` and
//! proved there with diffusers' own converters) map onto exactly the parameters, with the
//! shapes, that the released configs build: every level of the real 4-level layouts, which the
//! 2-level fixtures do not reach. No weights are allocated (zero-stride tensors).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use common::repo;
use stipple_nn::text::TextEncoder;
use stipple_nn::{check_tensors, record_shapes};
use stipple_sd::ldm::{
    clip_to_encoder, open_clip_projection, open_clip_to_encoder, take_prefix, unet_to_diffusers, vae_to_diffusers, CLIP_PREFIX,
    OPEN_CLIP_PREFIX, SDXL_CLIP_PREFIX, SDXL_OPEN_CLIP_PREFIX, UNET_PREFIX, VAE_PREFIX,
};
use stipple_sd::{Architecture, AutoencoderKL, SdConfigs, UNet2DConditionModel};

fn released(name: &str) -> HashMap<String, Tensor> {
    let text = std::fs::read_to_string(repo().join("tests/reference/sd/released-names.json")).unwrap();
    let all: BTreeMap<String, BTreeMap<String, Vec<usize>>> = serde_json::from_str(&text).unwrap();
    let zero = Tensor::zeros((), DType::F32, &Device::Cpu).unwrap();
    all[name].iter().map(|(k, shape)| (k.clone(), zero.broadcast_as(shape.as_slice()).unwrap())).collect()
}

fn check(name: &str, arch: Architecture) {
    let mut tensors = released(name);
    assert_eq!(Architecture::detect(tensors.keys().map(String::as_str)), Some(arch));
    let cfg = SdConfigs::released(arch, 4).unwrap();
    let path = Path::new(name);

    let unet = unet_to_diffusers(take_prefix(&mut tensors, UNET_PREFIX), &cfg.unet);
    let expected = record_shapes(|vb| UNet2DConditionModel::new(vb, &cfg.unet).map(|_| ())).unwrap();
    assert!(expected.len() > 600);
    check_tensors(&unet, expected, path).unwrap();

    let vae = vae_to_diffusers(take_prefix(&mut tensors, VAE_PREFIX), &cfg.vae).unwrap();
    check_tensors(&vae, record_shapes(|vb| AutoencoderKL::new(vb, &cfg.vae).map(|_| ())).unwrap(), path).unwrap();

    let text = match arch {
        Architecture::Sd2 => open_clip_to_encoder(take_prefix(&mut tensors, OPEN_CLIP_PREFIX), cfg.text_encoder.num_hidden_layers).unwrap(),
        Architecture::SdxlBase => clip_to_encoder(take_prefix(&mut tensors, SDXL_CLIP_PREFIX)),
        _ => clip_to_encoder(take_prefix(&mut tensors, CLIP_PREFIX)),
    };
    check_tensors(&text, record_shapes(|vb| TextEncoder::new(vb, &cfg.text_encoder).map(|_| ())).unwrap(), path).unwrap();
    if let Some((cfg2, projection_dim)) = &cfg.text_encoder_2 {
        let open_clip = take_prefix(&mut tensors, SDXL_OPEN_CLIP_PREFIX);
        assert_eq!(open_clip_projection(&open_clip).unwrap().unwrap().dims(), &[*projection_dim, cfg2.hidden_size]);
        let text2 = open_clip_to_encoder(open_clip, cfg2.num_hidden_layers).unwrap();
        check_tensors(&text2, record_shapes(|vb| TextEncoder::new(vb, cfg2).map(|_| ())).unwrap(), path).unwrap();
    }
    assert!(tensors.is_empty(), "names left over: {:?}", tensors.keys().take(5).collect::<Vec<_>>());
}

#[test]
fn released_sd15_names_map_onto_the_sd1_configs() {
    check("sd15", Architecture::Sd1);
}

#[test]
fn released_sdxl_names_map_onto_the_sdxl_configs() {
    check("sdxl", Architecture::SdxlBase);
}

#[test]
fn released_sd21_names_map_onto_the_sd2_configs() {
    check("sd21", Architecture::Sd2);
}
