//! CSDI conditioning of the 1-D U-Net (Tashiro et al. 2021): the observation's channels, the
//! network that reads them beside the noisy sequence, the errors when one is missing or
//! unexpected, and model files with and without it.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use common::{named_tensors, values};
use stipple_nn::{
    load_model_file, observation_channels, read_model_config, save_model_file, DiffusionConfig, ModelConfig, NetworkConfig, SeriesWindow, UNet1D,
    UNet1DConfig, UNetCond, OBSERVATION_CHANNELS,
};

fn csdi(length: usize) -> UNet1DConfig {
    UNet1DConfig { cond_channels: OBSERVATION_CHANNELS, ..UNet1DConfig::tiny(length, 1) }
}

fn build(cfg: &UNet1DConfig) -> (UNet1D, VarMap) {
    let vm = VarMap::new();
    let net = UNet1D::new(VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu), cfg).unwrap();
    (net, vm)
}

fn seq(b: usize, l: usize, seed: u64) -> Tensor {
    Tensor::from_vec(values(b * l, seed), (b, 1, l), &Device::Cpu).unwrap()
}

/// The first `observed` of `l` values known.
fn keep(b: usize, l: usize, observed: usize) -> Tensor {
    let m: Vec<u8> = (0..b * l).map(|i| u8::from(i % l < observed)).collect();
    Tensor::from_vec(m, (b, 1, l), &Device::Cpu).unwrap()
}

fn rows(t: &Tensor) -> Vec<Vec<Vec<f32>>> {
    t.to_vec3::<f32>().unwrap()
}

#[test]
fn the_observation_is_the_masked_values_and_the_mask() {
    let known = seq(2, 8, 1);
    let o = observation_channels(&known, &keep(2, 8, 5)).unwrap();
    assert_eq!(o.dims(), &[2, OBSERVATION_CHANNELS, 8]);
    let (k, o) = (rows(&known), rows(&o));
    for b in 0..2 {
        for t in 0..8 {
            let observed = t < 5;
            assert_eq!(o[b][0][t], if observed { k[b][0][t] } else { 0.0 }, "values at ({b}, {t})");
            assert_eq!(o[b][1][t], if observed { 1.0 } else { 0.0 }, "mask at ({b}, {t})");
        }
    }
    assert!(observation_channels(&known, &keep(2, 4, 2)).is_err(), "a mask of another shape");
    assert!(observation_channels(&Tensor::zeros((1, 2, 8), DType::F32, &Device::Cpu).unwrap(), &keep(1, 8, 2)).is_err(), "two channels of values");
}

#[test]
fn a_csdi_network_reads_three_channels_and_ignores_the_noise_where_values_are_known() {
    let cfg = csdi(16);
    let shapes = UNet1D::parameter_shapes(&cfg).unwrap();
    let conv_in = shapes.iter().find(|(n, _)| n == "conv_in.weight").unwrap();
    assert_eq!(conv_in.1, vec![8, 1 + OBSERVATION_CHANNELS, 3], "the noisy sequence, the values and the mask");
    let (net, _) = build(&cfg);
    let t = Tensor::new(&[5f32, 400.0, 900.0], &Device::Cpu).unwrap();
    let (x, known, keep) = (seq(3, 16, 2), seq(1, 16, 3), keep(1, 16, 12));
    let one = observation_channels(&known, &keep).unwrap();
    let y = net.forward_cond(&x, &t, &UNetCond { observed: Some(one.clone()), ..Default::default() }).unwrap();
    assert_eq!(y.dims(), &[3, 1, 16]);
    // An observation of batch 1 is every sample's.
    let three = Tensor::cat(&[&one, &one, &one], 0).unwrap();
    let y3 = net.forward_cond(&x, &t, &UNetCond { observed: Some(three), ..Default::default() }).unwrap();
    assert_eq!(rows(&y), rows(&y3));
    // The noisy values where the mask observes are not read: x·(1 − m).
    let changed = (&x + keep.to_dtype(DType::F32).unwrap().broadcast_as((3, 1, 16)).unwrap().affine(7.0, 0.0).unwrap()).unwrap();
    let y_changed = net.forward_cond(&changed, &t, &UNetCond { observed: Some(one.clone()), ..Default::default() }).unwrap();
    assert_eq!(rows(&y), rows(&y_changed));
    // The observed values are read: another history, another output.
    let other = observation_channels(&seq(1, 16, 9), &keep).unwrap();
    let y_other = net.forward_cond(&x, &t, &UNetCond { observed: Some(other), ..Default::default() }).unwrap();
    assert_ne!(rows(&y), rows(&y_other));
}

