//! The configuration of a training run, saved in every checkpoint.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use stipple_math::Prediction;
use stipple_nn::{DiffusionConfig, ModelConfig, NetworkConfig, SeriesWindow, UNetConfig};

use crate::data::{ColorMode, LabelSource};
use crate::optim::AdamWConfig;
use crate::TrainError;

/// Where the training data come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSource {
    /// The Fluent Emoji (flat) set built into the binary.
    EmbeddedEmoji,
    /// A folder of PNG / JPEG / WebP images (searched recursively).
    Folder(PathBuf),
    /// Numeric columns of a CSV file, cut into the windows of `model.series` (every numeric
    /// column when `columns` is empty).
    Series { csv: PathBuf, columns: Vec<String> },
    /// Every `.wav` file under a folder, one clip each, made alike (`stipple_audio::load_clips`:
    /// resampled to `model.sound`'s rate, mono, silence trimmed, fitted to the network's length).
    Sound(PathBuf),
}

impl DataSource {
    /// The data at `path`: a `.csv` file is series data (its columns `columns`, every numeric
    /// one when empty); a folder is sound with `sound` (its WAV files), images otherwise; no
    /// path is the built-in emoji. Columns go with a CSV file only, `sound` with a folder only.
    pub fn at(path: Option<PathBuf>, columns: Vec<String>, sound: bool) -> Result<Self, TrainError> {
        let is_csv = |p: &std::path::Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        match path {
            Some(p) if is_csv(&p) && !sound => Ok(DataSource::Series { csv: p, columns }),
            _ if !columns.is_empty() => Err(TrainError::Config("columns name the series of a CSV file; the data are not a .csv file".into())),
            Some(p) if sound && !is_csv(&p) => Ok(DataSource::Sound(p)),
            _ if sound => Err(TrainError::Config("sound data are a folder of WAV files".into())),
            Some(p) => Ok(DataSource::Folder(p)),
            None => Ok(DataSource::EmbeddedEmoji),
        }
    }

    /// Whether the data are images (the other kinds are sequences).
    pub fn is_images(&self) -> bool {
        matches!(self, DataSource::EmbeddedEmoji | DataSource::Folder(_))
    }
}

/// The regression loss between the network output and its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Mean squared error, the usual "simple" loss (Ho et al. 2020, Eq. 14).
    L2,
    /// Mean absolute error, as in the original description of the system.
    L1,
}

impl std::str::FromStr for LossKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "l2" | "mse" => Ok(Self::L2),
            "l1" | "mae" => Ok(Self::L1),
            _ => Err(format!("unknown loss \"{s}\"; accepted: l2 (mse), l1 (mae)")),
        }
    }
}

/// How the per-sample losses of a batch are weighted by noise level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LossWeighting {
    /// Every noise level counts the same in the prediction's own target space.
    #[default]
    Uniform,
    /// Min-SNR-γ (Hang et al. 2023): caps the weight of nearly clean levels, which
    /// otherwise dominate and slow convergence (reported 3.4× faster at γ = 5).
    MinSnr { gamma: f64 },
}

/// Everything that defines a run. Resuming reads it back from the checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Network and noise process.
    pub model: ModelConfig,
    /// Training images.
    pub data: DataSource,
    /// Colour or greyscale training (must match the network's channels).
    pub color: ColorMode,
    /// Random left-right mirroring of the training images (Ho et al. 2020 use it for
    /// CIFAR-10). Off by default, as in diffusers' training scripts: it is wrong for
    /// anything with a handedness (digits, letters, arrows, text).
    pub random_flip: bool,
    /// Regression loss.
    pub loss: LossKind,
    /// Weighting of the loss by noise level.
    #[serde(default)]
    pub loss_weighting: LossWeighting,
    /// Images per step.
    pub batch_size: usize,
    /// Total optimisation steps of the run.
    pub steps: usize,
    /// AdamW hyper-parameters (peak learning rate and decay).
    pub optimizer: AdamWConfig,
    /// Steps of linear learning-rate warm-up.
    pub warmup_steps: usize,
    /// Largest global gradient norm (0 = no clipping; DDPM clips at 1).
    pub grad_clip: f64,
    /// EMA decay of the weights used for sampling.
    pub ema_decay: f64,
    /// Steps between checkpoints (the final step always writes one).
    pub checkpoint_every: usize,
    /// Steps between sample grids (0 = only at the end).
    pub sample_every: usize,
    /// Images in each sample grid (seeds 0, 1, …).
    pub sample_count: usize,
    /// Sampling steps for the grids.
    pub sample_steps: usize,
    /// Seed of initialisation, data order, noise and dropout.
    pub seed: u64,
    /// Class labels of the images or sound clips (none: an unconditional model).
    #[serde(default)]
    pub labels: LabelSource,
    /// Probability that an image's label is replaced by the "no label" token during
    /// training, so one model also predicts unconditionally, as classifier-free guidance
    /// needs (Ho & Salimans 2022 find 0.1–0.2 best).
    #[serde(default = "default_cond_dropout")]
    pub cond_dropout: f64,
    /// The `labels.csv` column holding each image's caption, for a text-conditioned model
    /// (the built-in emoji have a `caption` column). Needs `model.text_encoder`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captions: Option<String>,
    /// A pretrained CLIP text encoder folder (transformers layout) whose tokenizer and weights
    /// the run uses, frozen, instead of training its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained_text_encoder: Option<PathBuf>,
}

