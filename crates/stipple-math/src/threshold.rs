//! Dynamic thresholding of a predicted clean sample (Saharia et al. 2022, "Photorealistic
//! Text-to-Image Diffusion Models with Deep Language Understanding" (Imagen), §2.3).

/// The q-quantile of `values` (q ∈ [0, 1]) by linear interpolation between the order
/// statistics: with v sorted ascending and p = q·(n − 1), v[⌊p⌋] + (p − ⌊p⌋)·(v[⌊p⌋+1] − v[⌊p⌋]).
/// This is `torch.quantile`'s (and numpy's) default `interpolation="linear"`. Sorts
/// `values` in place; NaNs sort last. Returns NaN for an empty slice.
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let p = q.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = p.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    values[lo] + (p - lo as f64) * (values[hi] - values[lo])
}

/// The dynamic threshold s of one sample: the `ratio`-quantile of its absolute values,
/// clamped to [1, `max`] (Saharia et al. 2022, §2.3: "we set s to a certain percentile
/// absolute pixel value in x̂₀ … if s > 1, we threshold x̂₀ to the range [−s, s] and then
/// divide by s"). The caller then maps x̂₀ ↦ clamp(x̂₀, −s, s)/s.
///
/// Mirrors diffusers `DDIMScheduler._threshold_sample` (`torch.quantile(abs_sample, ratio,
/// dim=1)`, then `torch.clamp(s, min=1, max=sample_max_value)`, so `max < 1` gives s = max).
/// `values` are the sample's values (not yet absolute); they are overwritten.
pub fn dynamic_threshold(values: &mut [f64], ratio: f64, max: f64) -> f64 {
    values.iter_mut().for_each(|v| *v = v.abs());
    quantile(values, ratio).max(1.0).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_between_order_statistics() {
        // numpy.quantile([3, 1, 4, 2], q) for q = 0, 0.5, 0.9, 1: 1, 2.5, 3.7, 4.
        for (q, want) in [(0.0, 1.0), (0.5, 2.5), (0.9, 3.7), (1.0, 4.0)] {
            let got = quantile(&mut [3.0, 1.0, 4.0, 2.0], q);
            assert!((got - want).abs() < 1e-15, "q = {q}: {got}");
        }
        assert_eq!(quantile(&mut [5.0], 0.3), 5.0);
        assert!(quantile(&mut [], 0.5).is_nan());
    }

    #[test]
    fn threshold_is_clamped_to_one_and_max() {
        // |x| sorted: 0.5, 1, 2, 3; the 2/3-quantile is 2.
        assert!((dynamic_threshold(&mut [-3.0, 0.5, 2.0, -1.0], 2.0 / 3.0, 10.0) - 2.0).abs() < 1e-15);
        assert_eq!(dynamic_threshold(&mut [-3.0, 0.5, 2.0, -1.0], 2.0 / 3.0, 1.5), 1.5);
        assert_eq!(dynamic_threshold(&mut [0.1, -0.2], 0.995, 1.5), 1.0);
        assert_eq!(dynamic_threshold(&mut [0.1, -0.2], 0.995, 0.5), 0.5);
    }
}
