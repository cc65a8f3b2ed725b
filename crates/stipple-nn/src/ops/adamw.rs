//! The optimizer's kernels: one AdamW update (Loshchilov & Hutter 2019, "Decoupled Weight Decay
//! Regularization", Algorithm 2) of a parameter and its two moments, in place, as three
//! parallel passes; and the sum of squares behind the gradient norm.
//!
//! Written with candle ops the update is a dozen passes over every parameter, each allocating
//! a new tensor and each on the calling thread; here `m`, `v` and the parameter are updated
//! where they are, by candle's in-place custom ops, with the values spread over rayon's threads.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, InplaceOp2, InplaceOp3, Layout, Result, Tensor, WithDType};
use rayon::prelude::*;

use super::{cpu_kernel_applies, data};

/// Values per rayon task.
const CHUNK: usize = 16 * 1024;

/// The scalars of one update.
#[derive(Debug, Clone, Copy)]
pub struct AdamWStep {
    /// Learning rate of this step.
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Factor applied to the gradient first (gradient clipping; 1 for none).
    pub grad_scale: f64,
    /// `1 − β₁ᵗ` and `1 − β₂ᵗ`, the bias corrections of step `t`.
    pub bias1: f64,
    pub bias2: f64,
}

/// Applies `step` to `param` with gradient `grad` and moments `m`, `v` (all of one shape):
/// `g ← s·g`, `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
/// `p ← p·(1 − lr·λ) − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)`.
///
/// Returns `false`, changing nothing, when this op has no kernel for the tensors (not on the
/// CPU, not f32/f64, not contiguous, or not one dtype); the caller then uses candle ops.
pub fn adamw_step(param: &Tensor, grad: &Tensor, m: &Tensor, v: &Tensor, step: AdamWStep) -> Result<bool> {
    let tensors = [param, grad, m, v];
    if !cpu_kernel_applies(&tensors) || !tensors.iter().all(|t| t.is_contiguous()) {
        return Ok(false);
    }
    if tensors.iter().any(|t| t.dims() != param.dims()) {
        bail!("adamw_step: parameter {:?}, gradient {:?}, m {:?} and v {:?} differ in shape", param.dims(), grad.dims(), m.dims(), v.dims())
    }
    m.inplace_op2(grad, &FirstMoment(step))?;
    v.inplace_op2(grad, &SecondMoment(step))?;
    param.inplace_op3(m, v, &ParamUpdate(step))?;
    Ok(true)
}

/// `Σ x²` over all values of `t` in f64 (for the gradient norm), on rayon's threads; `None`
/// when there is no kernel for `t` (not on the CPU, not f32/f64, not contiguous).
pub fn sum_of_squares(t: &Tensor) -> Result<Option<f64>> {
    if !t.device().is_cpu() || !t.is_contiguous() {
        return Ok(None);
    }
    fn total<T: WithDType>(v: &[T]) -> f64 {
        // Per-task sums added in task order: the result does not depend on the thread count.
        let parts: Vec<f64> = v.par_chunks(CHUNK).map(|c| c.iter().map(|x| x.to_f64() * x.to_f64()).sum()).collect();
        parts.iter().sum()
    }
    let (storage, layout) = t.storage_and_layout();
    let Some((lo, hi)) = layout.contiguous_offsets() else { return Ok(None) };
    Ok(match &*storage {
        candle_core::Storage::Cpu(CpuStorage::F32(v)) => Some(total(&v[lo..hi])),
        candle_core::Storage::Cpu(CpuStorage::F64(v)) => Some(total(&v[lo..hi])),
        _ => None,
    })
}

/// `m ← β₁m + (1−β₁)·s·g`.
struct FirstMoment(AdamWStep);
/// `v ← β₂v + (1−β₂)·(s·g)²`.
struct SecondMoment(AdamWStep);
/// `p ← p·(1 − lr·λ) − lr·m̂/(√v̂ + ε)`.
struct ParamUpdate(AdamWStep);


/// Runs the generic kernel `$f` on `dst` and the sources as slices of f32 or of f64.
macro_rules! run_kernel {
    ($name:literal, $f:ident, $step:expr, $dst_s:expr, $dst_l:expr, [$(($src_s:expr, $src_l:expr)),*]) => {{
        let Some((lo, hi)) = $dst_l.contiguous_offsets() else { bail!("{}: operands must be contiguous", $name) };
        match $dst_s {
            CpuStorage::F32(d) => $f::<f32>(&mut d[lo..hi], [$(data::<f32>($src_s, $src_l, $name)?),*], $step),
            CpuStorage::F64(d) => $f::<f64>(&mut d[lo..hi], [$(data::<f64>($src_s, $src_l, $name)?),*], $step),
            d => bail!("{}: the CPU kernel supports f32 and f64 only (got {:?})", $name, d.dtype()),
        }
        Ok(())
    }};
}

impl InplaceOp2 for FirstMoment {
    fn name(&self) -> &'static str {
        "stipple-adamw-m"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
        run_kernel!("stipple-adamw-m", first_moment, self.0, s1, l1, [(s2, l2)])
    }
}

impl InplaceOp2 for SecondMoment {
    fn name(&self) -> &'static str {
        "stipple-adamw-v"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
        run_kernel!("stipple-adamw-v", second_moment, self.0, s1, l1, [(s2, l2)])
    }
}

