//! A feature space that needs no outside weights: a small CNN classifier trained on the
//! data set's own labels (emoji categories, digit classes), whose penultimate activations
//! (the global average pool of its last convolution) embed images. It stands in for
//! Inception-v3's ImageNet features where those fit the data poorly (small icons, digits);
//! the Fréchet distance, KID and precision/recall are computed in it as in Inception space.
//! Its figures compare models of one data set; they are not comparable with FID.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Module, Tensor, Var, D};
use candle_nn::{Conv2d, Conv2dConfig, Linear, Optimizer, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{EvalError, Features};

/// Metadata key of the network's configuration in its safetensors file.
const CONFIG_KEY: &str = "stipple_feature_net";
/// Channel widths of the three convolution stages; the last is the feature dimension.
const WIDTHS: [usize; 3] = [32, 64, 128];

/// What the network takes and knows: square images of `size` with `channels`, in [−1, 1]
/// (the training data loader's range), and the class names it was trained to tell apart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureNetConfig {
    pub size: usize,
    pub channels: usize,
    pub classes: Vec<String>,
}

/// How to train it.
#[derive(Clone, Copy, Debug)]
pub struct TrainOptions {
    pub steps: usize,
    pub batch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// Seed of the initial weights and of the batch order.
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        // 1e-3: Adam's usual rate, stable for a net this small without normalisation layers.
        Self { steps: 600, batch_size: 64, learning_rate: 1e-3, seed: 0 }
    }
}

/// A labelled image set as the training loop takes it: `images` `(N, C, H, W)` in [−1, 1],
/// `labels[i]` the class index of image i.
pub struct LabelledImages<'a> {
    pub images: &'a Tensor,
    pub labels: &'a [u32],
}

/// conv 3×3 → ReLU → 2×2 average pool, three times (the last without the pool), global
/// average pool to 128 features, a linear classifier on top.
pub struct DomainFeatureNet {
    pub config: FeatureNetConfig,
    convs: Vec<Conv2d>,
    classifier: Linear,
    varmap: VarMap,
    device: Device,
}

fn conv_shapes(channels: usize) -> [(usize, usize); 3] {
    [(channels, WIDTHS[0]), (WIDTHS[0], WIDTHS[1]), (WIDTHS[1], WIDTHS[2])]
}

/// Every parameter's name, shape and fan-in (0 for a bias).
fn parameters(config: &FeatureNetConfig) -> Vec<(String, Vec<usize>, usize)> {
    let mut out = Vec::new();
    for (i, (c_in, c_out)) in conv_shapes(config.channels).into_iter().enumerate() {
        out.push((format!("conv{}.weight", i + 1), vec![c_out, c_in, 3, 3], c_in * 9));
        out.push((format!("conv{}.bias", i + 1), vec![c_out], 0));
    }
    out.push(("classifier.weight".into(), vec![config.classes.len(), WIDTHS[2]], WIDTHS[2]));
    out.push(("classifier.bias".into(), vec![config.classes.len()], 0));
    out
}

impl DomainFeatureNet {
    fn build(config: FeatureNetConfig, varmap: VarMap, device: &Device) -> candle_core::Result<Self> {
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let pad = Conv2dConfig { padding: 1, ..Default::default() };
        let convs = conv_shapes(config.channels)
            .iter()
            .enumerate()
            .map(|(i, &(c_in, c_out))| candle_nn::conv2d(c_in, c_out, 3, pad, vb.pp(format!("conv{}", i + 1))))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let classifier = candle_nn::linear(WIDTHS[2], config.classes.len(), vb.pp("classifier"))?;
        Ok(Self { config, convs, classifier, varmap, device: device.clone() })
    }

