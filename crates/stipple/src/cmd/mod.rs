//! One module per subcommand.

pub mod bench;
pub mod inspect;
pub mod sample;
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