fn default_cond_dropout() -> f64 {
    0.1
}

impl TrainConfig {
    /// The default run on the embedded emoji: a small U-Net at 16×16 sized to train in a
    /// few minutes on two CPU cores.
    pub fn emoji_default() -> Self {
        Self::for_data(DataSource::EmbeddedEmoji, UNetConfig::emoji16())
    }

    /// A run on `data` with network `unet` and the default training recipe.
    pub fn for_data(data: DataSource, unet: UNetConfig) -> Self {
        let color = if unet.in_channels == 1 { ColorMode::Grey } else { ColorMode::Rgb };
        Self {
            // v-prediction (Salimans & Ho 2022): at DDPM's σ_max ≈ 157 an ε-prediction error
            // is multiplied by σ in D(x; σ), and short runs sample saturated noise; v keeps
            // D's error bounded at every noise level.
            model: ModelConfig::new(
                NetworkConfig::UNet2D(unet),
                DiffusionConfig { prediction_type: Prediction::VPrediction, ..DiffusionConfig::default() },
            ),
            data,
            color,
            random_flip: false,
            loss: LossKind::L2,
            loss_weighting: LossWeighting::MinSnr { gamma: 5.0 },
            batch_size: 32,
            steps: 2500,
            // A higher rate than DDPM's 2e-4 suits these small nets and short runs.
            optimizer: AdamWConfig { lr: 1e-3, ..AdamWConfig::default() },
            warmup_steps: 100,
            grad_clip: 1.0,
            // Short runs: an average over the last ~200 steps.
            ema_decay: 0.995,
            checkpoint_every: 250,
            sample_every: 500,
            sample_count: 64,
            sample_steps: 20,
            seed: 0,
            labels: LabelSource::None,
            cond_dropout: default_cond_dropout(),
            captions: None,
            pretrained_text_encoder: None,
        }
    }

    /// A forecasting run on the columns `columns` of the CSV file `csv` (every numeric column
    /// when empty): windows of `context` observed and `horizon` predicted values, each scaled
    /// by its context, denoised by the 1-D network `net` (whose length must be
    /// `context + horizon`), with the image recipe's training defaults otherwise.
    pub fn for_series(csv: PathBuf, columns: Vec<String>, context: usize, horizon: usize, net: impl Into<NetworkConfig>) -> Self {
        let mut cfg = Self::for_data(DataSource::Series { csv, columns: columns.clone() }, UNetConfig::emoji16());
        cfg.model.network = net.into();
        cfg.model.series = Some(SeriesWindow { context, horizon, columns, transform: Default::default() });
        // The grids of a series run are plots of a few sample windows.
        cfg.sample_count = 16;
        cfg
    }

    /// A run on the WAV clips under `dir` at `sample_rate` Hz, each fitted to the 1-D network
    /// `net`'s length, with the image recipe's training defaults otherwise.
    pub fn for_sound(dir: PathBuf, sample_rate: u32, net: impl Into<NetworkConfig>) -> Self {
        let mut cfg = Self::for_data(DataSource::Sound(dir), UNetConfig::emoji16());
        cfg.model.network = net.into();
        cfg.model.sound = Some(stipple_nn::SoundFormat { sample_rate });
        // The grids of a sound run are plots of a few sample clips.
        cfg.sample_count = 16;
        cfg
    }

    /// The 2-D U-Net of an image run, or a configuration error saying that `what` needs one.
    fn unet2d_mut(&mut self, what: &str) -> Result<&mut UNetConfig, TrainError> {
        self.model.network.unet2d_mut().ok_or_else(|| TrainError::Config(format!("{what} needs an image model (a 2-D U-Net)")))
    }

