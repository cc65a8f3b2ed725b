//! One module per subcommand.

pub mod bench;
pub mod info;
pub mod inspect;
pub mod rerun;
pub mod sample;
pub mod samplers;
pub mod train;

use std::path::{Path, PathBuf};

/// A model argument may name a model file or a run folder holding `model.safetensors`.
pub fn model_path(arg: &Path) -> PathBuf {
    if arg.is_dir() {
        stipple_train::model_file(arg)
    } else {
        arg.to_path_buf()
    }
}

/// The text-to-emoji model shipped in the repository (`models/`), used when `sample` gets no
/// `--model`; see `models/README.md` for the command that trained it.
pub fn shipped_prompt_model() -> anyhow::Result<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/emoji-prompts.safetensors");
    anyhow::ensure!(
        path.is_file(),
        "no --model given and the shipped prompt model {} is missing; pass --model RUN_OR_FILE",
        path.display()
    );
    Ok(path.canonicalize().unwrap_or(path))
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
