//! `ops::add_to_fresh`: the sum's bits as candle's addition, in place at inference (the result
//! shares the fresh tensor's storage, the residual is untouched), a candle addition with
//! gradients (which then flow to both), and a clear error for mismatched shapes.

mod common;

use candle_core::{DType, Result, Tensor, Var};
use common::det;
use stipple_nn::ops::add_to_fresh;

fn values(t: &Tensor) -> Result<Vec<f64>> {
    t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()
}

#[test]
fn same_bits_as_candle_addition() -> Result<()> {
    for dtype in [DType::F32, DType::F64] {
        for shape in [vec![3, 5, 7, 9], vec![2, 64, 33, 17], vec![1]] {
            let (y, x) = (det(&shape, 1, dtype)?, det(&shape, 2, dtype)?);
            let expected = (&y + &x)?;
            let x_before = values(&x)?;
            let sum = add_to_fresh(y.copy()?, &x)?;
            assert_eq!(values(&sum)?, values(&expected)?, "{shape:?} {dtype:?}");
            assert_eq!(values(&x)?, x_before, "the residual is left as it was");
        }
    }
    Ok(())
}

#[test]
fn gradients_flow_to_both_when_tracked() -> Result<()> {
    let y = Var::from_tensor(&det(&[2, 3, 4], 1, DType::F32)?)?;
    let x = Var::from_tensor(&det(&[2, 3, 4], 2, DType::F32)?)?;
    let r = det(&[2, 3, 4], 3, DType::F32)?;
    let grads = (add_to_fresh(y.as_tensor().clone(), &x)? * &r)?.sum_all()?.backward()?;
    for v in [&y, &x] {
        assert_eq!(values(grads.get(v).expect("a gradient"))?, values(&r)?);
    }
    // The tracked operand was not overwritten.
    assert_eq!(values(&y)?, values(&det(&[2, 3, 4], 1, DType::F32)?)?);
    Ok(())
}

#[test]
fn refuses_other_shapes() -> Result<()> {
    let err = add_to_fresh(det(&[2, 3], 1, DType::F32)?, &det(&[3, 2], 2, DType::F32)?).unwrap_err().to_string();
    assert!(err.contains("differ in shape"), "{err}");
    Ok(())
}
