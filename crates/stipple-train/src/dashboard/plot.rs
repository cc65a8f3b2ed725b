//! The loss curve as a picture: raw loss faint, smoothed loss bold, log-scale y, drawn with
//! plotters into a bitmap. No text (no font is needed, so nothing depends on the fonts of
//! the machine): light lines mark the decades of the loss and tenths of the steps.

use std::collections::BTreeMap;

use image::RgbImage;
use plotters::prelude::*;

/// Width and height of the plot in pixels.
pub const LOSS_PLOT_SIZE: (u32, u32) = (800, 400);

/// One logged step: `(step, raw loss, smoothed loss if logged)`.
pub type LossPoint = (u64, f64, Option<f64>);

/// The losses of a `train.jsonl` log, one per step in step order; a step logged twice (a
/// run resumed after a crash repeats the steps since its last checkpoint) keeps its last
/// line. Lines that are not JSON objects with `step` and `loss` are skipped.
pub fn losses_from_log(text: &str) -> Vec<LossPoint> {
    let mut by_step = BTreeMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if let (Some(step), Some(loss)) = (v["step"].as_u64(), v["loss"].as_f64()) {
            by_step.insert(step, (loss, v["loss_smoothed"].as_f64()));
        }
    }
    by_step.into_iter().map(|(s, (l, m))| (s, l, m)).collect()
}

/// Draws `points` into a [`LOSS_PLOT_SIZE`] image.
pub fn render_loss_plot(points: &[LossPoint]) -> Result<RgbImage, String> {
    let (w, h) = LOSS_PLOT_SIZE;
    let mut buf = vec![0u8; (w * h * 3) as usize];
    draw(&mut buf, points).map_err(|e| format!("drawing the loss plot: {e}"))?;
    Ok(RgbImage::from_raw(w, h, buf).expect("buffer sized to the plot"))
}

fn draw(buf: &mut [u8], points: &[LossPoint]) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(buf, LOSS_PLOT_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    // Losses are positive (mean squares or absolute values); clamp for the log axis.
    let y = |v: f64| v.max(1e-12);
    let steps = || points.iter().map(|p| p.0 as f64);
    let (x0, x1) = (steps().fold(f64::INFINITY, f64::min), steps().fold(f64::NEG_INFINITY, f64::max));
    let ys = || points.iter().flat_map(|p| [Some(p.1), p.2]).flatten().map(y);
    let (lo, hi) = (ys().fold(f64::INFINITY, f64::min), ys().fold(f64::NEG_INFINITY, f64::max));
    if !(x0.is_finite() && lo.is_finite()) {
        root.present()?;
        return Ok(()); // nothing logged yet: a blank canvas
    }
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let (lo, hi) = (lo / 1.2, hi * 1.2);
    let mut chart = ChartBuilder::on(&root).margin(12).build_cartesian_2d(x0..x1, (lo..hi).log_scale())?;

    let grid = RGBColor(225, 225, 225);
    let mut decade = 10f64.powf(lo.log10().ceil());
    while decade <= hi {
        chart.draw_series(LineSeries::new([(x0, decade), (x1, decade)], grid))?;
        decade *= 10.0;
    }
    for k in 0..=10 {
        let x = x0 + (x1 - x0) * k as f64 / 10.0;
        chart.draw_series(LineSeries::new([(x, lo), (x, hi)], grid))?;
    }
    let raw = points.iter().map(|p| (p.0 as f64, y(p.1)));
    chart.draw_series(LineSeries::new(raw, RGBColor(90, 140, 210).mix(0.35)))?;
    let smoothed = points.iter().filter_map(|p| p.2.map(|m| (p.0 as f64, y(m))));
    chart.draw_series(LineSeries::new(smoothed, RGBColor(10, 50, 150).stroke_width(3)))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_line_of_a_step() {
        let log = "{\"step\":1,\"loss\":2.0}\n{\"step\":2,\"loss\":1.0,\"loss_smoothed\":1.5}\nnot json\n{\"step\":1,\"loss\":3.0}\n";
        assert_eq!(losses_from_log(log), vec![(1, 3.0, None), (2, 1.0, Some(1.5))]);
    }

    #[test]
    fn draws_on_a_white_canvas() {
        let pts: Vec<LossPoint> = (1..=50).map(|s| (s, 1.0 / s as f64, Some(1.2 / s as f64))).collect();
        let img = render_loss_plot(&pts).unwrap();
        assert_eq!(img.dimensions(), LOSS_PLOT_SIZE);
        assert!(img.pixels().any(|p| p.0[2] as u16 > p.0[0] as u16 + 60), "no blue curve drawn");
        assert_eq!(render_loss_plot(&[]).unwrap().get_pixel(0, 0).0, [255, 255, 255]);
    }
}
