//! The server's configuration (address, key, limits) and the state its routes share.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::engine::{Engine, Job, JobError, JobResult, Progress};
use crate::queue::{JobQueue, QueueConfig};

/// The queue of this server's jobs.
pub type Queue = JobQueue<Job, Progress, JobResult, JobError>;

/// Limits on what one request may ask for; each breach is a clear 4xx.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most sampling steps.
    pub max_steps: usize,
    /// Most images per request (count, or batch_size × n_iter).
    pub max_images: usize,
    /// Most bytes of a request body (base64 images included).
    pub max_body_bytes: usize,
    /// Jobs waiting at most (a full queue answers 429).
    pub queue_capacity: usize,
    /// Longest a job may run.
    pub job_time_limit: Duration,
    /// An x̂₀ preview every this many steps in the event stream.
    pub preview_every: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_steps: 150,
            max_images: 64,
            max_body_bytes: 32 << 20,
            queue_capacity: 16,
            job_time_limit: Duration::from_secs(600),
            preview_every: 1,
        }
    }
}

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    /// Bearer token every route but `/health` requires; mandatory off loopback.
    pub api_key: Option<String>,
    /// Folder of the gallery (`gallery.sqlite3`, `images/`).
    pub data_dir: PathBuf,
    /// Folder of training runs (models by run name).
    pub runs_dir: PathBuf,
    /// Folder whose sub-folders training jobs may name as data.
    pub data_root: Option<PathBuf>,
    pub limits: Limits,
}

/// Why a configuration cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("listening on {0} (not a loopback address) needs an API key (--api-key): anyone who can reach the port could use the server")]
    KeyRequired(SocketAddr),
    #[error("the API key must have at least 16 characters")]
    WeakKey,
}

impl ServerConfig {
    /// A server on loopback needs nothing; any other address needs a key of 16+ characters.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(k) = &self.api_key {
            if k.chars().count() < 16 {
                return Err(ConfigError::WeakKey);
            }
        } else if !self.addr.ip().is_loopback() {
            return Err(ConfigError::KeyRequired(self.addr));
        }
        Ok(())
    }

    pub fn queue_config(&self) -> QueueConfig {
        QueueConfig { capacity: self.limits.queue_capacity, time_limit: self.limits.job_time_limit, ..QueueConfig::default() }
    }
}

/// What every route shares.
pub struct AppState {
    pub engine: Arc<Engine>,
    pub queue: Queue,
    pub config: ServerConfig,
    /// The model the web-UI API generates with (`sd_model_checkpoint`).
    pub current_model: Mutex<String>,
    /// The web-UI API's running job, for `/sdapi/v1/progress`, `interrupt` and `skip`.
    pub webui_job: Mutex<Option<crate::queue::JobId>>,
}

/// The shared state as routes take it.
pub type Shared = Arc<AppState>;
