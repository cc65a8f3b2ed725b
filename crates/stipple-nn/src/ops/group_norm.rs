//! Group normalisation (Wu & He 2018), optionally followed by SiLU, as one candle custom op with
//! its own backward pass.
//!
//! For an input `(B, C, …)` split into `G` groups of `C/G` channels, each `(sample, group)` slice
//! of `n = (C/G)·S` values (`S` = the product of the trailing dims) is normalised with its own
//! mean `μ` and biased variance `σ²`:
//! `x̂ = (x − μ)·r` with `r = 1/√(σ² + ε)`, `z = γ_c·x̂ + β_c`, `y = z` or `y = SiLU(z) = z·σ(z)`.
//!
//! Backward, with `dz = dy` or `dz = dy·σ(z)·(1 + z·(1 − σ(z)))` (SiLU):
//! - `dβ_c = Σ dz`, `dγ_c = Σ dz·x̂` (over the batch and the pixels of channel `c`);
//! - `dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))` with `dx̂ = γ_c·dz`, means over the group.
//!
//! CPU kernels: the statistics take two passes over a slice small enough to stay in cache,
//! summed in blocks of 256 values at the element type's vector width and the blocks in f64; the
//! output is written once, never zeroed first; and the `(sample, group)` slices are spread over rayon's threads; each slice
//! runs vectorised for the CPU's instruction set, with a polynomial `exp` in f32
//! (`ops::simd`). The
//! backward op recomputes `μ` and `r` instead of saving them. Only f32 and f64 have CPU kernels;
//! [`group_norm`] hands other dtypes and non-CPU devices to a composition of candle ops.
//!
//! A ResNet block's `dropout(SiLU(GroupNorm(h)))` is one op too ([`group_norm_silu_dropout`]):
//! the mask is applied to each slice as it is written, and to the incoming gradient slice by
//! slice, so the dropout adds no pass over memory of its own and no node to the graph (whose
//! gradient candle would accumulate on one thread).

use std::mem::MaybeUninit;

use candle_core::{bail, CpuStorage, CustomOp3, DType, Layout, Module, Result, Shape, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use super::conv2d::elem::{assume_init, uninit};
use super::{cpu_kernel_applies, dispatch, unpack};
use super::simd::{self, Float as Elem};
use crate::dropout::{mask_tensor, Dropout, DropoutMask, Mode};

/// `GroupNorm(x)·γ + β`, followed by SiLU when `silu`.
///
/// # Shapes
/// - `x`: `(B, C, …)` with at least one trailing dim, e.g. `(B, C, H, W)` or `(B, C, L)`
/// - `gamma`, `beta`: `(C)`
/// - returns the shape of `x`
///
/// `num_groups` must divide `C`. On CPU with f32/f64 this is [`GroupNormOp`] (differentiable
/// w.r.t. all three inputs through [`GroupNormBackward`]); anywhere else it is the same formula
/// written with candle ops.
pub fn group_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, num_groups: usize, eps: f64, silu: bool) -> Result<Tensor> {
    group_norm_op(x, gamma, beta, num_groups, eps, silu, None)
}

/// `SiLU(GroupNorm(x)·γ + β) · mask`: [`group_norm`] with SiLU, followed by a dropout mask, in
/// one op; exactly `mask` applied to `group_norm(x, γ, β, num_groups, eps, true)`, forward
/// and backward.
pub fn group_norm_silu_dropout(x: &Tensor, gamma: &Tensor, beta: &Tensor, num_groups: usize, eps: f64, mask: DropoutMask) -> Result<Tensor> {
    group_norm_op(x, gamma, beta, num_groups, eps, true, Some(mask))
}

