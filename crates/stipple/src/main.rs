//! `stipple`: train diffusion models and sample from them.
//!
//! The binary only parses flags and calls one library function per subcommand; errors are
//! printed with their causes and mapped to exit codes (1 = error, 2 = bad usage,
//! 130 = interrupted with the last checkpoint kept).

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Stipple: a diffusion-model studio. Train a model on a folder of images (or the built-in
/// emoji), then sample from it with the sampler and schedule of your choice.
#[derive(Parser)]
#[command(name = "stipple", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Train(Box<cmd::train::TrainArgs>),
    Sample(Box<cmd::sample::SampleArgs>),
    Forecast(Box<cmd::forecast::ForecastArgs>),
    Inspect(cmd::inspect::InspectArgs),
    Info(cmd::info::InfoArgs),
    Rerun(cmd::rerun::RerunArgs),
    Samplers(cmd::samplers::SamplersArgs),
    Bench(cmd::bench::BenchArgs),
    Serve(Box<cmd::serve::ServeArgs>),
    Eval(cmd::eval::EvalArgs),
}

/// Keeps freed tensor buffers in the heap instead of returning them to the kernel: training
/// allocates and frees many same-sized multi-megabyte buffers per step, and glibc's default
/// (mmap above a dynamic threshold, trim on free) turns each into page faults and TLB
/// shoot-downs (measured: ~10% of a CPU training step).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// Thread settings, made before any thread exists (`stipple bench`'s child processes inherit
/// them); a variable the user set is left alone.
///
/// - `RAYON_NUM_THREADS` is fixed to candle's default count (the physical cores). Unset, candle
///   0.11's `utils::get_num_threads`, which every candle matmul calls, counts the cores by
///   parsing /proc/cpuinfo on each call: 17% of the CPU time of a default `stipple train` run
///   (measured when the convolutions called it too; they now read rayon's pool size).
/// - One thread pool instead of two: `CANDLE_NUM_THREADS=1` gives candle's own pool (its
///   element-wise ops; `utils::barrier_pool`) no worker threads, so those ops run on the
///   calling thread and every parallel kernel (`stipple_nn::ops`, the GEMMs) uses rayon's pool.
///   With both pools, candle's worker spins for up to 25,000 rounds after each op while rayon's
///   threads need the same cores: on 2 busy cores an emoji16 training step took 1.3 s with both
///   pools and 0.40 s with one (`stipple bench`, load 7).
fn configure_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = candle_core::utils::get_num_threads();
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

fn main() -> ExitCode {
    tune_allocator();
    configure_threads();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => cmd::train::run(*a),
        Command::Sample(a) => cmd::sample::run(*a),
        Command::Forecast(a) => cmd::forecast::run(*a),
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Info(a) => cmd::info::run(a),
        Command::Rerun(a) => cmd::rerun::run(a),
        Command::Samplers(a) => cmd::samplers::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Serve(a) => cmd::serve::run(*a),
        Command::Eval(a) => cmd::eval::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let (code, message) = describe(&e);
            eprintln!("error: {message}");
            code
        }
    }
}

/// Exit code and message of a failed command: bad input (a pipeline `BadInput` or an evaluation
/// input error, anywhere in the chain) is bad usage, exit 2, with the setting named by its flag;
/// everything else exits 1 with its causes.
fn describe(e: &anyhow::Error) -> (ExitCode, String) {
    let bad = e.chain().find_map(|c| c.downcast_ref::<stipple_pipeline::PipelineError>()).filter(|p| p.bad_input().is_some());
    if let Some(p) = bad {
        return (ExitCode::from(2), p.describe(cmd::flag));
    }
    use stipple_eval::EvalError;
    match e.chain().find_map(|c| c.downcast_ref::<EvalError>()) {
        Some(EvalError::BadSetting { setting, expected }) => (ExitCode::from(2), format!("{}: {expected}", cmd::flag(setting))),
        Some(
            EvalError::TooFewSamples { .. }
            | EvalError::ImageShape { .. }
            | EvalError::BadImage { .. }
            | EvalError::WrongArchitecture { .. }
            | EvalError::DimensionMismatch { .. }
            | EvalError::MissingFiles { .. }
            | EvalError::PromptTooLong { .. },
        ) => (ExitCode::from(2), format!("{e:#}")),
        _ => (ExitCode::from(1), format!("{e:#}")),
    }
}
