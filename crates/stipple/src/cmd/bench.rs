//! `stipple bench`: time a training step, an inference forward and a 20-step sample of the
//! benchmark U-Nets, with the same figures and JSON keys as the PyTorch twin
//! `bench/reference/unet_bench.py`.
//!
//! Every (preset, figure) pair runs in its own child process (this executable with the
//! hidden `--child PRESET:FIGURE`), so the peak memory of each figure is its own: VmHWM of
//! the child, read from `/proc/self/status` at its end.
//!
//! - train: batch 32, `x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε` (DDPM linear β, t ~ U{0…999}),
//!   loss = MSE(UNet2D::forward_train(x_t, t), ε) (dropout as configured), `loss.backward()`,
//!   then one update of the trainer's own optimizer, `stipple_train::AdamW` (lr 2e-4,
//!   β (0.9, 0.999), ε 1e-8, weight decay 0; its fused in-place kernel on the CPU).
//! - forward: batch 16, `UNet2D::forward` on plain (non-variable) weights, so no graph is kept.
//! - sample: what `stipple_pipeline::generate` does for one batch — seeded noise
//!   (`SeededNoise`), `stipple_sample::sample` with DPM++ 2M over Karras σ of the DDPM
//!   schedule, 20 steps, through `stipple_nn::denoiser` — for 16 images in one batch;
//!   warm-up = `--warmup` single forwards (not whole samples).
//!
//! FLOPs are counted analytically from the parameter shapes of the built network
//! ([`forward_flops`]); a training step counts 3× its forward.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use serde_json::{json, Value};
use stipple_math::SigmaSchedule;
use stipple_nn::{denoiser, num_parameters, DiffusionConfig, TensorLatent, UNet2D, UNetConfig};
use stipple_pipeline::SeededNoise;
use stipple_sample::{sample, NoiseKind, SamplerKind, SamplerOptions};
use stipple_train::{AdamW, AdamWConfig};

