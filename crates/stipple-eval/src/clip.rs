//! Prompt adherence by CLIP score (Hessel et al. 2021) from a CLIP checkpoint the user
//! supplies as a folder in transformers' layout: `config.json` (`text_config`,
//! `vision_config`, `projection_dim`), `model.safetensors` (`text_model.*`, `vision_model.*`,
//! `text_projection.weight`, `visual_projection.weight`), the tokenizer's `vocab.json` and
//! `merges.txt`, and `preprocessor_config.json`. Nothing is downloaded.
//!
//! ```no_run
//! # fn main() -> Result<(), stipple_eval::EvalError> {
//! use stipple_eval::{clip_score, load_folder, ClipModel};
//! let clip = ClipModel::load("models/clip-vit-base-patch32".as_ref(), &candle_core::Device::Cpu)?;
//! let score = clip_score(&clip, &load_folder("samples".as_ref())?, &["a red apple".to_string()])?;
//! println!("CLIP score {:.2}", score.mean);
//! # Ok(()) }
//! ```

mod config;
mod model;
mod processor;
mod resize;
mod score;

pub use config::{ClipConfig, LEGACY_EOS_TOKEN_ID};
pub use model::{pooling_position, ClipModel, CLIP_FILES};
pub use processor::ImageProcessor;
pub use score::{clip_score, ClipScore, PairScore};
