//! `stipple_nn::ops::geglu` (fused `a · GELU(g)` custom op) against the composition of candle
//! ops it replaces (`narrow`, `gelu_erf`, `mul`): outputs and the gradient w.r.t. the input
//! (candle's autograd as reference) on odd shapes, large gates, and shape errors.

use candle_core::{DType, Device, Result, Tensor, Var};
mod common;

use common::{det, max_abs, max_abs_diff};
use stipple_nn::ops::geglu;

/// Input shapes: rows not a multiple of the op's 16-row tasks, width 2 (halves of one),
/// rank 2, 3 and 4.
const SHAPES: [&[usize]; 5] = [&[37, 10], &[1, 2], &[2, 19, 14], &[3, 1, 5, 6], &[17, 2560]];

fn reference(h: &Tensor) -> Result<Tensor> {
    let last = h.rank() - 1;
    let inner = h.dim(last)? / 2;
    h.narrow(last, 0, inner)? * h.narrow(last, inner, inner)?.gelu_erf()?
}

/// The output and the gradient of `Σ out·r` w.r.t. the input.
fn run(f: impl Fn(&Tensor) -> Result<Tensor>, h: &Tensor, r: &Tensor) -> Result<(Tensor, Tensor)> {
    let h = Var::from_tensor(h)?;
    let out = f(&h)?;
    let grads = (&out * r)?.sum_all()?.backward()?;
    Ok((out, grads.get(&h).cloned().expect("gradient")))
}

fn compare(dtype: DType, tol: f64) -> Result<()> {
    for shape in SHAPES {
        // Gates in [−6, 6]: both tails of the error function.
        let h = (det(shape, 1, dtype)? * 6.0)?;
        let mut half = shape.to_vec();
        *half.last_mut().unwrap() /= 2;
        let r = det(&half, 2, dtype)?;
        let (out, dh) = run(geglu, &h, &r)?;
        let (out_ref, dh_ref) = run(reference, &h, &r)?;
        assert_eq!(out.dims(), half.as_slice());
        for (name, a, b) in [("out", &out, &out_ref), ("dh", &dh, &dh_ref)] {
            let diff = max_abs_diff(a, b)?;
            assert!(diff <= tol * (1.0 + max_abs(b)?), "{dtype:?} {shape:?} {name}: off by {diff}");
        }
        assert!(max_abs(&out)? > 0.1, "{shape:?}: the output should not vanish");
    }
    Ok(())
}

/// f64: the output to rounding; the gradient to 10⁻⁶ relative, since candle's own `gelu_erf`
/// backward (the reference) uses 1/√(2π) rounded to 0.398942 (candle-core 0.11.1
/// `backprop.rs`), and against central differences below to 10⁻⁸.
#[test]
fn matches_candle_f64() -> Result<()> {
    compare(DType::F64, 1e-6)
}

/// Central differences of `L = Σ geglu(h)·r` w.r.t. every input value, in f64.
#[test]
fn gradient_matches_finite_differences() -> Result<()> {
    let h = (det(&[5, 8], 7, DType::F64)? * 4.0)?;
    let r = det(&[5, 4], 8, DType::F64)?;
    let (_, dh) = run(geglu, &h, &r)?;
    let dh = dh.flatten_all()?.to_vec1::<f64>()?;
    let values = h.flatten_all()?.to_vec1::<f64>()?;
    let loss = |v: &[f64]| -> Result<f64> {
        let h = Tensor::from_vec(v.to_vec(), (5, 8), &Device::Cpu)?;
        (geglu(&h)? * &r)?.sum_all()?.to_scalar::<f64>()
    };
    let eps = 1e-6;
    for i in 0..values.len() {
        let (mut up, mut down) = (values.clone(), values.clone());
        up[i] += eps;
        down[i] -= eps;
        let fd = (loss(&up)? - loss(&down)?) / (2.0 * eps);
        assert!((fd - dh[i]).abs() <= 1e-8 * (1.0 + fd.abs()), "entry {i}: {} vs {fd}", dh[i]);
    }
    Ok(())
}

/// f32: the op's `erf` is within 5·10⁻⁷ of the exact one (`simd::erf_f32`), candle's is exact
/// to f32 rounding; `a · g/2 · (1 + erf)` with |a|, |g| ≤ 6 moves by at most 18 · 5·10⁻⁷.
#[test]
fn matches_candle_f32() -> Result<()> {
    compare(DType::F32, 6e-6)
}

#[test]
fn odd_width_is_an_error() -> Result<()> {
    let h = Tensor::zeros((2, 5), DType::F32, &Device::Cpu)?;
    let err = geglu(&h).unwrap_err().to_string();
    assert!(err.contains("two halves"), "{err}");
    Ok(())
}
