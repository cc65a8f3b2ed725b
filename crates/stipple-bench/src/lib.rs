//! Benchmarks of the benchmark U-Nets through the library calls users run: a training step
//! is `stipple_train::diffusion_loss`, its backward pass and one `stipple_train::AdamW`
//! update; inference is `UNet2D::forward`; sampling is `stipple_pipeline::generate`. The
//! figures, batch sizes and JSON keys are those of the PyTorch twin
//! `bench/reference/unet_bench.py`; `stipple bench` is their command-line front end.

mod error;
mod figures;
mod flops;
mod gemm_peak;
mod presets;
mod timing;

pub use error::BenchError;
pub use figures::{measure, FigureRecord, Settings, INFER_BATCH, SAMPLE_STEPS, TRAIN_BATCH};
pub use flops::forward_flops;
pub use gemm_peak::{gemm_peak, GemmPeak};
pub use presets::{preset_config, Figure, FIGURES, PRESETS};
pub use timing::{median, rss_mib};
