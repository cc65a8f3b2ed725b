//! `stipple samplers`: the samplers and schedules with the names people know.

use std::process::ExitCode;

use stipple_sample::{SamplerKind, SigmaSchedule};

/// List every sampler (with its artists' name, diffusers class and k-diffusion function) and every σ schedule.
#[derive(clap::Args)]
pub struct SamplersArgs {}

pub fn run(_: SamplersArgs) -> anyhow::Result<ExitCode> {
    println!(
        "{:<20} {:<22} {:<36} {:<26} {:>5}  {:<10} {:<16} default noise",
        "--sampler", "artists' name", "diffusers class", "k-diffusion", "evals", "stochastic", "default schedule"
    );
    for r in SamplerKind::table() {
        println!(
            "{:<20} {:<22} {:<36} {:<26} {:>5}  {:<10} {:<16} {}",
            r.name,
            r.display_name,
            r.diffusers_class.unwrap_or("-"),
            r.k_diffusion_function.unwrap_or("-"),
            r.evals_per_step,
            if r.stochastic { "yes" } else { "no" },
            r.default_schedule,
            if r.stochastic || r.uses_eta { r.default_noise.name() } else { "-" }
        );
    }
    println!("\n{:<20} artists' name", "--schedule");
    for s in SigmaSchedule::ALL {
        println!("{:<20} {}", s.name(), s.display_name());
    }
    Ok(ExitCode::SUCCESS)
}
