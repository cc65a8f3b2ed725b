//! One module per subcommand.

pub mod bench;
pub mod eval;
pub mod forecast;
pub mod info;
pub mod inspect;
pub mod rerun;
pub mod sample;
pub mod samplers;
pub mod serve;
pub mod train;

use std::path::{Path, PathBuf};

use candle_core::Device;
use stipple_pipeline::ModelStore;

/// The text-to-emoji model shipped with Stipple (`models/emoji-prompts.safetensors`, see
/// `models/README.md` for the command that trained it), built into the binary so that it is
/// found wherever the binary is installed; the model store writes it to the models folder on
/// first use.
pub const SHIPPED_MODEL: (&str, &[u8]) = ("emoji-prompts", include_bytes!("../../../../models/emoji-prompts.safetensors"));

/// Folder of models found by name (`--models`), where the shipped model is written on first use.
pub const MODELS_DIR: &str = "models";

/// Folder of training runs, where `train` writes by default and the model store finds runs.
pub const RUNS_DIR: &str = "runs";

/// The model store of a command: `models` (the `--models` folder), the runs folder and the
/// shipped model, loading onto `device`.
pub fn model_store(models: &Path, device: &Device) -> ModelStore {
    model_store_in(models, Path::new(RUNS_DIR), device)
}

/// [`model_store`] with another runs folder.
pub fn model_store_in(models: &Path, runs: &Path, device: &Device) -> ModelStore {
    ModelStore::new(models, runs, device.clone()).with_builtin(SHIPPED_MODEL.0, SHIPPED_MODEL.1)
}

/// The model file a command was asked for: `--model` (a file, a run folder or a model name of
/// the store), or the store's default (the shipped model).
pub fn model_path(store: &ModelStore, arg: Option<&Path>) -> Result<PathBuf, stipple_pipeline::PipelineError> {
    match arg {
        Some(a) => store.resolve_arg(a),
        None => store.path_of(store.default_name().expect("the shipped model is built in")),
    }
}

/// A library setting as the CLI names it: its flag (`guidance_scale` → `--guidance-scale`),
/// or the positional IMAGE argument of `info` and FILE argument of `rerun`.
pub fn flag(setting: &'static str) -> String {
    match setting {
        "image" => "IMAGE".to_string(),
        "file" => "FILE".to_string(),
        s => format!("--{}", s.replace('_', "-")),
    }
}

/// A progress bar advanced once per sampler step.
pub struct StepBar(indicatif::ProgressBar);

impl StepBar {
    pub fn new(total_steps: usize) -> Self {
        Self(indicatif::ProgressBar::new(total_steps as u64))
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl stipple_sample::Observer<stipple_nn::TensorLatent> for StepBar {
    fn on_step(&mut self, _: &stipple_sample::StepInfo<'_, stipple_nn::TensorLatent>) -> std::ops::ControlFlow<()> {
        self.0.inc(1);
        std::ops::ControlFlow::Continue(())
    }
}
