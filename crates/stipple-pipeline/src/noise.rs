//! Reproducible noise: every image of a batch has its own seeded counter-based generator,
//! so image i of a request depends on `seed + i` only — not on the batch size or device
//! (DESIGN.md §3). Draws happen on the host and are uploaded.

use candle_core::{Device, Tensor};
use stipple_sample::{BoxError, Noise, Philox4x32};

use stipple_nn::TensorLatent;

/// One Philox stream per image of the batch.
pub struct SeededNoise {
    streams: Vec<Philox4x32>,
    device: Device,
}

impl SeededNoise {
    /// Streams for the images whose seeds are `seeds`, in batch order.
    pub fn new(seeds: impl IntoIterator<Item = u64>, device: &Device) -> Self {
        Self { streams: seeds.into_iter().map(Philox4x32::new).collect(), device: device.clone() }
    }

    /// Standard normal noise of shape `(B, rest…)` with B = the number of streams; row b
    /// continues stream b.
    pub fn draw(&mut self, per_image: &[usize]) -> candle_core::Result<Tensor> {
        let n: usize = per_image.iter().product();
        let mut data = Vec::with_capacity(n * self.streams.len());
        for s in &mut self.streams {
            data.extend(s.normals(n));
        }
        let mut shape = vec![self.streams.len()];
        shape.extend_from_slice(per_image);
        Tensor::from_vec(data, shape, &self.device)
    }
}

impl Noise<TensorLatent> for SeededNoise {
    fn noise_like(&mut self, x: &TensorLatent) -> Result<TensorLatent, BoxError> {
        let dims = x.0.dims();
        if dims.first() != Some(&self.streams.len()) {
            return Err(format!("noise for a batch of {} asked for shape {dims:?}", self.streams.len()).into());
        }
        Ok(TensorLatent(self.draw(&dims[1..])?.to_dtype(x.0.dtype())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_noise_is_independent_of_batch_size() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let mut batch = SeededNoise::new([7, 8, 9], &dev);
        let mut single = SeededNoise::new([8], &dev);
        for _ in 0..2 {
            let b = batch.draw(&[2, 3])?.get(1)?.flatten_all()?.to_vec1::<f32>()?;
            let s = single.draw(&[2, 3])?.get(0)?.flatten_all()?.to_vec1::<f32>()?;
            assert_eq!(b, s);
        }
        Ok(())
    }
}