fn group_norm_op(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    num_groups: usize,
    eps: f64,
    silu: bool,
    dropout: Option<DropoutMask>,
) -> Result<Tensor> {
    let dims = x.dims();
    if dims.len() < 3 {
        bail!("group_norm: input must be (B, C, …) with rank ≥ 3, got {dims:?}")
    }
    let c = dims[1];
    if !divides(num_groups, c) {
        bail!("group_norm: {num_groups} groups do not divide {c} channels")
    }
    if gamma.elem_count() != c || beta.elem_count() != c {
        bail!("group_norm: γ {:?} and β {:?} must have {c} elements", gamma.dims(), beta.dims())
    }
    if !cpu_kernel_applies(&[x, gamma, beta]) {
        let y = group_norm_candle(x, gamma, beta, num_groups, eps, silu)?;
        return match dropout {
            Some(mask) => mask_tensor(&y, mask),
            None => Ok(y),
        };
    }
    let x = x.contiguous()?;
    let gamma = gamma.flatten_all()?.contiguous()?;
    let beta = beta.flatten_all()?.contiguous()?;
    x.apply_op3(&gamma, &beta, GroupNormOp { num_groups, eps, silu, dropout })
}

/// Whether `g ≥ 1` groups split `c` channels evenly.
#[allow(clippy::manual_is_multiple_of)] // `is_multiple_of` needs Rust 1.87; MSRV is 1.85
fn divides(g: usize, c: usize) -> bool {
    g > 0 && c % g == 0
}

/// The reference composition of candle ops (statistics in f32 for f16/bf16 inputs).
fn group_norm_candle(x: &Tensor, gamma: &Tensor, beta: &Tensor, groups: usize, eps: f64, silu: bool) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let (b, c) = (dims[0], dims[1]);
    let dtype = x.dtype();
    let internal = match dtype {
        DType::F16 | DType::BF16 => DType::F32,
        d => d,
    };
    let xg = x.to_dtype(internal)?.reshape((b, groups, ()))?;
    let n = xg.dim(2)? as f64;
    let centred = xg.broadcast_sub(&(xg.sum_keepdim(2)? / n)?)?;
    let var = (centred.sqr()?.sum_keepdim(2)? / n)?;
    let xhat = centred.broadcast_div(&(var + eps)?.sqrt()?)?.to_dtype(dtype)?.reshape(dims.as_slice())?;
    let mut pdims = vec![1; dims.len()];
    pdims[1] = c;
    let y = xhat
        .broadcast_mul(&gamma.reshape(pdims.as_slice())?)?
        .broadcast_add(&beta.reshape(pdims.as_slice())?)?;
    if silu {
        candle_nn::ops::silu(&y)
    } else {
        Ok(y)
    }
}

/// A group-normalisation layer, parameter-compatible with `candle_nn::group_norm`: `weight` `(C)`
/// initialised to ones and `bias` `(C)` to zeros.
#[derive(Debug, Clone)]
pub struct GroupNorm {
    weight: Tensor,
    bias: Tensor,
    num_groups: usize,
    eps: f64,
}

impl GroupNorm {
    /// Takes `weight` and `bias` from `vb` with `candle_nn::group_norm`'s names and init hints.
    pub fn new(vb: VarBuilder, num_groups: usize, channels: usize, eps: f64) -> Result<Self> {
        let weight = vb.get_with_hints(channels, "weight", candle_nn::Init::Const(1.))?;
        let bias = vb.get_with_hints(channels, "bias", candle_nn::Init::Const(0.))?;
        Self::from_parts(weight, bias, num_groups, eps)
    }

    pub fn from_parts(weight: Tensor, bias: Tensor, num_groups: usize, eps: f64) -> Result<Self> {
        let c = weight.elem_count();
        if !divides(num_groups, c) {
            bail!("GroupNorm: {num_groups} groups do not divide {c} channels")
        }
        if bias.elem_count() != c {
            bail!("GroupNorm: weight {:?} and bias {:?} differ in size", weight.dims(), bias.dims())
        }
        Ok(Self { weight, bias, num_groups, eps })
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    pub fn num_groups(&self) -> usize {
        self.num_groups
    }

    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// `GroupNorm(x)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        group_norm(x, &self.weight, &self.bias, self.num_groups, self.eps, false)
    }

    /// `SiLU(GroupNorm(x))` in one op.
    pub fn forward_silu(&self, x: &Tensor) -> Result<Tensor> {
        group_norm(x, &self.weight, &self.bias, self.num_groups, self.eps, true)
    }