    /// A new network with Kaiming-uniform weights (He et al. 2015, as PyTorch's default
    /// `kaiming_uniform_(a=√5)` bound `1/√fan_in`) drawn from `seed`, zero biases.
    pub fn new(config: FeatureNetConfig, seed: u64, device: &Device) -> Result<Self, EvalError> {
        if config.classes.len() < 2 {
            return Err(EvalError::setting("labels", format!("at least 2 classes to train a feature network on, got {}", config.classes.len())));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let varmap = VarMap::new();
        {
            let mut data = varmap.data().lock().expect("varmap lock");
            for (name, shape, fan_in) in parameters(&config) {
                let n: usize = shape.iter().product();
                let v: Vec<f32> = match fan_in {
                    0 => vec![0.0; n],
                    f => {
                        let bound = 1.0 / (f as f32).sqrt();
                        (0..n).map(|_| rng.random_range(-bound..bound)).collect()
                    }
                };
                data.insert(name, Var::from_tensor(&Tensor::from_vec(v, shape, device)?)?);
            }
        }
        Ok(Self::build(config, varmap, device)?)
    }

    /// Penultimate features.
    ///
    /// # Shapes
    /// `images`: `(B, channels, size, size)` in [−1, 1] → `(B, 128)`.
    pub fn forward_features(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = images.clone();
        for (i, conv) in self.convs.iter().enumerate() {
            x = conv.forward(&x)?.relu()?;
            if i + 1 < self.convs.len() {
                x = x.avg_pool2d(2)?;
            }
        }
        x.mean(D::Minus1)?.mean(D::Minus1)
    }

    fn logits(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        self.classifier.forward(&self.forward_features(images)?)
    }

    /// Checks that `images` is `(N, channels, size, size)`.
    fn check_shape(&self, images: &Tensor) -> Result<(), EvalError> {
        let c = &self.config;
        let want = [c.channels, c.size, c.size];
        match images.dims() {
            [_, rest @ ..] if rest == want => Ok(()),
            dims => Err(EvalError::ImageShape {
                path: "images".into(),
                expected: format!("{}×{} with {} channel(s)", c.size, c.size, c.channels),
                got: format!("a batch of shape {dims:?}"),
            }),
        }
    }

    /// Trains the classifier on `data` with AdamW and cross-entropy; returns the training
    /// accuracy of the final weights.
    pub fn train(&mut self, data: LabelledImages, options: TrainOptions) -> Result<f64, EvalError> {
        self.check_shape(data.images)?;
        let n = data.images.dim(0)?;
        if n != data.labels.len() {
            return Err(EvalError::setting("labels", format!("one label per image, got {} labels for {n} images", data.labels.len())));
        }
        if let Some(&l) = data.labels.iter().find(|&&l| l as usize >= self.config.classes.len()) {
            return Err(EvalError::setting("labels", format!("class indices below {}, got {l}", self.config.classes.len())));
        }
        let params = candle_nn::ParamsAdamW { lr: options.learning_rate, weight_decay: 0.0, ..Default::default() };
        let mut opt = candle_nn::AdamW::new(self.varmap.all_vars(), params)?;
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0x5EED);
        let device = data.images.device();
        let batch = options.batch_size.clamp(1, n);
        for _ in 0..options.steps {
            let idx: Vec<u32> = (0..batch).map(|_| rng.random_range(0..n as u32)).collect();
            let ids = Tensor::new(idx.as_slice(), device)?;
            let x = data.images.index_select(&ids, 0)?;
            let y = Tensor::new(idx.iter().map(|&i| data.labels[i as usize]).collect::<Vec<_>>(), device)?;
            let loss = candle_nn::loss::cross_entropy(&self.logits(&x)?, &y)?;
            opt.backward_step(&loss)?;
        }
        self.accuracy(data)
    }

    /// Fraction of `data` classified correctly.
    pub fn accuracy(&self, data: LabelledImages) -> Result<f64, EvalError> {
        self.check_shape(data.images)?;
        let mut correct = 0;
        let n = data.images.dim(0)?;
        for start in (0..n).step_by(256) {
            let len = 256.min(n - start);
            let pred: Vec<u32> = self.logits(&data.images.narrow(0, start, len)?)?.argmax(D::Minus1)?.to_vec1()?;
            correct += pred.iter().zip(&data.labels[start..start + len]).filter(|(p, l)| p == l).count();
        }
        Ok(correct as f64 / n as f64)
    }

    /// Features of `images` (`(N, channels, size, size)` in [−1, 1]); a batch of another
    /// size or channel count is an [`EvalError::ImageShape`].
    pub fn embed_tensor(&self, images: &Tensor) -> Result<Features, EvalError> {
        self.check_shape(images)?;
        let n = images.dim(0)?;
        let mut rows = Vec::with_capacity(n * WIDTHS[2]);
        for start in (0..n).step_by(256) {
            let f = self.forward_features(&images.narrow(0, start, 256.min(n - start))?)?;
            rows.extend(f.flatten_all()?.to_vec1::<f32>()?);
        }
        Features::from_f32(&rows, WIDTHS[2])
    }

