//! The 1-D U-Net: output shapes, parameter names, conditioning errors, and the model file
//! round trip of a 1-D model (a version-2 file read back to the same outputs).

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use common::{named_tensors, values};
use stipple_nn::{
    load_model_file, read_model_config, save_model_file, DiffWaveConfig, DiffWaveNet, DiffusionConfig, ModelConfig, Net, NetworkConfig,
    SeriesWindow, SoundFormat, UNet1D, UNet1DConfig, UNetCond,
};
use stipple_series::SeriesTransform;

fn build(cfg: &UNet1DConfig) -> (UNet1D, VarMap) {
    let vm = VarMap::new();
    let net = UNet1D::new(VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu), cfg).unwrap();
    (net, vm)
}

fn seq(b: usize, c: usize, l: usize, seed: u64) -> Tensor {
    Tensor::from_vec(values(b * c * l, seed), (b, c, l), &Device::Cpu).unwrap()
}

#[test]
fn output_has_the_input_shape_at_every_depth() {
    for (cfg, l) in [(UNet1DConfig::tiny(8, 1), 8), (UNet1DConfig::tiny(16, 3), 16), (UNet1DConfig::small(32, 2), 32)] {
        let (net, _) = build(&cfg);
        let x = seq(3, cfg.in_channels, l, 1);
        let t = Tensor::new(&[1f32, 50.0, 900.0], &Device::Cpu).unwrap();
        let y = net.forward_cond(&x, &t, &UNetCond::default()).unwrap();
        assert_eq!(y.dims(), &[3, cfg.out_channels, l]);
        // Different noise levels give different outputs for the same input.
        let first = x.get(0).unwrap().unsqueeze(0).unwrap();
        let same = Tensor::cat(&[&first, &first, &first], 0).unwrap();
        let y = net.forward_cond(&same, &t, &UNetCond::default()).unwrap();
        let d = (y.get(0).unwrap() - y.get(2).unwrap()).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d > 1e-6, "the time embedding must change the output");
    }
}

#[test]
fn parameter_names_follow_the_2d_layout() {
    let cfg = UNet1DConfig::tiny(8, 1);
    let shapes = UNet1D::parameter_shapes(&cfg).unwrap();
    let names: Vec<&str> = shapes.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "conv_in.weight",
        "down_blocks.0.downsamplers.0.conv.weight",
        "down_blocks.1.attentions.0.to_q.weight",
        "mid_block.resnets.1.conv2.weight",
        "up_blocks.0.upsamplers.0.conv.weight",
        "conv_out.bias",
    ] {
        assert!(names.contains(&want), "missing {want}");
    }
    let conv_in = shapes.iter().find(|(n, _)| n == "conv_in.weight").unwrap();
    assert_eq!(conv_in.1, vec![8, 1, 3], "(out, in, kernel) of a 1-D convolution");
    // No attention at level 0 (its flag is off), nor on its up path (the last up block).
    assert!(!names.iter().any(|n| n.starts_with("down_blocks.0.attentions") || n.starts_with("up_blocks.1.attentions")));
    let (_, vm) = build(&cfg);
    assert_eq!(named_tensors(&vm).len(), shapes.len());
}

#[test]
fn bad_inputs_and_configs_are_errors() {
    let cfg = UNet1DConfig::tiny(8, 1);
    let (net, _) = build(&cfg);
    let t = Tensor::new(&[1f32], &Device::Cpu).unwrap();
    let err = net.forward_cond(&seq(1, 2, 8, 1), &t, &UNetCond::default()).unwrap_err().to_string();
    assert!(err.contains("in_channels = 1"), "{err}");
    let err = net.forward_cond(&seq(1, 1, 7, 1), &t, &UNetCond::default()).unwrap_err().to_string();
    assert!(err.contains("multiple of 2"), "{err}");
    let labels = UNetCond { class_labels: Some(Tensor::new(&[0u32], &Device::Cpu).unwrap()), encoder_hidden_states: None, observed: None };
    let err = net.forward_cond(&seq(1, 1, 8, 1), &t, &labels).unwrap_err().to_string();
    assert!(err.contains("no class embedding"), "{err}");
    let odd = UNet1DConfig { sample_size: 9, ..cfg.clone() };
    assert!(odd.validate().unwrap_err().to_string().contains("multiple of 2"));
    let flags = UNet1DConfig { attention_levels: vec![true], ..cfg };
    assert!(flags.validate().unwrap_err().to_string().contains("one flag per level"));
}

