//! Per-token cross-attention maps (DAAM) of the Stable Diffusion U-Net through the same
//! recorder as Stipple's own U-Net: on the tiny SD 1.x fixture, the output is bit-identical
//! with and without it, every transformer block is recorded, and the maps have the latent's
//! size, are non-negative and share each pixel among the tokens.

mod common;

use candle_core::Device;
use common::*;
use stipple_nn::CrossAttentionRecorder;
use stipple_sd::SdPipeline;

#[test]
fn the_sd_unet_hands_its_cross_attention_to_a_recorder_without_changing_its_output() {
    let sd = SdPipeline::load(&folder(), &Device::Cpu).unwrap();
    let g = goldens();
    let (x, t, states) = (&g["unet.sample"], &g["unet.timesteps"], &g["unet.encoder_hidden_states"]);
    let (b, _, h, w) = x.dims4().unwrap();
    let tokens = states.dim(1).unwrap();
    let plain = sd.unet.forward(x, t, states).unwrap();
    let rec = CrossAttentionRecorder::new(b, h, w);
    let recorded = sd.unet.forward_recorded(x, t, states, None, Some(&rec)).unwrap();
    let flat = |t: &candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(flat(&plain), flat(&recorded), "recording changed the output");
    // One call per transformer block: down and up blocks' attentions and the mid block's.
    let cfg = sd.unet.config();
    let cross_down = cfg.down_block_types.iter().filter(|t| t.as_str() == "CrossAttnDownBlock2D").count();
    let cross_up = cfg.up_block_types.iter().filter(|t| t.as_str() == "CrossAttnUpBlock2D").count();
    let blocks = cross_down * cfg.layers_per_block + cross_up * (cfg.layers_per_block + 1) + 1;
    assert!(rec.calls() >= blocks, "{} calls for {blocks} transformers", rec.calls());
    let maps = rec.maps().unwrap().unwrap();
    assert_eq!(maps.dims(), &[b, tokens, h, w]);
    assert!(flat(&maps).iter().all(|&v| v >= 0.0));
    assert!(flat(&maps.sum(1).unwrap()).iter().all(|s| (s - 1.0).abs() < 1e-4));
}
