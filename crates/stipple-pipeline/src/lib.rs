//! Generation: a request with names as strings is validated into a spec (with the defaults
//! of one table), then turned into images (or sequences, and forecasts from them) by the
//! sampler over a model's denoiser. Images come
//! in and go out as bytes, every output carries the recipe that reproduces it; models are
//! found by name in a store; trajectories of the denoising can be recorded and drawn. Shared
//! by every front end.

mod adapters;
mod attention_maps;
mod conditioning;
pub mod defaults;
mod device;
mod error;
mod fan_chart;
mod font;
mod forecast;
mod forecast_output;
mod generate;
mod images;
mod input;
mod latent_diffusion;
mod mask_blur;
mod model;
mod noise;
mod output;
mod png_text;
mod recipe;
mod request;
mod series_input;
mod sound_output;
mod store;
mod trajectory;
mod trajectory_render;
mod transform;

pub use conditioning::{load_init_image, Conditioning, RepaintMask};
pub use mask_blur::{blur_mask, MAX_MASK_BLUR};
pub use transform::{prepare_image, prepare_image_sized};
pub use device::{device, DEVICE_NAMES};
pub use error::{chain, PipelineError};
pub use attention_maps::TokenMaps;
pub use generate::{generate, generate_known, generate_with_attention};
pub use fan_chart::{render_fan_chart, FanChart, FAN_CHART_SIZE};
pub use forecast::{forecast, path_quantiles, Forecast, QUANTILE_LEVELS};
pub use forecast_output::{fan_chart, paths_chart, reforecast, write_forecast, ForecastRecipe, ForecastSettings, FORECAST_FILES, FORECAST_KEY, FORECAST_RECIPE_FILE};
pub use series_input::{read_series_column, SeriesInput};
pub use sound_output::{check_sound_trajectory_path, clip_paths, regenerate_clip, write_clip, write_clips, write_sound_trajectory};
pub use images::{grid, grid_columns, to_images};
pub use noise::SeededNoise;
pub use latent_diffusion::{hashed_file, is_sd_checkpoint, sd_default_size};
pub use model::Model;
pub use input::{decode_bounded, ImageInput, MAX_INPUT_ALLOC, MAX_INPUT_SIDE};
pub use output::{check_model_hash, check_output_path, encode_images, model_ref, recipe, regenerate, replay, write_images};
pub use png_text::{encode_png_with_text, read_png_text, write_atomic, write_png_with_text};
pub use recipe::{file_sha256, safetensors_data_sha256, software, BatchRef, InputRef, LoraRef, ModelRef, Recipe, PARAMETERS_KEY, RECIPE_KEY, RECIPE_VERSION};
pub use adapters::{Adapters, LORAS_DIR};
pub use store::{is_model_name, ModelEntry, ModelSource, ModelStore, StoredModel, CONFIG_DIR_SUFFIX, RUN_MODEL_FILE};
pub use request::{GenerateRequest, GenerateSpec, MAX_COUNT, MAX_SIDE, MAX_STEPS};
pub use trajectory::{trajectory_stats, StepStats, TrajectoryFrame, TrajectoryRecorder};
pub use trajectory_render::{encode_trajectory, noisy_images, save_trajectory, trajectory_frames, trajectory_grid, TrajectoryFormat};
