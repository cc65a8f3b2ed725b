//! Shapes, parameter names and counts, gradients.

mod common;

use std::collections::BTreeSet;

use candle_core::{Device, Tensor};
use common::*;
use stipple_nn::{num_parameters, UNet2D, UNetCond, UNetConfig};

#[test]
fn tiny_output_shape_batch_2_and_1() {
    let cfg = UNetConfig::tiny();
    let (net, _) = fresh(&cfg);
    let y = net.forward(&input(2, 3, 8, 1), &timesteps(&[10.0, 500.5]), None).unwrap();
    assert_eq!(y.dims(), &[2, 3, 8, 8]);
    let y = net.forward(&input(1, 3, 8, 2), &timesteps(&[-0.3]), None).unwrap();
    assert_eq!(y.dims(), &[1, 3, 8, 8]);
    // Other sizes divisible by 2^(levels-1) work too (the U-Net is fully convolutional).
    let y = net.forward(&input(1, 3, 16, 2), &timesteps(&[3.0]), None).unwrap();
    assert_eq!(y.dims(), &[1, 3, 16, 16]);
    assert!(flat(&y).iter().all(|v| v.is_finite()));
}

#[test]
fn tiny_with_class_labels() {
    let cfg = UNetConfig { num_class_embeds: Some(10), ..UNetConfig::tiny() };
    let (net, _) = fresh(&cfg);
    let x = input(2, 3, 8, 3);
    let t = timesteps(&[1.0, 2.0]);
    let a = Tensor::new(&[0u32, 9], &Device::Cpu).unwrap();
    let b = Tensor::new(&[1u32, 9], &Device::Cpu).unwrap();
    let ya = net.forward(&x, &t, Some(&a)).unwrap();
    let yb = net.forward(&x, &t, Some(&b)).unwrap();
    assert_eq!(ya.dims(), &[2, 3, 8, 8]);
    // Item 0 changes with its label, item 1 (same label) does not.
    let (fa, fb) = (flat(&ya), flat(&yb));
    assert_ne!(fa[..192], fb[..192]);
    assert_eq!(fa[192..], fb[192..]);
    // Batch 1 with a label.
    let y1 = net.forward(&input(1, 3, 8, 3), &timesteps(&[1.0]), Some(&Tensor::new(&[4u32], &Device::Cpu).unwrap()));
    assert_eq!(y1.unwrap().dims(), &[1, 3, 8, 8]);
    // Missing labels are an error, not a panic.
    let err = net.forward(&x, &t, None).unwrap_err().to_string();
    assert!(err.contains("class_labels"), "{err}");
}

