//! `ops::linear_inference` (the GEMM accumulating onto the bias and residual, at inference)
//! against candle's matmul with the additions after it, in f32 and f64, with every combination
//! of bias and residual; and it declines when an operand tracks gradients.

mod common;

use candle_core::{DType, Result, Tensor, Var};
use common::det;
use stipple_nn::ops::linear_inference;

/// The largest absolute difference over the largest absolute value of `want`.
fn relative_error(got: &Tensor, want: &Tensor) -> Result<f64> {
    let diff = (got - want)?.abs()?.flatten_all()?.max(0)?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    let scale = want.abs()?.flatten_all()?.max(0)?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    Ok(diff / scale)
}

#[test]
fn matches_matmul_then_bias_and_residual() -> Result<()> {
    // Rows and widths that are not multiples of the GEMM's tiles, and a product big enough
    // for the GEMM's threads.
    for (dtype, tolerance) in [(DType::F32, 1e-5), (DType::F64, 1e-13)] {
        for (r, c, o) in [(7, 5, 3), (300, 77, 130), (512, 320, 640)] {
            let x = det(&[r, c], 1, dtype)?;
            let w = det(&[o, c], 2, dtype)?;
            let b = det(&[o], 3, dtype)?;
            let res = det(&[r, o], 4, dtype)?;
            let product = x.matmul(&w.t()?)?;
            for (bias, residual) in [(None, None), (Some(&b), None), (None, Some(&res)), (Some(&b), Some(&res))] {
                let mut want = product.clone();
                if let Some(b) = bias {
                    want = want.broadcast_add(b)?;
                }
                if let Some(res) = residual {
                    want = (want + res)?;
                }
                let got = linear_inference(&x, &w, bias, residual)?.expect("no operand tracks gradients");
                assert_eq!(got.dims(), [r, o]);
                let err = relative_error(&got, &want)?;
                assert!(err < tolerance, "{dtype:?} ({r}, {c}) × ({o}, {c})ᵀ, bias {}, residual {}: relative error {err:e}", bias.is_some(), residual.is_some());
            }
        }
    }
    Ok(())
}

#[test]
fn declines_with_gradients_and_rejects_shapes_that_do_not_fit() -> Result<()> {
    let x = det(&[4, 6], 1, DType::F32)?;
    let w = det(&[5, 6], 2, DType::F32)?;
    let b = det(&[5], 3, DType::F32)?;
    let var = Var::from_tensor(&w)?;
    assert!(linear_inference(&x, var.as_tensor(), Some(&b), None)?.is_none());
    assert!(linear_inference(&x, &w, Some(&det(&[4], 3, DType::F32)?), None).is_err());
    assert!(linear_inference(&x, &det(&[5, 7], 2, DType::F32)?, None, None).is_err());
    Ok(())
}
