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

/// Runs one command.
fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
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
    }
}

fn main() -> ExitCode {
    stipple_nn::process::configure();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // The server keeps its main thread for its runtime and moves each job onto rayon's pool;
    // every other command computes on rayon's workers from the start.
    let result = match cli.command {
        command @ Command::Serve(_) => run(command),
        command => stipple_nn::process::on_workers(|| run(command)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let (code, message) = describe(&e);
            // In one write, so that a launcher forwarding output write by write (mpirun) keeps
            // the line whole.
            let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("error: {message}\n").as_bytes());
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
