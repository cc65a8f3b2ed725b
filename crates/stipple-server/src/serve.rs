//! Starting and stopping the server: open the gallery (reconciling it after a crash), start
//! the queue's worker, bind (loopback unless a key is set), and on SIGTERM or Ctrl-C stop
//! taking requests, cancel the running job and wait for the worker, so nothing stored is lost.

use std::sync::{Arc, Mutex};

use stipple_pipeline::ModelStore;

use crate::engine::Engine;
use crate::gallery::Gallery;
use crate::queue::ShutdownMode;
use crate::state::{AppState, ConfigError, Queue, ServerConfig, Shared};

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the gallery could not be opened")]
    Gallery(#[from] crate::gallery::GalleryError),
    #[error("the job queue could not start")]
    Queue(#[from] crate::queue::QueueStartError),
    #[error("the store has no model to serve (no built-in model and none in its folders)")]
    NoModel,
    #[error("could not listen on {addr}")]
    Bind { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("the server failed")]
    Io(#[from] std::io::Error),
}

/// The shared state of a server over `store` (its default model current).
pub fn build_state(config: ServerConfig, store: ModelStore) -> Result<Shared, ServeError> {
    config.validate()?;
    let (gallery, report) = Gallery::open(&config.data_dir)?;
    if !report.is_clean() {
        tracing::warn!("gallery repaired after an unclean stop: {report:?}");
    }
    let current = match store.default_name() {
        Some(n) => n.to_string(),
        None => store.list().ok().and_then(|l| l.first().map(|e| e.name.clone())).ok_or(ServeError::NoModel)?,
    };
    let engine = Arc::new(Engine::new(Arc::new(store), Arc::new(gallery), config.runs_dir.clone(), config.data_root.clone()));
    let worker = engine.clone();
    let queue: Queue = Queue::new(config.queue_config(), move |job, ctx| {
        // Each job computes on rayon's workers (`on_workers`: no hand-over per kernel call).
        stipple_nn::process::on_workers(|| worker.run(job, ctx))
    })?;
    Ok(Arc::new(AppState { engine, queue, config, current_model: Mutex::new(current), webui_job: Mutex::new(None) }))
}

/// Serves until SIGTERM or Ctrl-C; `on_listening` gets the bound address (port 0 picks one).
pub async fn serve(state: Shared, on_listening: impl FnOnce(std::net::SocketAddr)) -> Result<(), ServeError> {
    let addr = state.config.addr;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })?;
    on_listening(listener.local_addr()?);
    let app = crate::app(state.clone());
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    tracing::info!("stopping: cancelling the running job");
    let s = state.clone();
    tokio::task::spawn_blocking(move || s.queue.shutdown(ShutdownMode::CancelRunning)).await.map_err(std::io::Error::other)?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
