//! The settings of a new training run as the front ends give them (every one optional, the
//! CLI's flags and the server's JSON fields alike), turned into a [`TrainConfig`] in one
//! place: the defaults are [`TrainConfig::for_data`]'s with the emoji preset's network.

use std::path::PathBuf;

use serde::Deserialize;
use stipple_nn::{DiffWaveConfig, DiffWaveNet, NetworkConfig, SeriesWindow, UNet1DConfig, UNetConfig};
use stipple_series::SeriesTransform;

use crate::data::{ColorMode, LabelSource};
use crate::{DataSource, LossKind, LossWeighting, TrainConfig, TrainError};

/// Width of a jointly trained text encoder's hidden states (with captions).
pub const TEXT_WIDTH: usize = 128;
/// Tokens per prompt including the start and end tokens (with captions).
pub const MAX_TOKENS: usize = 16;
/// Largest vocabulary of the byte-level BPE trained on the captions.
pub const VOCAB_SIZE: usize = 1024;
/// Observed values of a forecasting window (with series data): a few seasons of most
/// hourly, daily or monthly series.
pub const CONTEXT: usize = 48;
/// Values a forecasting model predicts (with series data); context + horizon must be a
/// multiple of 4 for the default network's three levels.
pub const HORIZON: usize = 16;
/// Samples per training clip of sound: a quarter of a second at [`SAMPLE_RATE`].
pub const CLIP_LENGTH: usize = 2048;
/// Sample rate of a sound run: 8 kHz, telephone speech, which keeps clips short enough for
/// the 1-D U-Net's attention on a CPU.
pub const SAMPLE_RATE: u32 = 8000;

/// Settings of a new run; `None` takes the default. Field names are the setting names the
/// errors use (the CLI's flags are the same names with dashes).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSettings {
    pub batch_size: Option<usize>,
    pub lr: Option<f64>,
    pub warmup: Option<usize>,
    pub image_size: Option<usize>,
    pub grey: bool,
    pub random_flip: bool,
    pub channels: Option<Vec<usize>>,
    pub layers_per_block: Option<usize>,
    pub attention_at: Option<Vec<usize>>,
    pub dropout: Option<f64>,
    pub prediction: Option<String>,
    pub beta_schedule: Option<String>,
    pub loss: Option<String>,
    pub min_snr_gamma: Option<f64>,
    pub ema_decay: Option<f64>,
    pub grad_clip: Option<f64>,
    pub checkpoint_every: Option<usize>,
    pub sample_every: Option<usize>,
    pub sample_count: Option<usize>,
    /// Class labels: "csv" (a column of labels.csv) or "folders" (sub-folder names).
    pub labels: Option<String>,
    pub label_column: Option<String>,
    pub cond_dropout: Option<f64>,
    /// Column of labels.csv with each image's caption (a prompt model).
    pub captions: Option<String>,
    /// A pretrained CLIP text encoder folder, used frozen (with `captions`).
    pub clip: Option<PathBuf>,
    pub text_width: Option<usize>,
    pub max_tokens: Option<usize>,
    pub vocab_size: Option<usize>,
    pub seed: Option<u64>,
    /// Observed values per window (series data) [default: [`CONTEXT`]].
    pub context: Option<usize>,
    /// Forecast values per window (series data) [default: [`HORIZON`]].
    pub horizon: Option<usize>,
    /// Samples per clip (sound data) [default: [`CLIP_LENGTH`]].
    pub clip_length: Option<usize>,
    /// Sample rate the clips are brought to (sound data) [default: [`SAMPLE_RATE`]].
    pub sample_rate: Option<u32>,
    /// The network of a series or sound run: "unet1d" (the 1-D U-Net) or "diffwave"
    /// (DiffWave at the reference's size) [default: unet1d].
    pub network: Option<String>,
    /// How a series model is conditioned on the history it forecasts from: "inpaint" (an
    /// unconditional model of windows, the history imposed at every sampler step) or "csdi"
    /// (the history and its mask as input channels, trained on random forecast and
    /// imputation masks; Tashiro et al. 2021) [default: inpaint].
    pub conditioning: Option<String>,
    /// Take the natural log of a series before windowing (the Box-Cox transform at λ = 0);
    /// forecasts are brought back with `exp`. Every value must be above 0.
    pub log: bool,
    /// Difference a series at these lags before windowing, in order (after the log): `1` the
    /// first difference, the season's length a seasonal difference; forecasts are integrated
    /// back from the last observed values.
    pub difference: Vec<usize>,
}

