//! `stipple_nn::ops::gated_tanh` against the same formula in candle ops (`σ` of the first half
//! of axis 1 times `tanh` of the second): values and gradients in f32 and f64, and central
//! finite differences in f64.

use candle_core::{DType, Device, Result, Tensor, Var};
mod common;

use common::{det, max_abs_diff};
use stipple_nn::ops::gated_tanh;

fn by_candle(y: &Tensor) -> Result<Tensor> {
    let c = y.dim(1)? / 2;
    candle_nn::ops::sigmoid(&y.narrow(1, 0, c)?)? * y.narrow(1, c, c)?.tanh()?
}

/// Inputs over ±12 (saturated and linear regions), several samples and task chunks.
fn check(dims: [usize; 3], dtype: DType, tol: f64) -> Result<()> {
    let y = Var::from_tensor(&(det(&dims, 1, dtype)? * 12.0)?)?;
    let ours = gated_tanh(&y)?;
    let reference = by_candle(&y)?;
    assert_eq!(ours.dims(), [dims[0], dims[1] / 2, dims[2]]);
    let d = max_abs_diff(&ours, &reference)?;
    assert!(d < tol, "{dims:?} {dtype:?}: forward differs by {d:e}");
    let r = det(ours.dims(), 2, dtype)?;
    let a = (ours * &r)?.sum_all()?.backward()?.remove(&y).expect("gradient");
    let b = (reference * &r)?.sum_all()?.backward()?.remove(&y).expect("gradient");
    let d = max_abs_diff(&a, &b)?;
    assert!(d < tol, "{dims:?} {dtype:?}: gradient differs by {d:e}");
    Ok(())
}

#[test]
fn matches_candle_ops() -> Result<()> {
    for dims in [[1, 2, 1], [3, 6, 7], [2, 16, 5000], [1, 4, 40_000]] {
        check(dims, DType::F32, 1e-6)?;
        check(dims, DType::F64, 1e-14)?;
    }
    Ok(())
}

#[test]
fn rejects_an_odd_channel_count() -> Result<()> {
    assert!(gated_tanh(&det(&[1, 3, 4], 1, DType::F32)?).is_err());
    Ok(())
}

#[test]
fn gradient_matches_finite_differences_f64() -> Result<()> {
    let y0 = (det(&[2, 4, 3], 3, DType::F64)? * 3.0)?;
    let r = det(&[2, 2, 3], 4, DType::F64)?;
    let y = Var::from_tensor(&y0)?;
    let analytic = (gated_tanh(&y)? * &r)?.sum_all()?.backward()?.remove(&y).unwrap().flatten_all()?.to_vec1::<f64>()?;
    let base = y0.flatten_all()?.to_vec1::<f64>()?;
    let loss = |v: Vec<f64>| -> Result<f64> { (gated_tanh(&Tensor::from_vec(v, (2, 4, 3), &Device::Cpu)?)? * &r)?.sum_all()?.to_scalar::<f64>() };
    let eps = 1e-6;
    for (i, &a) in analytic.iter().enumerate() {
        let (mut up, mut down) = (base.clone(), base.clone());
        up[i] += eps;
        down[i] -= eps;
        let numeric = (loss(up)? - loss(down)?) / (2.0 * eps);
        assert!((numeric - a).abs() < 1e-8, "entry {i}: numeric {numeric} vs analytic {a}");
    }
    Ok(())
}
