//! `stipple_nn::ops::upsample_nearest` against candle's `upsample_nearest2d`: values and the
//! input gradient (candle's autograd as reference) for factors 1–3 on non-square maps.

use candle_core::{DType, Result, Var};
mod common;

use common::{det, max_abs_diff};
use stipple_nn::ops::upsample_nearest;

#[test]
fn matches_candle_with_gradient() -> Result<()> {
    for dtype in [DType::F32, DType::F64] {
        for (dims, s) in [([2usize, 3, 4, 5], 2usize), ([1, 1, 1, 1], 3), ([3, 2, 3, 1], 1), ([2, 5, 7, 3], 3)] {
            let x = Var::from_tensor(&det(&dims, 1, dtype)?)?;
            let (h, w) = (dims[2], dims[3]);
            let ours = upsample_nearest(&x, s)?;
            let reference = x.upsample_nearest2d(s * h, s * w)?;
            assert_eq!(max_abs_diff(&ours, &reference)?, 0.0, "{dims:?} ×{s}: values");
            let r = det(ours.dims(), 2, dtype)?;
            let g_ours = (&ours * &r)?.sum_all()?.backward()?;
            let g_ref = (&reference * &r)?.sum_all()?.backward()?;
            let (a, e) = (g_ours.get(&x).expect("gradient"), g_ref.get(&x).expect("gradient"));
            let tol = if dtype == DType::F32 { 1e-6 } else { 1e-14 };
            assert!(max_abs_diff(a, e)? <= tol, "{dims:?} ×{s} {dtype:?}: gradient");
        }
    }
    Ok(())
}

#[test]
fn rejects_a_zero_scale() -> Result<()> {
    assert!(upsample_nearest(&det(&[1, 1, 2, 2], 1, DType::F32)?, 0).is_err());
    Ok(())
}
