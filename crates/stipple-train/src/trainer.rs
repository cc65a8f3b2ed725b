//! A training run as an object: [`Trainer::new`] loads the data and builds (or resumes) the
//! network, optimizer and EMA, [`Trainer::step`] takes one optimisation step (data →
//! objective → AdamW → EMA), and checkpoints and sample grids are written on request.
//! [`Trainer::run`] drives it to its total with [`TrainObserver`](crate::TrainObserver)s.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;
use image::DynamicImage;
use stipple_math::DiscreteSchedule;
use stipple_nn::init::seeded_var_builder;
use stipple_nn::text::PromptTokenizer;
use stipple_nn::{model_from_tensors, observation_channels, save_model_file, LoadedModel, Net, UNetCond};

use crate::checkpoint::{find_checkpoint, load_checkpoint, save_checkpoint, RunState, CHECKPOINT_DIR, CHECKPOINT_VERSION};
use crate::data::{Labels, TrainingSet};
use crate::data_parallel::{all_reduce_gradients, broadcast_tensors, check_same_run, run_fingerprint, shard};
use crate::ema::{ema_decay, Ema};
use crate::grids::{sample_prompts, write_sample_grid};
use crate::init::named_vars;
use crate::objective::{diffusion_loss, drop_conditions, NoiseDraw};
use crate::optim::{warmup_lr, AdamW};
use crate::order::{batch_indices, rank_seed, step_rng};
use crate::setup::{load_run_data, text_conditioning, TextConditioning};
use crate::{draw_forecast_masks, Collective, LossSmoother, SingleProcess, TrainConfig, TrainError};

/// How to run (not part of the run's identity).
pub struct TrainOptions {
    /// Run folder: checkpoint, model file, sample grids, log.
    pub run: PathBuf,
    /// Continue the checkpoint in `run`: its saved configuration wins over the one given.
    pub resume: bool,
    /// Total steps of the run, replacing the given configuration's (a new run) or the
    /// checkpoint's (a resumed run, which it may extend); `None` keeps that total.
    pub steps: Option<usize>,
    pub device: Device,
    /// Show the bars of the trainer's own long operations: decoding the images and
    /// sampling the grids (the bar of the steps is the [`ProgressBars`](crate::ProgressBars)
    /// observer).
    pub progress: bool,
}

/// What one optimisation step reports.
#[derive(Clone, Debug, PartialEq)]
pub struct StepStats {
    /// Steps completed (1-based).
    pub step: usize,
    pub loss: f64,
    /// The loss smoothed over the run (see [`LossSmoother`]); kept in the checkpoint.
    pub loss_smoothed: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub ema_decay: f64,
    /// Seconds of the optimisation step alone.
    pub seconds: f64,
}

/// A checkpoint just written.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedCheckpoint {
    /// Steps completed at the checkpoint.
    pub step: usize,
    /// The checkpoint folder.
    pub dir: PathBuf,
    /// The model file (EMA weights) written with it.
    pub model_file: PathBuf,
}

/// A sample grid just written.
#[derive(Clone, Debug)]
pub struct SampleGrid {
    /// Steps completed when it was sampled.
    pub step: usize,
    /// `samples/latest.png` (the same grid is also `samples/step-NNNNNN.png`).
    pub path: PathBuf,
    /// The grid image.
    pub image: DynamicImage,
}

/// Path of the stand-alone model file (EMA weights + config) inside a run folder.
pub fn model_file(run: &Path) -> PathBuf {
    run.join(stipple_pipeline::RUN_MODEL_FILE)
}

/// A training run in memory: data, network, optimizer, EMA and the step reached.
///
/// Data-parallel over several processes ([`Trainer::with_collective`]), each rank holds the
/// whole state, takes its share of every global batch and averages the gradients with the
/// others; rank 0 alone writes the run's files and runs the observers.
pub struct Trainer {
    cfg: TrainConfig,
    comm: Box<dyn Collective>,
    run: PathBuf,
    device: Device,
    progress: bool,
    created: Instant,
    data: Box<dyn TrainingSet>,
    skipped: Vec<(PathBuf, String)>,
    labels: Option<Labels>,
    captions: Option<Vec<String>>,
    tokenizer: Option<PromptTokenizer>,
    tokenizer_json: Option<String>,
    net: Net,
    text: Option<TextConditioning>,
    vars: Vec<(String, Var)>,
    opt: AdamW,
    ema: Ema,
    schedule: DiscreteSchedule,
    smoother: LossSmoother,
    step: usize,
    /// Step of the last checkpoint (the one a failure falls back to).
    saved_step: usize,
    /// Step whose EMA weights the model file holds.
    model_step: usize,
    last_loss: Option<f64>,
}

