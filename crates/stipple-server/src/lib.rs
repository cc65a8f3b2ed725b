//! The studio server: Stipple's own HTTP API with a job queue and live events, the
//! AUTOMATIC1111 web UI's API and OpenAI's images API, over the same library calls as the
//! CLI. Its parts: a gallery of generated images that survives restarts and crashes
//! (`gallery`), a bounded job queue whose one worker thread runs jobs in order while clients
//! follow their live events (`queue`), the jobs themselves (`engine`), and the routes.

mod decimal;
pub mod engine;
mod error;
pub mod gallery;
pub mod queue;
mod recent;
mod routes;
mod security;
mod serve;
mod state;

pub use error::ApiError;
pub use routes::app;
pub use serve::{build_state, serve, ServeError};
pub use state::{AppState, ConfigError, Limits, ServerConfig, Shared};
