//! The training loop: data → objective → AdamW → EMA, with checkpoints, sample grids, the
//! dashboard (JSON lines, TensorBoard events, loss plot) and progress bars.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use image::DynamicImage;
use stipple_nn::text::{read_clip_folder, PromptTokenizer, TextEncoder};
use stipple_nn::{model_from_tensors, save_model_file, UNet2D, UNetCond, TEXT_ENCODER_PREFIX};
use stipple_pipeline::{generate, grid, grid_columns, to_images, write_images, GenerateRequest};

use crate::checkpoint::{find_checkpoint, load_checkpoint, save_checkpoint, RunState, CHECKPOINT_VERSION};
use crate::dashboard::{Dashboard, StepStats};
use crate::data::{csv_column, embedded_column, embedded_emoji, load_folder, load_labels, ImageSet};
use crate::ema::{ema_decay, Ema};
use crate::init::named_vars;
use stipple_nn::init::seeded_var_builder;
use crate::objective::{diffusion_loss, drop_conditions, NoiseDraw};
use crate::optim::{warmup_lr, AdamW};
use crate::order::{batch_indices, step_rng};
use crate::progress::{sampling_bar, steps_bar};
use crate::{DataSource, TrainConfig, TrainError};

/// How to run (not part of the run's identity).
pub struct TrainOptions {
    /// Run folder: checkpoint, model file, sample grids, log.
    pub run: PathBuf,
    /// Continue the checkpoint in `run` (its saved config wins, but for `steps`).
    pub resume: bool,
    pub device: Device,
    /// Set (e.g. by Ctrl-C) to stop after the current step with a checkpoint.
    pub stop: Arc<AtomicBool>,
    /// Show progress bars (data loading, steps, sample grids).
    pub progress: bool,
}

/// What a run did.
#[derive(Debug)]
pub struct TrainOutcome {
    /// Step reached (total, including earlier sessions).
    pub step: usize,
    /// Steps taken in this session.
    pub steps_this_session: usize,
    /// Seconds spent in optimisation steps this session (without sampling and saving).
    pub train_seconds: f64,
    /// Wall-clock seconds of the whole session.
    pub wall_seconds: f64,
    /// Whether a stop request ended the run early.
    pub interrupted: bool,
    pub model_file: PathBuf,
    pub latest_grid: Option<PathBuf>,
    /// Images that could not be read and were skipped.
    pub skipped_images: Vec<(PathBuf, String)>,
    pub last_loss: Option<f64>,
}

/// Path of the stand-alone model file (EMA weights + config) inside a run folder.
pub fn model_file(run: &Path) -> PathBuf {
    run.join(stipple_pipeline::RUN_MODEL_FILE)
}

fn load_data(cfg: &TrainConfig, progress: bool) -> Result<(ImageSet, Vec<(PathBuf, String)>), TrainError> {
    let size = cfg.model.image_size();
    Ok(match &cfg.data {
        DataSource::EmbeddedEmoji => (embedded_emoji(size, cfg.color)?, vec![]),
        DataSource::Folder(dir) => {
            let (set, report) = load_folder(dir, size, cfg.color, progress)?;
            (set, report.skipped)
        }
    })
}