impl Trainer {
    /// Prepares the run `config` in `opts.run`, or, with `opts.resume`, the run saved there
    /// (whose configuration replaces `config`): loads the data, builds the network,
    /// optimizer and EMA, and restores their state from the checkpoint.
    pub fn new(config: TrainConfig, opts: &TrainOptions) -> Result<Trainer, TrainError> {
        Trainer::with_collective(config, opts, Box::new(SingleProcess))
    }

    /// [`Trainer::new`] as one rank of `comm`: every rank must be started with the same
    /// configuration, options and program (checked), and reads the run folder itself (a
    /// resumed run's checkpoint must be visible to every rank); all then start from rank 0's
    /// weights, optimizer state and EMA. The batch size must be a multiple of the ranks.
    pub fn with_collective(config: TrainConfig, opts: &TrainOptions, comm: Box<dyn Collective>) -> Result<Trainer, TrainError> {
        let created = Instant::now();
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
            Some(ck) => ck.config.clone(),
            None => config,
        };
        if let Some(steps) = opts.steps {
            cfg.steps = steps;
        }
        cfg.validate()?;
        if comm.size() > 1 {
            check_same_run(comm.as_ref(), run_fingerprint(&cfg, checkpoint.as_ref().map_or(0, |ck| ck.state.step))?)?;
            shard(cfg.batch_size, comm.rank(), comm.size())?;
        }
        let data = load_run_data(&mut cfg, checkpoint.as_ref(), device, opts.progress)?;
        std::fs::create_dir_all(&opts.run).map_err(|e| TrainError::Io { path: opts.run.clone(), reason: e.to_string() })?;

