//! The observation masks of a forecaster trained as CSDI is (Tashiro et al. 2021, the
//! self-supervised training and its choice of imputation targets): each training window
//! hides some of its values, the model sees the rest as its conditional observation and is
//! trained on the hidden ones only, so it learns p(hidden | observed) directly rather than an
//! unconditional window to be inpainted.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// `batch` masks of `context + horizon` values each, flattened (1 = observed, 0 = hidden
/// target). Half are CSDI's "test pattern strategy" for forecasting: the last `horizon` values
/// hidden, as `stipple forecast` asks. The other half hide the last h ~ U{1, …, horizon}
/// values (a shorter forecast, `--horizon h`) and, of the values before them, each with
/// probability r, r ~ U(0, 1) per window: CSDI's "random strategy", which teaches the
/// imputation of missing history values.
pub fn draw_forecast_masks(rng: &mut ChaCha8Rng, batch: usize, context: usize, horizon: usize) -> Vec<f32> {
    let length = context + horizon;
    let mut masks = Vec::with_capacity(batch * length);
    for _ in 0..batch {
        if rng.random_bool(0.5) {
            masks.extend((0..length).map(|i| if i < context { 1.0 } else { 0.0 }));
        } else {
            let h = rng.random_range(1..=horizon);
            let r: f64 = rng.random();
            masks.extend((0..length).map(|i| if i >= length - h || rng.random_bool(r) { 0.0 } else { 1.0 }));
        }
    }
    masks
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn every_window_hides_its_last_value_and_half_hide_the_whole_horizon() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (batch, context, horizon) = (400, 10, 4);
        let masks = draw_forecast_masks(&mut rng, batch, context, horizon);
        assert_eq!(masks.len(), batch * (context + horizon));
        let windows: Vec<&[f32]> = masks.chunks(context + horizon).collect();
        assert!(masks.iter().all(|&m| m == 0.0 || m == 1.0));
        assert!(windows.iter().all(|w| w[context + horizon - 1] == 0.0));
        let test_pattern = windows.iter().filter(|w| w[..context].iter().all(|&m| m == 1.0) && w[context..].iter().all(|&m| m == 0.0)).count();
        // Half by construction, plus the random windows that happen to match (h = H, r small).
        assert!((170..=260).contains(&test_pattern), "{test_pattern} of {batch} windows forecast the whole horizon");
        // The random strategy hides history values too, at every rate.
        let hidden_history = windows.iter().filter(|w| w[..context].contains(&0.0)).count();
        assert!(hidden_history > batch / 4, "{hidden_history} of {batch} windows hide history values");
    }
}
