//! `stipple_nn::ops::group_norm` (fused GroupNorm [+ SiLU] custom op) against
//! `candle_nn::GroupNorm` (+ `silu`): forward values and the gradients w.r.t. x, γ and β (candle's
//! autograd as reference) on awkward shapes, a finite-difference check in f64, constant inputs
//! (zero variance), non-contiguous inputs, the fallback dtype path and the layer's parameters.

use candle_core::{DType, Device, Module, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
mod common;

use common::{det, max_abs, max_abs_diff};
use stipple_nn::ops::{group_norm, GroupNorm};

fn all_finite(a: &Tensor) -> Result<bool> {
    let v = a.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    Ok(v.iter().all(|x| x.is_finite()))
}

#[derive(Debug, Clone)]
struct Case {
    dims: Vec<usize>,
    groups: usize,
}

fn cases() -> Vec<Case> {
    let c = |dims: &[usize], groups| Case { dims: dims.to_vec(), groups };
    vec![
        c(&[1, 6, 7, 5], 3),
        c(&[3, 6, 7, 5], 1),
        c(&[3, 12, 7, 5], 3),
        c(&[3, 13, 7, 5], 1),
        c(&[1, 12, 7, 5], 12),
        c(&[2, 64, 4, 4], 32),
        c(&[3, 6, 9], 3),
        c(&[1, 13, 5], 1),
        c(&[2, 6, 1, 1], 3),
    ]
}

/// `y = GN(x)` (+ SiLU) by both implementations, the loss `Σ y·r`, and its three gradients.
struct Run {
    y: Tensor,
    dx: Tensor,
    dgamma: Tensor,
    dbeta: Tensor,
}

fn run(ours: bool, x: &Tensor, gamma: &Tensor, beta: &Tensor, r: &Tensor, groups: usize, silu: bool) -> Result<Run> {
    let (x, gamma, beta) = (Var::from_tensor(x)?, Var::from_tensor(gamma)?, Var::from_tensor(beta)?);
    let eps = 1e-5;
    let y = if ours {
        group_norm(&x, &gamma, &beta, groups, eps, silu)?
    } else {
        let c = gamma.elem_count();
        let gn = candle_nn::GroupNorm::new(gamma.as_tensor().clone(), beta.as_tensor().clone(), c, groups, eps)?;
        let y = gn.forward(&x)?;
        if silu {
            y.silu()?
        } else {
            y
        }
    };
    let grads = (&y * r)?.sum_all()?.backward()?;
    let get = |v: &Var| grads.get(v).cloned().expect("gradient");
    Ok(Run { dx: get(&x), dgamma: get(&gamma), dbeta: get(&beta), y })
}

fn compare(dtype: DType, tol: f64) -> Result<()> {
    for (i, case) in cases().into_iter().enumerate() {
        let c = case.dims[1];
        let seed = 100 * i as u64;
        // Offset and scaled input: the mean is far from zero relative to the spread.
        let x = ((det(&case.dims, seed, dtype)? * 2.5)? + 0.75)?;
        let gamma = (det(&[c], seed + 1, dtype)? + 1.0)?;
        let beta = det(&[c], seed + 2, dtype)?;
        let r = det(&case.dims, seed + 3, dtype)?;
        for silu in [false, true] {
            let ours = run(true, &x, &gamma, &beta, &r, case.groups, silu)?;
            let reference = run(false, &x, &gamma, &beta, &r, case.groups, silu)?;
            for (name, a, b) in [
                ("y", &ours.y, &reference.y),
                ("dx", &ours.dx, &reference.dx),
                ("dγ", &ours.dgamma, &reference.dgamma),
                ("dβ", &ours.dbeta, &reference.dbeta),
            ] {
                assert_eq!(a.dims(), b.dims(), "{name} shape, {case:?} silu={silu}");
                assert_eq!(a.dtype(), dtype);
                let err = max_abs_diff(a, b)? / max_abs(b)?.max(1.0);
                assert!(err < tol, "{name}: relative error {err:e} ≥ {tol:e} for {case:?} silu={silu} {dtype:?}");
            }
        }
    }
    Ok(())
}

#[test]
fn matches_candle_f32() -> Result<()> {
    compare(DType::F32, 2e-5)
}

#[test]
fn matches_candle_f64() -> Result<()> {
    compare(DType::F64, 1e-12)
}

/// Central differences of `L = Σ GN(x)·r` (SiLU fused) w.r.t. every input value, in f64.
#[test]
fn finite_differences_f64() -> Result<()> {
    let dims = [2, 6, 3, 2];
    let (groups, eps, h) = (3, 1e-5, 1e-6);
    let x = det(&dims, 7, DType::F64)?;
    let gamma = (det(&[6], 8, DType::F64)? + 1.0)?;
    let beta = det(&[6], 9, DType::F64)?;
    let r = det(&dims, 10, DType::F64)?;
    for silu in [false, true] {
        let loss = |x: &Tensor, g: &Tensor, b: &Tensor| -> Result<f64> {
            (group_norm(x, g, b, groups, eps, silu)? * &r)?.sum_all()?.to_scalar::<f64>()
        };
        let analytic = run(true, &x, &gamma, &beta, &r, groups, silu)?;
        let inputs = [x.clone(), gamma.clone(), beta.clone()];
        let grads = [&analytic.dx, &analytic.dgamma, &analytic.dbeta];
        for (which, grad) in grads.iter().enumerate() {
            let base = inputs[which].flatten_all()?.to_vec1::<f64>()?;
            let g = grad.flatten_all()?.to_vec1::<f64>()?;
            for k in 0..base.len() {
                let at = |delta: f64| -> Result<f64> {
                    let mut v = base.clone();
                    v[k] += delta;
                    let mut args = inputs.clone();
                    args[which] = Tensor::from_vec(v, inputs[which].shape(), &Device::Cpu)?;
                    loss(&args[0], &args[1], &args[2])
                };
                let fd = (at(h)? - at(-h)?) / (2.0 * h);
                assert!((fd - g[k]).abs() < 1e-6 * (1.0 + fd.abs()), "input {which} [{k}] silu={silu}: fd {fd} vs {}", g[k]);
            }
        }
    }
    Ok(())
}

/// Zero variance: every normalised value is 0, so the output is β (SiLU(β)), with finite
/// gradients.
#[test]
fn constant_input() -> Result<()> {
    for dtype in [DType::F32, DType::F64] {
        let (b, c, hw, groups) = (2, 6, 4, 3);
        // One constant per (sample, group), including 0 and a large value.
        let consts = [0.0, 3.5, -1.25, 1e3, 0.1, -7.0];
        let v: Vec<f64> = (0..b * c * hw * hw).map(|i| consts[i / (c / groups * hw * hw)]).collect();
        let x = Tensor::from_vec(v, (b, c, hw, hw), &Device::Cpu)?.to_dtype(dtype)?;
        let gamma = (det(&[c], 1, dtype)? + 1.0)?;
        let beta = det(&[c], 2, dtype)?;
        let r = det(&[b, c, hw, hw], 3, dtype)?;
        for silu in [false, true] {
            let out = run(true, &x, &gamma, &beta, &r, groups, silu)?;
            let bb = beta.reshape((1, c, 1, 1))?.broadcast_as((b, c, hw, hw))?;
            let expect = if silu { bb.silu()? } else { bb.contiguous()? };
            assert!(max_abs_diff(&out.y, &expect)? < 1e-6, "{dtype:?} silu={silu}");
            for t in [&out.y, &out.dx, &out.dgamma, &out.dbeta] {
                assert!(all_finite(t)?, "{dtype:?} silu={silu}: non-finite values");
            }
            // x̂ = 0 everywhere: dγ = 0.
            assert!(max_abs(&out.dgamma)? < 1e-6);
        }
    }
    Ok(())
}

#[test]
fn non_contiguous_input() -> Result<()> {
    let x = det(&[2, 5, 6, 4], 3, DType::F32)?.transpose(1, 2)?; // (2, 6, 5, 4), strided
    assert!(!x.is_contiguous());
    let gamma = (det(&[6], 4, DType::F32)? + 1.0)?;
    let beta = det(&[6], 5, DType::F32)?;
    let r = det(&[2, 6, 5, 4], 6, DType::F32)?;
    for silu in [false, true] {
        let ours = run(true, &x, &gamma, &beta, &r, 2, silu)?;
        let reference = run(false, &x.contiguous()?, &gamma, &beta, &r, 2, silu)?;
        assert!(max_abs_diff(&ours.y, &reference.y)? < 1e-5);
        assert!(max_abs_diff(&ours.dx, &reference.dx)? < 1e-4);
        assert!(max_abs_diff(&ours.dgamma, &reference.dgamma)? < 1e-4);
    }
    Ok(())
}

/// Non-f32/f64 dtypes take the candle-ops path.
#[test]
fn fallback_dtype() -> Result<()> {
    let x = det(&[2, 6, 3, 3], 11, DType::F32)?;
    let gamma = (det(&[6], 12, DType::F32)? + 1.0)?;
    let beta = det(&[6], 13, DType::F32)?;
    for silu in [false, true] {
        let f32_out = group_norm(&x, &gamma, &beta, 3, 1e-5, silu)?;
        let to = |t: &Tensor| t.to_dtype(DType::BF16);
        let bf16_out = group_norm(&to(&x)?, &to(&gamma)?, &to(&beta)?, 3, 1e-5, silu)?;
        assert_eq!(bf16_out.dtype(), DType::BF16);
        assert!(max_abs_diff(&bf16_out.to_dtype(DType::F32)?, &f32_out)? < 0.05);
    }
    Ok(())
}

#[test]
fn bad_arguments() -> Result<()> {
    let x = det(&[2, 6, 3, 3], 1, DType::F32)?;
    let p = Tensor::ones(6, DType::F32, &Device::Cpu)?;
    assert!(group_norm(&x, &p, &p, 4, 1e-5, false).is_err()); // 4 ∤ 6
    assert!(group_norm(&x, &p, &p, 0, 1e-5, false).is_err());
    let p5 = Tensor::ones(5, DType::F32, &Device::Cpu)?;
    assert!(group_norm(&x, &p5, &p5, 1, 1e-5, false).is_err());
    assert!(group_norm(&x.flatten_from(1)?, &p, &p, 3, 1e-5, false).is_err()); // rank 2
    Ok(())
}

/// The layer's parameters match `candle_nn::group_norm`'s: names, shapes, initial values.
#[test]
fn layer_parameters() -> Result<()> {
    let ours = VarMap::new();
    let theirs = VarMap::new();
    let dev = Device::Cpu;
    let gn = GroupNorm::new(VarBuilder::from_varmap(&ours, DType::F32, &dev).pp("norm"), 3, 12, 1e-6)?;
    let reference = candle_nn::group_norm(3, 12, 1e-6, VarBuilder::from_varmap(&theirs, DType::F32, &dev).pp("norm"))?;
    let (a, b) = (ours.data().lock().unwrap(), theirs.data().lock().unwrap());
    let mut names: Vec<_> = a.keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["norm.bias", "norm.weight"]);
    for (k, v) in a.iter() {
        let w = &b[k];
        assert_eq!(v.dims(), w.dims(), "{k}");
        assert_eq!(max_abs_diff(v.as_tensor(), w.as_tensor())?, 0.0, "{k}");
    }
    drop((a, b));
    let x = det(&[2, 12, 5, 3], 4, DType::F32)?;
    assert!(max_abs_diff(&gn.forward(&x)?, &reference.forward(&x)?)? < 1e-5);
    assert!(max_abs_diff(&gn.forward_silu(&x)?, &reference.forward(&x)?.silu()?)? < 1e-5);
    assert!(max_abs_diff(&Module::forward(&gn, &x)?, &gn.forward(&x)?)? < 1e-7);
    Ok(())
}

