//! Dropout with host-side, seeded masks, so that a training run resumes bit-exactly.
//!
//! Inverted dropout (Srivastava et al. 2014; PyTorch `nn.Dropout`): each element is kept with
//! probability `1 − p` and scaled by `1 / (1 − p)`, so inference needs no rescaling.
//! candle's own CPU random generator cannot be seeded, so the mask comes from SplitMix64
//! (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number generators") evaluated as a
//! counter-based generator: element `i` of layer `id` under seed `s` uses
//! `mix(key + (i+1)·γ)` with `key = mix(s ⊕ mix(id))`, γ = 0x9E3779B97F4A7C15.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

/// Whether a forward pass applies dropout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No dropout (sampling, evaluation).
    Inference,
    /// Dropout with masks derived from `seed` (one seed per training step).
    Train { seed: u64 },
}

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function (Steele et al. 2014, Fig. 1 / `mix64variant13`).
#[inline(always)]
pub fn splitmix64_mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable 64-bit id for a layer from its parameter path (FNV-1a), so masks do not depend on
/// the order in which layers were built.
pub fn layer_id(path: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in path.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// Whether element `i` of the mask keyed by `key` is dropped (probability `p`), with
/// `threshold = drop_threshold(p)`.
///
/// The top 53 bits `m` of the hash make a uniform double `u = m·2⁻⁵³` in [0, 1); `u < p` is
/// decided in integers as `m < ⌈p·2⁵³⌉` (the same decision: `m` is an integer and scaling by
/// 2⁵³ is exact); without the conversion to f64 the dropout op is about 40% faster.
#[inline(always)]
fn dropped(key: u64, i: usize, threshold: u64) -> bool {
    let bits = splitmix64_mix(key.wrapping_add((i as u64).wrapping_add(1).wrapping_mul(GAMMA)));
    (bits >> 11) < threshold
}

/// `⌈p·2⁵³⌉`, see [`dropped`].
fn drop_threshold(p: f64) -> u64 {
    (p * (1u64 << 53) as f64).ceil() as u64
}

fn mask_key(seed: u64, layer: u64) -> u64 {
    splitmix64_mix(seed ^ splitmix64_mix(layer))
}

/// Values per rayon task.
const CHUNK: usize = 16 * 1024;

/// One layer's mask for one training step: element `i` is dropped (factor 0) with probability
/// `p` and otherwise scaled by `1 / (1 − p)`, decided from its index alone (see the module
/// documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DropoutMask {
    key: u64,
    threshold: u64,
    /// `1 / (1 − p)` in f32, the value of a kept element of [`DropoutMask::factors`].
    scale: f32,
}

impl DropoutMask {
    /// The mask of layer `layer` (a [`layer_id`]) under `seed`.
    pub fn new(p: f64, seed: u64, layer: u64) -> Self {
        Self { key: mask_key(seed, layer), threshold: drop_threshold(p), scale: (1.0 / (1.0 - p)) as f32 }
    }

    /// The first `n` factors, each `0` or `1 / (1 − p)`.
    pub fn factors(&self, n: usize) -> Vec<f32> {
        // Counter-based: each element depends on its index alone, so the mask is the same
        // whatever the split over rayon's threads.
        (0..n).into_par_iter().with_min_len(CHUNK).map(|i| if dropped(self.key, i, self.threshold) { 0.0 } else { self.scale }).collect()
    }

    /// Multiplies `v[j]`, element `start + j` of the masked tensor, by its factor.
    #[inline]
    pub(crate) fn apply<T: WithDType>(&self, start: usize, v: &mut [T]) {
        let (zero, scale) = (T::from_f64(0.0), T::from_f64(self.scale as f64));
        for (j, x) in v.iter_mut().enumerate() {
            *x *= if dropped(self.key, start + j, self.threshold) { zero } else { scale };
        }
    }
}

/// The inverted-dropout mask: `n` values, each `0` or `1 / (1 − p)`.
pub fn dropout_mask(n: usize, p: f64, seed: u64, layer: u64) -> Vec<f32> {
    DropoutMask::new(p, seed, layer).factors(n)
}

/// `x · mask` without building the mask: each element's factor is computed where it is used,
/// forward and backward (the gradient is `dy · mask`, the same op again).
#[derive(Debug, Clone, Copy)]
struct DropoutOp(DropoutMask);

impl DropoutOp {
    fn apply<T: WithDType>(&self, x: &[T]) -> Vec<T> {
        let mut y = x.to_vec();
        y.par_chunks_mut(CHUNK).enumerate().for_each(|(c, chunk)| self.0.apply(c * CHUNK, chunk));
        y
    }
}

impl CustomOp1 for DropoutOp {
    fn name(&self) -> &'static str {
        "stipple-dropout"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let Some((lo, hi)) = l.contiguous_offsets() else { bail!("stipple-dropout: the input must be contiguous") };
        let out = match s {
            CpuStorage::F32(v) => CpuStorage::F32(self.apply(&v[lo..hi])),
            CpuStorage::F64(v) => CpuStorage::F64(self.apply(&v[lo..hi])),
            s => bail!("stipple-dropout: the CPU kernel supports f32 and f64 only (got {:?})", s.dtype()),
        };
        Ok((out, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(dy.contiguous()?.apply_op1_no_bwd(self)?))
    }
}

/// A dropout layer with probability `p` and a stable id.
#[derive(Debug, Clone, Copy)]
pub struct Dropout {
    p: f64,
    id: u64,
}

impl Dropout {
    /// `path` is the owning layer's parameter prefix (e.g. `down_blocks.0.resnets.1`).
    pub fn new(p: f64, path: &str) -> Self {
        Self { p, id: layer_id(path) }
    }

    /// Identity in [`Mode::Inference`] or when `p = 0`; otherwise `x · mask`.
    ///
    /// # Shapes
    /// - `x`: any shape; returns the same shape
    pub fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        match self.mask(mode) {
            Some(mask) => mask_tensor(x, mask),
            None => Ok(x.clone()),
        }
    }

    /// This step's mask, or `None` when the layer is the identity (inference, or `p = 0`).
    pub fn mask(&self, mode: Mode) -> Option<DropoutMask> {
        match mode {
            Mode::Train { seed } if self.p > 0.0 => Some(DropoutMask::new(self.p, seed, self.id)),
            _ => None,
        }
    }
}

/// `x · mask`: on the CPU in f32/f64 an op that never builds the mask, elsewhere a product with
/// the mask as a tensor.
pub(crate) fn mask_tensor(x: &Tensor, mask: DropoutMask) -> Result<Tensor> {
    if crate::ops::cpu_kernel_applies(&[x]) {
        return x.contiguous()?.apply_op1(DropoutOp(mask));
    }
    let factors = Tensor::from_vec(mask.factors(x.elem_count()), x.shape(), x.device())?.to_dtype(x.dtype())?;
    x * factors
}