fn bad(setting: &str, msg: impl std::fmt::Display) -> TrainError {
    TrainError::Config(format!("{setting}: {msg}"))
}

impl TrainSettings {
    /// The configuration of a new run on `data` with these settings.
    pub fn config(&self, data: DataSource) -> Result<TrainConfig, TrainError> {
        let has_folder = matches!(data, DataSource::Folder(_) | DataSource::Sound(_));
        let mut cfg = match data {
            DataSource::Series { csv, columns } => self.series_config(csv, columns)?,
            DataSource::Sound(dir) => self.sound_config(dir)?,
            images => self.image_config(images)?,
        };
        let d = &mut cfg.model.diffusion;
        if let Some(p) = &self.prediction {
            d.prediction_type = p.parse().map_err(|e| bad("prediction", e))?;
        }
        if let Some(b) = &self.beta_schedule {
            d.beta_schedule = b.parse().map_err(|e| bad("beta_schedule", e))?;
        }
        if let Some(l) = &self.loss {
            cfg.loss = l.parse::<LossKind>().map_err(|e| bad("loss", e))?;
        }
        match self.min_snr_gamma {
            Some(g) if !(g.is_finite() && g >= 0.0) => return Err(bad("min_snr_gamma", format!("must be ≥ 0, got {g}"))),
            Some(gamma) => cfg.loss_weighting = if gamma == 0.0 { LossWeighting::Uniform } else { LossWeighting::MinSnr { gamma } },
            None => {}
        }
        let set = |v: Option<usize>, field: &mut usize| {
            if let Some(v) = v {
                *field = v;
            }
        };
        set(self.batch_size, &mut cfg.batch_size);
        set(self.warmup, &mut cfg.warmup_steps);
        set(self.checkpoint_every, &mut cfg.checkpoint_every);
        set(self.sample_every, &mut cfg.sample_every);
        set(self.sample_count, &mut cfg.sample_count);
        let setf = |v: Option<f64>, field: &mut f64| {
            if let Some(v) = v {
                *field = v;
            }
        };
        setf(self.lr, &mut cfg.optimizer.lr);
        setf(self.ema_decay, &mut cfg.ema_decay);
        setf(self.grad_clip, &mut cfg.grad_clip);
        setf(self.cond_dropout, &mut cfg.cond_dropout);
        if let Some(s) = self.seed {
            cfg.seed = s;
        }
        let column = || self.label_column.clone().unwrap_or_else(|| "label".into());
        cfg.labels = match (self.labels.as_deref(), &self.label_column) {
            (None, None) => LabelSource::None,
            (Some("csv"), _) | (None, Some(_)) => LabelSource::Csv { column: column() },
            (Some("folders"), None) => LabelSource::Folders,
            (Some("folders"), Some(_)) => return Err(bad("label_column", "reads labels.csv; it cannot be combined with labels = folders")),
            (Some(other), _) => return Err(bad("labels", format!("unknown \"{other}\"; accepted: csv, folders"))),
        };
        if cfg.labels != LabelSource::None && !has_folder {
            return Err(bad("labels", "class labels need a data folder of images or sound; the built-in emoji set and a CSV series have none"));
        }
        let (width, tokens, vocab) = (
            self.text_width.unwrap_or(TEXT_WIDTH),
            self.max_tokens.unwrap_or(MAX_TOKENS),
            self.vocab_size.unwrap_or(VOCAB_SIZE),
        );
        match (&self.captions, &self.clip) {
            (Some(column), Some(dir)) => cfg = cfg.with_pretrained_text(column, dir)?,
            (Some(column), None) => cfg = cfg.with_captions(column, vocab, width, tokens)?,
            (None, Some(_)) => return Err(bad("clip", "needs captions: the column of captions the text encoder reads")),
            (None, None) => {}
        }
        Ok(cfg)
    }