    /// `dropout(SiLU(GroupNorm(x)))` in one op ([`group_norm_silu_dropout`]); the same as
    /// [`GroupNorm::forward_silu`] where `dropout` is the identity.
    pub fn forward_silu_dropout(&self, x: &Tensor, dropout: &Dropout, mode: Mode) -> Result<Tensor> {
        match dropout.mask(mode) {
            Some(mask) => group_norm_silu_dropout(x, &self.weight, &self.bias, self.num_groups, self.eps, mask),
            None => self.forward_silu(x),
        }
    }
}

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        GroupNorm::forward(self, x)
    }
}

// ---------------------------------------------------------------------------------------------
// The custom ops.

/// Forward op: `(x, γ, β) -> y`.
#[derive(Debug, Clone, Copy)]
pub struct GroupNormOp {
    pub num_groups: usize,
    pub eps: f64,
    pub silu: bool,
    /// A dropout mask applied to the output (after the SiLU).
    pub dropout: Option<DropoutMask>,
}

/// Backward op: `(x, dy, [γ; β]) -> [dx; dγ; dβ]`, all flattened into one vector of
/// `x.elem_count() + 2C` values (split by [`GroupNormOp`]'s `bwd`).
#[derive(Debug, Clone, Copy)]
pub struct GroupNormBackward {
    pub num_groups: usize,
    pub eps: f64,
    pub silu: bool,
    /// The forward op's dropout mask, applied to `dy` first.
    pub dropout: Option<DropoutMask>,
}

impl CustomOp3 for GroupNormOp {
    fn name(&self) -> &'static str {
        "stipple-group-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geom::new(l1.shape(), self.num_groups, self.eps, self.silu)?;
        if l2.shape().elem_count() != g.c || l3.shape().elem_count() != g.c {
            bail!("group_norm: γ {:?} and β {:?} must have {} elements", l2.shape().dims(), l3.shape().dims(), g.c)
        }
        let op = self.name();
        let operands = [(s1, l1), (s2, l2), (s3, l3)];
        let mask = self.dropout;
        let out = dispatch(operands, op, |[a, b, c]| forward(&g, a, b, c, mask), |[a, b, c]| forward(&g, a, b, c, mask))?;
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let params = Tensor::cat(&[gamma, beta], 0)?;
        let bwd = GroupNormBackward { num_groups: self.num_groups, eps: self.eps, silu: self.silu, dropout: self.dropout };
        let packed = x.apply_op3_no_bwd(&dy, &params, &bwd)?;
        let [dx, dgamma, dbeta] = unpack(&packed, [x, gamma, beta])?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

impl CustomOp3 for GroupNormBackward {
    fn name(&self) -> &'static str {
        "stipple-group-norm-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geom::new(l1.shape(), self.num_groups, self.eps, self.silu)?;
        if l2.shape().dims() != l1.shape().dims() {
            bail!("group_norm backward: gradient {:?} does not fit input {:?}", l2.shape().dims(), l1.shape().dims())
        }
        if l3.shape().elem_count() != 2 * g.c {
            bail!("group_norm backward: [γ; β] {:?} must have {} elements", l3.shape().dims(), 2 * g.c)
        }
        let op = self.name();
        let operands = [(s1, l1), (s2, l2), (s3, l3)];
        let mask = self.dropout;
        let out = dispatch(operands, op, |[a, b, c]| backward(&g, a, b, c, mask), |[a, b, c]| backward(&g, a, b, c, mask))?;
        Ok((out, Shape::from(l1.shape().elem_count() + 2 * g.c)))
    }
}


// ---------------------------------------------------------------------------------------------
// Kernels.

/// Sizes of one group normalisation.
#[derive(Debug, Clone, Copy)]
struct Geom {
    b: usize,
    c: usize,
    /// Channels per group.
    cg: usize,
    /// Values per channel (the product of the trailing dims).
    s: usize,
    eps: f64,
    silu: bool,
}

impl Geom {
    fn new(shape: &Shape, groups: usize, eps: f64, silu: bool) -> Result<Self> {
        let dims = shape.dims();
        if dims.len() < 3 {
            bail!("group_norm: input must be (B, C, …) with rank ≥ 3, got {dims:?}")
        }
        let (b, c) = (dims[0], dims[1]);
        if !divides(groups, c) {
            bail!("group_norm: {groups} groups do not divide {c} channels")
        }
        Ok(Self { b, c, cg: c / groups, s: dims[2..].iter().product(), eps, silu })
    }

