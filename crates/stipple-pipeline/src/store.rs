//! The model store: models found by name in a models folder (`NAME.safetensors`, a Stipple
//! model or a Stable Diffusion single file, and `NAME/`, a diffusers folder with
//! `model_index.json`) and in the run folders of training (`RUN/model.safetensors`, named by
//! the run), plus models built into the binary; each loaded once per file version and shared,
//! its SHA-256 computed once. A Stable Diffusion pipeline takes GBs, so at most one is kept
//! loaded. A single file `NAME.safetensors` takes its configs and tokenizer(s) from a diffusers
//! folder `NAME.config/` beside it when there is one (`stipple_sd::LoadOptions::config_dir`),
//! else from `tokenizer/` beside it and the released configs of its architecture.
//!
//! Names are plain file-name stems (letters, digits, `.`, `_`, `-`), so a name given by a
//! client can never reach outside the store's folders; only [`ModelStore::resolve_arg`], for
//! command lines, also accepts a path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use candle_core::Device;

use crate::latent_diffusion::hashed_file;
use crate::adapters::LORAS_DIR;
use crate::{file_sha256, is_sd_checkpoint, safetensors_data_sha256, write_atomic, Adapters, LoraRef, Model, ModelRef, PipelineError};

/// Suffix of the folder beside a single-file checkpoint `NAME.safetensors` that holds its
/// configs and tokenizer(s) (`NAME.config/`, a diffusers folder of the same architecture).
pub const CONFIG_DIR_SUFFIX: &str = ".config";

/// File name of the model inside a run folder (what training writes).
pub const RUN_MODEL_FILE: &str = "model.safetensors";

/// Where a model of the store comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelSource {
    /// `NAME.safetensors` in the models folder.
    ModelsFolder,
    /// `NAME/model.safetensors` in the runs folder.
    Run,
    /// Built into the binary (written to the models folder when first loaded).
    Builtin,
}

/// A model the store knows, by name.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ModelEntry {
    pub name: String,
    pub path: PathBuf,
    pub source: ModelSource,
    /// For a Stable Diffusion checkpoint its architecture (`stipple inspect`'s name, e.g.
    /// "Stable Diffusion 1.x"); `None` for a Stipple model.
    pub architecture: Option<String>,
}

/// A loaded model with its name and its recipe reference (path, hash, training step).
pub struct StoredModel {
    pub name: String,
    pub model: Model,
    pub model_ref: ModelRef,
}

/// What identifies a version of a file: its modification time and length.
type Stamp = (Option<SystemTime>, u64);

fn stamp(path: &Path) -> Result<Stamp, PipelineError> {
    let meta = std::fs::metadata(path).map_err(|e| PipelineError::io("read", path, e))?;
    Ok((meta.modified().ok(), meta.len()))
}

/// A loaded model's identity: its file, its LoRAs (path, multiplier bits) and configs folder.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct LoadKey {
    file: PathBuf,
    loras: Vec<(PathBuf, u64)>,
    config_dir: Option<PathBuf>,
}

/// A loaded model and the versions of its files (model, then LoRAs) it was loaded from.
type Loaded = (Vec<Stamp>, Arc<StoredModel>);

/// Models by name; see the module documentation.
pub struct ModelStore {
    models_dir: PathBuf,
    runs_dir: PathBuf,
    builtin: Vec<(&'static str, &'static [u8])>,
    device: Device,
    loaded: Mutex<HashMap<LoadKey, Loaded>>,
    hashes: Mutex<HashMap<PathBuf, (Stamp, String)>>,
}

