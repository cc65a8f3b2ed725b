//! `stipple_nn::ops::layer_norm` (fused inference LayerNorm) against the composition of candle
//! ops that `stipple_nn::LayerNorm` runs under autograd: odd shapes, a large common offset (the
//! two-pass variance), and the layer choosing the candle ops when its input is tracked.

use candle_core::{DType, Device, Result, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
mod common;

use common::{det, max_abs_diff};
use stipple_nn::ops::layer_norm;
use stipple_nn::LayerNorm;

/// Rows not a multiple of the op's 32-row tasks, widths below and above 8 (the partial sums).
const SHAPES: [&[usize]; 5] = [&[37, 10], &[1, 3], &[2, 19, 320], &[3, 1, 5, 17], &[70, 1]];

fn reference(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    centred.broadcast_div(&(var + eps)?.sqrt()?)?.broadcast_mul(w)?.broadcast_add(b)
}

fn compare(dtype: DType, offset: f64, tol: f64) -> Result<()> {
    for shape in SHAPES {
        let d = *shape.last().unwrap();
        let x = ((det(shape, 1, dtype)? * 3.0)? + offset)?;
        let w = (det(&[d], 2, dtype)? + 1.5)?;
        let b = det(&[d], 3, dtype)?;
        let ours = layer_norm(&x, &w, &b, 1e-5)?;
        // The reference on exactly centred data: the offset cancels in f64 first.
        let exact = reference(&(x.to_dtype(DType::F64)?), &w.to_dtype(DType::F64)?, &b.to_dtype(DType::F64)?, 1e-5)?;
        let diff = max_abs_diff(&ours.to_dtype(DType::F64)?, &exact)?;
        assert!(diff <= tol, "{dtype:?} {shape:?} offset {offset}: off by {diff}");
    }
    Ok(())
}

#[test]
fn matches_the_candle_composition_f64() -> Result<()> {
    compare(DType::F64, 0.0, 1e-12)
}

#[test]
fn matches_the_candle_composition_f32() -> Result<()> {
    compare(DType::F32, 0.0, 2e-5)
}

/// Values around 1000 with a spread of 3: `E[x²] − mean²` would lose every digit of the
/// variance in f32; the two passes keep it to the rounding of the inputs (ulp(1000) ≈ 6·10⁻⁵,
/// over σ ≈ 1.7 and times |γ| ≤ 2.5).
#[test]
fn large_offsets_keep_the_variance_f32() -> Result<()> {
    compare(DType::F32, 1000.0, 2e-4)
}

#[test]
fn the_layer_uses_candle_ops_under_autograd() -> Result<()> {
    let dev = Device::Cpu;
    let vars = VarMap::new();
    let ln = LayerNorm::new(VarBuilder::from_varmap(&vars, DType::F32, &dev), 6, 1e-5)?;
    let x = Var::from_tensor(&det(&[4, 6], 5, DType::F32)?)?;
    let tracked = ln.forward(&x)?;
    let grads = (&tracked * det(&[4, 6], 6, DType::F32)?)?.sum_all()?.backward()?;
    assert!(grads.get(&x).is_some(), "the input gradient");
    // Untracked input and weights: the fused op, the same values.
    let plain = LayerNorm::new(VarBuilder::from_tensors(
        vars.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.as_tensor().detach())).collect(),
        DType::F32,
        &dev,
    ), 6, 1e-5)?;
    let fused = plain.forward(&x.as_tensor().detach())?;
    assert!(max_abs_diff(&fused, &tracked)? < 1e-5);
    Ok(())
}

#[test]
fn wrong_weight_shape_is_an_error() -> Result<()> {
    let dev = Device::Cpu;
    let x = Tensor::zeros((2, 5), DType::F32, &dev)?;
    let w = Tensor::ones(4, DType::F32, &dev)?;
    let err = layer_norm(&x, &w, &w, 1e-5).unwrap_err().to_string();
    assert!(err.contains("must be (5,)"), "{err}");
    Ok(())
}
