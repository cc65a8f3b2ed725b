//! Training: image data sets, the denoising objective, AdamW with warm-up and clipping,
//! EMA, resumable checkpoints, and the [`Trainer`] that ties them together, driven step by
//! step with [`TrainObserver`]s (dashboard, progress bars, checkpoint and grid schedules).

mod checkpoint;
mod collective;
mod config;
mod dashboard;
pub mod data;
mod data_parallel;
mod ema;
mod error;
mod forecast_masks;
mod grids;
mod init;
#[cfg(feature = "mpi")]
mod mpi_world;
#[cfg(feature = "nccl")]
mod nccl_world;
mod objective;
mod observer;
mod optim;
mod order;
mod progress;
mod schedule;
mod settings;
mod setup;
mod trainer;

pub use checkpoint::{find_checkpoint, load_checkpoint, Checkpoint, RunState, CHECKPOINT_DIR};
pub use collective::{Collective, SingleProcess};
pub use config::{DataSource, LossKind, LossWeighting, TrainConfig};
pub use dashboard::{Dashboard, LossSmoother, MetricsLog, LOG_FILE, METRICS_FILE, METRICS_PLOT, LOSS_PLOT, LOSS_PLOT_SIZE, LOSS_SMOOTHING, SAMPLES_TAG, TENSORBOARD_DIR};
pub use data_parallel::{all_reduce_gradients, BUCKET_FLOATS};
pub use error::TrainError;
pub use forecast_masks::draw_forecast_masks;
#[cfg(feature = "mpi")]
pub use mpi_world::{MpiWorld, TIMEOUT_EXIT_CODE};
#[cfg(feature = "nccl")]
pub use nccl_world::NcclWorld;
pub use objective::{diffusion_loss, NoiseDraw};
pub use observer::{train, TrainObserver, TrainOutcome};
pub use optim::{AdamW, AdamWConfig};
pub use progress::ProgressBars;
pub use schedule::{Checkpoints, SampleGrids, StopFlag};
pub use settings::{TrainSettings, MAX_TOKENS, TEXT_WIDTH, VOCAB_SIZE};
pub use trainer::{model_file, SampleGrid, SavedCheckpoint, StepStats, TrainOptions, Trainer};
