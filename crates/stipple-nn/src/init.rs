//! Seeded parameter initialisation. candle's CPU random numbers cannot be seeded, so the
//! variables are drawn here, on the host, from a generator keyed by the run seed and the
//! parameter's name: the same seed gives the same initial network, whatever the creation
//! order or device.

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::{init::NormalOrUniform, Init, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::dropout::layer_id;

/// A `VarBuilder` backend that creates missing variables in `varmap` from seeded draws
/// that follow candle-nn's initialisation hints (the same distributions as `Init::var`).
struct SeededBackend {
    varmap: VarMap,
    seed: u64,
}

fn draw(shape: &Shape, init: Init, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let n = shape.elem_count();
    let uniform = |rng: &mut ChaCha8Rng, lo: f64, up: f64| (0..n).map(|_| rng.random_range(lo..up) as f32).collect();
    let normal = |rng: &mut ChaCha8Rng, mean: f64, std: f64| {
        (0..n).map(|_| (mean + std * rng.sample::<f64, _>(StandardNormal)) as f32).collect()
    };
    match init {
        Init::Const(c) => vec![c as f32; n],
        Init::Uniform { lo, up } => uniform(rng, lo, up),
        Init::Randn { mean, stdev } => normal(rng, mean, stdev),
        // He et al. 2015, as candle-nn's `Init::var` and PyTorch's `kaiming_*_`.
        Init::Kaiming { dist, fan, non_linearity } => {
            let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
            match dist {
                NormalOrUniform::Uniform => uniform(rng, -3f64.sqrt() * std, 3f64.sqrt() * std),
                NormalOrUniform::Normal => normal(rng, 0.0, std),
            }
        }
    }
}

impl candle_nn::var_builder::SimpleBackend for SeededBackend {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let mut vars = self.varmap.data().lock().expect("varmap lock");
        if let Some(v) = vars.get(name) {
            if v.shape() != &s {
                candle_core::bail!("shape mismatch for {name}: {:?} vs {:?}", v.shape(), s);
            }
            return Ok(v.as_tensor().clone());
        }
        // The parameter's name keys its generator (FNV-1a, as dropout keys its layers).
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ layer_id(name));
        let data = draw(&s, h, &mut rng);
        let var = Var::from_tensor(&Tensor::from_vec(data, s, dev)?.to_dtype(dtype)?)?;
        let t = var.as_tensor().clone();
        vars.insert(name.to_string(), var);
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        candle_core::bail!("parameter {name} must be created with a shape")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap.data().lock().expect("varmap lock").contains_key(name)
    }
}

/// A `VarBuilder` whose new variables land in `varmap`, drawn from `seed` (in f32, then cast to
/// the builder's dtype: F32 here, `set_dtype` for another).
pub fn seeded_var_builder(varmap: &VarMap, seed: u64, device: &Device) -> VarBuilder<'static> {
    let backend = SeededBackend { varmap: varmap.clone(), seed };
    VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_weights_any_order() -> Result<()> {
        let dev = Device::Cpu;
        let (a, b) = (VarMap::new(), VarMap::new());
        let va = seeded_var_builder(&a, 3, &dev);
        let vb = seeded_var_builder(&b, 3, &dev);
        let x1 = va.get_with_hints((4, 5), "x", candle_nn::init::DEFAULT_KAIMING_NORMAL)?;
        va.get_with_hints(3, "y", Init::Uniform { lo: -1.0, up: 1.0 })?;
        vb.get_with_hints(3, "y", Init::Uniform { lo: -1.0, up: 1.0 })?;
        let x2 = vb.get_with_hints((4, 5), "x", candle_nn::init::DEFAULT_KAIMING_NORMAL)?;
        assert_eq!(x1.flatten_all()?.to_vec1::<f32>()?, x2.flatten_all()?.to_vec1::<f32>()?);
        let other = seeded_var_builder(&VarMap::new(), 4, &dev)
            .get_with_hints((4, 5), "x", candle_nn::init::DEFAULT_KAIMING_NORMAL)?;
        assert_ne!(x1.flatten_all()?.to_vec1::<f32>()?, other.flatten_all()?.to_vec1::<f32>()?);
        // Kaiming normal with fan-in 5 and ReLU gain: std = √2/√5 ≈ 0.632.
        let big = seeded_var_builder(&VarMap::new(), 1, &dev)
            .get_with_hints((1000, 5), "w", candle_nn::init::DEFAULT_KAIMING_NORMAL)?;
        let std = big.sqr()?.mean_all()?.to_scalar::<f32>()?.sqrt();
        assert!((std - 0.632).abs() < 0.02, "{std}");
        Ok(())
    }
}
