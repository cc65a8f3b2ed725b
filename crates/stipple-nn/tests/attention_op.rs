//! `stipple_nn::ops::attention` (fused multi-head attention custom op) against the composition of
//! candle ops it replaces (taken by the same function when a mask is given, here an all-zero
//! one): outputs and the gradients w.r.t. q, k and v (candle's autograd as reference) on odd
//! shapes, a finite-difference check in f64, large scores (the softmax shift) and shape errors.

use candle_core::{DType, Device, Result, Tensor, Var};
mod common;

use common::{det, max_abs, max_abs_diff};
use stipple_nn::ops::attention;

/// `(B, N, M, C, heads)`: cross-attention (N ≠ M), one head, odd head widths, batch 1, and
/// queries in several blocks of the forward pass (186 rows per block for 4099 keys, the last
/// block ragged; on two or more threads the blocks of one sample and head split between tasks).
const CASES: [(usize, usize, usize, usize, usize); 6] =
    [(2, 5, 7, 6, 3), (1, 4, 4, 8, 1), (3, 6, 3, 15, 5), (2, 9, 9, 12, 4), (1, 1, 2, 3, 1), (2, 400, 4099, 6, 2)];

struct Run {
    out: Tensor,
    dq: Tensor,
    dk: Tensor,
    dv: Tensor,
}

/// `out = attention(q, k, v)`, the loss `Σ out·r` and its three gradients; `fused` = no mask.
fn run(fused: bool, q: &Tensor, k: &Tensor, v: &Tensor, r: &Tensor, heads: usize) -> Result<Run> {
    let (q, k, v) = (Var::from_tensor(q)?, Var::from_tensor(k)?, Var::from_tensor(v)?);
    let mask = Tensor::zeros((1, 1, q.dim(1)?, k.dim(1)?), q.dtype(), q.device())?;
    let out = attention(&q, &k, &v, heads, if fused { None } else { Some(&mask) })?;
    let grads = (&out * r)?.sum_all()?.backward()?;
    let g = |t: &Var| grads.get(t).cloned().expect("gradient");
    Ok(Run { dq: g(&q), dk: g(&k), dv: g(&v), out })
}

fn inputs(case: (usize, usize, usize, usize, usize), dtype: DType) -> Result<[Tensor; 4]> {
    let (b, n, m, c, _) = case;
    Ok([
        (det(&[b, n, c], 1, dtype)? * 2.0)?,
        (det(&[b, m, c], 2, dtype)? * 2.0)?,
        det(&[b, m, c], 3, dtype)?,
        det(&[b, n, c], 4, dtype)?,
    ])
}

fn compare(dtype: DType, tol: f64) -> Result<()> {
    for case in CASES {
        let [q, k, v, r] = inputs(case, dtype)?;
        let heads = case.4;
        let ours = run(true, &q, &k, &v, &r, heads)?;
        let reference = run(false, &q, &k, &v, &r, heads)?;
        for (name, a, b) in [
            ("out", &ours.out, &reference.out),
            ("dq", &ours.dq, &reference.dq),
            ("dk", &ours.dk, &reference.dk),
            ("dv", &ours.dv, &reference.dv),
        ] {
            let scale = 1.0 + max_abs(b)?;
            let diff = max_abs_diff(a, b)?;
            assert!(diff <= tol * scale, "{dtype:?} {case:?} {name}: off by {diff}");
        }
        assert!(max_abs(&ours.dk)? > 1e-3, "{case:?}: the key gradient should not vanish");
    }
    Ok(())
}

#[test]
fn matches_candle_f64() -> Result<()> {
    compare(DType::F64, 1e-12)
}

#[test]
fn matches_candle_f32() -> Result<()> {
    compare(DType::F32, 2e-6)
}

