//! The fan chart of a forecast (the Bank of England's style of showing a predictive
//! distribution): the observed series as a dark line, the central intervals of the sample
//! paths as nested shaded bands, the median as a line. Drawn with plotters into a bitmap,
//! without text (no font needed), like the training loss plot; faint vertical lines mark
//! tenths of the window and a dashed-looking gap-free line marks where the forecast begins.

use image::RgbImage;
use plotters::prelude::*;

/// Width and height of the chart in pixels.
pub const FAN_CHART_SIZE: (u32, u32) = (800, 400);

/// The series and the bands to draw: `observed[t]` (`None`: missing or future), and for
/// each band its `(lower, upper)` quantile paths, outermost first; `median` over the window.
pub struct FanChart<'a> {
    pub observed: &'a [Option<f64>],
    pub bands: Vec<(&'a [f64], &'a [f64])>,
    pub median: &'a [f64],
    /// Index of the first forecast step (a vertical line); `None` draws none.
    pub forecast_start: Option<usize>,
}

/// Draws `chart` into a [`FAN_CHART_SIZE`] image.
pub fn render_fan_chart(chart: &FanChart<'_>) -> Result<RgbImage, String> {
    let (w, h) = FAN_CHART_SIZE;
    let mut buf = vec![0u8; (w * h * 3) as usize];
    draw(&mut buf, chart).map_err(|e| format!("drawing the fan chart: {e}"))?;
    Ok(RgbImage::from_raw(w, h, buf).expect("buffer sized to the chart"))
}

fn draw(buf: &mut [u8], c: &FanChart<'_>) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(buf, FAN_CHART_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let n = c.median.len().max(c.observed.len());
    let values = c.observed.iter().flatten().copied().chain(c.bands.iter().flat_map(|(lo, hi)| lo.iter().chain(hi.iter()).copied())).chain(c.median.iter().copied());
    let (lo, hi) = values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if n < 2 || !lo.is_finite() {
        root.present()?;
        return Ok(()); // nothing to draw: a blank canvas
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    let x1 = (n - 1) as f64;
    let mut chart = ChartBuilder::on(&root).margin(12).build_cartesian_2d(0.0..x1, (lo - pad)..(hi + pad))?;
    let grid = RGBColor(225, 225, 225);
    for k in 0..=10 {
        let x = x1 * k as f64 / 10.0;
        chart.draw_series(LineSeries::new([(x, lo - pad), (x, hi + pad)], grid))?;
    }
    // Nested bands, outermost (lightest) first.
    let shades = [RGBColor(205, 220, 245), RGBColor(160, 190, 235), RGBColor(110, 155, 220)];
    for (k, (lower, upper)) in c.bands.iter().enumerate() {
        let outline: Vec<(f64, f64)> = upper.iter().enumerate().map(|(t, &v)| (t as f64, v)).chain(lower.iter().enumerate().rev().map(|(t, &v)| (t as f64, v))).collect();
        chart.draw_series(std::iter::once(Polygon::new(outline, shades[k.min(shades.len() - 1)].filled())))?;
    }
    chart.draw_series(LineSeries::new(c.median.iter().enumerate().map(|(t, &v)| (t as f64, v)), RGBColor(10, 50, 150).stroke_width(2)))?;
    if let Some(s) = c.forecast_start {
        let x = s as f64 - 0.5;
        chart.draw_series(LineSeries::new([(x, lo - pad), (x, hi + pad)], RGBColor(150, 150, 150).stroke_width(1)))?;
    }
    // The observed series, broken where values are missing.
    let mut run: Vec<(f64, f64)> = Vec::new();
    for (t, v) in c.observed.iter().enumerate() {
        match v {
            Some(v) => run.push((t as f64, *v)),
            None => {
                chart.draw_series(LineSeries::new(std::mem::take(&mut run), BLACK.stroke_width(2)))?;
            }
        }
    }
    chart.draw_series(LineSeries::new(run, BLACK.stroke_width(2)))?;
    root.present()?;
    Ok(())
}