    /// The network part of a forecasting run: over windows of context + horizon values, the
    /// 1-D U-Net of [`TrainSettings::net_1d`] or DiffWave ([`TrainSettings::sequence_network`]).
    fn series_config(&self, csv: PathBuf, columns: Vec<String>) -> Result<TrainConfig, TrainError> {
        for (setting, set) in [("image_size", self.image_size.is_some()), ("grey", self.grey), ("random_flip", self.random_flip)] {
            if set {
                return Err(bad(setting, "applies to images; series data have none"));
            }
        }
        if self.clip_length.is_some() || self.sample_rate.is_some() {
            return Err(bad("clip_length", "clip_length and sample_rate apply to sound data; a series has windows of context + horizon"));
        }
        let (context, horizon) = (self.context.unwrap_or(CONTEXT), self.horizon.unwrap_or(HORIZON));
        if context == 0 || horizon == 0 {
            return Err(bad("context", format!("context and horizon must be at least 1, got {context} and {horizon}")));
        }
        // By default, attention at every level but the finest.
        let length = context + horizon;
        let net = self.sequence_network(length, || {
            self.net_1d(length, |level, _| level > 0).map_err(|e| bad("context", format!("{e} (context {context} + horizon {horizon})")))
        })?;
        let mut net = net;
        match (self.conditioning.as_deref(), &mut net) {
            (None | Some("inpaint"), _) => {}
            (Some("csdi"), NetworkConfig::UNet1D(u)) => u.cond_channels = stipple_nn::OBSERVATION_CHANNELS,
            (Some("csdi"), _) => return Err(bad("conditioning", "csdi reads the history through the 1-D U-Net's input channels; use network unet1d")),
            (Some(other), _) => return Err(bad("conditioning", format!("unknown \"{other}\"; accepted: inpaint, csdi"))),
        }
        let transform = SeriesTransform { log: self.log, differences: self.difference.clone() };
        transform.validate().map_err(|e| bad("difference", e))?;
        let mut cfg = TrainConfig::for_series(csv, columns, context, horizon, net);
        cfg.model.series = cfg.model.series.map(|w| SeriesWindow { transform, ..w });
        Ok(cfg)
    }

    /// The network of a series or sound run of sequences of `length` values: `net` (the 1-D
    /// U-Net built from the other settings), or DiffWave at the reference's size (Kong et al.
    /// 2021, DiffWave_BASE), which takes none of the U-Net's settings.
    fn sequence_network(&self, length: usize, net: impl FnOnce() -> Result<UNet1DConfig, TrainError>) -> Result<NetworkConfig, TrainError> {
        match self.network.as_deref() {
            None | Some("unet1d") => Ok(NetworkConfig::UNet1D(net()?)),
            Some("diffwave") => {
                let unet_settings = self.channels.is_some() || self.layers_per_block.is_some() || self.attention_at.is_some() || self.dropout.is_some();
                if unet_settings {
                    return Err(bad("network", "diffwave has the reference's size; channels, layers_per_block, attention_at and dropout shape the 1-D U-Net"));
                }
                Ok(NetworkConfig::DiffWave(DiffWaveNet { sample_size: length, net: DiffWaveConfig::base() }))
            }
            Some(other) => Err(bad("network", format!("unknown \"{other}\"; accepted: unet1d, diffwave"))),
        }
    }