    /// Values per `(sample, group)` slice.
    fn group_len(&self) -> usize {
        self.cg * self.s
    }

    /// Slices per rayon task: enough for some 16k values, so tiny groups are not one task each.
    fn min_tasks(&self) -> usize {
        (16 * 1024 / self.group_len().max(1)).max(1)
    }
}

/// `σ(z) = 1/(1 + e^{−z})` (0 for very negative `z`, never NaN).
#[inline(always)]
fn sigmoid<T: Elem>(z: T) -> T {
    T::one() / (T::one() + (T::zero() - z).exp())
}

/// Values per block of [`sum_blocked`].
const SUM_BLOCK: usize = 256;

/// `Σ f(v)` over `xs`: within blocks of [`SUM_BLOCK`] values in the element type, in 16
/// partial sums (one AVX-512 vector of f32, a full-width loop), the blocks' sums added in f64.
/// Each partial sum adds at most 16 values, so its rounding error stays within about
/// `16·2⁻²⁴` of the block's magnitude in f32, while the loop runs at the f32 vector width
/// (converting every value to f64 ran at half of it).
#[inline(always)]
fn sum_blocked<T: Elem>(xs: &[T], f: impl Fn(T) -> T) -> f64 {
    let mut total = 0f64;
    for block in xs.chunks(SUM_BLOCK) {
        let mut acc = [T::zero(); 16];
        let lanes = block.chunks_exact(16);
        let rest = lanes.remainder();
        for ch in lanes {
            for (a, &v) in acc.iter_mut().zip(ch) {
                *a += f(v);
            }
        }
        total += acc.iter().map(|a| a.to_f64()).sum::<f64>();
        total += rest.iter().map(|&v| f(v).to_f64()).sum::<f64>();
    }
    total
}

/// Mean and `1/√(σ² + ε)` of one slice (two passes: the mean, then the squared deviations from
/// it, [`sum_blocked`]).
#[inline(always)]
fn stats<T: Elem>(xs: &[T], eps: f64) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let mean = sum_blocked(xs, |v| v) / n;
    let m = T::from_f64(mean);
    let var = sum_blocked(xs, |v| (v - m) * (v - m)) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

fn forward<T: Elem>(g: &Geom, x: &[T], gamma: &[T], beta: &[T], dropout: Option<DropoutMask>) -> Vec<T> {
    let len = g.group_len();
    if len == 0 {
        return vec![T::zero(); x.len()];
    }
    let groups = g.c / g.cg;
    // Written in full slice by slice, so never zeroed first.
    let mut y = Vec::with_capacity(x.len());
    y.spare_capacity_mut().par_chunks_mut(len).with_min_len(g.min_tasks()).enumerate().for_each(|(i, y_g)| {
        let c0 = (i % groups) * g.cg;
        let slice = ForwardSlice {
            g,
            x: &x[i * len..][..len],
            y: y_g,
            gamma: &gamma[c0..][..g.cg],
            beta: &beta[c0..][..g.cg],
        };
        let y_g = simd::dispatch(slice);
        if let Some(mask) = dropout {
            mask.apply(i * len, y_g);
        }
    });
    // SAFETY: the slices (len values each, x.len() = a whole number of them) were all written.
    unsafe { y.set_len(x.len()) };
    y
}

/// One `(sample, group)` slice of [`forward`]: `x`, `y` hold its `cg` channels, `gamma` and
/// `beta` their parameters.
struct ForwardSlice<'a, T> {
    g: &'a Geom,
    x: &'a [T],
    y: &'a mut [MaybeUninit<T>],
    gamma: &'a [T],
    beta: &'a [T],
}

impl<'a, T: Elem> pulp::WithSimd for ForwardSlice<'a, T> {
    /// The slice's outputs, all written.
    type Output = &'a mut [T];

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> &'a mut [T] {
        let Self { g, x, y, gamma, beta } = self;
        let (mean, rstd) = stats(x, g.eps);
        let m = T::from_f64(mean);
        for k in 0..g.cg {
            let xs = &x[k * g.s..][..g.s];
            let ys = &mut y[k * g.s..][..g.s];
            normalise_channel(ys, xs, scale(gamma[k], rstd), m, beta[k], g.silu);
        }
        // SAFETY: the cg channels of s values, the whole slice, were written above.
        unsafe { &mut *(y as *mut [MaybeUninit<T>] as *mut [T]) }
    }
}

