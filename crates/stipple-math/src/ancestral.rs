//! Splitting a step of an ancestral sampler into a deterministic part and fresh noise.

/// Splits the step σ_from → σ_to into (σ_down, σ_up): move deterministically to σ_down,
/// then add fresh noise of standard deviation σ_up, so that σ_down² + σ_up² = σ_to².
///
/// σ_up = min(σ_to, η·√(σ_to²·(σ_from² − σ_to²)/σ_from²)), σ_down = √(σ_to² − σ_up²).
/// With η = 1 this is the DDPM posterior variance and with general η the DDIM σ_t(η)
/// (Song et al. 2021, "Denoising Diffusion Implicit Models", eq. 16) in VE coordinates.
///
/// Mirrors k-diffusion `sampling.get_ancestral_step`; the `min(σ_to, …)` and the clamp
/// under the square root keep float rounding from producing NaN (cf. diffusers #14213).
pub fn ancestral_step(sigma_from: f64, sigma_to: f64, eta: f64) -> (f64, f64) {
    if eta == 0.0 {
        return (sigma_to, 0.0);
    }
    let var = sigma_to * sigma_to * (sigma_from * sigma_from - sigma_to * sigma_to)
        / (sigma_from * sigma_from);
    let sigma_up = sigma_to.min(eta * var.max(0.0).sqrt());
    let sigma_down = (sigma_to * sigma_to - sigma_up * sigma_up).max(0.0).sqrt();
    (sigma_down, sigma_up)
}
