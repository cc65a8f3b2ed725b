//! Stipple's side of `bench/sd.sh`: times Stable Diffusion's components at the released
//! architectures (the `config.json` files under `bench/sd/`) with seeded random weights
//! (`stipple_nn::init::seeded_var_builder`, held as plain tensors as a loaded checkpoint's are;
//! the timings do not depend on the values), one figure per process so that its peak resident
//! set is that figure's.
//!
//! Figures (the PyTorch twin, `bench/reference/sd_bench.py`, runs the same ones):
//! - `unet`: one U-Net call on `(batch, 4, latent, latent)` latents with 77 text tokens (SDXL:
//!   with its pooled embedding and size conditioning);
//! - `vae`: the autoencoder's decoder on one `(1, 4, latent, latent)` latent;
//! - `image`: a whole guided image: the text encoder on 2 × 77 token ids (prompt and negative
//!   prompt), `steps` Euler steps over diffusers' "linspace" σ (each one U-Net call at batch
//!   2), and the decode of the result;
//! - `gemm`: the GEMM peak, the best of 5 f32 2048×2048×2048 products (candle's matmul, which
//!   every linear layer runs through).
//!
//! Usage: `cargo run -p stipple-sd --example sd_bench -- --configs bench/sd/sd15
//! --figure unet [--latent 64] [--batch 2] [--steps 20] [--runs 3] [--warmup 1] [--json FILE]`.
//! Threads: `RAYON_NUM_THREADS` (Stipple's kernels and the GEMMs; candle's own pool follows it),
//! as `bench/sd.sh` sets it; the rest as the `stipple` binary sets it
//! (`stipple_nn::process::configure`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde_json::{json, Value};
use stipple_math::Prediction;
use stipple_nn::init::seeded_var_builder;
use stipple_nn::text::{TextEncoder, TextEncoderConfig};
use stipple_nn::TensorLatent;
use stipple_sample::{euler, samplers::Churn, SigmaSchedule};
use stipple_sd::{AddedCond, AutoencoderKL, AutoencoderKLConfig, SchedulerConfig, SdDenoiser, UNet2DConditionConfig, UNet2DConditionModel};

type BoxResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The guidance scale of the `image` figure (any value other than 1 runs both branches).
const GUIDANCE: f64 = 7.5;
/// The U-Net's timestep in the `unet` figure.
const TIMESTEP: f32 = 500.0;

struct Args {
    configs: PathBuf,
    figure: String,
    latent: usize,
    batch: usize,
    steps: usize,
    runs: usize,
    warmup: usize,
    json: Option<PathBuf>,
}

fn parse_args() -> BoxResult<Args> {
    let mut a = Args {
        configs: PathBuf::from("bench/sd/sd15"),
        figure: "unet".into(),
        latent: 64,
        batch: 2,
        steps: 20,
        runs: 3,
        warmup: 1,
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--configs" => a.configs = value()?.into(),
            "--figure" => a.figure = value()?,
            "--latent" => a.latent = value()?.parse()?,
            "--batch" => a.batch = value()?.parse()?,
            "--steps" => a.steps = value()?.parse()?,
            "--runs" => a.runs = value()?.parse()?,
            "--warmup" => a.warmup = value()?.parse()?,
            "--json" => a.json = Some(value()?.into()),
            other => return Err(format!("unknown argument {other} (see the example's documentation)").into()),
        }
    }
    Ok(a)
}

