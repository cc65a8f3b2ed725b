//! Reproducible noise: every image of a batch has its own seeded counter-based generator,
//! so image i of a request depends on `seed + i` only — not on the batch size or device
//! (DESIGN.md §3). Draws happen on the host and are uploaded.

use candle_core::{Device, Tensor};
use stipple_sample::{BoxError, BrownianTree, ImageRng, Noise, NoiseKind, RngSource};

use stipple_nn::TensorLatent;

/// One generator per image of the batch (the starting noise, and the samplers' noise when it
/// is independent; [`RngSource`] says which generator), and with [`NoiseKind::Brownian`] one
/// Brownian path per image, keyed by the same seed, for the samplers' noise.
pub struct SeededNoise {
    seeds: Vec<u64>,
    rng: RngSource,
    streams: Vec<ImageRng>,
    trees: Option<Vec<BrownianTree>>,
    device: Device,
}

impl SeededNoise {
    /// Noise for the images whose seeds are `seeds`, in batch order, from the default
    /// source ([`RngSource::Nv`]); `kind` says where the samplers' noise comes from.
    pub fn new(seeds: impl IntoIterator<Item = u64>, kind: NoiseKind, device: &Device) -> Self {
        Self::with_rng(seeds, kind, RngSource::default(), device)
    }

    /// [`SeededNoise::new`] with the generators of `rng`.
    pub fn with_rng(seeds: impl IntoIterator<Item = u64>, kind: NoiseKind, rng: RngSource, device: &Device) -> Self {
        let seeds: Vec<u64> = seeds.into_iter().collect();
        let trees = (kind == NoiseKind::Brownian).then(|| seeds.iter().map(|&s| BrownianTree::new(s)).collect());
        Self { streams: seeds.iter().map(|&s| ImageRng::new(rng, s)).collect(), seeds, rng, trees, device: device.clone() }
    }

    /// The web UI's "eta noise seed delta" (ENSD): after the starting noise, image i's
    /// samplers' noise comes from a fresh generator of seed `seed_i + delta`
    /// (AUTOMATIC1111 `modules/rng.py`, `ImageRNG.first`); 0 keeps the one generator.
    pub fn eta_noise_seed_delta(&mut self, delta: u64) {
        if delta != 0 {
            self.streams = self.seeds.iter().map(|&s| ImageRng::new(self.rng, s.wrapping_add(delta))).collect();
        }
    }

    /// The per-image shape of `x`, after checking that its batch matches the seeds.
    fn per_image<'a>(&self, x: &'a TensorLatent) -> Result<&'a [usize], BoxError> {
        let dims = x.0.dims();
        if dims.first() != Some(&self.streams.len()) {
            return Err(format!("noise for a batch of {} asked for shape {dims:?}", self.streams.len()).into());
        }
        Ok(&dims[1..])
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
        let per_image = self.per_image(x)?;
        Ok(TensorLatent(self.draw(per_image)?.to_dtype(x.0.dtype())?))
    }

    /// With Brownian noise, image b's increment of its own path over (σ, σ'); otherwise a
    /// fresh draw ([`Noise::noise_like`]).
    fn noise_between(&mut self, x: &TensorLatent, sigma: f64, sigma_next: f64) -> Result<TensorLatent, BoxError> {
        let per_image = self.per_image(x)?;
        let Some(trees) = self.trees.as_mut() else {
            return self.noise_like(x);
        };
        let n: usize = per_image.iter().product();
        let mut data = Vec::with_capacity(n * trees.len());
        for tree in trees.iter_mut() {
            data.extend(tree.increment(sigma, sigma_next, n)?.into_iter().map(|v| v as f32));
        }
        Ok(TensorLatent(Tensor::from_vec(data, x.0.dims(), &self.device)?.to_dtype(x.0.dtype())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_noise_is_independent_of_batch_size() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let mut batch = SeededNoise::new([7, 8, 9], NoiseKind::Independent, &dev);
        let mut single = SeededNoise::new([8], NoiseKind::Independent, &dev);
        for _ in 0..2 {
            let b = batch.draw(&[2, 3])?.get(1)?.flatten_all()?.to_vec1::<f32>()?;
            let s = single.draw(&[2, 3])?.get(0)?.flatten_all()?.to_vec1::<f32>()?;
            assert_eq!(b, s);
        }
        Ok(())
    }

    /// ENSD: the starting noise is the seed's, the samplers' noise then comes from seed + delta.
    #[test]
    fn eta_noise_seed_delta_reseeds_the_samplers_noise_only() -> Result<(), BoxError> {
        let dev = Device::Cpu;
        let x = TensorLatent(Tensor::zeros((2, 3), candle_core::DType::F32, &dev)?);
        for rng in RngSource::ALL {
            let mut noise = SeededNoise::with_rng([7, 8], NoiseKind::Independent, rng, &dev);
            let start = noise.draw(&[3])?.to_vec2::<f32>()?;
            noise.eta_noise_seed_delta(31337);
            let next = noise.noise_like(&x)?.0.to_vec2::<f32>()?;
            assert_eq!(start[1], ImageRng::new(rng, 8).normals(3), "the starting noise is seed 8's first draw");
            assert_eq!(next[1], ImageRng::new(rng, 8 + 31337).normals(3), "then seed 8 + 31337's first draw");
            let mut plain = SeededNoise::with_rng([7, 8], NoiseKind::Independent, rng, &dev);
            plain.draw(&[3])?;
            plain.eta_noise_seed_delta(0);
            assert_ne!(plain.noise_like(&x)?.0.to_vec2::<f32>()?, next, "0 keeps the one generator");
        }
        Ok(())
    }

    #[test]
    fn brownian_noise_is_each_images_own_path_whatever_the_batch() -> Result<(), BoxError> {
        let dev = Device::Cpu;
        let shape = |b: usize| TensorLatent(Tensor::zeros((b, 2, 3), candle_core::DType::F32, &dev).unwrap());
        let mut batch = SeededNoise::new([7, 8, 9], NoiseKind::Brownian, &dev);
        let mut single = SeededNoise::new([8], NoiseKind::Brownian, &dev);
        let mut tree = BrownianTree::new(8);
        for (s, s_next) in [(14.6, 6.0), (6.0, 0.9), (14.6, 0.9)] {
            let b = batch.noise_between(&shape(3), s, s_next)?.0.get(1)?.flatten_all()?.to_vec1::<f32>()?;
            let one = single.noise_between(&shape(1), s, s_next)?.0.flatten_all()?.to_vec1::<f32>()?;
            let want: Vec<f32> = tree.increment(s, s_next, 6)?.into_iter().map(|v| v as f32).collect();
            assert_eq!(b, want);
            assert_eq!(one, want);
        }
        // Independent noise ignores the interval; Brownian noise does not.
        let again = batch.noise_between(&shape(3), 14.6, 6.0)?.0.to_vec3::<f32>()?;
        let first = SeededNoise::new([7, 8, 9], NoiseKind::Brownian, &dev).noise_between(&shape(3), 14.6, 6.0)?.0.to_vec3::<f32>()?;
        assert_eq!(again, first, "the same interval of the same path");
        assert!(batch.noise_between(&shape(2), 1.0, 0.5).is_err(), "batch size must match the seeds");
        Ok(())
    }
}
