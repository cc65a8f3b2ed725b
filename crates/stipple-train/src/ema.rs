//! Exponential moving average of the weights, the copy that samples best
//! (Polyak & Juditsky 1992; DDPM uses decay 0.9999, Ho et al. 2020, App. B).

use candle_core::{Result, Tensor, Var};

/// Decay at update `step` (0-based): `min(decay, (1 + step) / (10 + step))`, so early
/// averages follow the fast-moving weights (TensorFlow's `ExponentialMovingAverage`
/// with `num_updates`; diffusers' `EMAModel` without its power warm-up).
pub fn ema_decay(decay: f64, step: usize) -> f64 {
    decay.min((1 + step) as f64 / (10 + step) as f64)
}

/// The averaged copy of a list of named variables.
pub struct Ema {
    weights: Vec<(String, Tensor)>,
    /// Variables that are not trained (a pretrained text encoder): their average stays
    /// exactly their value, not a rounded `d·w + (1 − d)·w`.
    frozen: Vec<bool>,
}

impl Ema {
    /// Starts as a copy of the current weights.
    pub fn new(vars: &[(String, Var)]) -> Result<Self> {
        let weights = vars
            .iter()
            .map(|(n, v)| Ok((n.clone(), v.as_tensor().copy()?.detach())))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { frozen: vec![false; weights.len()], weights })
    }

    /// Marks the variables whose names satisfy `frozen` as untrained.
    pub fn freeze(mut self, frozen: impl Fn(&str) -> bool) -> Self {
        self.frozen = self.weights.iter().map(|(n, _)| frozen(n)).collect();
        self
    }

    /// Restores a saved average; names and shapes must match `vars`.
    pub fn from_tensors(
        vars: &[(String, Var)],
        saved: &std::collections::HashMap<String, Tensor>,
    ) -> std::result::Result<Self, String> {
        let mut weights = Vec::with_capacity(vars.len());
        for (name, var) in vars {
            let t = saved.get(name).ok_or_else(|| format!("EMA weights lack {name}"))?;
            if t.dims() != var.dims() {
                return Err(format!("EMA weight {name} has shape {:?}, expected {:?}", t.dims(), var.dims()));
            }
            weights.push((name.clone(), t.to_device(var.device()).map_err(|e| e.to_string())?));
        }
        Ok(Self { frozen: vec![false; weights.len()], weights })
    }

    /// ema ← d·ema + (1 − d)·w for every variable that is not frozen.
    pub fn update(&mut self, vars: &[(String, Var)], decay: f64) -> Result<()> {
        for (((_, e), (_, v)), frozen) in self.weights.iter_mut().zip(vars).zip(&self.frozen) {
            if !frozen {
                *e = ((&*e * decay)? + (v.as_tensor().detach() * (1.0 - decay))?)?;
            }
        }
        Ok(())
    }

    /// The averaged weights, by name.
    pub fn tensors(&self) -> &[(String, Tensor)] {
        &self.weights
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn decay_warms_up_then_caps() {
        assert!((ema_decay(0.999, 0) - 0.1).abs() < 1e-12);
        assert!((ema_decay(0.999, 90) - 0.91).abs() < 1e-12);
        assert_eq!(ema_decay(0.999, 1_000_000), 0.999);
    }

    #[test]
    fn update_moves_towards_weights() -> Result<()> {
        let v = Var::from_vec(vec![0f32, 0.0], 2, &Device::Cpu)?;
        let vars = vec![("w".to_string(), v.clone())];
        let mut ema = Ema::new(&vars)?;
        v.set(&Tensor::new(&[1f32, 2.0], &Device::Cpu)?)?;
        ema.update(&vars, 0.75)?;
        assert_eq!(ema.tensors()[0].1.to_vec1::<f32>()?, vec![0.25, 0.5]);
        Ok(())
    }
}
