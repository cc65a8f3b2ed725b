//! AdamW with its state kept in named tensors, so a checkpoint can store and restore it
//! exactly (candle-nn's `AdamW` keeps its moments private).

use candle_core::{backprop::GradStore, Result, Tensor, Var};
use stipple_nn::ops::adamw::{adamw_step, sum_of_squares, AdamWStep};

/// Hyper-parameters of AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay
/// Regularization", Algorithm 2), PyTorch's `torch.optim.AdamW` defaults but for the rate.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamWConfig {
    /// Peak learning rate reached after warm-up.
    pub lr: f64,
    /// β₁: decay of the first-moment estimate.
    pub beta1: f64,
    /// β₂: decay of the second-moment estimate.
    pub beta2: f64,
    /// ε added to √v̂ for numerical safety.
    pub eps: f64,
    /// Decoupled weight decay λ (multiplied by the current learning rate).
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        // 2e-4 is the DDPM paper's rate for its 32×32 models (Ho et al. 2020, App. B).
        Self { lr: 2e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

/// Linear warm-up from 0 to the peak rate over `warmup` steps, then constant
/// (Goyal et al. 2017; DDPM warms up over 5,000 steps). A pure function of the step.
pub fn warmup_lr(peak: f64, warmup: usize, step: usize) -> f64 {
    if warmup == 0 || step >= warmup {
        peak
    } else {
        peak * (step + 1) as f64 / warmup as f64
    }
}

/// One parameter with its two moment estimates.
struct Slot {
    var: Var,
    m: Tensor,
    v: Tensor,
}

/// AdamW over a fixed, ordered list of named variables.
pub struct AdamW {
    slots: Vec<(String, Slot)>,
    config: AdamWConfig,
    /// Number of updates applied so far (t in the paper).
    t: usize,
}

impl AdamW {
    /// Starts with zero moments for `vars` (kept in the given order).
    pub fn new(vars: Vec<(String, Var)>, config: AdamWConfig) -> Result<Self> {
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                let m = var.zeros_like()?;
                let v = var.zeros_like()?;
                Ok((name, Slot { var, m, v }))
            })
            .collect::<Result<_>>()?;
        Ok(Self { slots, config, t: 0 })
    }

    /// The optimised variables, in order.
    pub fn vars(&self) -> Vec<&Var> {
        self.slots.iter().map(|(_, s)| &s.var).collect()
    }

    /// Updates applied so far.
    pub fn t(&self) -> usize {
        self.t
    }

    /// Global L2 norm of the gradients of all slots (missing gradients count as zero).
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut total = 0f64;
        for (_, slot) in &self.slots {
            if let Some(g) = grads.get(&slot.var) {
                total += match sum_of_squares(g)? {
                    Some(s) => s,
                    None => g.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?,
                };
            }
        }
        Ok(total.sqrt())
    }

    /// One AdamW update at learning rate `lr`, with gradients scaled by `grad_scale`
    /// (the clipping factor, 1 for none).
    pub fn step(&mut self, grads: &GradStore, lr: f64, grad_scale: f64) -> Result<()> {
        let c = self.config;
        self.t += 1;
        let bias1 = 1.0 - c.beta1.powi(self.t as i32);
        let bias2 = 1.0 - c.beta2.powi(self.t as i32);
        let kernel_step = AdamWStep {
            lr,
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            weight_decay: c.weight_decay,
            grad_scale,
            bias1,
            bias2,
        };
        for (_, slot) in &mut self.slots {
            let Some(g) = grads.get(&slot.var) else { continue };
            // On the CPU: the fused in-place kernel (three parallel passes, no allocation).
            if adamw_step(slot.var.as_tensor(), &g.contiguous()?, &slot.m, &slot.v, kernel_step)? {
                continue;
            }
            let g = (g * grad_scale)?;
            slot.m = ((&slot.m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            slot.v = ((&slot.v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let m_hat = (&slot.m / bias1)?;
            let v_hat = (&slot.v / bias2)?;
            let update = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
            let decayed = (slot.var.as_tensor() * (1.0 - lr * c.weight_decay))?;
            slot.var.set(&(decayed - (update * lr)?)?)?;
        }
        Ok(())
    }

    /// The moments as named tensors (`m.<name>`, `v.<name>`) for a checkpoint.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.slots.len());
        for (name, slot) in &self.slots {
            out.push((format!("m.{name}"), slot.m.clone()));
            out.push((format!("v.{name}"), slot.v.clone()));
        }
        out
    }

    /// Restores moments saved by [`AdamW::state_tensors`] and the update count `t`;
    /// every slot must be present with its shape.
    pub fn load_state(
        &mut self,
        tensors: &std::collections::HashMap<String, Tensor>,
        t: usize,
    ) -> std::result::Result<(), String> {
        for (name, slot) in &mut self.slots {
            for (key, dst) in [("m", &mut slot.m), ("v", &mut slot.v)] {
                let full = format!("{key}.{name}");
                let src = tensors.get(&full).ok_or_else(|| format!("optimizer state lacks {full}"))?;
                if src.dims() != dst.dims() {
                    return Err(format!(
                        "optimizer state {full} has shape {:?}, the model needs {:?}",
                        src.dims(),
                        dst.dims()
                    ));
                }
                // A copy of its own: the fused update writes the moments in place.
                *dst = src.to_device(dst.device()).and_then(|t| t.copy()).map_err(|e| e.to_string())?;
            }
        }
        self.t = t;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn warmup_is_linear_then_flat() {
        assert_eq!(warmup_lr(1.0, 4, 0), 0.25);
        assert_eq!(warmup_lr(1.0, 4, 3), 1.0);
        assert_eq!(warmup_lr(1.0, 4, 100), 1.0);
        assert_eq!(warmup_lr(0.5, 0, 0), 0.5);
    }

    /// Two steps on f(w) = Σ w² (gradients scaled by `grad_scale`) in `dtype`, checked against
    /// the update written out by hand in f64 (PyTorch `torch.optim.AdamW` performs the same
    /// arithmetic). f32 and f64 take the fused in-place kernel, f16 the candle-ops path.
    fn check_against_hand_computed(dtype: DType, grad_scale: f64, tol: f64) -> Result<()> {
        let dev = Device::Cpu;
        let w = Var::from_tensor(&Tensor::new(&[1.0f64, -2.0, 0.5], &dev)?.to_dtype(dtype)?)?;
        let cfg = AdamWConfig { lr: 0.1, weight_decay: 0.01, ..Default::default() };
        let mut opt = AdamW::new(vec![("w".into(), w.clone())], cfg)?;
        let mut expect = w.as_tensor().to_dtype(DType::F64)?.to_vec1::<f64>()?;
        let (mut m, mut v) = ([0f64; 3], [0f64; 3]);
        for t in 1..=2 {
            let loss = w.as_tensor().sqr()?.sum_all()?;
            let grads = loss.backward()?;
            opt.step(&grads, 0.1, grad_scale)?;
            for i in 0..3 {
                let g = 2.0 * expect[i] * grad_scale;
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.999 * v[i] + 0.001 * g * g;
                let mh = m[i] / (1.0 - 0.9f64.powi(t));
                let vh = v[i] / (1.0 - 0.999f64.powi(t));
                expect[i] = expect[i] * (1.0 - 0.1 * 0.01) - 0.1 * mh / (vh.sqrt() + 1e-8);
            }
        }
        let got = w.as_tensor().to_dtype(DType::F64)?.to_vec1::<f64>()?;
        for i in 0..3 {
            assert!((got[i] - expect[i]).abs() < tol, "{dtype:?} scale {grad_scale}: {got:?} vs {expect:?}");
        }
        let (moments, expect_m) = (opt.state_tensors(), m);
        let m_got = moments[0].1.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        for i in 0..3 {
            assert!((m_got[i] - expect_m[i]).abs() < tol * (1.0 + expect_m[i].abs()), "{dtype:?}: m {m_got:?} vs {expect_m:?}");
        }
        Ok(())
    }

    #[test]
    fn matches_hand_computed_update() -> Result<()> {
        check_against_hand_computed(DType::F32, 1.0, 1e-5)?;
        check_against_hand_computed(DType::F32, 0.25, 1e-5)?;
        check_against_hand_computed(DType::F64, 0.25, 1e-12)?;
        check_against_hand_computed(DType::F16, 0.25, 2e-2)
    }
}
