//! Generation: a request with names as strings is validated into a spec, then turned into
//! images by the sampler over a model's denoiser. Images are written with the recipe that
//! reproduces them; trajectories of the denoising can be recorded and drawn. Shared by
//! every front end.

mod conditioning;
mod device;
mod error;
mod font;
mod generate;
mod images;
mod noise;
mod output;
mod png_text;
mod recipe;
mod request;
mod trajectory;
mod trajectory_render;
mod transform;

pub use conditioning::{load_init_image, load_keep_mask, Conditioning};
pub use transform::prepare_image;
pub use device::{device, DEVICE_NAMES};
pub use error::PipelineError;
pub use generate::generate;
pub use images::{grid, grid_columns, to_images};
pub use noise::SeededNoise;
pub use output::{check_model_hash, model_ref, regenerate, write_images};
pub use png_text::{read_png_text, write_png_with_text};
pub use recipe::{file_sha256, software, ModelRef, Recipe, PARAMETERS_KEY, RECIPE_KEY, RECIPE_VERSION};
pub use request::{GenerateRequest, GenerateSpec, MAX_COUNT, MAX_STEPS};
pub use trajectory::{trajectory_stats, StepStats, TrajectoryFrame, TrajectoryRecorder};
pub use trajectory_render::{save_trajectory, trajectory_frames, trajectory_grid};
