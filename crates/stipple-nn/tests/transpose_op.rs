//! `stipple_nn::ops::transpose_last` and `transpose_last_add` against candle's transpose (and
//! addition): values and gradients (candle's autograd through both), f32 and f64, on shapes
//! smaller than, equal to and not a multiple of the 32 × 32 tile, and shape errors.

use candle_core::{DType, Result, Var};
mod common;

use common::{det, max_abs_diff};
use stipple_nn::ops::{transpose_last, transpose_last_add};

const SHAPES: [(usize, usize, usize); 5] = [(1, 1, 1), (2, 3, 5), (1, 32, 32), (2, 70, 33), (3, 64, 100)];

#[test]
fn matches_candle_with_gradients() -> Result<()> {
    for dtype in [DType::F32, DType::F64] {
        for (b, r, s) in SHAPES {
            let x = Var::from_tensor(&det(&[b, r, s], 1, dtype)?)?;
            let t = Var::from_tensor(&det(&[b, s, r], 2, dtype)?)?;
            let w = det(&[b, s, r], 3, dtype)?;
            let w2 = det(&[b, r, s], 4, dtype)?;
            // transpose_last: exact values, and the gradient of Σ xᵀ·w.
            let ours = transpose_last(&x)?;
            let reference = x.transpose(1, 2)?.contiguous()?;
            assert_eq!(ours.dims(), [b, s, r]);
            assert!(max_abs_diff(&ours, &reference)? == 0.0, "{dtype:?} {:?}: transpose", (b, r, s));
            let g = (&ours * &w)?.sum_all()?.backward()?;
            let g_ref = (&reference * &w)?.sum_all()?.backward()?;
            assert!(max_abs_diff(g.get(&x).expect("dx"), g_ref.get(&x).expect("dx"))? == 0.0);
            // transpose_last_add: tᵀ + x, and the gradients of Σ (tᵀ + x)·w2 for both.
            let ours = transpose_last_add(&t, &x)?;
            let reference = (t.transpose(1, 2)? + x.as_tensor())?;
            assert!(max_abs_diff(&ours, &reference)? == 0.0, "{dtype:?} {:?}: transpose + add", (b, r, s));
            let g = (&ours * &w2)?.sum_all()?.backward()?;
            let g_ref = (&reference * &w2)?.sum_all()?.backward()?;
            for v in [&t, &x] {
                assert!(max_abs_diff(g.get(v).expect("gradient"), g_ref.get(v).expect("gradient"))? == 0.0);
            }
        }
    }
    Ok(())
}

#[test]
fn rejects_shapes_that_do_not_fit() -> Result<()> {
    let t = det(&[2, 3, 5], 1, DType::F32)?;
    assert!(transpose_last_add(&t, &det(&[2, 3, 5], 2, DType::F32)?).is_err());
    assert!(transpose_last_add(&t, &det(&[1, 5, 3], 2, DType::F32)?).is_err());
    assert!(transpose_last(&det(&[2, 3], 1, DType::F32)?).is_err());
    Ok(())
}
