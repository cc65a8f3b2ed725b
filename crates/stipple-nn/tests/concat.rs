//! `ops::concat_channels` against candle's `Tensor::cat` along dim 1: the values (large enough
//! for several parallel pieces, pieces that cross samples), the gradients, other ranks, and
//! the shapes it refuses.

mod common;

use candle_core::{DType, Result, Tensor, Var};
use common::det;
use stipple_nn::ops::concat_channels;

#[test]
fn matches_candle_cat_forward_and_backward() -> Result<()> {
    for (da, db) in [
        (vec![3, 5, 7, 9], vec![3, 2, 7, 9]),
        (vec![2, 96, 33, 17], vec![2, 64, 33, 17]),
        (vec![1, 4, 10], vec![1, 6, 10]),
        (vec![4, 3], vec![4, 1]),
    ] {
        for dtype in [DType::F32, DType::F64] {
            let a = Var::from_tensor(&det(&da, 1, dtype)?)?;
            let b = Var::from_tensor(&det(&db, 2, dtype)?)?;
            let ours = concat_channels(&a, &b)?;
            let theirs = Tensor::cat(&[a.as_tensor(), b.as_tensor()], 1)?;
            assert_eq!(ours.dims(), theirs.dims());
            let flat = |t: &Tensor| t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>();
            assert_eq!(flat(&ours)?, flat(&theirs)?, "{da:?} + {db:?}");
            let r = det(theirs.dims(), 3, dtype)?;
            let g_ours = (&ours * &r)?.sum_all()?.backward()?;
            let g_theirs = (&theirs * &r)?.sum_all()?.backward()?;
            for v in [&a, &b] {
                assert_eq!(flat(g_ours.get(v).expect("grad"))?, flat(g_theirs.get(v).expect("grad"))?);
            }
        }
    }
    Ok(())
}

#[test]
fn refuses_inputs_that_differ_in_another_dim() -> Result<()> {
    let a = det(&[2, 3, 4, 4], 1, DType::F32)?;
    for db in [vec![3, 3, 4, 4], vec![2, 3, 4, 5], vec![2, 3, 16]] {
        let b = det(&db, 2, DType::F32)?;
        let err = concat_channels(&a, &b).unwrap_err().to_string();
        assert!(err.contains("must agree in every dim but the channels"), "{err}");
    }
    Ok(())
}
