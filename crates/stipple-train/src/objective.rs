//! The denoising objective: noise a batch to random training levels and regress the
//! network output on the target of its parameterisation.
//!
//! With `x = x₀ + σ·ε` (σ of a uniformly drawn training timestep t), the network sees
//! `c_in(σ)·x` and its noise conditioning t, and is trained towards
//! `(x₀ − c_skip·x)/c_out = a·x₀ + b·ε` — the same scalings the sampler's
//! `Preconditioned` denoiser uses, so loss and sampling cannot disagree (Karras et al.
//! 2022, Eq. 7–8; Ho et al. 2020, Algorithm 1, for ε).

use candle_core::{Device, Result, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use stipple_math::DiscreteSchedule;
use stipple_nn::{Net, UNetCond};

use crate::{LossKind, LossWeighting, TrainConfig};

/// The random draws of one training step, made on the host from the step's generator.
pub struct NoiseDraw {
    /// Training timestep of each image.
    pub timesteps: Vec<usize>,
    /// Standard normal noise, `(B, C, spatial…)` flattened.
    pub eps: Vec<f32>,
    /// Seed of the dropout masks.
    pub dropout_seed: u64,
}

impl NoiseDraw {
    /// Draws timesteps t ~ U{0, …, T−1}, ε ~ N(0, I) and a dropout seed.
    pub fn new(rng: &mut ChaCha8Rng, batch: usize, per_image: usize, num_train_timesteps: usize) -> Self {
        let timesteps = (0..batch).map(|_| rng.random_range(0..num_train_timesteps)).collect();
        let eps = (0..batch * per_image).map(|_| rng.sample::<f32, _>(StandardNormal)).collect();
        Self { timesteps, eps, dropout_seed: rng.random() }
    }

    /// The draws of the images at `range` of the batch (`per_image` noise values each): a
    /// rank's share of the global batch's draws, the same whichever rank takes an image.
    pub fn shard(self, range: std::ops::Range<usize>, per_image: usize) -> Self {
        if range.start == 0 && range.end == self.timesteps.len() {
            return self;
        }
        Self {
            timesteps: self.timesteps[range.clone()].to_vec(),
            eps: self.eps[range.start * per_image..range.end * per_image].to_vec(),
            dropout_seed: self.dropout_seed,
        }
    }
}

/// The loss of `net` on clean samples `x0` (`(B, C, H, W)` images in [−1, 1], or
/// `(B, C, L)` scaled sequences) with the noise of `draw` and the batch's conditioning `cond`
/// (class labels or text states, or none; for a forecaster conditioned as in CSDI, the
/// observation, whose hidden values alone are trained on). Returns a scalar tensor that
/// carries the graph for backpropagation.
pub fn diffusion_loss(
    net: &Net,
    cfg: &TrainConfig,
    schedule: &DiscreteSchedule,
    x0: &Tensor,
    draw: &NoiseDraw,
    cond: &UNetCond,
) -> Result<Tensor> {
    let (diffusion, loss, weighting) = (&cfg.model.diffusion, cfg.loss, cfg.loss_weighting);
    let device = x0.device();
    let b = x0.dim(0)?;
    let eps = Tensor::from_vec(draw.eps.clone(), x0.shape(), device)?;
    let (mut sigma, mut c_in, mut a, mut bb, mut t, mut w) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for &ti in &draw.timesteps {
        let s = schedule.sigmas()[ti];
        let (ta, tb) = diffusion.prediction_type.target_coefficients(s);
        sigma.push(s as f32);
        c_in.push(diffusion.prediction_type.scalings(s).c_in as f32);
        a.push(ta as f32);
        bb.push(tb as f32);
        t.push(ti as f32);
        w.push(match weighting {
            LossWeighting::Uniform => 1.0,
            LossWeighting::MinSnr { gamma } => diffusion.prediction_type.min_snr_weight(s, gamma) as f32,
        });
    }
    // One value per sample, broadcast over its channels and positions.
    let mut column = vec![1; x0.rank()];
    column[0] = b;
    let col = |v: Vec<f32>, dev: &Device| Tensor::from_vec(v, column.as_slice(), dev);
    let x = x0.broadcast_add(&eps.broadcast_mul(&col(sigma, device)?)?)?;
    let x_in = x.broadcast_mul(&col(c_in, device)?)?;
    let target = (x0.broadcast_mul(&col(a, device)?)? + eps.broadcast_mul(&col(bb, device)?)?)?;
    let timesteps = Tensor::from_vec(t, b, device)?;
    let out = net.forward_train(&x_in, &timesteps, cond, draw.dropout_seed)?;
    let diff = (out - target)?;
    let per_element = match loss {
        LossKind::L2 => diff.sqr()?,
        LossKind::L1 => diff.abs()?,
    };
    let weighted = match weighting {
        LossWeighting::Uniform => per_element,
        LossWeighting::MinSnr { .. } => per_element.broadcast_mul(&col(w, device)?)?,
    };
    match &cond.observed {
        None => weighted.mean_all(),
        // CSDI (Tashiro et al. 2021, Alg. 1): the loss is the mean over the conditional
        // targets, the values the observation mask (its channel 1) hides.
        Some(o) => {
            let hidden = o.narrow(1, 1, 1)?.affine(-1.0, 1.0)?;
            let count = hidden.sum_all()?.to_scalar::<f32>()?;
            if count == 0.0 {
                candle_core::bail!("diffusion_loss: the observation masks hide no value to train on");
            }
            weighted.broadcast_mul(&hidden)?.sum_all()? / f64::from(count)
        }
    }
}

/// The conditions the network sees: each of `items` (a class label, or a caption's token
/// ids) is replaced by `null` (the "no label" token, or the empty prompt's ids) with
/// probability `p` — condition dropout (Ho & Salimans 2022, Alg. 1) — drawn from the step's
/// generator.
pub fn drop_conditions<T: Clone>(rng: &mut ChaCha8Rng, items: &[T], null: &T, p: f64) -> Vec<T> {
    items.iter().map(|item| if rng.random_bool(p) { null.clone() } else { item.clone() }).collect()
}