/// VmHWM (peak) or VmRSS (current) of this process, MiB.
fn rss_mib(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn read(dir: &Path, name: &str) -> BoxResult<String> {
    let path = dir.join(name);
    std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// Seconds of each of `runs` calls of `run`, after `warmup` calls of `warm`.
fn timed(runs: usize, warmup: usize, mut warm: impl FnMut() -> BoxResult<()>, mut run: impl FnMut() -> BoxResult<()>) -> BoxResult<Vec<f64>> {
    for _ in 0..warmup {
        warm()?;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        run()?;
        times.push(t0.elapsed().as_secs_f64());
    }
    Ok(times)
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The released token framing: begin-of-text, a few word ids, end-of-text padded to 77.
fn token_ids(batch: usize, device: &Device) -> candle_core::Result<Tensor> {
    let (bos, eos, len) = (49406u32, 49407u32, 77);
    let mut ids = Vec::with_capacity(batch * len);
    for b in 0..batch as u32 {
        let words: Vec<u32> = (0..8).map(|i| 320 + 97 * b + 13 * i).collect();
        ids.push(bos);
        ids.extend(&words);
        ids.extend(std::iter::repeat_n(eos, len - 1 - words.len()));
    }
    Tensor::from_vec(ids, (batch, len), device)
}

/// Builds a network twice: once from seeded random draws (`build(vb)` creating every variable
/// in a varmap), then from those values as plain tensors, as a loaded checkpoint holds them
/// (variables would make the layers keep to their autograd paths). Returns the second network
/// and its parameter count.
fn with_random_weights<N>(seed: u64, device: &Device, build: impl Fn(VarBuilder) -> candle_core::Result<N>) -> BoxResult<(N, usize)> {
    let vars = VarMap::new();
    build(seeded_var_builder(&vars, seed, device))?;
    let tensors: HashMap<String, Tensor> =
        vars.data().lock().map_err(|e| e.to_string())?.iter().map(|(k, v)| (k.clone(), v.as_tensor().detach())).collect();
    let count = tensors.values().map(Tensor::elem_count).sum();
    Ok((build(VarBuilder::from_tensors(tensors, DType::F32, device))?, count))
}

fn unet(dir: &Path, device: &Device) -> BoxResult<(UNet2DConditionModel, usize)> {
    let cfg = UNet2DConditionConfig::from_json(&read(dir, "unet.json")?)?;
    with_random_weights(1, device, |vb| UNet2DConditionModel::new(vb, &cfg))
}

fn vae(dir: &Path, device: &Device) -> BoxResult<(AutoencoderKL, usize)> {
    let cfg = AutoencoderKLConfig::from_json(&read(dir, "vae.json")?)?;
    with_random_weights(2, device, |vb| AutoencoderKL::new(vb, &cfg))
}

fn text_encoder(dir: &Path, device: &Device) -> BoxResult<(TextEncoder, usize)> {
    let cfg = TextEncoderConfig::from_hf_json(&read(dir, "text_encoder.json")?)?;
    with_random_weights(3, device, |vb| TextEncoder::new(vb, &cfg))
}

fn figure_unet(a: &Args, device: &Device) -> BoxResult<Value> {
    let (net, params) = unet(&a.configs, device)?;
    let cfg = net.config().clone();
    let base = rss_mib("VmRSS");
    let b = a.batch;
    let x = Tensor::randn(0f32, 1f32, (b, cfg.in_channels, a.latent, a.latent), device)?;
    let t = Tensor::full(TIMESTEP, b, device)?;
    let ctx = Tensor::randn(0f32, 1f32, (b, 77, cfg.cross_attention_dim), device)?;
    let added = match cfg.projection_class_embeddings_input_dim.filter(|_| cfg.has_text_time()) {
        Some(dim) => {
            let pooled = dim - 6 * cfg.addition_time_embed_dim.unwrap_or(0);
            let side = (8 * a.latent) as f32;
            let ids = [side, side, 0.0, 0.0, side, side].repeat(b);
            Some(AddedCond {
                text_embeds: Tensor::randn(0f32, 1f32, (b, pooled), device)?,
                time_ids: Tensor::from_vec(ids, (b, 6), device)?,
            })
        }
        None => None,
    };
    let call = || -> BoxResult<()> {
        net.forward_added(&x, &t, &ctx, added.as_ref())?;
        Ok(())
    };
    let times = timed(a.runs, a.warmup, call, call)?;
    Ok(json!({ "base_rss_mib": base, "times_s": times, "parameters": params }))
}

fn figure_vae(a: &Args, device: &Device) -> BoxResult<Value> {
    let (net, params) = vae(&a.configs, device)?;
    let base = rss_mib("VmRSS");
    let z = Tensor::randn(0f32, 1f32, (1, net.config().latent_channels, a.latent, a.latent), device)?;
    let run = || -> BoxResult<()> {
        net.decode(&z)?;
        Ok(())
    };
    let times = timed(a.runs, a.warmup, run, run)?;
    Ok(json!({ "base_rss_mib": base, "times_s": times, "parameters": params }))
}

fn figure_image(a: &Args, device: &Device) -> BoxResult<Value> {
    let ((text, p_text), (net, p_unet), (ae, p_vae)) =
        (text_encoder(&a.configs, device)?, unet(&a.configs, device)?, vae(&a.configs, device)?);
    let base = rss_mib("VmRSS");
    let scheduler = SchedulerConfig::stable_diffusion(Prediction::Epsilon);
    let schedule = scheduler.schedule();
    let sigmas = SigmaSchedule::Linspace.build(&schedule, a.steps, 1)?;
    let ids = token_ids(2, device)?;
    let noise = Tensor::randn(0f32, 1f32, (1, net.config().in_channels, a.latent, a.latent), device)?;
    let image = || -> BoxResult<()> {
        let states = text.forward(&ids)?;
        let (cond, uncond) = (states.narrow(0, 0, 1)?, states.narrow(0, 1, 1)?);
        let mut d = SdDenoiser::new(&net, schedule.clone(), Prediction::Epsilon, cond.into(), Some(uncond.into()), GUIDANCE, 8);
        let x = TensorLatent((&noise * sigmas.first())?);
        let z = euler(&mut d, x, &sigmas, &Churn::NONE, &mut (), &mut ())?;
        let img = ae.decode(&(z.0 / ae.scaling_factor())?)?;
        ((img / 2.0)? + 0.5)?.clamp(0f32, 1f32)?;
        Ok(())
    };
    // Warm-up: one call of each network (a whole image is minutes).
    let warm = || -> BoxResult<()> {
        let states = text.forward(&ids)?;
        let x = Tensor::cat(&[&noise, &noise], 0)?;
        net.forward(&x, &Tensor::full(TIMESTEP, 2, device)?, &states)?;
        ae.decode(&noise)?;
        Ok(())
    };
    let times = timed(a.runs, a.warmup, warm, image)?;
    Ok(json!({ "base_rss_mib": base, "times_s": times, "parameters": p_text + p_unet + p_vae, "steps": a.steps, "sampler": "euler", "schedule": "linspace", "guidance": GUIDANCE }))
}

fn figure_gemm(a: &Args, device: &Device) -> BoxResult<Value> {
    let n = 2048;
    let x = Tensor::randn(0f32, 1f32, (n, n), device)?;
    let y = Tensor::randn(0f32, 1f32, (n, n), device)?;
    let run = || -> BoxResult<()> {
        x.matmul(&y)?;
        Ok(())
    };
    let times = timed(a.runs.max(5), 1, run, run)?;
    let flop = 2.0 * (n as f64).powi(3);
    let best = times.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(json!({
        "times_s": times,
        "gemm_peak": { "n": n, "best_gflops": flop / best / 1e9, "median_gflops": flop / median(&times) / 1e9,
                       "implementation": "candle matmul (gemm crate, f32)" },
    }))
}

fn main() -> BoxResult<()> {
    stipple_nn::process::configure();
    // On rayon's workers, as the `stipple` binary computes.
    stipple_nn::process::on_workers(run)
}

fn run() -> BoxResult<()> {
    let a = parse_args()?;
    let device = Device::Cpu;
    let mut out = match a.figure.as_str() {
        "unet" => figure_unet(&a, &device)?,
        "vae" => figure_vae(&a, &device)?,
        "image" => figure_image(&a, &device)?,
        "gemm" => figure_gemm(&a, &device)?,
        f => return Err(format!("unknown figure {f:?}: unet, vae, image or gemm").into()),
    };
    let times: Vec<f64> = serde_json::from_value(out["times_s"].clone())?;
    let model = a.configs.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let fields = json!({
        "side": "stipple",
        "model": model,
        "figure": a.figure,
        "latent": a.latent,
        "batch": if a.figure == "unet" { a.batch } else { 1 },
        "runs": a.runs,
        "warmup": a.warmup,
        "median_s": median(&times),
        "peak_rss_mib": rss_mib("VmHWM"),
        "threads": std::env::var("RAYON_NUM_THREADS").ok(),
        "dtype": format!("{:?}", DType::F32),
    });
    if let (Value::Object(o), Value::Object(f)) = (&mut out, fields) {
        o.extend(f);
    }
    let text = serde_json::to_string_pretty(&out)?;
    match &a.json {
        Some(path) => std::fs::write(path, text + "\n")?,
        None => println!("{text}"),
    }
    Ok(())
}
