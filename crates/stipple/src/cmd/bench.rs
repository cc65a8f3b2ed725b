//! `stipple bench`: the command-line front end of `stipple_bench`, which times a training
//! step, an inference forward and a 20-step sample of the benchmark U-Nets through the
//! library calls users run, with the same figures and JSON keys as the PyTorch twin
//! `bench/reference/unet_bench.py`.
//!
//! Every (preset, figure) pair runs in its own child process (this executable with the
//! hidden `--child PRESET:FIGURE`), so the peak memory of each figure is its own: VmHWM of
//! the child, read from `/proc/self/status` at its end.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use stipple_bench::{gemm_peak, measure, preset_config, Figure, Settings, FIGURES, PRESETS};

/// Time training, inference and sampling of the benchmark U-Nets (see docs/BENCHMARKS.md).
///
/// Each preset and figure runs in its own child process; the table goes to stdout, the
/// full results to --json.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Presets to run: bench-unet16, bench-unet32, bench-unet64, emoji16 [default: all four],
    /// or tiny (an 8×8 test network).
    #[arg(long, num_args = 1.., value_name = "NAME")]
    pub preset: Vec<String>,
    /// Figures to time: train, forward, sample [default: all].
    #[arg(long, num_args = 1.., value_name = "FIGURE")]
    pub figure: Vec<String>,
    /// Timed runs per figure (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Untimed runs before timing (for sample: single forward passes).
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Timed runs of the sample figure [default: --runs].
    #[arg(long)]
    pub sample_runs: Option<usize>,
    /// Threads for Stipple's kernels and the GEMMs (sets RAYON_NUM_THREADS; candle's
    /// element-wise ops run on the calling thread).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Device: cpu, or cuda / cuda:N (a build with `--features cuda`; every timed run ends
    /// with a device synchronisation; memory is still the host process's).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Print the presets' U-Net configs (diffusers `UNet2DModel` keys) as one JSON object
    /// `{preset: config}` and exit; `bench/run.sh` hands it to the PyTorch twin.
    #[arg(long)]
    pub print_configs: bool,
    #[arg(long, hide = true)]
    pub child: Option<String>,
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.runs == 0 || args.threads == 0 || args.sample_runs == Some(0) {
        bail!("--runs, --sample-runs and --threads must be at least 1");
    }
    // candle (`utils::get_num_threads`) and the rayon pool both read this; no rayon thread
    // exists yet.
    std::env::set_var("RAYON_NUM_THREADS", args.threads.to_string());
    let sample_runs = args.sample_runs.unwrap_or(args.runs);
    let settings = Settings { runs: args.runs, warmup: args.warmup, sample_runs };
    if let Some(spec) = &args.child {
        let (preset, figure) = spec.split_once(':').context("--child takes PRESET:FIGURE")?;
        let device = stipple_pipeline::device(&args.device)?;
        let record = measure(preset, figure.parse()?, &settings, &device)?;
        println!("{}", serde_json::to_string(&record)?);
        return Ok(ExitCode::SUCCESS);
    }
    let presets: Vec<String> =
        if args.preset.is_empty() { PRESETS.iter().map(|s| s.to_string()).collect() } else { args.preset.clone() };
    let figures: Vec<String> =
        if args.figure.is_empty() { FIGURES.iter().map(|s| s.to_string()).collect() } else { args.figure.clone() };
    let mut configs = serde_json::Map::new();
    for p in &presets {
        configs.insert(p.clone(), serde_json::to_value(preset_config(p)?)?);
    }
    if args.print_configs {
        println!("{}", serde_json::to_string_pretty(&Value::Object(configs))?);
        return Ok(ExitCode::SUCCESS);
    }
    for f in &figures {
        f.parse::<Figure>()?;
    }
    let on_cpu = stipple_pipeline::device(&args.device)?.is_cpu();
    let exe = std::env::current_exe().context("cannot find the stipple executable")?;
    let mut rows = Vec::new();
    for preset in &presets {
        let mut row = serde_json::Map::new();
        row.insert("preset".into(), json!(preset));
        for figure in &figures {
            let output = Command::new(&exe)
                .args(["bench", "--child", &format!("{preset}:{figure}")])
                .args(["--runs", &args.runs.to_string(), "--warmup", &args.warmup.to_string()])
                .args(["--sample-runs", &sample_runs.to_string(), "--threads", &args.threads.to_string()])
                .args(["--device", &args.device])
                .env("RAYON_NUM_THREADS", args.threads.to_string())
                .stderr(Stdio::inherit())
                .output()
                .context("cannot start the benchmark child process")?;
            if !output.status.success() {
                bail!("benchmark {preset}:{figure} failed ({})", output.status);
            }
            let text = String::from_utf8_lossy(&output.stdout);
            let mut res: Value = serde_json::from_str(text.trim().lines().last().unwrap_or(""))
                .with_context(|| format!("benchmark {preset}:{figure} printed no JSON: {text}"))?;
            let obj = res.as_object_mut().context("child result is not an object")?;
            for k in ["parameters", "image_size", "forward_gflop_per_image"] {
                if let Some(v) = obj.remove(k) {
                    row.insert(k.into(), v);
                }
            }
            obj.remove("preset");
            obj.remove("figure");
            eprintln!(
                "{preset:>13} {figure:>8}: median {:.3} s ({:.1} GFLOP/s, peak {:.0} MiB)",
                res["median_s"].as_f64().unwrap_or(f64::NAN),
                res["gflops"].as_f64().unwrap_or(f64::NAN),
                res["peak_rss_mib"].as_f64().unwrap_or(f64::NAN)
            );
            row.insert(figure.clone(), res);
        }
        rows.push(Value::Object(row));
    }
    let report = json!({
        "tool": "stipple",
        "versions": {"stipple": env!("CARGO_PKG_VERSION"), "candle": "0.11"},
        "threads": args.threads,
        "device": args.device,
        "runs": args.runs,
        "sample_runs": sample_runs,
        "warmup": args.warmup,
        "peak_memory": "VmHWM of one child process per (preset, figure)",
        "gemm_peak": if on_cpu { serde_json::to_value(gemm_peak(args.threads))? } else { Value::Null },
        "presets": rows,
    });
    print_table(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(r: &Value) {
    println!(
        "stipple on {}: {} threads, median of {} runs ({} for sample) after {} warm-up; CPU GEMM peak {:.1} GFLOP/s",
        r["device"].as_str().unwrap_or("?"),
        r["threads"],
        r["runs"],
        r["sample_runs"],
        r["warmup"],
        r["gemm_peak"]["best_gflops"].as_f64().unwrap_or(f64::NAN)
    );
    println!("{:<13} {:>10} {:<8} {:>5} {:>9} {:>8} {:>9}", "preset", "params", "figure", "batch", "median s", "GFLOP/s", "peak MiB");
    for row in r["presets"].as_array().into_iter().flatten() {
        for fig in FIGURES {
            let f = &row[*fig];
            if f.is_null() {
                continue;
            }
            println!(
                "{:<13} {:>10} {:<8} {:>5} {:>9.3} {:>8.1} {:>9.0}",
                row["preset"].as_str().unwrap_or("?"),
                row["parameters"].as_u64().unwrap_or(0),
                fig,
                f["batch"].as_u64().unwrap_or(0),
                f["median_s"].as_f64().unwrap_or(f64::NAN),
                f["gflops"].as_f64().unwrap_or(f64::NAN),
                f["peak_rss_mib"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
}