/// Whether `name` is a plain model name (no path separators, no leading dot).
pub fn is_model_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl ModelStore {
    /// A store over `models_dir` and `runs_dir` (either may not exist yet) that loads models
    /// onto `device`.
    pub fn new(models_dir: impl Into<PathBuf>, runs_dir: impl Into<PathBuf>, device: Device) -> Self {
        Self {
            models_dir: models_dir.into(),
            runs_dir: runs_dir.into(),
            builtin: Vec::new(),
            device,
            loaded: Mutex::new(HashMap::new()),
            hashes: Mutex::new(HashMap::new()),
        }
    }

    /// Adds a model built into the binary under `name`; the first one added is the default.
    pub fn with_builtin(mut self, name: &'static str, bytes: &'static [u8]) -> Self {
        self.builtin.push((name, bytes));
        self
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn models_dir(&self) -> &Path {
        &self.models_dir
    }

    /// The model used when a request names none: the first built-in one.
    pub fn default_name(&self) -> Option<&'static str> {
        self.builtin.first().map(|(n, _)| *n)
    }

    /// Every model, sorted by name: the models folder's, the runs', then built-in ones not
    /// yet written to the models folder. On a name clash the models folder wins, then runs.
    pub fn list(&self) -> Result<Vec<ModelEntry>, PipelineError> {
        let mut found: Vec<ModelEntry> = Vec::new();
        let mut push = |e: ModelEntry| {
            if !found.iter().any(|f| f.name == e.name) {
                found.push(e);
            }
        };
        for (path, name) in read_dir_sorted(&self.models_dir)? {
            let folder = path.join("model_index.json").is_file() && !name.ends_with(CONFIG_DIR_SUFFIX);
            let stem = if folder {
                name
            } else if path.extension().is_some_and(|e| e == "safetensors") && path.is_file() {
                Path::new(&name).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
            } else {
                continue;
            };
            if is_model_name(&stem) {
                let architecture = sd_architecture(&path);
                push(ModelEntry { name: stem, path, source: ModelSource::ModelsFolder, architecture });
            }
        }
        for (path, name) in read_dir_sorted(&self.runs_dir)? {
            let file = path.join(RUN_MODEL_FILE);
            if is_model_name(&name) && file.is_file() {
                push(ModelEntry { name, path: file, source: ModelSource::Run, architecture: None });
            }
        }
        for (name, _) in &self.builtin {
            push(ModelEntry { name: name.to_string(), path: self.builtin_path(name), source: ModelSource::Builtin, architecture: None });
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    /// The LoRA files a prompt's `<lora:NAME:M>` tags can name, as (NAME, path), sorted: the
    /// `.safetensors` files in the models folder's `loras/`.
    pub fn list_loras(&self) -> Result<Vec<(String, PathBuf)>, PipelineError> {
        let found = read_dir_sorted(&self.models_dir.join(LORAS_DIR))?.into_iter().filter_map(|(path, name)| {
            let stem = name.strip_suffix(".safetensors")?;
            (is_model_name(stem) && path.is_file()).then(|| (stem.to_string(), path))
        });
        Ok(found.collect())
    }

    /// The model file (or diffusers folder) of `name` (a built-in model is written to the models folder on first
    /// use, atomically, so recipes name a real file); bad input in `model` lists the names.
    pub fn path_of(&self, name: &str) -> Result<PathBuf, PipelineError> {
        let list = self.list()?;
        let Some(entry) = list.iter().find(|e| e.name == name) else {
            let names: Vec<&str> = list.iter().map(|e| e.name.as_str()).collect();
            let hint = if names.is_empty() { "none".to_string() } else { names.join(", ") };
            return Err(PipelineError::bad("model", format!("no model named \"{name}\" in the models or runs folder; available: {hint}")));
        };
        if entry.source == ModelSource::Builtin && !entry.path.is_file() {
            let bytes = self.builtin.iter().find(|(n, _)| *n == name).map(|(_, b)| *b).expect("listed built-in");
            write_atomic(&entry.path, bytes)?;
        }
        Ok(entry.path.clone())
    }

    /// A command-line model argument: a model file, a diffusers folder, a run folder (its
    /// `model.safetensors`), or a model name of the store (a file or a diffusers folder).
    pub fn resolve_arg(&self, arg: &Path) -> Result<PathBuf, PipelineError> {
        if arg.join("model_index.json").is_file() {
            return Ok(arg.to_path_buf());
        }
        if arg.is_dir() {
            return Ok(arg.join(RUN_MODEL_FILE));
        }
        if arg.is_file() {
            return Ok(arg.to_path_buf());
        }
        match arg.to_str().filter(|s| is_model_name(s)) {
            Some(name) => self.path_of(name),
            None => Err(PipelineError::bad("model", format!("{} is neither a model file, a run folder nor a model name", arg.display()))),
        }
    }

    /// Loads the model `name` (see [`ModelStore::path_of`]).
    pub fn load(&self, name: &str) -> Result<Arc<StoredModel>, PipelineError> {
        self.load_for(name, &[])
    }

    /// Loads the model `name` for a request with `prompts`: with the LoRAs their
    /// `<lora:NAME:M>` tags name (see [`ModelStore::load_path_for`]).
    pub fn load_for(&self, name: &str, prompts: &[String]) -> Result<Arc<StoredModel>, PipelineError> {
        if !is_model_name(name) {
            return Err(PipelineError::bad("model", format!("\"{name}\" is not a model name (letters, digits, '.', '_', '-')")));
        }
        let path = self.path_of(name)?;
        self.load_path_for(name, &path, prompts, Adapters::default())
    }

    /// Loads the model at `path` (a Stipple model file or a Stable Diffusion checkpoint) under
    /// `name`; see [`ModelStore::load_adapted`].
    pub fn load_path(&self, name: &str, path: &Path) -> Result<Arc<StoredModel>, PipelineError> {
        self.load_adapted(name, path, &Adapters::default())
    }

    /// Loads the model at `path` under `name` with `adapters` merged (only a Stable Diffusion
    /// checkpoint takes them), or returns the copy loaded before with the same adapters if
    /// none of the files has changed since. Loading a checkpoint drops the one loaded before
    /// (at most one is kept). Its recipe reference records the LoRAs (path, hash, multiplier)
    /// and an explicit configs folder, so `rerun` loads it the same way.
    pub fn load_adapted(&self, name: &str, path: &Path, adapters: &Adapters) -> Result<Arc<StoredModel>, PipelineError> {
        let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        let file = canonical(path);
        let key = LoadKey {
            file: file.clone(),
            loras: adapters.loras.iter().map(|(p, m)| (canonical(p), m.to_bits())).collect(),
            config_dir: adapters.config_dir.as_deref().map(canonical),
        };
        let mut now = vec![stamp(&hashed_file(&file)?)?];
        for (lora, _) in &key.loras {
            now.push(stamp(lora)?);
        }
        if let Some((s, m)) = self.loaded.lock().expect("store lock").get(&key) {
            if *s == now {
                return Ok(m.clone());
            }
        }
        let sha256 = self.sha256(&file)?;
        let mut model_ref = ModelRef { path: file.clone(), sha256, step: None, loras: vec![], config_dir: key.config_dir.clone() };
        let model = if is_sd_checkpoint(&file) {
            self.loaded.lock().expect("store lock").retain(|_, (_, m)| !matches!(m.model, Model::Sd(_)));
            for (lora, bits) in &key.loras {
                let data_sha256 = Some(safetensors_data_sha256(lora)?);
                model_ref.loras.push(LoraRef { path: lora.clone(), sha256: self.sha256(lora)?, multiplier: f64::from_bits(*bits), data_sha256 });
            }
            let options = stipple_sd::LoadOptions {
                config_dir: key.config_dir.clone().or_else(|| config_dir(&file)),
                loras: model_ref.loras.iter().map(|l| (l.path.clone(), l.multiplier)).collect(),
                ..Default::default()
            };
            Model::Sd(Box::new(stipple_sd::SdPipeline::load_with(&file, &options, &self.device)?))
        } else if !adapters.is_empty() {
            return Err(PipelineError::bad("lora", "LoRAs and configs folders are for Stable Diffusion checkpoints; this is a Stipple model"));
        } else {
            let model = stipple_nn::load_model_file(&file, &self.device)?;
            model_ref.step = model.metadata.get("step").and_then(|s| s.parse().ok());
            Model::Stipple(Box::new(model))
        };
        let stored = Arc::new(StoredModel { name: name.to_string(), model, model_ref });
        self.loaded.lock().expect("store lock").insert(key, (now, stored.clone()));
        Ok(stored)
    }

    /// Loads `name` at `path` as a request asks: with `adapters` and the LoRAs its prompts
    /// name in `<lora:NAME:M>` tags, found in the models folder's `loras/` ([`LORAS_DIR`]).
    pub fn load_path_for(&self, name: &str, path: &Path, prompts: &[String], adapters: Adapters) -> Result<Arc<StoredModel>, PipelineError> {
        let adapters = adapters.with_prompt_loras(prompts, &self.models_dir.join(LORAS_DIR))?;
        self.load_adapted(name, path, &adapters)
    }

    /// SHA-256 of a model file (of a diffusers folder: of its U-Net weights), computed once
    /// per file version.
    pub fn sha256(&self, path: &Path) -> Result<String, PipelineError> {
        let hashed = hashed_file(path)?;
        let path = hashed.as_path();
        let now = stamp(path)?;
        if let Some((s, h)) = self.hashes.lock().expect("store lock").get(path) {
            if *s == now {
                return Ok(h.clone());
            }
        }
        let hash = file_sha256(path)?;
        self.hashes.lock().expect("store lock").insert(path.to_path_buf(), (now, hash.clone()));
        Ok(hash)
    }

    fn builtin_path(&self, name: &str) -> PathBuf {
        self.models_dir.join(format!("{name}.safetensors"))
    }
}

/// The architecture of a Stable Diffusion checkpoint at `path`; `None` for anything else.
fn sd_architecture(path: &Path) -> Option<String> {
    if !is_sd_checkpoint(path) {
        return None;
    }
    Some(stipple_sd::inspect(path).map_or_else(|e| format!("unreadable checkpoint: {e}"), |i| i.architecture.to_string()))
}

/// The configs folder of a single-file checkpoint `NAME.safetensors`: `NAME.config/` beside
/// it, when present.
fn config_dir(path: &Path) -> Option<PathBuf> {
    let stem = path.file_stem()?.to_str()?;
    let dir = path.with_file_name(format!("{stem}{CONFIG_DIR_SUFFIX}"));
    (path.is_file() && dir.is_dir()).then_some(dir)
}

/// Entries of a folder as (path, file name), sorted; a missing folder has none.
fn read_dir_sorted(dir: &Path) -> Result<Vec<(PathBuf, String)>, PipelineError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(PipelineError::io("list", dir, e)),
    };
    let mut out: Vec<(PathBuf, String)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(|n| (e.path(), n.to_string())))
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_reach_outside_the_store() {
        for bad in ["", "..", "../etc/passwd", "a/b", ".hidden", "a\\b", "/abs", "x y"] {
            assert!(!is_model_name(bad), "{bad:?}");
        }
        for good in ["emoji-prompts", "mnist_v2", "run.3"] {
            assert!(is_model_name(good), "{good:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::new(dir.path().join("models"), dir.path().join("runs"), Device::Cpu);
        let e = store.load("../x").err().expect("refused");
        assert_eq!(e.bad_input().map(|b| b.0), Some("model"));
    }

    #[test]
    fn lists_models_runs_and_builtins_and_writes_a_builtin_on_first_use() {
        let dir = tempfile::tempdir().unwrap();
        let (models, runs) = (dir.path().join("models"), dir.path().join("runs"));
        std::fs::create_dir_all(&models).unwrap();
        std::fs::create_dir_all(runs.join("mnist")).unwrap();
        std::fs::create_dir_all(runs.join("empty")).unwrap();
        std::fs::write(models.join("a.safetensors"), b"x").unwrap();
        std::fs::write(models.join("notes.txt"), b"x").unwrap();
        std::fs::write(runs.join("mnist").join(RUN_MODEL_FILE), b"y").unwrap();
        static BYTES: &[u8] = b"built-in bytes";
        let store = ModelStore::new(&models, &runs, Device::Cpu).with_builtin("shipped", BYTES);
        let names: Vec<(String, ModelSource)> = store.list().unwrap().into_iter().map(|e| (e.name, e.source)).collect();
        assert_eq!(
            names,
            [("a".into(), ModelSource::ModelsFolder), ("mnist".into(), ModelSource::Run), ("shipped".into(), ModelSource::Builtin)]
        );
        assert_eq!(store.default_name(), Some("shipped"));
        let path = store.path_of("shipped").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), BYTES);
        assert_eq!(store.list().unwrap().iter().find(|e| e.name == "shipped").unwrap().source, ModelSource::ModelsFolder);
        let e = store.path_of("nope").unwrap_err().to_string();
        assert!(e.contains("available: a, mnist, shipped"), "{e}");
        assert_eq!(store.resolve_arg(&runs.join("mnist")).unwrap(), runs.join("mnist").join(RUN_MODEL_FILE));
        assert_eq!(store.resolve_arg(Path::new("a")).unwrap(), models.join("a.safetensors"));
    }
}