/// Names accepted by `--preset`, in the default order.
pub const PRESETS: &[&str] = &["bench-unet16", "bench-unet32", "bench-unet64", "emoji16"];
/// The three figures, in order.
pub const FIGURES: &[&str] = &["train", "forward", "sample"];
const TRAIN_BATCH: usize = 32;
const INFER_BATCH: usize = 16;
const SAMPLE_STEPS: usize = 20;
const T_TRAIN: usize = 1000;

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
    let on_cpu = cuda_ordinal(&args.device)?.is_none();
    if let Some(spec) = &args.child {
        let (preset, figure) = spec.split_once(':').context("--child takes PRESET:FIGURE")?;
        let out = child(preset, figure, &args)?;
        println!("{out}");
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
        if !FIGURES.contains(&f.as_str()) {
            bail!("unknown figure {f:?}; known: {}", FIGURES.join(", "));
        }
    }
    let sample_runs = args.sample_runs.unwrap_or(args.runs);
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
        "gemm_peak": if on_cpu { gemm_peak(args.threads) } else { Value::Null },
        "presets": rows,
    });
    print_table(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The network of a preset name.
pub fn preset_config(name: &str) -> anyhow::Result<UNetConfig> {
    let bench = |size| UNetConfig { sample_size: Some(size), ..UNetConfig::bench_unet32() };
    Ok(match name {
        "bench-unet16" => bench(16),
        "bench-unet32" => bench(32),
        "bench-unet64" => bench(64),
        "emoji16" => UNetConfig::emoji16(),
        // Not in the default list: the test preset (8×8, 45,259 parameters).
        "tiny" => UNetConfig::tiny(),
        _ => bail!("unknown preset {name:?}; known: {}", PRESETS.join(", ")),
    })
}

/// FLOPs of one forward pass of one image (2 per multiply-add), from the parameter shapes:
/// a k×k convolution with `cout × cin` weights producing an `r × r` map costs
/// `2·cout·cin·k²·r²`; a linear `in → out` on `rows` rows costs `2·in·out·rows` (rows = 1
/// for the time-embedding MLP and each ResBlock's `time_emb_proj`, `L = r²` tokens inside an
/// attention); each attention adds `4·L²·C` for `QKᵀ` and the weighted sum of `V`.
/// Norms, activations, biases and element-wise ops are not counted.
pub fn forward_flops(cfg: &UNetConfig) -> anyhow::Result<u64> {
    let s = cfg.sample_size.context("preset has no sample_size")? as u64;
    let n = cfg.block_out_channels.len() as u64;
    let mut total = 0u64;
    for (name, dims) in UNet2D::parameter_shapes(cfg)? {
        let parts: Vec<&str> = name.split('.').collect();
        // Side of the feature map this parameter's layer works at.
        let level = |i: &str| i.parse::<u64>().unwrap_or(0);
        let r = match parts[0] {
            "down_blocks" if parts[2] == "downsamplers" => s >> (level(parts[1]) + 1),
            "down_blocks" => s >> level(parts[1]),
            "mid_block" => s >> (n - 1),
            "up_blocks" if parts[2] == "upsamplers" => s >> (n - 2 - level(parts[1])),
            "up_blocks" => s >> (n - 1 - level(parts[1])),
            _ => s,
        };
        let last = *parts.last().unwrap_or(&"");
        if last != "weight" {
            continue;
        }
        let layer = parts[parts.len() - 2];
        match *dims.as_slice() {
            [cout, cin, kh, kw] => total += 2 * (cout * cin * kh * kw) as u64 * r * r,
            [out, inp] if parts[0] != "class_embedding" => {
                let in_attention = parts.contains(&"attentions");
                let rows = if in_attention { r * r } else { 1 };
                total += 2 * (out * inp) as u64 * rows;
                if in_attention && layer == "to_q" {
                    total += 4 * (r * r) * (r * r) * out as u64;
                }
            }
            _ => {}
        }
    }
    Ok(total)
}

/// `key` of `/proc/self/status` (VmHWM: peak resident set, VmRSS: current), MiB.
fn rss_mib(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// `warmup` untimed calls of `warm`, then `runs` timed calls of `f`; seconds per call.
fn timed(
    runs: usize,
    warmup: usize,
    mut warm: impl FnMut() -> anyhow::Result<()>,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<f64>> {
    for _ in 0..warmup {
        warm()?;
    }
    (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            f()?;
            Ok(t0.elapsed().as_secs_f64())
        })
        .collect()
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// A small deterministic generator (SplitMix64) for the training timesteps.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// One figure of one preset, in this process; returns its JSON record.
/// The CUDA ordinal of `--device` (`cuda` is `cuda:0`), none for `cpu`.
fn cuda_ordinal(name: &str) -> anyhow::Result<Option<usize>> {
    match name.split_once(':') {
        None if name == "cpu" => Ok(None),
        None if name == "cuda" => Ok(Some(0)),
        Some(("cuda", n)) => Ok(Some(n.parse().with_context(|| format!("--device {name:?}: bad ordinal"))?)),
        _ => bail!("--device {name:?}: expected cpu, cuda or cuda:N"),
    }
}

fn device(name: &str) -> anyhow::Result<Device> {
    Ok(match cuda_ordinal(name)? {
        None => Device::Cpu,
        Some(n) => Device::new_cuda(n)?,
    })
}

fn child(preset: &str, figure: &str, args: &BenchArgs) -> anyhow::Result<Value> {
    let cfg = preset_config(preset)?;
    let size = cfg.sample_size.context("preset has no sample_size")?;
    let dev = device(&args.device)?;
    let varmap = VarMap::new();
    let unet = UNet2D::new(VarBuilder::from_varmap(&varmap, DType::F32, &dev), &cfg)?;
    let parameters = num_parameters(&varmap);
    let fwd1 = forward_flops(&cfg)? as f64;
    let mut runs = args.runs;
    let mut extra = serde_json::Map::new();
    // Resident set after building the network, before the figure (the optimizer state and the
    // inference copy of the weights come after, as in the twin).
    let base_rss = rss_mib("VmRSS");
    let (batch, flops, times) = match figure {
        "train" => {
            let b = TRAIN_BATCH;
            let abar: Vec<f64> = DiffusionConfig::default()
                .schedule()
                .sigmas()
                .iter()
                .map(|s| 1.0 / (1.0 + s * s))
                .collect();
            let adamw = AdamWConfig { lr: 2e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 };
            let mut vars: Vec<(String, Var)> =
                varmap.data().lock().expect("var map").iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            vars.sort_by(|a, b| a.0.cmp(&b.0));
            let mut opt = AdamW::new(vars, adamw)?;
            let mut rng = SplitMix(1);
            let mut step = || -> anyhow::Result<()> {
                let shape = (b, cfg.in_channels, size, size);
                let x0 = Tensor::randn(0f32, 1f32, shape, &dev)?.clamp(-1f32, 1f32)?;
                let eps = Tensor::randn(0f32, 1f32, shape, &dev)?;
                let t: Vec<usize> = (0..b).map(|_| (rng.next() % T_TRAIN as u64) as usize).collect();
                let col = |f: &dyn Fn(f64) -> f64| {
                    Tensor::from_vec(t.iter().map(|&i| f(abar[i]) as f32).collect::<Vec<_>>(), (b, 1, 1, 1), &dev)
                };
                let x = (x0.broadcast_mul(&col(&|a| a.sqrt())?)? + eps.broadcast_mul(&col(&|a| (1.0 - a).sqrt())?)?)?;
                let ts = Tensor::from_vec(t.iter().map(|&i| i as f32).collect::<Vec<_>>(), b, &dev)?;
                let out = unet.forward_train(&x, &ts, &Default::default(), rng.next())?;
                let loss = (out - &eps)?.sqr()?.mean_all()?;
                let grads = loss.backward()?;
                opt.step(&grads, adamw.lr, 1.0)?;
                Ok(dev.synchronize()?)
            };
            // One closure serves as warm-up and timed run (`timed` would need two borrows).
            for _ in 0..args.warmup {
                step()?;
            }
            let mut times = Vec::with_capacity(args.runs);
            for _ in 0..args.runs {
                let t0 = Instant::now();
                step()?;
                times.push(t0.elapsed().as_secs_f64());
            }
            extra.insert("optimizer".into(), json!("stipple_train::AdamW (lr 2e-4, weight_decay 0)"));
            (b, 3.0 * fwd1 * b as f64, times)
        }
        "forward" | "sample" => {
            // Plain tensors: inference keeps no autograd graph, as with a loaded model file.
            let tensors: HashMap<String, Tensor> = varmap
                .data()
                .lock()
                .map_err(|_| anyhow::anyhow!("varmap lock poisoned"))?
                .iter()
                .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
                .collect();
            drop(unet);
            let frozen = UNet2D::new(VarBuilder::from_tensors(tensors, DType::F32, &dev), &cfg)?;
            drop(varmap);
            let b = INFER_BATCH;
            let x = Tensor::randn(0f32, 1f32, (b, cfg.in_channels, size, size), &dev)?;
            let t = Tensor::full(500f32, b, &dev)?;
            let fwd = || -> anyhow::Result<()> {
                frozen.forward(&x, &t, None)?;
                Ok(dev.synchronize()?)
            };
            if figure == "forward" {
                (b, fwd1 * b as f64, timed(args.runs, args.warmup, fwd, fwd)?)
            } else {
                runs = args.sample_runs.unwrap_or(args.runs);
                // The pieces `stipple_pipeline::generate` chains, called directly: Karras σ's of
                // the training schedule, seeded starting noise, the ε-prediction denoiser.
                let diffusion = DiffusionConfig::default();
                let sigmas = SigmaSchedule::Karras
                    .build(&diffusion.schedule(), SAMPLE_STEPS, 0)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let kind: SamplerKind = "dpmpp_2m".parse().map_err(|e| anyhow::anyhow!("{e}"))?;
                let per_image = [cfg.in_channels, size, size];
                let smp = || -> anyhow::Result<()> {
                    let mut noise = SeededNoise::new(0..b as u64, NoiseKind::Independent, &dev);
                    let x = TensorLatent((noise.draw(&per_image)? * sigmas.as_slice()[0])?);
                    let mut d = denoiser(&frozen, &diffusion, None);
                    let x0 = sample(kind, &mut d, x, &sigmas, &SamplerOptions::default(), &mut noise, &mut ())?;
                    x0.0.clamp(-1f32, 1f32)?;
                    Ok(dev.synchronize()?)
                };
                extra.insert("steps".into(), json!(SAMPLE_STEPS));
                extra.insert("sampler".into(), json!("dpmpp_2m"));
                extra.insert("schedule".into(), json!("karras"));
                (b, SAMPLE_STEPS as f64 * fwd1 * b as f64, timed(runs, args.warmup, fwd, smp)?)
            }
        }
        _ => bail!("unknown figure {figure:?}; known: {}", FIGURES.join(", ")),
    };
    let med = median(&times);
    let mut out = json!({
        "preset": preset,
        "figure": figure,
        "parameters": parameters,
        "image_size": size,
        "forward_gflop_per_image": fwd1 / 1e9,
        "batch": batch,
        "runs": runs,
        "warmup": args.warmup,
        "times_s": times,
        "median_s": med,
        "gflop": flops / 1e9,
        "gflops": flops / 1e9 / med,
        "peak_rss_mib": rss_mib("VmHWM"),
        "base_rss_mib": base_rss,
    });
    out.as_object_mut().expect("object").extend(extra);
    Ok(out)
}

/// Best and median GFLOP/s of an `n × n × n` f32 GEMM with the `gemm` crate (the GEMM of
/// candle's CPU matmul and of `stipple_nn::ops::conv2d`) on `threads` threads.
fn gemm_peak(threads: usize) -> Value {
    let n = 2048usize;
    let runs = 5;
    let a: Vec<f32> = (0..n * n).map(|i| ((i % 97) as f32 - 48.0) / 97.0).collect();
    let b: Vec<f32> = (0..n * n).map(|i| ((i % 89) as f32 - 44.0) / 89.0).collect();
    let mut c = vec![0f32; n * n];
    let par = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    let mut once = || {
        let t0 = Instant::now();
        // SAFETY: a, b and c are n×n row-major buffers (column stride 1, row stride n) that
        // outlive the call; c does not alias a or b.
        unsafe {
            gemm::gemm(
                n,
                n,
                n,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                n as isize,
                b.as_ptr(),
                1,
                n as isize,
                0f32,
                1f32,
                false,
                false,
                false,
                par,
            )
        };
        t0.elapsed().as_secs_f64()
    };
    once();
    let times: Vec<f64> = (0..runs).map(|_| once()).collect();
    let flop = 2.0 * (n * n * n) as f64;
    let best = times.iter().cloned().fold(f64::INFINITY, f64::min);
    json!({
        "n": n,
        "runs": runs,
        "best_gflops": flop / best / 1e9,
        "median_gflops": flop / median(&times) / 1e9,
        "implementation": "gemm crate 0.19 (f32)",
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The analytic count equals the one the PyTorch twin gets from forward hooks on
    /// diffusers' UNet2DModel (printed by `bench/reference/unet_bench.py`).
    #[test]
    fn forward_flops_match_the_pytorch_hook_count() {
        assert_eq!(forward_flops(&preset_config("bench-unet32").unwrap()).unwrap(), 2_839_347_200);
        assert_eq!(forward_flops(&preset_config("tiny").unwrap()).unwrap(), 2_122_752);
    }

    #[test]
    fn device_names_are_cpu_cuda_or_cuda_with_an_ordinal() {
        assert_eq!(cuda_ordinal("cpu").unwrap(), None);
        assert_eq!(cuda_ordinal("cuda").unwrap(), Some(0));
        assert_eq!(cuda_ordinal("cuda:1").unwrap(), Some(1));
        for bad in ["gpu", "cuda:x", "cpu:0"] {
            let msg = cuda_ordinal(bad).unwrap_err().to_string();
            assert!(msg.contains("cuda") && msg.contains(bad), "{msg}");
        }
    }

    #[test]
    fn unknown_preset_lists_the_known_ones() {
        let msg = preset_config("unet32").unwrap_err().to_string();
        assert!(PRESETS.iter().all(|p| msg.contains(p)), "{msg}");
    }
}
