//! Generation: a request with names as strings is validated into a spec, then turned into
//! images by the sampler over a model's denoiser. Shared by every front end.

mod device;
mod error;
mod generate;
mod images;
mod noise;
mod request;

pub use device::{device, DEVICE_NAMES};
pub use error::PipelineError;
pub use generate::generate;
pub use images::{grid, grid_columns, save_png, to_images};
pub use noise::SeededNoise;
pub use request::{GenerateRequest, GenerateSpec, MAX_COUNT, MAX_STEPS};