        let varmap = VarMap::new();
        let net = Net::new(seeded_var_builder(&varmap, cfg.seed, device), &cfg.model.network)?;
        let text = text_conditioning(&cfg, &data, &varmap, device)?;
        let tokenizer_json = data.tokenizer.as_ref().map(PromptTokenizer::to_json).transpose()?;
        let vars = named_vars(&varmap);
        // A pretrained text encoder stays frozen: only the U-Net's variables are optimised.
        let frozen = |n: &str| cfg.pretrained_text_encoder.is_some() && n.starts_with(&format!("{}.", stipple_nn::TEXT_ENCODER_PREFIX));
        let trained: Vec<_> = vars.iter().filter(|(n, _)| !frozen(n)).cloned().collect();
        let mut opt = AdamW::new(trained, cfg.optimizer)?;
        let (ema, step, smoother, last_loss) = match &checkpoint {
            Some(ck) => {
                for (name, var) in &vars {
                    let w = ck.weights.get(name).ok_or_else(|| corrupt(&opts.run, format!("weights lack {name}")))?;
                    if w.dims() != var.dims() {
                        return Err(corrupt(&opts.run, format!("weight {name} has shape {:?}, expected {:?}", w.dims(), var.dims())));
                    }
                    var.set(w)?;
                }
                opt.load_state(&ck.optimizer, ck.state.adam_t).map_err(|e| corrupt(&opts.run, e))?;
                let ema = Ema::from_tensors(&vars, &ck.ema).map_err(|e| corrupt(&opts.run, e))?;
                (ema, ck.state.step, ck.state.loss_smoother.clone(), ck.state.loss)
            }
            None => (Ema::new(&vars)?, 0, LossSmoother::default(), None),
        };
        let (ema, opt) = start_from_rank0(comm.as_ref(), &vars, ema, opt)?;
        let ema = ema.freeze(frozen);
        let schedule = cfg.model.diffusion.schedule();
        Ok(Trainer {
            run: opts.run.clone(),
            device: device.clone(),
            progress: opts.progress,
            created,
            data: data.samples,
            skipped: data.skipped,
            labels: data.labels,
            captions: data.captions,
            tokenizer: data.tokenizer,
            tokenizer_json,
            net,
            text,
            vars,
            opt,
            ema,
            schedule,
            smoother,
            step,
            saved_step: step,
            model_step: step,
            last_loss,
            cfg,
            comm,
        })
    }

    /// Takes one optimisation step. Every random draw of step k comes from a generator keyed
    /// by (seed, k), so the step number is the whole random state. A loss or gradient norm
    /// that is not finite stops with [`TrainError::NonFiniteLoss`] before the update.
    pub fn step(&mut self) -> Result<StepStats, TrainError> {
        let t0 = Instant::now();
        let (cfg, data, device, step) = (&self.cfg, &self.data, &self.device, self.step);
        let b = cfg.batch_size;
        let dims = data.sample_dims();
        let per_sample: usize = dims.iter().product();
        // Every rank draws the whole global batch's random numbers in the single-process order
        // and keeps its share, so an image gets the same flip, noise and condition dropout
        // whichever rank (and however many ranks) train it.
        let mine = shard(b, self.comm.rank(), self.comm.size())?;
        let mut rng = step_rng(cfg.seed, step);
        let indices = batch_indices(cfg.seed, step, b, data.len());
        let flips: Vec<bool> = indices.iter().map(|_| cfg.random_flip && rand::Rng::random_bool(&mut rng, 0.5)).collect();
        let shape: Vec<usize> = std::iter::once(mine.len()).chain(dims.iter().copied()).collect();
        let x0 = Tensor::from_vec(data.batch(&indices[mine.clone()], &flips[mine.clone()]), shape, device)?;
        let mut draw = NoiseDraw::new(&mut rng, b, per_sample, cfg.model.diffusion.num_train_timesteps).shard(mine.clone(), per_sample);
        if self.comm.size() > 1 {
            draw.dropout_seed = rank_seed(draw.dropout_seed, self.comm.rank());
        }
        let mut cond = UNetCond::default();
        if let (Some(l), Some(null)) = (&self.labels, cfg.model.null_class()) {
            let batch_labels: Vec<u32> = indices.iter().map(|&i| l.per_image[i]).collect();
            let seen = drop_conditions(&mut rng, &batch_labels, &null, cfg.cond_dropout);
            cond.class_labels = Some(Tensor::from_slice(&seen[mine.clone()], mine.len(), device)?);
        }
        if let Some(text) = &self.text {
            let batch_ids: Vec<&Vec<u32>> = indices.iter().map(|&i| &text.ids[i]).collect();
            let seen = drop_conditions(&mut rng, &batch_ids, &&text.empty, cfg.cond_dropout);
            let ids: Vec<u32> = seen[mine.clone()].iter().flat_map(|ids| ids.iter().copied()).collect();
            let tokens = Tensor::from_vec(ids, (mine.len(), text.empty.len()), device)?;
            cond.encoder_hidden_states = Some(text.encoder.forward(&tokens)?);
        }
        if let (true, Some(w)) = (cfg.model.network.reads_observation(), &cfg.model.series) {
            let masks = draw_forecast_masks(&mut rng, b, w.context, w.horizon);
            let length = w.context + w.horizon;
            let keep = Tensor::from_vec(masks[mine.start * length..mine.end * length].to_vec(), x0.shape(), device)?;
            cond.observed = Some(observation_channels(&x0, &keep)?);
        }
        let loss = diffusion_loss(&self.net, cfg, &self.schedule, &x0, &draw, &cond)?;
        let mut loss_value = [loss.to_scalar::<f32>()?];
        let mut grads = loss.backward()?;
        self.comm.all_reduce_mean(&mut loss_value)?;
        all_reduce_gradients(self.comm.as_ref(), &self.opt.vars(), &mut grads)?;
        let loss_value = loss_value[0] as f64;
        let grad_norm = self.opt.grad_norm(&grads)?;
        if !loss_value.is_finite() || !grad_norm.is_finite() {
            let bad = if loss_value.is_finite() { grad_norm } else { loss_value };
            return Err(TrainError::NonFiniteLoss { step: step + 1, loss: bad, checkpoint_step: self.saved_step, run: self.run.clone() });
        }
        let scale = if cfg.grad_clip > 0.0 && grad_norm > cfg.grad_clip { cfg.grad_clip / grad_norm } else { 1.0 };
        let lr = warmup_lr(cfg.optimizer.lr, cfg.warmup_steps, step);
        self.opt.step(&grads, lr, scale)?;
        let decay = ema_decay(cfg.ema_decay, step);
        self.ema.update(&self.vars, decay)?;
        self.step = step + 1;
        self.last_loss = Some(loss_value);
        let loss_smoothed = self.smoother.update(loss_value);
        Ok(StepStats {
            step: self.step,
            loss: loss_value,
            loss_smoothed,
            lr,
            grad_norm,
            ema_decay: decay,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// Writes the checkpoint (replacing the previous one only once complete) and the model
    /// file of the EMA weights at the step reached.
    pub fn save_checkpoint(&mut self) -> Result<SavedCheckpoint, TrainError> {
        let state = RunState {
            checkpoint_version: CHECKPOINT_VERSION,
            step: self.step,
            adam_t: self.opt.t(),
            rng: format!("chacha8 keyed by (seed {}, step)", self.cfg.seed),
            loss: self.last_loss,
            loss_smoother: self.smoother.clone(),
        };
        let weights: Vec<(String, Tensor)> = self.vars.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect();
        let (ema, opt) = (self.ema.tensors(), self.opt.state_tensors());
        save_checkpoint(&self.run, &self.cfg, &state, &weights, ema, &opt, self.tokenizer_json.as_deref())?;
        self.write_model_file()?;
        self.saved_step = self.step;
        Ok(SavedCheckpoint { step: self.step, dir: self.run.join(CHECKPOINT_DIR), model_file: model_file(&self.run) })
    }

    /// Samples the grid at fixed seeds from the EMA weights and writes it under `samples/`
    /// (first bringing the model file, which the grid's recipe names, to this step).
    pub fn sample_grid(&mut self) -> Result<SampleGrid, TrainError> {
        if self.model_step != self.step {
            self.write_model_file()?;
        }
        let (path, image) =
            write_sample_grid(&self.cfg, &self.ema_model()?, &self.sample_prompts(), &self.device, &self.run, self.step, self.progress)?;
        Ok(SampleGrid { step: self.step, path, image })
    }

    /// The model of the EMA weights at this step (what the model file holds once written).
    pub fn ema_model(&self) -> Result<LoadedModel, TrainError> {
        let tensors: HashMap<String, Tensor> = self.ema.tensors().iter().cloned().collect();
        let metadata = HashMap::from([("step".to_string(), self.step.to_string())]);
        Ok(model_from_tensors(self.cfg.model.clone(), tensors, self.tokenizer.clone(), metadata, &self.device)?)
    }

    /// The prompts a text model is sampled with while it trains (none for other models):
    /// captions spread evenly over the data set ([`crate::grids::sample_prompts`]).
    pub fn sample_prompts(&self) -> Vec<String> {
        self.captions.as_deref().map(sample_prompts).unwrap_or_default()
    }

    /// The training data, as loaded.
    pub fn data(&self) -> &dyn TrainingSet {
        self.data.as_ref()
    }

    /// The device the run computes on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    fn write_model_file(&mut self) -> Result<(), TrainError> {
        let step = [("step", self.step.to_string())];
        save_model_file(&model_file(&self.run), self.ema.tensors(), &self.cfg.model, self.tokenizer.as_ref(), &step)?;
        self.model_step = self.step;
        Ok(())
    }

    /// Steps completed (including earlier sessions of a resumed run).
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// The run's total steps.
    pub fn total_steps(&self) -> usize {
        self.cfg.steps
    }

    /// Step of the last checkpoint written or resumed from.
    pub fn checkpoint_step(&self) -> usize {
        self.saved_step
    }

    /// The run's configuration (the checkpoint's when resumed, with the classes of the data).
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The run folder.
    pub fn run_dir(&self) -> &Path {
        &self.run
    }

    /// The loss of the last step (the checkpoint's when none was taken yet).
    pub fn last_loss(&self) -> Option<f64> {
        self.last_loss
    }

    /// Images that could not be read and were skipped.
    pub fn skipped_images(&self) -> &[(PathBuf, String)] {
        &self.skipped
    }

    /// This process's rank among the data-parallel ranks (0 alone).
    pub fn rank(&self) -> usize {
        self.comm.rank()
    }

    /// Rank 0's `flags` on every rank: the decisions of rank 0's observers.
    pub(crate) fn agree(&self, flags: [bool; 3]) -> Result<[bool; 3], TrainError> {
        let mut bytes = flags.map(u8::from);
        self.comm.broadcast(&mut bytes)?;
        Ok(bytes.map(|b| b != 0))
    }

    /// Seconds since [`Trainer::new`] began.
    pub fn seconds_since_start(&self) -> f64 {
        self.created.elapsed().as_secs_f64()
    }
}

/// The EMA and optimizer of rank 0, and its weights written into `vars`, on every rank
/// (Horovod's `broadcast_parameters` and `broadcast_optimizer_state`).
fn start_from_rank0(comm: &dyn Collective, vars: &[(String, Var)], ema: Ema, mut opt: AdamW) -> Result<(Ema, AdamW), TrainError> {
    if comm.size() == 1 {
        return Ok((ema, opt));
    }
    let weights: Vec<Tensor> = vars.iter().map(|(_, v)| v.as_tensor().clone()).collect();
    for ((_, var), w) in vars.iter().zip(broadcast_tensors(comm, &weights)?) {
        var.set(&w)?;
    }
    let named = |pairs: Vec<(String, Tensor)>| -> Result<std::collections::HashMap<String, Tensor>, TrainError> {
        let (names, tensors): (Vec<String>, Vec<Tensor>) = pairs.into_iter().unzip();
        Ok(names.into_iter().zip(broadcast_tensors(comm, &tensors)?).collect())
    };
    let moments = named(opt.state_tensors())?;
    let t = opt.t();
    opt.load_state(&moments, t).map_err(TrainError::Parallel)?;
    let ema = Ema::from_tensors(vars, &named(ema.tensors().to_vec())?).map_err(TrainError::Parallel)?;
    Ok((ema, opt))
}

fn corrupt(run: &Path, reason: String) -> TrainError {
    TrainError::Corrupt { path: run.join(CHECKPOINT_DIR), reason }
}
