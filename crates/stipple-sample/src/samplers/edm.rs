use super::{heun, Churn};
use crate::{Denoiser, Latent, Noise, Observer, SampleError};
use stipple_math::Sigmas;

/// EDM's stochastic sampler (Karras et al. 2022, "Elucidating the Design Space of
/// Diffusion-Based Generative Models", Algorithm 2): [`heun`] with churn, as k-diffusion
/// runs it (`sample_heun` with `s_churn`, `s_tmin`, `s_tmax`, `s_noise`). The registry's
/// `edm` differs from `heun` only in its default churn, [`Churn::EDM_IMAGENET`].
pub fn edm<L: Latent>(
    model: &mut impl Denoiser<L>,
    x: L,
    sigmas: &Sigmas,
    churn: &Churn,
    noise: &mut impl Noise<L>,
    observer: &mut impl Observer<L>,
) -> Result<L, SampleError> {
    heun(model, x, sigmas, churn, noise, observer)
}