/// The factor `a = γ·r` of `z = a·(x − μ) + β` (centred first: no cancellation when |μ| ≫ σ).
#[inline(always)]
fn scale<T: Elem>(gamma: T, rstd: f64) -> T {
    T::from_f64(gamma.to_f64() * rstd)
}

/// The coefficients `[a, m, b]` of `z = a·(x − m) + b` for every `(sample, channel)` of an f32
/// input `x (B, C, …)`, sample-major: `m` the mean of the channel's group, `a = γ_c·r`, `b =
/// β_c`, computed exactly as [`group_norm`] computes them (the same sums and roundings), so
/// that [`normalise_plane`] with them writes the same bits as the op. For a layer that
/// normalises its input as it reads it (`ops::conv2d::conv2d_normalized`). `x` must be on the
/// CPU and f32 with γ and β; the shapes are checked as by [`group_norm`].
pub(crate) fn coefficients(x: &Tensor, gamma: &Tensor, beta: &Tensor, num_groups: usize, eps: f64) -> Result<Vec<[f32; 3]>> {
    let g = Geom::new(x.shape(), num_groups, eps, false)?;
    if gamma.elem_count() != g.c || beta.elem_count() != g.c {
        bail!("group_norm: γ {:?} and β {:?} must have {} elements", gamma.dims(), beta.dims(), g.c)
    }
    let to_vec = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
    let (gamma, beta) = (to_vec(gamma)?, to_vec(beta)?);
    let x = x.contiguous()?;
    let (storage, layout) = x.storage_and_layout();
    let xs = match &*storage {
        candle_core::Storage::Cpu(CpuStorage::F32(v)) => &v[layout.start_offset()..][..x.elem_count()],
        _ => bail!("group_norm coefficients: expected an f32 tensor on the CPU, got {:?} on {:?}", x.dtype(), x.device()),
    };
    let len = g.group_len();
    let mut out = vec![[0f32; 3]; g.b * g.c];
    if len == 0 {
        return Ok(out);
    }
    let groups = g.c / g.cg;
    out.par_chunks_mut(g.cg).with_min_len(g.min_tasks()).enumerate().for_each(|(i, coef)| {
        let c0 = (i % groups) * g.cg;
        let (mean, rstd) = simd::dispatch(Stats { x: &xs[i * len..][..len], eps });
        let m = mean as f32;
        for (k, coef) in coef.iter_mut().enumerate() {
            *coef = [scale(gamma[c0 + k], rstd), m, beta[c0 + k]];
        }
    });
    Ok(out)
}

/// [`stats`] of one slice, vectorised.
struct Stats<'a> {
    x: &'a [f32],
    eps: f64,
}

impl pulp::WithSimd for Stats<'_> {
    type Output = (f64, f64);

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> (f64, f64) {
        stats(self.x, self.eps)
    }
}

/// `dst = z` or `SiLU(z)` with `z = a·(x − m) + b` for one channel's values `src` and its
/// [`coefficients`] `[a, m, b]`: the values [`group_norm`] writes for them, bit for bit.
pub(crate) fn normalise_plane(dst: &mut [f32], src: &[f32], [a, m, b]: [f32; 3], silu: bool) {
    // SAFETY: `MaybeUninit<f32>` has f32's layout, and `normalise_channel` writes only
    // initialised values through it.
    let dst = unsafe { &mut *(dst as *mut [f32] as *mut [MaybeUninit<f32>]) };
    simd::dispatch(Plane { dst, src, a, m, b, silu })
}

/// [`normalise_channel`] for [`normalise_plane`], vectorised.
struct Plane<'a> {
    dst: &'a mut [MaybeUninit<f32>],
    src: &'a [f32],
    a: f32,
    m: f32,
    b: f32,
    silu: bool,
}