#[test]
fn model_file_round_trip_of_a_forecaster() {
    let dir = tempfile::tempdir().unwrap();
    let net_cfg = UNet1DConfig::tiny(16, 1);
    let (net, vm) = build(&net_cfg);
    let mut cfg = ModelConfig::new(NetworkConfig::UNet1D(net_cfg), DiffusionConfig::default());
    cfg.series = Some(SeriesWindow { context: 12, horizon: 4, columns: vec!["y".into()], transform: Default::default() });
    let path = dir.path().join("f.safetensors");
    save_model_file(&path, &named_tensors(&vm), &cfg, None, &[]).unwrap();
    let (read, meta) = read_model_config(&path).unwrap();
    assert_eq!(read, cfg);
    assert_eq!(meta["format_version"], "2");
    assert!(meta["config"].contains("\"unet1d\"") && !meta["config"].contains("\"unet\""), "{}", meta["config"]);
    let loaded = load_model_file(&path, &Device::Cpu).unwrap();
    assert!(matches!(loaded.net, Net::UNet1D(_)));
    let x = seq(2, 1, 16, 4);
    let t = Tensor::new(&[3f32, 700.0], &Device::Cpu).unwrap();
    let a = net.forward_cond(&x, &t, &UNetCond::default()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = loaded.net.forward(&x, &t, None).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a, b);
    // A window that does not fit the network's length is refused.
    cfg.series = Some(SeriesWindow { context: 12, horizon: 8, columns: vec![], transform: Default::default() });
    assert!(cfg.validate().unwrap_err().to_string().contains("context 12 + horizon 8"));
}

/// A forecaster of a transformed series records its transform and is written as version 3;
/// a file without the key (every file written before it existed) reads as no transform.
#[test]
fn model_file_of_a_transformed_series() {
    let dir = tempfile::tempdir().unwrap();
    let net_cfg = UNet1DConfig::tiny(16, 1);
    let (_, vm) = build(&net_cfg);
    let mut cfg = ModelConfig::new(NetworkConfig::UNet1D(net_cfg), DiffusionConfig::default());
    let transform = SeriesTransform { log: true, differences: vec![1, 12] };
    cfg.series = Some(SeriesWindow { context: 12, horizon: 4, columns: vec!["y".into()], transform: transform.clone() });
    let path = dir.path().join("t.safetensors");
    save_model_file(&path, &named_tensors(&vm), &cfg, None, &[]).unwrap();
    let (read, meta) = read_model_config(&path).unwrap();
    assert_eq!(read.series.unwrap().transform, transform);
    assert_eq!(meta["format_version"], "3");
    assert!(meta["config"].contains(r#""transform":{"log":true,"differences":[1,12]}"#), "{}", meta["config"]);
    // Without a transform: no key, version 2, and such a file reads as no transform.
    cfg.series = Some(SeriesWindow { context: 12, horizon: 4, columns: vec!["y".into()], transform: SeriesTransform::default() });
    save_model_file(&path, &named_tensors(&vm), &cfg, None, &[]).unwrap();
    let (read, meta) = read_model_config(&path).unwrap();
    assert!(!meta["config"].contains("transform") && meta["format_version"] == "2", "{}", meta["config"]);
    assert!(read.series.unwrap().transform.is_identity());
    // A lag of 0 is refused.
    cfg.series = Some(SeriesWindow { context: 12, horizon: 4, columns: vec![], transform: SeriesTransform { log: false, differences: vec![0] } });
    assert!(cfg.validate().unwrap_err().to_string().contains("lags of at least 1"));
}

/// A DiffWave model of sound: written under the `diffwave` key with its length and sample
/// rate, read back to the same network output.
#[test]
fn model_file_round_trip_of_a_diffwave_sound_model() {
    let dir = tempfile::tempdir().unwrap();
    let network = NetworkConfig::DiffWave(DiffWaveNet { sample_size: 64, net: DiffWaveConfig::tiny() });
    let vm = VarMap::new();
    let net = Net::new(VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu), &network).unwrap();
    // Every weight drawn afresh (DiffWave zero-initialises its output projection, which
    // would hide the rest of the network from the comparison below).
    for (k, var) in vm.all_vars().iter().enumerate() {
        var.set(&Tensor::from_vec(values(var.elem_count(), 100 + k as u64), var.shape(), &Device::Cpu).unwrap()).unwrap();
    }
    let mut cfg = ModelConfig::new(network, DiffusionConfig::default());
    cfg.sound = Some(SoundFormat { sample_rate: 8000 });
    assert_eq!(cfg.sample_shape().dims(), vec![1, 64]);
    let path = dir.path().join("w.safetensors");
    save_model_file(&path, &named_tensors(&vm), &cfg, None, &[]).unwrap();
    let (read, meta) = read_model_config(&path).unwrap();
    assert_eq!(read, cfg);
    assert_eq!(meta["format_version"], "2");
    assert!(meta["config"].contains("\"diffwave\""), "{}", meta["config"]);
    let loaded = load_model_file(&path, &Device::Cpu).unwrap();
    let x = seq(2, 1, 64, 8);
    let t = Tensor::new(&[3f32, 700.0], &Device::Cpu).unwrap();
    let a = net.forward(&x, &t, None).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = loaded.net.forward(&x, &t, None).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a, b);
    assert!(a.iter().any(|v| (v - a[0]).abs() > 1e-3), "a network output, not a constant");
    // A zero length is refused.
    let zero = NetworkConfig::DiffWave(DiffWaveNet { sample_size: 0, net: DiffWaveConfig::tiny() });
    assert!(zero.validate().unwrap_err().to_string().contains("sample_size"));
}
