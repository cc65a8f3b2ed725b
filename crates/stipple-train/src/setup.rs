//! What a run reads before its first step: the images (or series windows), their labels or
//! captions, the tokenizer, and the text encoder of a prompt model.

use std::path::PathBuf;

use candle_core::Device;
use candle_nn::VarMap;
use stipple_nn::init::seeded_var_builder;
use stipple_nn::text::{read_clip_folder, ClipFolder, PromptTokenizer, TextEncoder};
use stipple_nn::TEXT_ENCODER_PREFIX;

use crate::checkpoint::Checkpoint;
use crate::data::{csv_column, embedded_column, embedded_emoji, load_folder, load_labels, load_series, Labels, TrainingSet};
use crate::{DataSource, TrainConfig, TrainError};

/// The data of a run and what it conditions on.
pub struct RunData {
    pub samples: Box<dyn TrainingSet>,
    /// Images that could not be read and were skipped.
    pub skipped: Vec<(PathBuf, String)>,
    pub labels: Option<Labels>,
    pub captions: Option<Vec<String>>,
    pub tokenizer: Option<PromptTokenizer>,
    /// The pretrained text encoder of a new run with one.
    pretrained: Option<ClipFolder>,
}

/// The text encoder of a prompt model and every caption tokenized once.
pub struct TextConditioning {
    pub encoder: TextEncoder,
    /// Token ids of each image's caption.
    pub ids: Vec<Vec<u32>>,
    /// Token ids of the empty prompt (the dropped condition).
    pub empty: Vec<u32>,
}

/// Loads the data of `cfg` and records the data's classes in it (checked against the
/// checkpoint's when resuming).
pub fn load_run_data(
    cfg: &mut TrainConfig,
    checkpoint: Option<&Checkpoint>,
    device: &Device,
    progress: bool,
) -> Result<RunData, TrainError> {
    let size = cfg.model.image_size();
    let not_images = || TrainError::Config(format!("image data need an image model; this run's network is {}", cfg.model.network.describe()));
    let (samples, skipped): (Box<dyn TrainingSet>, _) = match &cfg.data {
        DataSource::EmbeddedEmoji => (Box::new(embedded_emoji(size.ok_or_else(not_images)?, cfg.color)?), vec![]),
        DataSource::Folder(dir) => {
            let (set, report) = load_folder(dir, size.ok_or_else(not_images)?, cfg.color, progress)?;
            (Box::new(set), report.skipped)
        }
        DataSource::Series { csv, columns } => {
            let w = cfg.model.series.as_mut().ok_or_else(|| TrainError::Config("series data need model.series".into()))?;
            let set = load_series(csv, columns, w.context, w.horizon, &w.transform)?;
            // The model records the columns it learnt (every numeric one when none was named).
            w.columns = set.columns.clone();
            (Box::new(set), vec![])
        }
        DataSource::Sound(dir) => {
            let rate = cfg.model.sound.as_ref().map(|s| s.sample_rate).ok_or_else(|| TrainError::Config("sound data need model.sound (the sample rate)".into()))?;
            let set = stipple_audio::load_clips(dir, rate, cfg.model.sample_shape().spatial[0]).map_err(|e| TrainError::Sound(e.to_string()))?;
            (Box::new(set), vec![])
        }
    };
    let labels = match &cfg.data {
        DataSource::Folder(dir) | DataSource::Sound(dir) => load_labels(dir, samples.names(), &cfg.labels)?,
        DataSource::EmbeddedEmoji | DataSource::Series { .. } => None,
    };
    if let Some(l) = &labels {
        if checkpoint.is_some() && cfg.model.classes != l.classes {
            return Err(TrainError::Config(format!(
                "the data's classes ({}) differ from the checkpoint's ({})",
                l.classes.join(", "),
                cfg.model.classes.join(", ")
            )));
        }
        cfg.model.classes = l.classes.clone();
        cfg.model.network.set_num_class_embeds(Some(l.classes.len() + 1));
        cfg.validate()?;
    }
    let captions = match (&cfg.captions, &cfg.data) {
        (None, _) => None,
        (Some(col), DataSource::Folder(dir)) => Some(csv_column(dir, samples.names(), col)?),
        (Some(col), DataSource::EmbeddedEmoji) => Some(embedded_column(col)?),
        (Some(_), DataSource::Series { .. } | DataSource::Sound(_)) => return Err(TrainError::Config("captions need image data".into())),
    };
    // A new run on a pretrained text encoder takes its tokenizer and weights from the folder.
    let pretrained = match (&cfg.pretrained_text_encoder, checkpoint) {
        (Some(dir), None) => Some(read_clip_folder(dir, device)?),
        _ => None,
    };
    let tokenizer = match (&captions, &cfg.model.text_encoder, &pretrained) {
        (Some(_), Some(_), Some(clip)) => Some(clip.tokenizer.clone()),
        (Some(caps), Some(tc), None) => Some(run_tokenizer(caps, tc.vocab_size, checkpoint.and_then(|ck| ck.tokenizer.as_deref()))?),
        _ => None,
    };
    Ok(RunData { samples, skipped, labels, captions, tokenizer, pretrained })
}

/// The text encoder of a prompt model (its variables in `varmap`, the pretrained weights
/// copied in) with the captions of `data` tokenized; `None` for other models.
pub fn text_conditioning(cfg: &TrainConfig, data: &RunData, varmap: &VarMap, device: &Device) -> Result<Option<TextConditioning>, TrainError> {
    let (Some(tc), Some(tok)) = (&cfg.model.text_encoder, &data.tokenizer) else {
        return Ok(None);
    };
    let encoder = TextEncoder::new(seeded_var_builder(varmap, cfg.seed, device).pp(TEXT_ENCODER_PREFIX), tc)?;
    if let Some(clip) = &data.pretrained {
        let vars = varmap.data().lock().expect("varmap lock");
        for (name, t) in &clip.tensors {
            let full = format!("{TEXT_ENCODER_PREFIX}.{name}");
            let var = vars.get(&full).ok_or_else(|| TrainError::Config(format!("the text encoder has no {full}")))?;
            var.set(&t.to_dtype(var.dtype())?)?;
        }
    }
    // Every caption is tokenized once, here: a caption that does not fit fails now, not
    // at the step that draws it.
    let caps = data.captions.as_deref().unwrap_or_default();
    let ids = caps
        .iter()
        .zip(data.samples.names())
        .map(|(c, name)| {
            tok.encode(c, tc.max_position_embeddings).map_err(|e| {
                TrainError::Config(format!("the caption of {name} does not fit the text encoder: {e}; raise --max-tokens (or --vocab-size)"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let empty = tok.encode("", tc.max_position_embeddings)?;
    Ok(Some(TextConditioning { encoder, ids, empty }))
}

/// The tokenizer of a text run: the checkpoint's when resuming, else a byte-level BPE
/// trained on the captions (deterministic, so a rerun of the same data gets the same one).
fn run_tokenizer(captions: &[String], vocab_size: usize, saved: Option<&str>) -> Result<PromptTokenizer, TrainError> {
    let tokenizer = match saved {
        Some(json) => PromptTokenizer::from_json(json)?,
        None => PromptTokenizer::train(captions, vocab_size)?,
    };
    if tokenizer.vocab_size() > vocab_size {
        return Err(TrainError::Config(format!(
            "the tokenizer has {} entries, more than the text encoder's vocab_size = {vocab_size}",
            tokenizer.vocab_size()
        )));
    }
    Ok(tokenizer)
}