impl pulp::WithSimd for Plane<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        normalise_channel(self.dst, self.src, self.a, self.m, self.b, self.silu)
    }
}

/// `[dx; dγ; dβ]` from `x`, `dy` and `params = [γ; β]` (`dy` masked by `dropout` first).
fn backward<T: Elem>(g: &Geom, x: &[T], dy: &[T], params: &[T], dropout: Option<DropoutMask>) -> Vec<T> {
    let (gamma, beta) = params.split_at(g.c);
    let len = g.group_len();
    let n = x.len();
    if len == 0 {
        return vec![T::zero(); n + 2 * g.c];
    }
    // Written in full (dx slice by slice, then dγ and dβ), so never zeroed first.
    let mut out = uninit(n + 2 * g.c);
    let (dx, dparams) = out.split_at_mut(n);
    let groups = g.c / g.cg;
    // Per (sample, channel): Σ dz and Σ dz·x̂, summed over the batch afterwards.
    let mut part_beta = vec![0f64; g.b * g.c];
    let mut part_gamma = vec![0f64; g.b * g.c];
    dx.par_chunks_mut(len)
        .zip(part_beta.par_chunks_mut(g.cg))
        .zip(part_gamma.par_chunks_mut(g.cg))
        .with_min_len(g.min_tasks())
        .enumerate()
        .for_each(|(i, ((dx_g, sum_dz), sum_dz_xhat))| {
            let c0 = (i % groups) * g.cg;
            let dy_g = &dy[i * len..][..len];
            let mut masked = Vec::new();
            let dy_g = match dropout {
                Some(mask) => {
                    masked.extend_from_slice(dy_g);
                    mask.apply(i * len, &mut masked);
                    &masked[..]
                }
                None => dy_g,
            };
            let slice = BackwardSlice {
                g,
                x: &x[i * len..][..len],
                dy: dy_g,
                dx: dx_g,
                gamma: &gamma[c0..][..g.cg],
                beta: &beta[c0..][..g.cg],
                sum_dz,
                sum_dz_xhat,
            };
            simd::dispatch(slice)
        });
    let (dgamma, dbeta) = dparams.split_at_mut(g.c);
    for c in 0..g.c {
        let (mut sg, mut sb) = (0f64, 0f64);
        for bi in 0..g.b {
            sg += part_gamma[bi * g.c + c];
            sb += part_beta[bi * g.c + c];
        }
        dgamma[c].write(T::from_f64(sg));
        dbeta[c].write(T::from_f64(sb));
    }
    // SAFETY: every slice of dx was written by its task, dγ and dβ above.
    unsafe { assume_init(out) }
}

/// One `(sample, group)` slice of [`backward`]; `sum_dz` and `sum_dz_xhat` receive the slice's
/// per-channel `Σ dz` and `Σ dz·x̂`.
struct BackwardSlice<'a, T> {
    g: &'a Geom,
    x: &'a [T],
    dy: &'a [T],
    dx: &'a mut [MaybeUninit<T>],
    gamma: &'a [T],
    beta: &'a [T],
    sum_dz: &'a mut [f64],
    sum_dz_xhat: &'a mut [f64],
}

impl<T: Elem> pulp::WithSimd for BackwardSlice<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Self { g, x, dy, dx, gamma, beta, sum_dz, sum_dz_xhat } = self;
        let (mean, rstd) = stats(x, g.eps);
        let m = T::from_f64(mean);
        let r = T::from_f64(rstd);
        // Pass 1: dz into dx, and the per-channel sums.
        let (mut sum_dxhat, mut sum_dxhat_xhat) = (0f64, 0f64);
        for k in 0..g.cg {
            let (gm, bt) = (gamma[k], beta[k]);
            let xs = &x[k * g.s..][..g.s];
            let dys = &dy[k * g.s..][..g.s];
            let dzs = dz_channel(&mut dx[k * g.s..][..g.s], xs, dys, gm * r, m, bt, g.silu);
            let (sd, sdx) = channel_sums(xs, dzs, mean, rstd);
            sum_dz[k] = sd;
            sum_dz_xhat[k] = sdx;
            let gm = gm.to_f64();
            sum_dxhat += gm * sd;
            sum_dxhat_xhat += gm * sdx;
        }
        // SAFETY: pass 1 wrote every value (the cg channels of s values).
        let dx = unsafe { &mut *(dx as *mut [MaybeUninit<T>] as *mut [T]) };
        // Pass 2: dx = r·(γ·dz − mean(dx̂) − x̂·mean(dx̂·x̂)).
        let inv_n = 1.0 / x.len() as f64;
        let (a1, a2) = (sum_dxhat * inv_n, sum_dxhat_xhat * inv_n);
        for k in 0..g.cg {
            // dx = (r·γ)·dz − (r·a2·r)·(x − μ) − r·a1.
            let p = T::from_f64(rstd * gamma[k].to_f64());
            let q = T::from_f64(-rstd * a2 * rstd);
            let o = T::from_f64(-rstd * a1);
            let xs = &x[k * g.s..][..g.s];
            let dxs = &mut dx[k * g.s..][..g.s];
            dx_channel(dxs, xs, p, q, m, o);
        }
    }
}

