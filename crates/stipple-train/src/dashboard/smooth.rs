//! The smoothed loss: an exponential moving average debiased as Adam debiases its moments
//! (Kingma & Ba 2015, Algorithm 1: m̂_t = m_t / (1 − β^t)), so early steps are not pulled
//! towards the zero it starts from.

use serde::{Deserialize, Serialize};

/// Weight of the past: about the last 1 / (1 − 0.98) = 50 steps count, long enough to
/// see through the per-batch noise of the diffusion loss (random timesteps), short enough
/// to follow a run of a few thousand steps.
pub const LOSS_SMOOTHING: f64 = 0.98;

/// The state of the smoothed loss, kept in the checkpoint so a resumed run logs the same
/// values as an uninterrupted one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossSmoother {
    /// The biased average m_t (0 before the first update).
    pub biased_mean: f64,
    /// Updates so far (t).
    pub updates: u64,
}

impl LossSmoother {
    /// Adds `loss` and returns the debiased average.
    pub fn update(&mut self, loss: f64) -> f64 {
        self.biased_mean = LOSS_SMOOTHING * self.biased_mean + (1.0 - LOSS_SMOOTHING) * loss;
        self.updates += 1;
        self.biased_mean / (1.0 - LOSS_SMOOTHING.powf(self.updates as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debiased_average() {
        let mut s = LossSmoother::default();
        // The first value comes back unchanged, a constant stays constant.
        assert!((s.update(2.0) - 2.0).abs() < 1e-12);
        assert!((s.update(2.0) - 2.0).abs() < 1e-12);
        // m_3 = 0.98·m_2 + 0.02·5 with m_2 = 2·(1 − 0.98²); debiased by 1 − 0.98³.
        let m2 = 2.0 * (1.0 - 0.98f64.powi(2));
        let expected = (0.98 * m2 + 0.02 * 5.0) / (1.0 - 0.98f64.powi(3));
        assert!((s.update(5.0) - expected).abs() < 1e-12);
    }
}
