//! Training: image data sets, the denoising objective, AdamW with warm-up and clipping,
//! EMA, resumable checkpoints and the loop that ties them together.

mod checkpoint;
mod config;
mod dashboard;
pub mod data;
mod ema;
mod error;
mod init;
mod objective;
mod optim;
mod order;
mod progress;
mod trainer;

pub use checkpoint::{find_checkpoint, load_checkpoint, Checkpoint, RunState, CHECKPOINT_DIR};
pub use dashboard::{LossSmoother, LOG_FILE, LOSS_PLOT, LOSS_PLOT_SIZE, LOSS_SMOOTHING, SAMPLES_TAG, TENSORBOARD_DIR};
pub use config::{DataSource, LossKind, LossWeighting, TrainConfig};
pub use error::TrainError;
pub use optim::{AdamW, AdamWConfig};
pub use trainer::{model_file, train, TrainOptions, TrainOutcome};