    /// The network part of a sound run: the same networks on clips of `clip_length` samples.
    fn sound_config(&self, dir: PathBuf) -> Result<TrainConfig, TrainError> {
        for (setting, set) in [("image_size", self.image_size.is_some()), ("grey", self.grey), ("random_flip", self.random_flip), ("context", self.context.is_some() || self.horizon.is_some())] {
            if set {
                return Err(bad(setting, "does not apply to sound data"));
            }
        }
        if self.conditioning.is_some() {
            return Err(bad("conditioning", "chooses how a series model reads its history; a sound clip has none"));
        }
        if self.log || !self.difference.is_empty() {
            return Err(bad("log", "log and difference transform a CSV series; a sound clip is not transformed"));
        }
        let length = self.clip_length.unwrap_or(CLIP_LENGTH);
        // By default, self-attention only where a level has at most 256 positions: its cost
        // grows with the square of the length (the middle block always attends).
        let net = self.sequence_network(length, || {
            self.net_1d(length, |_, len| len <= 256).map_err(|e| bad("clip_length", format!("{e} (clip length {length})")))
        })?;
        let rate = self.sample_rate.unwrap_or(SAMPLE_RATE);
        if rate == 0 {
            return Err(bad("sample_rate", "must be above 0 Hz"));
        }
        Ok(TrainConfig::for_sound(dir, rate, net))
    }

    /// The 1-D U-Net of [`UNet1DConfig::small`] over sequences of `length` values, with the
    /// widths, depth, attention levels (`attention_at`: the lengths of the levels that attend;
    /// otherwise `default_attention(level, its length)`) and dropout asked for.
    fn net_1d(&self, length: usize, default_attention: impl Fn(usize, usize) -> bool) -> Result<UNet1DConfig, stipple_nn::NnError> {
        let base = UNet1DConfig::small(length, 1);
        let channels = self.channels.clone().unwrap_or_else(|| base.block_out_channels.clone());
        let attention_levels = match &self.attention_at {
            Some(at) => (0..channels.len()).map(|i| at.contains(&(length >> i))).collect(),
            None => (0..channels.len()).map(|i| default_attention(i, length >> i)).collect(),
        };
        let net = UNet1DConfig {
            block_out_channels: channels,
            attention_levels,
            layers_per_block: self.layers_per_block.unwrap_or(base.layers_per_block),
            dropout: self.dropout.unwrap_or(base.dropout),
            ..base
        };
        net.validate()?;
        Ok(net)
    }

