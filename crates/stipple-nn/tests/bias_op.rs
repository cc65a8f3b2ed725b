//! `stipple_nn::ops::add_bias` against candle's `broadcast_add`: values and the gradients of both
//! inputs (candle's autograd as reference), on shapes from one value to several rayon tasks.

use candle_core::{DType, Result, Var};
mod common;

use common::{det, max_abs, max_abs_diff};
use stipple_nn::ops::{add_bias, add_bias_to_fresh};

#[test]
fn matches_broadcast_add_with_gradients() -> Result<()> {
    for dtype in [DType::F32, DType::F64] {
        let tol = if dtype == DType::F32 { 1e-5 } else { 1e-12 };
        for (rows, cols) in [(1, 1), (3, 5), (700, 13), (256, 8)] {
            let y = Var::from_tensor(&det(&[rows, cols], 1, dtype)?)?;
            let b = Var::from_tensor(&det(&[cols], 2, dtype)?)?;
            let r = det(&[rows, cols], 3, dtype)?;
            let ours = add_bias(&y, &b)?;
            let reference = y.broadcast_add(&b)?;
            assert!(max_abs_diff(&ours, &reference)? <= tol, "{rows}×{cols} {dtype:?}: values");
            let g_ours = (&ours * &r)?.sum_all()?.backward()?;
            let g_ref = (&reference * &r)?.sum_all()?.backward()?;
            for (name, v) in [("y", &y), ("b", &b)] {
                let (a, e) = (g_ours.get(v).expect("gradient"), g_ref.get(v).expect("gradient"));
                let scale = 1.0 + max_abs(e)?;
                assert!(max_abs_diff(a, e)? <= tol * scale, "{rows}×{cols} {dtype:?}: d/d{name}");
            }
        }
    }
    Ok(())
}

#[test]
fn rejects_a_bias_that_does_not_fit() -> Result<()> {
    let y = det(&[4, 3], 1, DType::F32)?;
    assert!(add_bias(&y, &det(&[4], 2, DType::F32)?).is_err());
    assert!(add_bias(&y, &det(&[1, 3], 2, DType::F32)?).is_err());
    assert!(add_bias(&det(&[2, 4, 3], 1, DType::F32)?, &det(&[3], 2, DType::F32)?).is_err());
    Ok(())
}

/// Without gradients the bias is added in place to the fresh product; with a tracked input the
/// same call falls back to the op with a backward pass. Both equal `broadcast_add`.
#[test]
fn adds_to_a_fresh_product_in_place_or_with_gradients() -> Result<()> {
    for dtype in [DType::F32, DType::F64] {
        let (y, b) = (det(&[700, 13], 1, dtype)?, det(&[13], 2, dtype)?);
        let reference = y.broadcast_add(&b)?;
        let fresh = (&y * 1.0)?;
        let ours = add_bias_to_fresh(fresh, &b, None)?;
        assert!(max_abs_diff(&ours, &reference)? == 0.0, "{dtype:?}: in place");
        let tracked = Var::from_tensor(&y)?;
        let ours = add_bias_to_fresh(tracked.as_tensor().clone(), &b, None)?;
        assert!(max_abs_diff(&ours, &reference)? == 0.0, "{dtype:?}: with gradients");
        let grads = ours.sum_all()?.backward()?;
        assert!(grads.get(&tracked).is_some(), "{dtype:?}: the tracked input gets a gradient");
        assert_eq!(tracked.as_tensor().to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?, y.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?, "the tracked input is not modified");
    }
    Ok(())
}

/// With a residual: `y + b + r` in place without gradients, and with gradients for every
/// tracked input (`y`, `b` and the residual) through the fallback.
#[test]
fn adds_a_residual_with_the_bias() -> Result<()> {
    for dtype in [DType::F32, DType::F64] {
        let (y, b, r) = (det(&[300, 7], 1, dtype)?, det(&[7], 2, dtype)?, det(&[300, 7], 3, dtype)?);
        let reference = (y.broadcast_add(&b)? + &r)?;
        let ours = add_bias_to_fresh((&y * 1.0)?, &b, Some(&r))?;
        assert!(max_abs_diff(&ours, &reference)? == 0.0, "{dtype:?}: in place");
        let (yv, bv, rv) = (Var::from_tensor(&y)?, Var::from_tensor(&b)?, Var::from_tensor(&r)?);
        let ours = add_bias_to_fresh(yv.as_tensor().clone(), &bv, Some(&rv))?;
        assert!(max_abs_diff(&ours, &reference)? == 0.0, "{dtype:?}: with gradients");
        let grads = ours.sum_all()?.backward()?;
        for v in [&yv, &bv, &rv] {
            assert!(grads.get(v).is_some(), "{dtype:?}: every input gets a gradient");
        }
        assert!(add_bias_to_fresh((&y * 1.0)?, &b, Some(&det(&[7, 300], 3, dtype)?)).is_err(), "a residual of another shape");
    }
    Ok(())
}
