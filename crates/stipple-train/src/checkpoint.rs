//! Training checkpoints: a folder that resumes a run exactly (config, weights, EMA,
//! optimizer moments, step and RNG state), written whole under a temporary name and
//! renamed, so an interruption at any moment leaves the previous checkpoint intact.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use stipple_nn::{load_tensors, save_safetensors};

use crate::{LossSmoother, TrainConfig, TrainError};

/// Folder name of the current checkpoint inside a run folder.
pub const CHECKPOINT_DIR: &str = "checkpoint";
const TMP_DIR: &str = "checkpoint.tmp";
const OLD_DIR: &str = "checkpoint.old";
/// The tokenizer of a text-conditioned run, inside the checkpoint folder.
const TOKENIZER_FILE: &str = "tokenizer.json";

/// Version of the checkpoint layout.
pub const CHECKPOINT_VERSION: u32 = 1;

/// The scalar state of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunState {
    /// Layout version of this checkpoint.
    pub checkpoint_version: u32,
    /// Optimisation steps completed.
    pub step: usize,
    /// AdamW's update count (equals `step` unless steps were skipped).
    pub adam_t: usize,
    /// How the random state is kept: every step's draws come from a ChaCha8 generator
    /// keyed by (`seed`, step), so the step number is the whole RNG state.
    pub rng: String,
    /// Last training loss (for the log).
    pub loss: Option<f64>,
    /// State of the smoothed loss of the log (absent in older checkpoints: smoothing then
    /// starts afresh).
    #[serde(default)]
    pub loss_smoother: LossSmoother,
}

/// A checkpoint read back from disk.
pub struct Checkpoint {
    pub config: TrainConfig,
    pub state: RunState,
    pub weights: HashMap<String, Tensor>,
    pub ema: HashMap<String, Tensor>,
    pub optimizer: HashMap<String, Tensor>,
    /// `tokenizer.json` of a text-conditioned run.
    pub tokenizer: Option<String>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::Io { path: path.to_path_buf(), reason: e.to_string() }
}

/// Writes a checkpoint into `run/checkpoint`, replacing the previous one only once the
/// new one is complete.
pub fn save_checkpoint(
    run: &Path,
    config: &TrainConfig,
    state: &RunState,
    weights: &[(String, Tensor)],
    ema: &[(String, Tensor)],
    optimizer: &[(String, Tensor)],
    tokenizer: Option<&str>,
) -> Result<(), TrainError> {
    let tmp = run.join(TMP_DIR);
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    write_json(&tmp.join("config.json"), config)?;
    write_json(&tmp.join("state.json"), state)?;
    let none = HashMap::new();
    save_safetensors(&tmp.join("weights.safetensors"), weights, &none)?;
    save_safetensors(&tmp.join("ema.safetensors"), ema, &none)?;
    save_safetensors(&tmp.join("optimizer.safetensors"), optimizer, &none)?;
    if let Some(t) = tokenizer {
        let p = tmp.join(TOKENIZER_FILE);
        fs::write(&p, t).map_err(io(&p))?;
    }
    let cur = run.join(CHECKPOINT_DIR);
    let old = run.join(OLD_DIR);
    if old.exists() {
        fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    if cur.exists() {
        fs::rename(&cur, &old).map_err(io(&cur))?;
    }
    fs::rename(&tmp, &cur).map_err(io(&tmp))?;
    if old.exists() {
        fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    Ok(())
}

/// The checkpoint folder of a run, if any: the current one, or the previous one when an
/// interruption fell between the two renames of [`Trainer::save_checkpoint`](crate::Trainer::save_checkpoint).
pub fn find_checkpoint(run: &Path) -> Option<PathBuf> {
    [CHECKPOINT_DIR, OLD_DIR].iter().map(|d| run.join(d)).find(|p| p.join("state.json").is_file())
}

/// Reads the checkpoint of `run`.
pub fn load_checkpoint(run: &Path, device: &Device) -> Result<Checkpoint, TrainError> {
    let dir = find_checkpoint(run).ok_or_else(|| TrainError::NoCheckpoint(run.to_path_buf()))?;
    let read_json = |name: &str| -> Result<String, TrainError> {
        let p = dir.join(name);
        fs::read_to_string(&p).map_err(io(&p))
    };
    let bad = |name: &str, e: serde_json::Error| TrainError::Corrupt {
        path: dir.join(name),
        reason: e.to_string(),
    };
    let config: TrainConfig = serde_json::from_str(&read_json("config.json")?).map_err(|e| bad("config.json", e))?;
    let state: RunState = serde_json::from_str(&read_json("state.json")?).map_err(|e| bad("state.json", e))?;
    if state.checkpoint_version != CHECKPOINT_VERSION {
        return Err(TrainError::Corrupt {
            path: dir.join("state.json"),
            reason: format!(
                "checkpoint version {} but this build reads version {CHECKPOINT_VERSION}",
                state.checkpoint_version
            ),
        });
    }
    let tokenizer = match &config.captions {
        Some(_) => Some(read_json(TOKENIZER_FILE)?),
        None => None,
    };
    Ok(Checkpoint {
        config,
        state,
        weights: load_tensors(&dir.join("weights.safetensors"), device)?,
        ema: load_tensors(&dir.join("ema.safetensors"), device)?,
        optimizer: load_tensors(&dir.join("optimizer.safetensors"), device)?,
        tokenizer,
    })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(value).expect("plain data serialises");
    fs::write(path, text).map_err(io(path))
}
