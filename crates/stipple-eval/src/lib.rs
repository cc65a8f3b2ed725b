//! Sample-quality metrics for Stipple: the Fréchet distance (FID in Inception space), KID and
//! improved precision/recall, over features from pytorch-fid's Inception-v3 (weights the user
//! supplies) or from a small feature network trained on the data set itself.

mod audio;
pub mod clip;
pub mod domain;
mod error;
mod features;
pub mod frechet;
mod guidance;
pub mod images;
pub mod inception;
pub mod kid;
pub mod linalg;
pub mod precision_recall;
mod report;
mod sample_set;
pub mod sweep;
mod training;

pub use audio::{audio_metrics, AudioMetrics};
pub use clip::{clip_score, ClipModel, ClipScore};
pub use domain::{DomainFeatureNet, FeatureNetConfig, LabelledImages, TrainOptions};
pub use error::EvalError;
pub use features::Features;
pub use images::{load_folder, FeatureNet, NamedImage};
pub use inception::FidInception;
pub use frechet::{frechet_distance, frechet_distance_of, Gaussian};
pub use guidance::{guidance_sweep, guidance_table, GuidanceRow};
pub use kid::{kid, mmd2_unbiased, Kid, KidOptions};
pub use precision_recall::{precision_recall, PrecisionRecall};
pub use report::{evaluate, EvalOptions, EvalReport};
pub use sample_set::{evaluations_per_image, generate_set};
pub use sweep::{mean_ci95, render_sweep_plot, sweep, sweep_table, t_quantile_975, SweepPoint};
pub use training::TrainingMetrics;