/// `group_norm_silu_dropout` is exactly the dropout layer applied to `group_norm(…, silu)`:
/// the same values and the same gradients w.r.t. x, γ and β, bit for bit, in f32 and f64 (the
/// fused kernels), and in bf16 (the fallback of both); the mask is really applied.
#[test]
fn fused_dropout_is_exactly_the_dropout_layer() -> Result<()> {
    use stipple_nn::dropout::{Dropout, Mode};
    use stipple_nn::ops::group_norm::group_norm_silu_dropout;
    let layer = Dropout::new(0.3, "down_blocks.1.resnets.0");
    let mode = Mode::Train { seed: 9 };
    let mask = layer.mask(mode).expect("a training-mode mask");
    for (dtype, dims) in [(DType::F32, [3, 64, 9, 7]), (DType::F64, [2, 12, 5, 6]), (DType::BF16, [2, 12, 5, 6])] {
        let x = Var::from_tensor(&det(&dims, 31, dtype)?)?;
        let gamma = Var::from_tensor(&(det(&[dims[1]], 32, dtype)? + 1.0)?)?;
        let beta = Var::from_tensor(&det(&[dims[1]], 33, dtype)?)?;
        let r = det(&dims, 34, dtype)?;
        let groups = 4;
        let fused = group_norm_silu_dropout(&x, &gamma, &beta, groups, 1e-5, mask)?;
        let plain = group_norm(&x, &gamma, &beta, groups, 1e-5, true)?;
        let composed = layer.forward(&plain, mode)?;
        let as_f64 = |t: &Tensor| t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>();
        assert_eq!(as_f64(&fused)?, as_f64(&composed)?, "{dtype:?}: forward");
        let zeros = as_f64(&fused)?.iter().zip(as_f64(&plain)?).filter(|(f, p)| **f == 0.0 && *p != 0.0).count();
        assert!(zeros > 0, "{dtype:?}: no element was dropped");
        let g_fused = (fused * &r)?.sum_all()?.backward()?;
        let g_composed = (composed * &r)?.sum_all()?.backward()?;
        for (name, v) in [("x", &x), ("gamma", &gamma), ("beta", &beta)] {
            assert_eq!(as_f64(g_fused.get(v).unwrap())?, as_f64(g_composed.get(v).unwrap())?, "{dtype:?}: d/d{name}");
        }
    }
    Ok(())
}