/// Items of a batch do not influence each other.
#[test]
fn batch_items_are_independent() {
    let (net, _) = fresh(&UNetConfig::tiny());
    let x = input(2, 3, 8, 1);
    let y = net.forward(&x, &timesteps(&[10.0, 500.5]), None).unwrap();
    let y1 = net.forward(&x.narrow(0, 1, 1).unwrap(), &timesteps(&[500.5]), None).unwrap();
    let (a, b) = (flat(&y)[192..].to_vec(), flat(&y1));
    let max = a.iter().zip(&b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
    assert!(max < 1e-5, "max diff {max}");
}

#[test]
fn bad_inputs_are_errors() {
    let (net, _) = fresh(&UNetConfig::tiny());
    assert!(net.forward(&input(1, 3, 5, 1), &timesteps(&[1.0]), None).is_err()); // 5 not a multiple of 2
    assert!(net.forward(&input(1, 4, 8, 1), &timesteps(&[1.0]), None).is_err()); // channels
    assert!(net.forward(&input(2, 3, 8, 1), &timesteps(&[1.0, 2.0, 3.0]), None).is_err());
    let labels = Tensor::new(&[1u32], &Device::Cpu).unwrap();
    assert!(net.forward(&input(1, 3, 8, 1), &timesteps(&[1.0]), Some(&labels)).is_err());
    // A single timestep broadcasts over the batch, as in diffusers.
    let y = net.forward(&input(2, 3, 8, 1), &timesteps(&[7.0]), None).unwrap();
    let y2 = net.forward(&input(2, 3, 8, 1), &timesteps(&[7.0, 7.0]), None).unwrap();
    assert_eq!(flat(&y), flat(&y2));
}

#[test]
fn no_attention_config_shape() {
    let mut cfg = UNetConfig::with_attention_at(16, 1, &[32, 64, 64], 1, &[]).unwrap();
    cfg.add_attention = false;
    let (net, vm) = fresh(&cfg);
    assert!(named_tensors(&vm).iter().all(|(n, _)| !n.contains("attentions")));
    let y = net.forward(&input(3, 1, 16, 4), &timesteps(&[0.0, 1.0, 999.0]), None).unwrap();
    assert_eq!(y.dims(), &[3, 1, 16, 16]);
}

#[test]
fn with_attention_at_maps_resolutions_to_block_types() {
    use stipple_nn::{DownBlockType::*, UpBlockType::*};
    let cfg = UNetConfig::with_attention_at(32, 3, &[64, 128, 128], 2, &[16]).unwrap();
    assert_eq!(cfg.down_block_types, vec![DownBlock2D, AttnDownBlock2D, DownBlock2D]);
    assert_eq!(cfg.up_block_types, vec![UpBlock2D, AttnUpBlock2D, UpBlock2D]);
    let err = UNetConfig::with_attention_at(32, 3, &[64, 128, 128], 2, &[4]).unwrap_err();
    assert!(err.to_string().contains("[32, 16, 8]"), "{err}");
}

/// The exact diffusers parameter names of the tiny config.
#[test]
fn tiny_weight_names_are_diffusers_names() {
    const CONV: &[&str] = &["weight", "bias"];
    const RESNET: &[&str] = &[
        "norm1.weight", "norm1.bias", "conv1.weight", "conv1.bias", "time_emb_proj.weight",
        "time_emb_proj.bias", "norm2.weight", "norm2.bias", "conv2.weight", "conv2.bias",
    ];
    const SHORTCUT: &[&str] = &["conv_shortcut.weight", "conv_shortcut.bias"];
    const ATTN: &[&str] = &[
        "group_norm.weight", "group_norm.bias", "to_q.weight", "to_q.bias", "to_k.weight",
        "to_k.bias", "to_v.weight", "to_v.bias", "to_out.0.weight", "to_out.0.bias",
    ];
    let modules: &[(&str, &[&[&str]])] = &[
        ("conv_in", &[CONV]),
        ("time_embedding.linear_1", &[CONV]),
        ("time_embedding.linear_2", &[CONV]),
        ("down_blocks.0.resnets.0", &[RESNET]), // 8 → 8
        ("down_blocks.0.downsamplers.0.conv", &[CONV]),
        ("down_blocks.1.resnets.0", &[RESNET, SHORTCUT]), // 8 → 16
        ("down_blocks.1.attentions.0", &[ATTN]),
        ("mid_block.resnets.0", &[RESNET]),
        ("mid_block.attentions.0", &[ATTN]),
        ("mid_block.resnets.1", &[RESNET]),
        ("up_blocks.0.resnets.0", &[RESNET, SHORTCUT]), // 16 + skip 16 → 16
        ("up_blocks.0.attentions.0", &[ATTN]),
        ("up_blocks.0.resnets.1", &[RESNET, SHORTCUT]), // 16 + skip 8 → 16
        ("up_blocks.0.attentions.1", &[ATTN]),
        ("up_blocks.0.upsamplers.0.conv", &[CONV]),
        ("up_blocks.1.resnets.0", &[RESNET, SHORTCUT]), // 16 + skip 8 → 8
        ("up_blocks.1.resnets.1", &[RESNET, SHORTCUT]), // 8 + skip 8 → 8
        ("conv_norm_out", &[CONV]),
        ("conv_out", &[CONV]),
    ];
    let expected: BTreeSet<String> = modules
        .iter()
        .flat_map(|(m, groups)| groups.iter().flat_map(move |g| g.iter().map(move |p| format!("{m}.{p}"))))
        .collect();
    let (_, vm) = fresh(&UNetConfig::tiny());
    let got: BTreeSet<String> = named_tensors(&vm).into_iter().map(|(n, _)| n).collect();
    assert_eq!(got, expected);
    // parameter_shapes (used to check files) agrees with what the network builds.
    let shapes = UNet2D::parameter_shapes(&UNetConfig::tiny()).unwrap();
    let names: BTreeSet<String> = shapes.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names, expected);
    // With classes, one more: class_embedding.weight (num_class_embeds, 4·8).
    let cfg = UNetConfig { num_class_embeds: Some(5), ..UNetConfig::tiny() };
    let shapes = UNet2D::parameter_shapes(&cfg).unwrap();
    assert!(shapes.contains(&("class_embedding.weight".to_string(), vec![5, 32])));
}

