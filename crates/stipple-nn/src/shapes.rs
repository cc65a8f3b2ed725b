//! The names and shapes of a network's parameters, found by building it against a recording
//! `VarBuilder` backend that allocates nothing.

use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::VarBuilder;

use crate::NnError;

/// `(name, dims)` of every parameter, in build order.
pub type ParameterShapes = Vec<(String, Vec<usize>)>;

/// Runs `build` on a recording builder and returns every parameter it asked for.
pub fn record_shapes(build: impl FnOnce(VarBuilder) -> Result<()>) -> std::result::Result<ParameterShapes, NnError> {
    let rec = ShapeRecorder::default();
    build(VarBuilder::from_backend(Box::new(rec.clone()), DType::F32, Device::Cpu))?;
    let shapes = rec.0.lock().map_err(|_| NnError::Config("shape recorder poisoned".into()))?;
    Ok(shapes.clone())
}

/// A `VarBuilder` backend that records requested names and shapes and hands out zero-strided
/// broadcast zeros (no allocation).
#[derive(Default, Clone)]
struct ShapeRecorder(Arc<Mutex<ParameterShapes>>);

impl candle_nn::var_builder::SimpleBackend for ShapeRecorder {
    fn get(&self, s: Shape, name: &str, _: candle_nn::Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        self.0
            .lock()
            .map_err(|_| candle_core::Error::Msg("shape recorder poisoned".into()))?
            .push((name.to_string(), s.dims().to_vec()));
        Tensor::zeros((), dtype, dev)?.broadcast_as(s)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> Result<Tensor> {
        candle_core::bail!("shape recorder: no shape given for {name}")
    }

    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}
