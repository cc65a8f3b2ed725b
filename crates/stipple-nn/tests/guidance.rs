//! Classifier-free guidance: scale 1 is the conditional model, scale 0 the unconditional
//! one, other scales u + s·(c − u) from one batched call; inpainting keeps known pixels.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use stipple_nn::{denoiser, guided_denoiser, DiffusionConfig, GuidanceSettings, Inpaint, Net, TensorLatent, UNet2D, UNetCond, UNetConfig};
use stipple_sample::Denoiser;

/// Class-label conditioning.
fn labels(t: &Tensor) -> UNetCond {
    UNetCond { class_labels: Some(t.clone()), encoder_hidden_states: None, observed: None }
}

fn net() -> (VarMap, Net) {
    let cfg = UNetConfig { num_class_embeds: Some(4), ..UNetConfig::tiny() };
    let vm = VarMap::new();
    let unet = UNet2D::new(VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu), &cfg).unwrap();
    (vm, Net::UNet2D(unet))
}

fn input(unet_cfg: &UNetConfig) -> TensorLatent {
    let s = unet_cfg.sample_size.unwrap_or(8);
    TensorLatent(Tensor::randn(0f32, 3.0, (2, unet_cfg.in_channels, s, s), &Device::Cpu).unwrap())
}

fn values(t: &TensorLatent) -> Vec<f32> {
    t.0.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn scale_one_is_conditional_and_zero_unconditional() {
    let (_vm, unet) = net();
    let diffusion = DiffusionConfig::default();
    let x = input(&UNetConfig::tiny());
    let cond = Tensor::new(&[0u32, 2], &Device::Cpu).unwrap();
    let uncond = Tensor::new(&[3u32, 3], &Device::Cpu).unwrap();
    for sigma in [0.3, 2.0, 40.0] {
        let c = denoiser(&unet, &diffusion, Some(cond.clone())).denoise(&x, sigma).unwrap();
        let u = denoiser(&unet, &diffusion, Some(uncond.clone())).denoise(&x, sigma).unwrap();
        let at = |scale: f64| {
            let settings = GuidanceSettings { scale, ..Default::default() };
            guided_denoiser(&unet, &diffusion, labels(&cond), Some(labels(&uncond)), settings).denoise(&x, sigma).unwrap()
        };
        assert_eq!(values(&at(1.0)), values(&c));
        assert_eq!(values(&at(0.0)), values(&u));
        assert_ne!(values(&c), values(&u), "labels must matter");
        // Other scales: one batched call of [x, x], u + s·(c − u) on the denoised estimates.
        let g = values(&at(3.0));
        for ((g, c), u) in g.iter().zip(values(&c)).zip(values(&u)) {
            let want = u + 3.0 * (c - u);
            assert!((g - want).abs() <= 1e-3 * (1.0 + want.abs()), "{g} vs {want}");
        }
        // Outside the guidance interval: the conditional model alone.
        let outside = GuidanceSettings { scale: 5.0, interval: Some((sigma * 2.0, sigma * 4.0)), ..Default::default() };
        let d = guided_denoiser(&unet, &diffusion, labels(&cond), Some(labels(&uncond)), outside).denoise(&x, sigma).unwrap();
        assert_eq!(values(&d), values(&c));
        // Rescale φ at scale 1 changes nothing (the guided prediction is the conditional one).
        let r = GuidanceSettings { scale: 1.0, rescale: 0.7, interval: None };
        let d = guided_denoiser(&unet, &diffusion, labels(&cond), Some(labels(&uncond)), r).denoise(&x, sigma).unwrap();
        assert_eq!(values(&d), values(&c));
    }
}

#[test]
fn rescale_matches_the_conditional_std() {
    // With x₀-prediction D = F, so φ = 1 gives the conditional prediction's per-image std.
    let (_vm, unet) = net();
    let diffusion = DiffusionConfig { prediction_type: stipple_sample::Prediction::Sample, ..Default::default() };
    let x = input(&UNetConfig::tiny());
    let cond = Tensor::new(&[1u32, 2], &Device::Cpu).unwrap();
    let uncond = Tensor::new(&[3u32, 3], &Device::Cpu).unwrap();
    let c = denoiser(&unet, &diffusion, Some(cond.clone())).denoise(&x, 5.0).unwrap();
    let s = GuidanceSettings { scale: 4.0, rescale: 1.0, interval: None };
    let g = guided_denoiser(&unet, &diffusion, labels(&cond), Some(labels(&uncond)), s).denoise(&x, 5.0).unwrap();
    let std = |t: &Tensor| -> f32 {
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let m = v.iter().sum::<f32>() / v.len() as f32;
        (v.iter().map(|a| (a - m).powi(2)).sum::<f32>() / v.len() as f32).sqrt()
    };
    for i in 0..2 {
        let (a, b) = (std(&g.0.get(i).unwrap()), std(&c.0.get(i).unwrap()));
        assert!((a - b).abs() < 1e-3 * b, "{a} vs {b}");
    }
}

#[test]
fn inpaint_keeps_the_known_pixels() {
    let (_vm, unet) = net();
    let diffusion = DiffusionConfig::default();
    let x = input(&UNetConfig::tiny());
    let known = Tensor::randn(0f32, 1.0, x.0.shape(), &Device::Cpu).unwrap();
    let keep = Tensor::randn(0f32, 1.0, x.0.shape(), &Device::Cpu).unwrap().ge(0f32).unwrap();
    let cond = Tensor::new(&[1u32, 2], &Device::Cpu).unwrap();
    let mut d = Inpaint { inner: denoiser(&unet, &diffusion, Some(cond)), known: known.clone(), keep: keep.clone() };
    let out = d.denoise(&x, 3.0).unwrap();
    let (o, k, m): (Vec<f32>, Vec<f32>, Vec<u8>) =
        (values(&out), known.flatten_all().unwrap().to_vec1().unwrap(), keep.flatten_all().unwrap().to_vec1().unwrap());
    for ((o, k), m) in o.iter().zip(&k).zip(&m) {
        if *m == 1 {
            assert_eq!(o, k);
        }
    }
}