/// The tiny config has 45,259 parameters, the count diffusers reports for the same
/// `UNet2DModel` (tiny config, attention_head_dim 8; see /work/shared/REFERENCES.md).
#[test]
fn tiny_parameter_count() {
    let (_, vm) = fresh(&UNetConfig::tiny());
    assert_eq!(num_parameters(&vm), 45_259);
}

/// bench_unet32 parameter count, by hand from diffusers' UNet2DModel layout
/// (block_out_channels (64,128,128), 2 resnets per down block, 3 per up block, temb 256):
///
/// R(i,o) = resnet i→o = norm1 2i + conv1 (9io+o) + time_emb_proj (256o+o) + norm2 2o
///          + conv2 (9o²+o) + [i≠o] shortcut (io+o)
///   R(64,64)=90,560  R(64,128)=263,040  R(128,128)=328,576  R(256,128)=509,184
///   R(192,128)=427,136  R(192,64)=176,896  R(128,64)=135,808
/// conv_in 3·64·9+64 = 1,792; time_embedding (64·256+256)+(256·256+256) = 82,432
/// down 0: 2·R(64,64) + downsampler (64·64·9+64) = 181,120 + 36,928 = 218,048
/// down 1: R(64,128) + R(128,128) + downsampler (128·128·9+128) = 739,200
/// down 2: 2·R(128,128) = 657,152
/// mid: 2·R(128,128) + attention (GroupNorm 256 + 4·(128·128+128)) = 657,152 + 66,304 = 723,456
/// up 0 (in 128+skips 128,128,128): 3·R(256,128) + upsampler 147,584 = 1,675,136
/// up 1 (skips 128,128,64):         2·R(256,128) + R(192,128) + 147,584 = 1,593,088
/// up 2 (128 + skips 64,64,64):     R(192,64) + 2·R(128,64) = 448,512
/// conv_norm_out 128 + conv_out 64·3·9+3 = 1,859
/// total = 6,140,675
#[test]
fn bench_unet32_parameter_count() {
    let cfg = UNetConfig::bench_unet32();
    let (net, vm) = fresh(&cfg);
    let n = num_parameters(&vm);
    println!("bench_unet32 parameters: {n}");
    assert_eq!(n, 6_140_675);
    let by_shapes: usize = UNet2D::parameter_shapes(&cfg).unwrap().iter().map(|(_, s)| s.iter().product::<usize>()).sum();
    assert_eq!(by_shapes, n);
    let y = net.forward(&input(1, 3, 32, 5), &timesteps(&[0.25]), None).unwrap();
    assert_eq!(y.dims(), &[1, 3, 32, 32]);
}