    /// This run made text-conditioned: captions from `column`, a jointly trained CLIP-style
    /// encoder of width `width` reading prompts of up to `max_tokens − 2` tokens with a
    /// byte-level BPE of at most `vocab_size` entries, and cross-attention in every attention
    /// block of the U-Net.
    pub fn with_captions(mut self, column: &str, vocab_size: usize, width: usize, max_tokens: usize) -> Result<Self, TrainError> {
        let unet = self.unet2d_mut("a text-conditioned run")?;
        *unet = unet.clone().with_text(width)?;
        self.model.text_encoder = Some(stipple_nn::text::TextEncoderConfig::small(vocab_size, width, max_tokens));
        self.captions = Some(column.to_string());
        self.validate()?;
        Ok(self)
    }

    /// This run made text-conditioned with the frozen pretrained CLIP text encoder in `dir`
    /// (see [`stipple_nn::text::read_clip_folder`]) and captions from `column`.
    pub fn with_pretrained_text(mut self, column: &str, dir: &std::path::Path) -> Result<Self, TrainError> {
        let path = dir.join("config.json");
        let json = std::fs::read_to_string(&path).map_err(|e| TrainError::Io { path: path.clone(), reason: e.to_string() })?;
        let text = stipple_nn::text::TextEncoderConfig::from_hf_json(&json)?;
        let unet = self.unet2d_mut("a text-conditioned run")?;
        *unet = unet.clone().with_text(text.hidden_size)?;
        self.model.text_encoder = Some(text);
        self.captions = Some(column.to_string());
        self.pretrained_text_encoder = Some(dir.to_path_buf());
        self.validate()?;
        Ok(self)
    }

    /// Checks every field once; messages say what is accepted.
    pub fn validate(&self) -> Result<(), TrainError> {
        self.model.validate()?;
        let bad = |m: String| Err(TrainError::Config(m));
        let ch = self.model.sample_shape().channels;
        let out = self.model.network.out_channels();
        match (&self.data, &self.model.network) {
            (d, NetworkConfig::UNet2D(_)) if d.is_images() => {
                if ch != self.color.channels() || out != ch {
                    return bad(format!(
                        "{:?} images have {} channel(s), the network takes {ch} and gives {out}",
                        self.color,
                        self.color.channels(),
                    ));
                }
            }
            (DataSource::Series { .. } | DataSource::Sound(_), NetworkConfig::UNet1D(_) | NetworkConfig::DiffWave(_)) => {
                if ch != 1 || out != 1 {
                    return bad(format!("a series window or a mono clip has 1 channel, the network takes {ch} and gives {out}"));
                }
                if matches!(self.data, DataSource::Series { .. }) != self.model.series.is_some() {
                    return bad("a series run, and only a series run, has model.series (its context and horizon)".into());
                }
                if self.model.network.reads_observation() && self.model.series.is_none() {
                    return bad("only a series run is conditioned on its history (cond_channels); a sound clip has none".into());
                }
                if matches!(self.data, DataSource::Sound(_)) != self.model.sound.is_some() {
                    return bad("a sound run, and only a sound run, has model.sound (its sample rate)".into());
                }
                if self.random_flip || self.captions.is_some() {
                    return bad("a series or sound run takes no random flip or captions".into());
                }
            }
            (d, n) => return bad(format!("{} data need {}, got {}", if d.is_images() { "image" } else { "series" }, if d.is_images() { "a 2-D U-Net" } else { "a 1-D network" }, n.describe())),
        }
        if self.batch_size == 0 || self.steps == 0 {
            return bad("batch_size and steps must be at least 1".into());
        }
        if !(self.optimizer.lr.is_finite() && self.optimizer.lr > 0.0) {
            return bad(format!("learning rate must be positive, got {}", self.optimizer.lr));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return bad(format!("ema_decay must lie in [0, 1), got {}", self.ema_decay));
        }
        if self.grad_clip.is_nan() || self.grad_clip < 0.0 {
            return bad(format!("grad_clip must be ≥ 0, got {}", self.grad_clip));
        }
        if self.checkpoint_every == 0 {
            return bad("checkpoint_every must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.cond_dropout) {
            return bad(format!("cond_dropout must lie in [0, 1], got {}", self.cond_dropout));
        }
        if self.labels != LabelSource::None && !matches!(self.data, DataSource::Folder(_) | DataSource::Sound(_)) {
            return bad("class labels need a data folder of images or sound (--data); the built-in emoji set and a CSV series have none".into());
        }
        if self.captions.is_some() != self.model.has_text() {
            return bad("captions (--captions COLUMN) and a text encoder go together".into());
        }
        if self.captions.is_some() && self.labels != LabelSource::None {
            return bad("train with class labels or with captions, not both".into());
        }
        if self.sample_count == 0 || self.sample_steps == 0 {
            return bad("sample_count and sample_steps must be at least 1".into());
        }
        Ok(())
    }
}