/// Central differences of `L = Σ attention(q, k, v)·r` w.r.t. every input value, in f64.
#[test]
fn gradients_match_finite_differences() -> Result<()> {
    let case = (2, 3, 4, 6, 2);
    let [q, k, v, r] = inputs(case, DType::F64)?;
    let ours = run(true, &q, &k, &v, &r, case.4)?;
    let loss = |q: &Tensor, k: &Tensor, v: &Tensor| -> Result<f64> {
        (attention(q, k, v, case.4, None)? * &r)?.sum_all()?.to_scalar::<f64>()
    };
    let h = 1e-6;
    for (which, grad) in [(0, &ours.dq), (1, &ours.dk), (2, &ours.dv)] {
        let base = [&q, &k, &v][which].flatten_all()?.to_vec1::<f64>()?;
        let g = grad.flatten_all()?.to_vec1::<f64>()?;
        for i in 0..base.len() {
            let shifted = |delta: f64| -> Result<f64> {
                let mut vals = base.clone();
                vals[i] += delta;
                let t = Tensor::from_vec(vals, [&q, &k, &v][which].shape(), &Device::Cpu)?;
                let mut args = [q.clone(), k.clone(), v.clone()];
                args[which] = t;
                loss(&args[0], &args[1], &args[2])
            };
            let fd = (shifted(h)? - shifted(-h)?) / (2.0 * h);
            assert!((fd - g[i]).abs() < 1e-7 * (1.0 + fd.abs()), "input {which} [{i}]: fd {fd} vs {}", g[i]);
        }
    }
    Ok(())
}

/// Scores far beyond `exp`'s range: the softmax is shifted by each row's maximum.
#[test]
fn large_scores_stay_finite() -> Result<()> {
    let case = (2, 5, 7, 6, 3);
    let [q, k, v, r] = inputs(case, DType::F32)?;
    let q = (q * 400.0)?;
    let ours = run(true, &q, &k, &v, &r, case.4)?;
    let reference = run(false, &q, &k, &v, &r, case.4)?;
    for t in [&ours.out, &ours.dq, &ours.dk, &ours.dv] {
        let vals = t.flatten_all()?.to_vec1::<f32>()?;
        assert!(vals.iter().all(|x| x.is_finite()));
    }
    assert!(max_abs_diff(&ours.out, &reference.out)? < 1e-5);
    Ok(())
}

#[test]
fn rejects_shapes_that_do_not_fit() -> Result<()> {
    let t = |dims: &[usize]| det(dims, 1, DType::F32);
    let (q, k) = (t(&[2, 3, 6])?, t(&[2, 4, 6])?);
    assert!(attention(&q, &k, &k, 4, None).is_err()); // 4 ∤ 6
    assert!(attention(&q, &k, &k, 0, None).is_err());
    assert!(attention(&q, &t(&[2, 4, 5])?, &t(&[2, 4, 5])?, 2, None).is_err()); // C differs
    assert!(attention(&q, &t(&[1, 4, 6])?, &t(&[1, 4, 6])?, 2, None).is_err()); // B differs
    assert!(attention(&q, &k, &t(&[2, 5, 6])?, 2, None).is_err()); // v ≠ k
    Ok(())
}

/// The same inputs give the same bits on one thread and on several (the forward pass splits a
/// sample's query blocks between tasks by the thread count; every output is still computed by
/// one task in one order), in f32 and f64.
#[test]
fn results_do_not_depend_on_the_threads() -> Result<()> {
    let pool = |n: usize| rayon::ThreadPoolBuilder::new().num_threads(n).build().expect("thread pool");
    let (one, three) = (pool(1), pool(3));
    for dtype in [DType::F32, DType::F64] {
        for case in CASES {
            let [q, k, v, r] = inputs(case, dtype)?;
            let values = |p: &rayon::ThreadPool| -> Result<Vec<f64>> {
                p.install(|| {
                    let x = run(true, &q, &k, &v, &r, case.4)?;
                    Tensor::cat(&[x.out.flatten_all()?, x.dq.flatten_all()?, x.dk.flatten_all()?, x.dv.flatten_all()?], 0)?
                        .to_dtype(DType::F64)?
                        .to_vec1()
                })
            };
            let (a, b) = (values(&one)?, values(&three)?);
            assert!(a.iter().zip(&b).all(|(a, b)| a.to_bits() == b.to_bits()), "{dtype:?} {case:?}: differs between one and three threads");
        }
    }
    Ok(())
}