// The per-channel loops take their slices as arguments: references that arrive inside a
// struct carry no no-alias guarantee for LLVM, and without it these loops stay scalar.

/// `y = z` or `y = SiLU(z)` with `z = a·(x − m) + b`.
#[inline(always)]
fn normalise_channel<T: Elem>(ys: &mut [MaybeUninit<T>], xs: &[T], a: T, m: T, b: T, silu: bool) {
    assert_eq!(ys.len(), xs.len(), "every output is written");
    if silu {
        for (yv, &xv) in ys.iter_mut().zip(xs) {
            let z = a * (xv - m) + b;
            yv.write(z * sigmoid(z));
        }
    } else {
        for (yv, &xv) in ys.iter_mut().zip(xs) {
            yv.write(a * (xv - m) + b);
        }
    }
}

/// `dz = dy·SiLU′(z)` with `z = a·(x − m) + b` (or `dz = dy` without SiLU), written into `dzs`, which it
/// returns initialised.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn dz_channel<'a, T: Elem>(dzs: &'a mut [MaybeUninit<T>], xs: &[T], dys: &[T], a: T, m: T, b: T, silu: bool) -> &'a [T] {
    assert_eq!(dzs.len(), dys.len(), "every dz is written");
    if silu {
        for ((dz, &xv), &d) in dzs.iter_mut().zip(xs).zip(dys) {
            let z = a * (xv - m) + b;
            let sg = sigmoid(z);
            dz.write(d * sg * (T::one() + z * (T::one() - sg)));
        }
    } else {
        for (dz, &d) in dzs.iter_mut().zip(dys) {
            dz.write(d);
        }
    }
    // SAFETY: every value was written above.
    unsafe { &*(dzs as *const [MaybeUninit<T>] as *const [T]) }
}

/// `dx = p·dz + q·(x − m) + o`, in place over `dz`.
#[inline(always)]
fn dx_channel<T: Elem>(dxs: &mut [T], xs: &[T], p: T, q: T, m: T, o: T) {
    for (d, &xv) in dxs.iter_mut().zip(xs) {
        *d = p * *d + q * (xv - m) + o;
    }
}

/// `(Σ dz, Σ dz·x̂)` over one channel, `x̂ = (x − μ)·r`, accumulated in f64.
#[inline(always)]
fn channel_sums<T: Elem>(xs: &[T], dzs: &[T], mean: f64, rstd: f64) -> (f64, f64) {
    let mut sd = [0f64; 4];
    let mut sdx = [0f64; 4];
    let xc = xs.chunks_exact(4);
    let dc = dzs.chunks_exact(4);
    let (xr, dr) = (xc.remainder(), dc.remainder());
    for (xq, dq) in xc.zip(dc) {
        for l in 0..4 {
            let d = dq[l].to_f64();
            sd[l] += d;
            sdx[l] += d * (xq[l].to_f64() - mean);
        }
    }
    let (mut s1, mut s2) = (sd.iter().sum::<f64>(), sdx.iter().sum::<f64>());
    for (&xv, &d) in xr.iter().zip(dr) {
        let d = d.to_f64();
        s1 += d;
        s2 += d * (xv.to_f64() - mean);
    }
    (s1, s2 * rstd)
}
