//! `stipple serve`: the studio server (Stipple's API, the web UI's `/sdapi/v1` and OpenAI's
//! images API) on the shipped model and the models and runs found by name.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use stipple_server::{build_state, serve, Limits, ServerConfig};

/// Serve the studio's HTTP API: AUTOMATIC1111-compatible (/sdapi/v1), OpenAI images (/v1) and
/// Stipple's own (/api) with a job queue, live events and a gallery that survives restarts.
///
/// Listens on loopback by default; any other address needs --api-key.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7860")]
    pub addr: SocketAddr,
    /// Bearer key every request must carry (Authorization: Bearer KEY); required off loopback.
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Folder of models found by name (the shipped model is written there on first use).
    #[arg(long, value_name = "DIR", default_value = super::MODELS_DIR)]
    pub models: PathBuf,
    /// Folder of training runs: finished runs are models by their folder name, and training
    /// jobs write there.
    #[arg(long, value_name = "DIR", default_value = super::RUNS_DIR)]
    pub runs: PathBuf,
    /// Folder of the gallery (gallery.sqlite3 and images/).
    #[arg(long, value_name = "DIR", default_value = "gallery")]
    pub gallery: PathBuf,
    /// Folder whose sub-folders training jobs may name as their data (none: the built-in emoji only).
    #[arg(long, value_name = "DIR")]
    pub data_root: Option<PathBuf>,
    /// Most sampling steps per request.
    #[arg(long, default_value_t = Limits::default().max_steps)]
    pub max_steps: usize,
    /// Most images per request.
    #[arg(long, default_value_t = Limits::default().max_images)]
    pub max_images: usize,
    /// Most jobs waiting (a full queue answers 429 with Retry-After).
    #[arg(long, default_value_t = Limits::default().queue_capacity)]
    pub queue: usize,
    /// Longest a job may run, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().job_time_limit.as_secs())]
    pub job_timeout: u64,
    /// Compute device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let dev = stipple_pipeline::device(&args.device)?;
    let store = super::model_store_in(&args.models, &args.runs, &dev);
    let config = ServerConfig {
        addr: args.addr,
        api_key: args.api_key,
        data_dir: args.gallery,
        runs_dir: args.runs,
        data_root: args.data_root,
        limits: Limits {
            max_steps: args.max_steps,
            max_images: args.max_images,
            queue_capacity: args.queue,
            job_time_limit: Duration::from_secs(args.job_timeout),
            ..Limits::default()
        },
    };
    let state = build_state(config, store)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(serve(state, |addr| {
        println!("listening on http://{addr}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }))?;
    Ok(ExitCode::SUCCESS)
}