/// Every parameter gets a non-zero gradient (catches ops without backward, e.g. the fused
/// `softmax_last_dim`, and parameters that never enter the graph).
#[test]
fn gradients_reach_every_parameter() {
    let cfg = UNetConfig { num_class_embeds: Some(3), dropout: 0.1, ..UNetConfig::tiny() };
    let (net, vm) = fresh(&cfg);
    let labels = Tensor::new(&[0u32, 2], &Device::Cpu).unwrap();
    let y = net.forward_train(&input(2, 3, 8, 6), &timesteps(&[3.0, 700.0]), &UNetCond { class_labels: Some(labels.clone()), encoder_hidden_states: None, observed: None }, 11).unwrap();
    let target = input(2, 3, 8, 7);
    let loss = (y - target).unwrap().sqr().unwrap().mean_all().unwrap();
    let grads = loss.backward().unwrap();
    let mut missing = Vec::new();
    for (name, t) in named_tensors(&vm) {
        match grads.get(&t) {
            // The key bias adds q·b_k to every score of a row, which softmax ignores: its true
            // gradient is exactly 0 (it is in the graph; float rounding leaves ~1e-16).
            Some(_) if name.ends_with("to_k.bias") => {}
            Some(g) => {
                let s = g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
                if !(s > 0.0 && s.is_finite()) {
                    missing.push(format!("{name} (|grad| sum {s})"));
                }
            }
            None => missing.push(format!("{name} (no grad)")),
        }
    }
    assert!(missing.is_empty(), "parameters without gradient: {missing:?}");
}

#[test]
fn config_validation_messages() {
    let bad = UNetConfig { norm_num_groups: 3, ..UNetConfig::tiny() };
    let e = bad.validate().unwrap_err().to_string();
    assert!(e.contains("norm_num_groups"), "{e}");
    let bad = UNetConfig { attention_head_dim: Some(5), ..UNetConfig::tiny() };
    assert!(bad.validate().unwrap_err().to_string().contains("attention_head_dim"));
    let bad = UNetConfig { dropout: 1.0, ..UNetConfig::tiny() };
    assert!(bad.validate().unwrap_err().to_string().contains("dropout"));
    let mut bad = UNetConfig::tiny();
    bad.up_block_types.pop();
    assert!(bad.validate().unwrap_err().to_string().contains("up_block_types"));
    UNetConfig::tiny().validate().unwrap();
    UNetConfig::bench_unet32().validate().unwrap();
    UNetConfig::default().validate().unwrap();
}

#[test]
fn config_serde_round_trip_and_diffusers_keys() {
    let cfg = UNetConfig::tiny();
    let json = serde_json::to_string(&cfg).unwrap();
    let back: UNetConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cfg);
    // Unknown keys are rejected by the strict struct…
    assert!(serde_json::from_str::<UNetConfig>(r#"{"act_fn": "silu"}"#).is_err());
    // …while a diffusers config.json with its bookkeeping and default-valued keys loads.
    let diffusers = r#"{
        "_class_name": "UNet2DModel", "_diffusers_version": "0.30.0",
        "act_fn": "silu", "add_attention": true, "attention_head_dim": 8,
        "attn_norm_num_groups": null, "block_out_channels": [8, 16],
        "center_input_sample": false, "class_embed_type": null,
        "down_block_types": ["DownBlock2D", "AttnDownBlock2D"], "downsample_padding": 1,
        "downsample_type": "conv", "dropout": 0.0, "flip_sin_to_cos": true, "freq_shift": 0,
        "in_channels": 3, "layers_per_block": 1, "mid_block_scale_factor": 1,
        "norm_eps": 1e-05, "norm_num_groups": 4, "num_class_embeds": null,
        "num_train_timesteps": null, "out_channels": 3, "resnet_time_scale_shift": "default",
        "sample_size": 8, "time_embedding_dim": null, "time_embedding_type": "positional",
        "up_block_types": ["AttnUpBlock2D", "UpBlock2D"], "upsample_type": "conv"
    }"#;
    assert_eq!(UNetConfig::from_diffusers_json(diffusers).unwrap(), UNetConfig::tiny());
    let e = UNetConfig::from_diffusers_json(&diffusers.replace("\"silu\"", "\"gelu\"")).unwrap_err();
    assert!(e.to_string().contains("act_fn"), "{e}");
}