    /// The network part of an image run.
    fn image_config(&self, data: DataSource) -> Result<TrainConfig, TrainError> {
        if self.context.is_some() || self.horizon.is_some() {
            return Err(bad("context", "context and horizon apply to series data (a CSV file)"));
        }
        if self.clip_length.is_some() || self.sample_rate.is_some() {
            return Err(bad("clip_length", "clip_length and sample_rate apply to sound data (a folder of WAV files)"));
        }
        if self.network.is_some() {
            return Err(bad("network", "chooses the network of series and sound runs; images take the 2-D U-Net"));
        }
        if self.conditioning.is_some() {
            return Err(bad("conditioning", "chooses how a series model reads its history; images have none"));
        }
        if self.log || !self.difference.is_empty() {
            return Err(bad("log", "log and difference transform a CSV series (--data FILE.csv); images are not transformed"));
        }
        let mut cfg = TrainConfig::for_data(data, UNetConfig::emoji16());
        let base = UNetConfig::emoji16();
        let size = self.image_size.unwrap_or(base.sample_size.unwrap_or(16));
        let channels = self.channels.clone().unwrap_or_else(|| base.block_out_channels.clone());
        let layers = self.layers_per_block.unwrap_or(base.layers_per_block);
        // By default, attention at the same levels as the preset (the second, at half size).
        let attention = self.attention_at.clone().unwrap_or_else(|| {
            let levels = base.down_block_types.iter().enumerate().filter(|(_, t)| t.has_attention());
            levels.map(|(i, _)| size >> i).filter(|_| channels.len() > 1).collect()
        });
        let image_channels = if self.grey { 1 } else { 3 };
        let mut unet = UNetConfig::with_attention_at(size, image_channels, &channels, layers, &attention)?;
        unet.dropout = self.dropout.unwrap_or(base.dropout);
        cfg.model.network = NetworkConfig::UNet2D(unet);
        cfg.color = if self.grey { ColorMode::Grey } else { ColorMode::Rgb };
        cfg.random_flip = self.random_flip;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_settings_is_the_default_emoji_run() {
        let cfg = TrainSettings::default().config(DataSource::EmbeddedEmoji).unwrap();
        assert_eq!(cfg, TrainConfig::for_data(DataSource::EmbeddedEmoji, UNetConfig::emoji16()));
    }

    #[test]
    fn series_and_sound_runs_get_a_1d_network_of_their_length() {
        let cfg = TrainSettings { context: Some(40), horizon: Some(8), ..Default::default() }
            .config(DataSource::Series { csv: "s.csv".into(), columns: vec!["y".into()] })
            .unwrap();
        assert_eq!(cfg.model.sample_shape().dims(), vec![1, 48]);
        assert_eq!(cfg.model.series.as_ref().map(|w| (w.context, w.horizon)), Some((40, 8)));
        let cfg = TrainSettings::default().config(DataSource::Sound("clips".into())).unwrap();
        assert_eq!(cfg.model.sample_shape().dims(), vec![1, CLIP_LENGTH]);
        let NetworkConfig::UNet1D(net) = &cfg.model.network else { panic!("a 1-D network") };
        // Levels of 2048, 1024 and 512 samples: too long to attend over.
        assert_eq!(net.attention_levels, vec![false, false, false]);
        assert!(cfg.model.series.is_none());
        assert_eq!(cfg.model.sound, Some(stipple_nn::SoundFormat { sample_rate: SAMPLE_RATE }));
        let cfg = TrainSettings { network: Some("diffwave".into()), ..Default::default() }.config(DataSource::Sound("clips".into())).unwrap();
        assert_eq!(cfg.model.network, NetworkConfig::DiffWave(DiffWaveNet { sample_size: CLIP_LENGTH, net: DiffWaveConfig::base() }));
        // Sound takes class labels as image folders do.
        let cfg = TrainSettings { labels: Some("folders".into()), ..Default::default() }.config(DataSource::Sound("clips".into())).unwrap();
        assert_eq!(cfg.labels, LabelSource::Folders);
        let cfg = TrainSettings { label_column: Some("word".into()), ..Default::default() }.config(DataSource::Sound("clips".into())).unwrap();
        assert_eq!(cfg.labels, LabelSource::Csv { column: "word".into() });
    }

    #[test]
    fn series_transforms_are_recorded_in_the_window_and_refused_elsewhere() {
        let series = || DataSource::Series { csv: "s.csv".into(), columns: vec!["y".into()] };
        let cfg = TrainSettings { context: Some(12), horizon: Some(4), log: true, difference: vec![1, 12], ..Default::default() }.config(series()).unwrap();
        assert_eq!(cfg.model.series.unwrap().transform, SeriesTransform { log: true, differences: vec![1, 12] });
        let plain = TrainSettings { context: Some(12), horizon: Some(4), ..Default::default() }.config(series()).unwrap();
        assert!(plain.model.series.unwrap().transform.is_identity());
        let refused = |s: TrainSettings, data, what: &str| matches!(s.config(data), Err(TrainError::Config(m)) if m.contains(what));
        assert!(refused(TrainSettings { difference: vec![0], ..Default::default() }, series(), "lags of at least 1"));
        assert!(refused(TrainSettings { log: true, ..Default::default() }, DataSource::EmbeddedEmoji, "images are not transformed"));
        assert!(refused(TrainSettings { difference: vec![1], ..Default::default() }, DataSource::Sound("clips".into()), "sound clip"));
    }

    #[test]
    fn csdi_conditioning_gives_the_1d_unet_its_observation_channels() {
        let series = || DataSource::Series { csv: "s.csv".into(), columns: vec!["y".into()] };
        let cfg = TrainSettings { context: Some(12), horizon: Some(4), conditioning: Some("csdi".into()), ..Default::default() }.config(series()).unwrap();
        let NetworkConfig::UNet1D(net) = &cfg.model.network else { panic!("a 1-D network") };
        assert_eq!((net.in_channels, net.cond_channels, net.out_channels), (1, stipple_nn::OBSERVATION_CHANNELS, 1));
        assert_eq!(cfg.model.sample_shape().dims(), vec![1, 16]);
        let plain = TrainSettings { context: Some(12), horizon: Some(4), ..Default::default() }.config(series()).unwrap();
        assert!(!plain.model.network.reads_observation());
        let refused = |s: TrainSettings, data| matches!(s.config(data), Err(TrainError::Config(m)) if m.contains("conditioning"));
        assert!(refused(TrainSettings { conditioning: Some("csdi".into()), network: Some("diffwave".into()), ..Default::default() }, series()));
        assert!(refused(TrainSettings { conditioning: Some("replace".into()), ..Default::default() }, series()));
        assert!(refused(TrainSettings { conditioning: Some("csdi".into()), ..Default::default() }, DataSource::Sound("clips".into())));
        assert!(refused(TrainSettings { conditioning: Some("csdi".into()), ..Default::default() }, DataSource::EmbeddedEmoji));
    }

    #[test]
    fn the_data_path_decides_the_kind() {
        let at = |p: Option<&str>, cols: &[&str], sound| DataSource::at(p.map(Into::into), cols.iter().map(|c| c.to_string()).collect(), sound);
        assert!(matches!(at(Some("a/s.CSV"), &[], false), Ok(DataSource::Series { .. })));
        assert!(matches!(at(Some("a/pics"), &[], false), Ok(DataSource::Folder(_))));
        assert!(matches!(at(Some("a/clips"), &[], true), Ok(DataSource::Sound(_))));
        assert!(matches!(at(None, &[], false), Ok(DataSource::EmbeddedEmoji)));
        assert!(at(Some("a/pics"), &["y"], false).is_err(), "columns need a CSV file");
        assert!(at(Some("a/s.csv"), &[], true).is_err(), "sound needs a folder");
        assert!(at(None, &[], true).is_err(), "sound needs a folder");
    }

    #[test]
    fn bad_settings_name_themselves() {
        for (s, name) in [
            (TrainSettings { min_snr_gamma: Some(-1.0), ..Default::default() }, "min_snr_gamma"),
            (TrainSettings { labels: Some("tags".into()), ..Default::default() }, "labels"),
            (TrainSettings { labels: Some("csv".into()), ..Default::default() }, "labels"),
            (TrainSettings { prediction: Some("noise".into()), ..Default::default() }, "prediction"),
        ] {
            let e = s.config(DataSource::EmbeddedEmoji).unwrap_err().to_string();
            assert!(e.contains(&format!("{name}: ")), "{e}");
        }
        let series = || DataSource::Series { csv: "s.csv".into(), columns: vec![] };
        for (s, data, name) in [
            (TrainSettings { context: Some(25), ..Default::default() }, series(), "context"),
            (TrainSettings { image_size: Some(8), ..Default::default() }, series(), "image_size"),
            (TrainSettings { clip_length: Some(64), ..Default::default() }, series(), "clip_length"),
            (TrainSettings { horizon: Some(8), ..Default::default() }, DataSource::EmbeddedEmoji, "context"),
            (TrainSettings { clip_length: Some(30), ..Default::default() }, DataSource::Sound("clips".into()), "clip_length"),
            (TrainSettings { labels: Some("folders".into()), ..Default::default() }, series(), "labels"),
            (TrainSettings { network: Some("wavenet".into()), ..Default::default() }, series(), "network"),
            (TrainSettings { network: Some("diffwave".into()), channels: Some(vec![8]), ..Default::default() }, series(), "network"),
            (TrainSettings { network: Some("diffwave".into()), ..Default::default() }, DataSource::EmbeddedEmoji, "network"),
        ] {
            let e = s.config(data).unwrap_err().to_string();
            assert!(e.contains(&format!("{name}: ")), "{e}");
        }
        let json: Result<TrainSettings, _> = serde_json::from_str(r#"{"stepz": 3}"#);
        assert!(json.is_err(), "unknown settings are refused");
    }
}