    /// Writes the weights and, in the file's metadata, the configuration.
    pub fn save(&self, path: &Path) -> Result<(), EvalError> {
        let data = self.varmap.data().lock().expect("varmap lock");
        let tensors: Vec<(String, Tensor)> = data.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
        let config = serde_json::to_string(&self.config).expect("the config serializes");
        let metadata = HashMap::from([(CONFIG_KEY.to_string(), config)]);
        safetensors::serialize_to_file(tensors, Some(metadata), path)
            .map_err(|e| EvalError::io("write", path, std::io::Error::other(e.to_string())))
    }

    /// Reads a network written by [`DomainFeatureNet::save`]; any other file is an
    /// [`EvalError::WrongArchitecture`].
    pub fn load(path: &Path, device: &Device) -> Result<Self, EvalError> {
        let wrong = |reason: String| EvalError::WrongArchitecture { path: path.to_path_buf(), architecture: "Stipple feature network", reason };
        let bytes = std::fs::read(path).map_err(|e| EvalError::io("read", path, e))?;
        let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| wrong(format!("not a safetensors file ({e})")))?;
        let config_json = metadata.metadata().as_ref().and_then(|m| m.get(CONFIG_KEY)).ok_or_else(|| wrong(format!("no \"{CONFIG_KEY}\" entry in its metadata (made by `stipple eval train-features`?)")))?;
        let config: FeatureNetConfig = serde_json::from_str(config_json).map_err(|e| wrong(format!("bad configuration: {e}")))?;
        let mut tensors = candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| wrong(e.to_string()))?;
        let varmap = VarMap::new();
        {
            let mut data = varmap.data().lock().expect("varmap lock");
            for (name, shape, _) in parameters(&config) {
                let t = tensors.remove(&name).ok_or_else(|| wrong(format!("no tensor {name}")))?;
                if t.dims() != shape.as_slice() {
                    return Err(wrong(format!("{name} has shape {:?}, expected {shape:?}", t.dims())));
                }
                data.insert(name, Var::from_tensor(&t.to_dtype(DType::F32)?)?);
            }
        }
        let net = Self::build(config, varmap, device).map_err(|e| wrong(e.to_string()))?;
        Ok(net)
    }
}

impl DomainFeatureNet {
    /// What it takes and the classes it tells apart.
    pub fn config(&self) -> &FeatureNetConfig {
        &self.config
    }

    /// `images` as the network takes them: each prepared as the training data loader prepares
    /// data (alpha composited onto white, the shorter side resized to the network's size and
    /// the centre square kept, converted to its channels: `stipple_pipeline::prepare_image`),
    /// so sets of other sizes are resized, not refused.
    fn prepare(&self, images: &[crate::NamedImage]) -> Result<Tensor, EvalError> {
        let c = &self.config;
        let pixels: Vec<f32> = images.iter().flat_map(|im| stipple_pipeline::prepare_image(&im.image, c.size, c.channels == 1)).collect();
        Ok(Tensor::from_vec(pixels, (images.len(), c.channels, c.size, c.size), &self.device)?)
    }

    /// The class index the classifier gives each image (prepared as for [`crate::FeatureNet::embed`]).
    pub fn classify(&self, images: &[crate::NamedImage]) -> Result<Vec<u32>, EvalError> {
        let x = self.prepare(images)?;
        let n = x.dim(0)?;
        let mut out = Vec::with_capacity(n);
        for start in (0..n).step_by(256) {
            out.extend(self.logits(&x.narrow(0, start, 256.min(n - start))?)?.argmax(D::Minus1)?.to_vec1::<u32>()?);
        }
        Ok(out)
    }
}

/// Images are prepared by [`DomainFeatureNet::prepare`].
impl crate::FeatureNet for DomainFeatureNet {
    fn dim(&self) -> usize {
        WIDTHS[2]
    }

    fn embed(&self, images: &[crate::NamedImage]) -> Result<Features, EvalError> {
        self.embed_tensor(&self.prepare(images)?)
    }
}
