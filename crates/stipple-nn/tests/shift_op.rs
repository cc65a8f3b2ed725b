//! `stipple_nn::ops::add_shift` against candle's broadcast addition: values (exact) and the
//! gradients w.r.t. both operands, in f32 and f64, including rows split over several tasks.

use candle_core::{DType, Result, Var};
mod common;

use common::{det, max_abs, max_abs_diff};
use stipple_nn::ops::add_shift;

#[test]
fn matches_candle_broadcast_add() -> Result<()> {
    for (dtype, tol) in [(DType::F32, 1e-6), (DType::F64, 1e-12)] {
        for dims in [[1, 1, 1], [2, 3, 5], [3, 7, 1000], [2, 64, 333]] {
            let x = Var::from_tensor(&det(&dims, 1, dtype)?)?;
            let s = Var::from_tensor(&det(&dims[..2], 2, dtype)?)?;
            let ours = add_shift(&x, &s)?;
            let reference = x.broadcast_add(&s.unsqueeze(2)?)?;
            assert_eq!(max_abs_diff(&ours, &reference)?, 0.0, "{dims:?}");
            let r = det(&dims, 3, dtype)?;
            let g_ours = (ours * &r)?.sum_all()?.backward()?;
            let g_ref = (reference * &r)?.sum_all()?.backward()?;
            for v in [&x, &s] {
                let (a, b) = (g_ours.get(v).expect("gradient"), g_ref.get(v).expect("gradient"));
                let d = max_abs_diff(a, b)?;
                assert!(d < tol * max_abs(b)?.max(1.0), "{dims:?} {dtype:?}: gradient differs by {d:e}");
            }
        }
    }
    Ok(())
}

#[test]
fn rejects_a_shift_of_the_wrong_shape() -> Result<()> {
    let x = det(&[2, 3, 4], 1, DType::F32)?;
    for shape in [&[3][..], &[3, 2], &[2, 3, 1]] {
        assert!(add_shift(&x, &det(shape, 2, DType::F32)?).is_err(), "{shape:?} accepted");
    }
    Ok(())
}