/// Trains `config` (ignored when resuming, but for `steps`) in `opts.run`.
pub fn train(config: TrainConfig, opts: &TrainOptions) -> Result<TrainOutcome, TrainError> {
    let wall = Instant::now();
    let device = &opts.device;
    let checkpoint = if opts.resume {
        Some(load_checkpoint(&opts.run, device)?)
    } else {
        if find_checkpoint(&opts.run).is_some() {
            return Err(TrainError::RunExists(opts.run.clone()));
        }
        None
    };
    let mut cfg = match &checkpoint {
        Some(ck) => TrainConfig { steps: config.steps, ..ck.config.clone() },
        None => config,
    };
    cfg.validate()?;
    let (data, skipped) = load_data(&cfg, opts.progress)?;
    let labels = match &cfg.data {
        DataSource::Folder(dir) => load_labels(dir, &data.names, &cfg.labels)?,
        DataSource::EmbeddedEmoji => None,
    };
    if let Some(l) = &labels {
        if checkpoint.is_some() && cfg.model.classes != l.classes {
            return Err(TrainError::Config(format!(
                "the data's classes ({}) differ from the checkpoint's ({})",
                l.classes.join(", "),
                cfg.model.classes.join(", ")
            )));
        }
        cfg.model.classes = l.classes.clone();
        cfg.model.unet.num_class_embeds = Some(l.classes.len() + 1);
        cfg.validate()?;
    }
    let captions = match (&cfg.captions, &cfg.data) {
        (None, _) => None,
        (Some(col), DataSource::Folder(dir)) => Some(csv_column(dir, &data.names, col)?),
        (Some(col), DataSource::EmbeddedEmoji) => Some(embedded_column(col)?),
    };
    // A new run on a pretrained text encoder takes its tokenizer and weights from the folder.
    let pretrained = match (&cfg.pretrained_text_encoder, &checkpoint) {
        (Some(dir), None) => Some(read_clip_folder(dir, device)?),
        _ => None,
    };
    let tokenizer = match (&captions, &cfg.model.text_encoder, &pretrained) {
        (Some(_), Some(_), Some(clip)) => Some(clip.tokenizer.clone()),
        (Some(caps), Some(tc), None) => Some(run_tokenizer(caps, tc.vocab_size, checkpoint.as_ref().and_then(|ck| ck.tokenizer.as_deref()))?),
        _ => None,
    };
    std::fs::create_dir_all(&opts.run).map_err(|e| TrainError::Io { path: opts.run.clone(), reason: e.to_string() })?;

    let varmap = VarMap::new();
    let unet = UNet2D::new(seeded_var_builder(&varmap, cfg.seed, device), &cfg.model.unet)?;
    let text = match (&cfg.model.text_encoder, &tokenizer) {
        (Some(tc), Some(tok)) => {
            let encoder = TextEncoder::new(seeded_var_builder(&varmap, cfg.seed, device).pp(TEXT_ENCODER_PREFIX), tc)?;
            if let Some(clip) = &pretrained {
                let vars = varmap.data().lock().expect("varmap lock");
                for (name, t) in &clip.tensors {
                    let full = format!("{TEXT_ENCODER_PREFIX}.{name}");
                    let var = vars.get(&full).ok_or_else(|| TrainError::Config(format!("the text encoder has no {full}")))?;
                    var.set(&t.to_dtype(var.dtype())?)?;
                }
            }
            // Every caption is tokenized once, here: a caption that does not fit fails now, not
            // at the step that draws it.
            let caps = captions.as_deref().unwrap_or_default();
            let ids = caps
                .iter()
                .zip(&data.names)
                .map(|(c, name)| {
                    tok.encode(c, tc.max_position_embeddings).map_err(|e| {
                        TrainError::Config(format!("the caption of {name} does not fit the text encoder: {e}; raise --max-tokens (or --vocab-size)"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let empty = tok.encode("", tc.max_position_embeddings)?;
            Some((encoder, ids, empty))
        }
        _ => None,
    };
    let tokenizer_json = tokenizer.as_ref().map(PromptTokenizer::to_json).transpose()?;
    let vars = named_vars(&varmap);
    // A pretrained text encoder stays frozen: only the U-Net's variables are optimised.
    let text_prefix = format!("{TEXT_ENCODER_PREFIX}.");
    let trained: Vec<_> = vars
        .iter()
        .filter(|(n, _)| cfg.pretrained_text_encoder.is_none() || !n.starts_with(&text_prefix))
        .cloned()
        .collect();
    let mut opt = AdamW::new(trained, cfg.optimizer)?;
    let (ema, start) = match &checkpoint {
        Some(ck) => {
            for (name, var) in &vars {
                let w = ck.weights.get(name).ok_or_else(|| corrupt(&opts.run, format!("weights lack {name}")))?;
                if w.dims() != var.dims() {
                    return Err(corrupt(&opts.run, format!("weight {name} has shape {:?}, expected {:?}", w.dims(), var.dims())));
                }
                var.set(w)?;
            }
            opt.load_state(&ck.optimizer, ck.state.adam_t).map_err(|e| corrupt(&opts.run, e))?;
            (Ema::from_tensors(&vars, &ck.ema).map_err(|e| corrupt(&opts.run, e))?, ck.state.step)
        }
        None => (Ema::new(&vars)?, 0),
    };
    let mut ema = ema.freeze(|n| cfg.pretrained_text_encoder.is_some() && n.starts_with(&text_prefix));

    let schedule = cfg.model.diffusion.schedule();
    let (b, c, s) = (cfg.batch_size, data.channels, data.size);
    let smoother = checkpoint.as_ref().map(|ck| ck.state.loss_smoother.clone()).unwrap_or_default();
    let mut dashboard = Dashboard::open(&opts.run, smoother)?;
    let bar = steps_bar(opts.progress, start, cfg.steps);
    let mut outcome = TrainOutcome {
        step: start,
        steps_this_session: 0,
        train_seconds: 0.0,
        wall_seconds: 0.0,
        interrupted: false,
        model_file: model_file(&opts.run),
        latest_grid: None,
        skipped_images: skipped,
        last_loss: checkpoint.as_ref().and_then(|ck| ck.state.loss),
    };
    let mut saved_step = start;
    for step in start..cfg.steps {
        let t0 = Instant::now();
        let mut rng = step_rng(cfg.seed, step);
        let indices = batch_indices(cfg.seed, step, b, data.len());
        let flips: Vec<bool> = indices.iter().map(|_| cfg.random_flip && rand::Rng::random_bool(&mut rng, 0.5)).collect();
        let x0 = Tensor::from_vec(data.batch(&indices, &flips), (b, c, s, s), device)?;
        let draw = NoiseDraw::new(&mut rng, b, c * s * s, cfg.model.diffusion.num_train_timesteps);
        let mut cond = UNetCond::default();
        if let (Some(l), Some(null)) = (&labels, cfg.model.null_class()) {
            let batch_labels: Vec<u32> = indices.iter().map(|&i| l.per_image[i]).collect();
            let seen = drop_conditions(&mut rng, &batch_labels, &null, cfg.cond_dropout);
            cond.class_labels = Some(Tensor::from_vec(seen, b, device)?);
        }
        if let Some((encoder, ids, empty)) = &text {
            let batch_ids: Vec<&Vec<u32>> = indices.iter().map(|&i| &ids[i]).collect();
            let seen: Vec<u32> = drop_conditions(&mut rng, &batch_ids, &empty, cfg.cond_dropout).into_iter().flatten().copied().collect();
            let tokens = Tensor::from_vec(seen, (b, empty.len()), device)?;
            cond.encoder_hidden_states = Some(encoder.forward(&tokens)?);
        }
        let loss = diffusion_loss(&unet, &cfg, &schedule, &x0, &draw, &cond)?;
        let loss_value = loss.to_scalar::<f32>()? as f64;
        let grads = loss.backward()?;
        let grad_norm = opt.grad_norm(&grads)?;
        if !loss_value.is_finite() || !grad_norm.is_finite() {
            bar.abandon();
            let bad = if loss_value.is_finite() { grad_norm } else { loss_value };
            return Err(TrainError::NonFiniteLoss { step: step + 1, loss: bad, checkpoint_step: saved_step, run: opts.run.clone() });
        }
        let scale = if cfg.grad_clip > 0.0 && grad_norm > cfg.grad_clip { cfg.grad_clip / grad_norm } else { 1.0 };
        let lr = warmup_lr(cfg.optimizer.lr, cfg.warmup_steps, step);
        opt.step(&grads, lr, scale)?;
        let decay = ema_decay(cfg.ema_decay, step);
        ema.update(&vars, decay)?;
        let dt = t0.elapsed().as_secs_f64();
        outcome.train_seconds += dt;
        outcome.steps_this_session += 1;
        outcome.step = step + 1;
        outcome.last_loss = Some(loss_value);
        let stats = StepStats { step: step + 1, loss: loss_value, lr, grad_norm, ema_decay: decay, seconds: dt };
        let smoothed = dashboard.log_step(&stats)?;
        bar.set_message(format!("loss {smoothed:.4} (smoothed)"));
        bar.inc(1);

        let done = step + 1;
        let stop = opts.stop.load(Ordering::SeqCst);
        let last = done == cfg.steps;
        if stop || last || done % cfg.checkpoint_every == 0 {
            let state = RunState {
                checkpoint_version: CHECKPOINT_VERSION,
                step: done,
                adam_t: opt.t(),
                rng: format!("chacha8 keyed by (seed {}, step)", cfg.seed),
                loss: Some(loss_value),
                loss_smoother: dashboard.smoother().clone(),
            };
            let weights: Vec<(String, Tensor)> = vars.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect();
            save_checkpoint(&opts.run, &cfg, &state, &weights, ema.tensors(), &opt.state_tensors(), tokenizer_json.as_deref())?;
            save_model_file(&outcome.model_file, ema.tensors(), &cfg.model, tokenizer.as_ref(), &[("step", done.to_string())])?;
            dashboard.plot_loss()?;
            saved_step = done;
        }
        if last || (cfg.sample_every > 0 && done % cfg.sample_every == 0) {
            bar.suspend(|| -> Result<(), TrainError> {
                if saved_step != done {
                    // The grid's recipe names the model file: it must hold these weights.
                    save_model_file(&outcome.model_file, ema.tensors(), &cfg.model, tokenizer.as_ref(), &[("step", done.to_string())])?;
                }
                let prompts = captions.as_deref().map(sample_prompts).unwrap_or_default();
                let (latest, g) = write_sample_grid(&cfg, &ema, tokenizer.clone(), &prompts, device, &opts.run, done, opts.progress)?;
                dashboard.log_samples(done, &g)?;
                outcome.latest_grid = Some(latest);
                Ok(())
            })?;
        }
        if stop {
            outcome.interrupted = true;
            break;
        }
    }
    bar.finish_and_clear();
    outcome.wall_seconds = wall.elapsed().as_secs_f64();
    Ok(outcome)
}

fn corrupt(run: &Path, reason: String) -> TrainError {
    TrainError::Corrupt { path: run.join(crate::checkpoint::CHECKPOINT_DIR), reason }
}

/// The tokenizer of a text run: the checkpoint's when resuming, else a byte-level BPE
/// trained on the captions (deterministic, so a rerun of the same data gets the same one).
fn run_tokenizer(captions: &[String], vocab_size: usize, saved: Option<&str>) -> Result<PromptTokenizer, TrainError> {
    let tokenizer = match saved {
        Some(json) => PromptTokenizer::from_json(json)?,
        None => PromptTokenizer::train(captions, vocab_size)?,
    };
    if tokenizer.vocab_size() > vocab_size {
        return Err(TrainError::Config(format!(
            "the tokenizer has {} entries, more than the text encoder's vocab_size = {vocab_size}",
            tokenizer.vocab_size()
        )));
    }
    Ok(tokenizer)
}

/// Columns of a text model's sample grid.
const SAMPLE_PROMPTS: usize = 8;

/// The prompts of a text model's sample grids: the captions of [`SAMPLE_PROMPTS`] images
/// spread evenly over the data set.
fn sample_prompts(captions: &[String]) -> Vec<String> {
    let n = captions.len();
    (0..SAMPLE_PROMPTS.min(n)).map(|k| captions[k * n / SAMPLE_PROMPTS.min(n)].clone()).collect()
}

/// Samples a grid at fixed seeds (0, 1, …) from the EMA weights and writes it as
/// `samples/step-NNNNNN.png` and `samples/latest.png`; returns the latter's path and the grid.
/// A text model's grid has one column per prompt of `prompts`, guided at the prompt default
/// of [`stipple_pipeline::defaults`].
#[allow(clippy::too_many_arguments)]
fn write_sample_grid(
    cfg: &TrainConfig,
    ema: &Ema,
    tokenizer: Option<PromptTokenizer>,
    prompts: &[String],
    device: &Device,
    run: &Path,
    step: usize,
    progress: bool,
) -> Result<(PathBuf, DynamicImage), TrainError> {
    let tensors: HashMap<String, Tensor> = ema.tensors().iter().cloned().collect();
    let metadata = HashMap::from([("step".to_string(), step.to_string())]);
    let model = model_from_tensors(cfg.model.clone(), tensors, tokenizer, metadata, device)?;
    let spec = GenerateRequest {
        steps: Some(cfg.sample_steps),
        count: Some(cfg.sample_count),
        batch_size: Some(cfg.sample_count.min(32)),
        prompts: prompts.to_vec(),
        ..GenerateRequest::default()
    }
    .validate()?;
    let mut bar = sampling_bar(progress, spec.count.div_ceil(spec.batch_size) * spec.steps);
    let sigmas = spec.sigmas(&cfg.model.diffusion)?;
    let images = to_images(&generate(&model, &spec, &sigmas, device, &mut bar)?)?;
    bar.0.finish_and_clear();
    // Each grid carries its recipe, naming the model file written at this step.
    let model_ref = stipple_pipeline::model_ref(&model_file(run), &model)?;
    let latest = run.join("samples").join("latest.png");
    for path in [run.join("samples").join(format!("step-{step:06}.png")), latest.clone()] {
        write_images(&images, &spec, &sigmas, &model_ref, &path, false)?;
    }
    Ok((latest, grid(&images, grid_columns(images.len()), 2)))
}