#[test]
fn a_missing_or_unexpected_observation_is_an_error() {
    let t = Tensor::new(&[5f32], &Device::Cpu).unwrap();
    let x = seq(2, 16, 2);
    let (net, _) = build(&csdi(16));
    let err = net.forward_cond(&x, &t, &UNetCond::default()).unwrap_err().to_string();
    assert!(err.contains("none was given"), "{err}");
    let short = observation_channels(&seq(1, 8, 3), &keep(1, 8, 4)).unwrap();
    let err = net.forward_cond(&x, &t, &UNetCond { observed: Some(short), ..Default::default() }).unwrap_err().to_string();
    assert!(err.contains("shape"), "{err}");
    let (plain, _) = build(&UNet1DConfig::tiny(16, 1));
    let o = observation_channels(&seq(1, 16, 3), &keep(1, 16, 4)).unwrap();
    let err = plain.forward_cond(&x, &t, &UNetCond { observed: Some(o), ..Default::default() }).unwrap_err().to_string();
    assert!(err.contains("cond_channels = 0"), "{err}");
    for bad in [UNet1DConfig { cond_channels: 1, ..UNet1DConfig::tiny(16, 1) }, UNet1DConfig { cond_channels: 2, ..UNet1DConfig::tiny(16, 2) }] {
        assert!(bad.validate().unwrap_err().to_string().contains("cond_channels"));
    }
}

#[test]
fn model_files_with_and_without_the_observation_channels() {
    let dir = tempfile::tempdir().unwrap();
    let (net, vm) = build(&csdi(16));
    let mut cfg = ModelConfig::new(NetworkConfig::UNet1D(csdi(16)), DiffusionConfig::default());
    cfg.series = Some(SeriesWindow { context: 12, horizon: 4, columns: vec!["y".into()], transform: Default::default() });
    let path = dir.path().join("csdi.safetensors");
    save_model_file(&path, &named_tensors(&vm), &cfg, None, &[]).unwrap();
    let (read, meta) = read_model_config(&path).unwrap();
    assert_eq!(read, cfg);
    assert!(read.network.reads_observation());
    assert!(meta["config"].contains("\"cond_channels\":2"), "{}", meta["config"]);
    let loaded = load_model_file(&path, &Device::Cpu).unwrap();
    let (x, t) = (seq(2, 16, 4), Tensor::new(&[3f32, 700.0], &Device::Cpu).unwrap());
    let cond = UNetCond { observed: Some(observation_channels(&seq(1, 16, 5), &keep(1, 16, 12)).unwrap()), ..Default::default() };
    assert_eq!(rows(&net.forward_cond(&x, &t, &cond).unwrap()), rows(&loaded.net.forward_cond(&x, &t, &cond).unwrap()));
    // A file of a network without it has no such key, and reads back as one without it.
    let (_, vm) = build(&UNet1DConfig::tiny(16, 1));
    cfg.network = NetworkConfig::UNet1D(UNet1DConfig::tiny(16, 1));
    let path = dir.path().join("plain.safetensors");
    save_model_file(&path, &named_tensors(&vm), &cfg, None, &[]).unwrap();
    let (read, meta) = read_model_config(&path).unwrap();
    assert!(!meta["config"].contains("cond_channels") && !read.network.reads_observation(), "{}", meta["config"]);
}