impl InplaceOp3 for ParamUpdate {
    fn name(&self) -> &'static str {
        "stipple-adamw-p"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<()> {
        run_kernel!("stipple-adamw-p", param_update, self.0, s1, l1, [(s2, l2), (s3, l3)])
    }
}

fn first_moment<T: WithDType>(m: &mut [T], [g]: [&[T]; 1], s: AdamWStep) {
    let (b1, c) = (T::from_f64(s.beta1), T::from_f64((1.0 - s.beta1) * s.grad_scale));
    m.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).for_each(|(m, g)| {
        for (m, &g) in m.iter_mut().zip(g) {
            *m = *m * b1 + g * c;
        }
    })
}

fn second_moment<T: WithDType>(v: &mut [T], [g]: [&[T]; 1], s: AdamWStep) {
    let (b2, c, gs) = (T::from_f64(s.beta2), T::from_f64(1.0 - s.beta2), T::from_f64(s.grad_scale));
    v.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).for_each(|(v, g)| {
        for (v, &g) in v.iter_mut().zip(g) {
            let g = g * gs;
            *v = *v * b2 + g * g * c;
        }
    })
}

/// `√x` in the value's own precision (an f32 square root through f64 rounds to the same f32).
fn sqrt<T: WithDType>(x: T) -> T {
    T::from_f64(x.to_f64().sqrt())
}

fn param_update<T: WithDType>(p: &mut [T], [m, v]: [&[T]; 2], s: AdamWStep) {
    let decay = T::from_f64(1.0 - s.lr * s.weight_decay);
    let (inv_b1, inv_b2) = (T::from_f64(1.0 / s.bias1), T::from_f64(1.0 / s.bias2));
    let (eps, lr) = (T::from_f64(s.eps), T::from_f64(s.lr));
    let chunks = p.par_chunks_mut(CHUNK).zip(m.par_chunks(CHUNK)).zip(v.par_chunks(CHUNK));
    chunks.for_each(|((p, m), v)| {
        for ((p, &m), &v) in p.iter_mut().zip(m).zip(v) {
            let update = (m * inv_b1) / (sqrt(v * inv_b2) + eps);
            *p = *p * decay - update * lr;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn step() -> AdamWStep {
        AdamWStep { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, grad_scale: 0.5, bias1: 0.1, bias2: 0.001 }
    }

    /// One update over more values than one rayon task holds, against the formula in f64.
    #[test]
    fn updates_in_place_as_the_formula_says() -> Result<()> {
        let n = 3 * CHUNK + 5;
        let vals = |k: f64| (0..n).map(|i| (i as f64 * k).sin()).collect::<Vec<f64>>();
        let (p0, g, m0, v0) = (vals(0.37), vals(1.3), vals(0.11), vals(0.07).iter().map(|x| x * x).collect());
        let t = |v: &Vec<f64>| Tensor::from_vec(v.clone(), n, &Device::Cpu);
        let (p, gt, m, v) = (t(&p0)?, t(&g)?, t(&m0)?, t(&v0)?);
        assert!(adamw_step(&p, &gt, &m, &v, step())?);
        let s = step();
        let (p1, m1, v1) = (p.to_vec1::<f64>()?, m.to_vec1::<f64>()?, v.to_vec1::<f64>()?);
        for i in 0..n {
            let gi = g[i] * s.grad_scale;
            let mi = s.beta1 * m0[i] + (1.0 - s.beta1) * gi;
            let vi = s.beta2 * v0[i] + (1.0 - s.beta2) * gi * gi;
            let pi = p0[i] * (1.0 - s.lr * s.weight_decay) - s.lr * (mi / s.bias1) / ((vi / s.bias2).sqrt() + s.eps);
            for (got, want) in [(m1[i], mi), (v1[i], vi), (p1[i], pi)] {
                assert!((got - want).abs() <= 1e-12 * (1.0 + want.abs()), "[{i}]: {got} vs {want}");
            }
        }
        Ok(())
    }

    #[test]
    fn sum_of_squares_matches_candle() -> Result<()> {
        let t = Tensor::arange(0f32, (3 * CHUNK + 9) as f32, &Device::Cpu)?.affine(1e-3, -1.0)?;
        let expect = t.to_dtype(DType::F64)?.sqr()?.sum_all()?.to_scalar::<f64>()?;
        let got = sum_of_squares(&t)?.expect("an f32 CPU kernel");
        assert!((got - expect).abs() <= 1e-12 * expect, "{got} vs {expect}");
        assert_eq!(sum_of_squares(&t.to_dtype(DType::F16)?)?, None);
        assert_eq!(sum_of_squares(&t.reshape((3, ()))?.t()?)?, None);
        Ok(())
    }

    #[test]
    fn declines_what_it_has_no_kernel_for() -> Result<()> {
        let dev = Device::Cpu;
        let half = Tensor::zeros(4, DType::F16, &dev)?;
        assert!(!adamw_step(&half, &half, &half, &half, step())?);
        let (a, b) = (Tensor::zeros((2, 3), DType::F32, &dev)?, Tensor::zeros((3, 2), DType::F32, &dev)?);
        assert!(!adamw_step(&a, &b.t()?, &a, &a, step())?); // a transposed view is not contiguous
        assert!(adamw_step(&a, &b, &a.copy()?, &a.copy()?, step()).is_err()); // shapes differ
        Ok(())
    }
}
