//! Quality against sampling cost: one point per sampler and step count, as a table and as a
//! plot of the Fréchet distance against the number of network evaluations (NFE), each
//! measured over one or more disjoint seed sets with a confidence interval.

use candle_core::Device;
use image::RgbImage;
use plotters::prelude::*;
use serde::Serialize;
use stipple_nn::TensorLatent;
use stipple_pipeline::{GenerateRequest, Model};
use stipple_sample::Observer;

use crate::{frechet_distance_of, generate_set, precision_recall, EvalError, FeatureNet, Features};

/// One sampler at one step count: means over the seed sets.
#[derive(Clone, Debug, Serialize)]
pub struct SweepPoint {
    pub sampler: String,
    pub steps: usize,
    /// Network evaluations per image.
    pub nfe: usize,
    pub fd: f64,
    /// Half-width of the 95% confidence interval of the mean FD over the seed sets
    /// (Student's t; 0 with one set).
    pub fd_ci95: f64,
    /// Seed sets measured.
    pub repeats: usize,
    pub precision: f64,
    pub recall: f64,
}

/// The 97.5% quantile of Student's t with `dof` degrees of freedom, from the regularised
/// incomplete beta function: P(|T| > t) = I_{ν/(ν+t²)}(ν/2, 1/2) (Abramowitz & Stegun
/// 26.7.1 with 26.5.27), so t = √(ν(1 − x)/x) with x = I⁻¹(0.05; ν/2, 1/2).
pub fn t_quantile_975(dof: usize) -> f64 {
    let nu = dof as f64;
    let x = stipple_math::beta_ppf(0.05, nu / 2.0, 0.5);
    (nu * (1.0 - x) / x).sqrt()
}

/// Mean and 95% interval half-width (Student's t) of `values`; the half-width is 0 for one value.
pub fn mean_ci95(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, t_quantile_975(values.len() - 1) * (var / n).sqrt())
}

/// Every sampler of `samplers` at every step count of `step_counts`, over `repeats` disjoint
/// seed sets (set r draws the images of seeds `seed + r·count + i`, the same sets for every
/// point, so the curves are comparable), the other settings from `base`: the mean FD with its
/// 95% interval, and mean precision/recall (neighbourhood `k`) against `reference` in `net`'s
/// space.
#[allow(clippy::too_many_arguments)]
pub fn sweep(
    model: &Model,
    net: &dyn FeatureNet,
    reference: &Features,
    base: &GenerateRequest,
    samplers: &[String],
    step_counts: &[usize],
    repeats: usize,
    k: usize,
    device: &Device,
    observer: &mut impl Observer<TensorLatent>,
) -> Result<Vec<SweepPoint>, EvalError> {
    if repeats == 0 {
        return Err(EvalError::setting("repeats", "must be at least 1"));
    }
    let spec = base.validate()?;
    let mut points = Vec::new();
    for sampler in samplers {
        for &steps in step_counts {
            let (mut fds, mut precision, mut recall, mut nfe) = (Vec::new(), 0.0, 0.0, 0);
            for r in 0..repeats {
                let seed = spec.seed.checked_add((r * spec.count) as u64).ok_or_else(|| EvalError::setting("seed", "seed + repeats × count overflows"))?;
                let request = GenerateRequest { sampler: Some(sampler.clone()), steps: Some(steps), seed: Some(seed), ..base.clone() };
                let (images, n) = generate_set(model, &request.validate()?, device, observer)?;
                let generated = net.embed(&images)?;
                let pr = precision_recall(&generated, reference, k)?;
                fds.push(frechet_distance_of(&generated, reference)?);
                precision += pr.precision / repeats as f64;
                recall += pr.recall / repeats as f64;
                nfe = n;
            }
            let (fd, fd_ci95) = mean_ci95(&fds);
            points.push(SweepPoint { sampler: sampler.clone(), steps, nfe, fd, fd_ci95, repeats, precision, recall });
        }
    }
    Ok(points)
}

/// Width and height of the plot in pixels.
pub const SWEEP_PLOT_SIZE: (u32, u32) = (800, 500);

/// Line colours, by sampler in first-appearance order (the table names them).
pub const COLOURS: [(&str, RGBColor); 8] = [
    ("blue", RGBColor(31, 119, 180)),
    ("orange", RGBColor(255, 127, 14)),
    ("green", RGBColor(44, 160, 44)),
    ("red", RGBColor(214, 39, 40)),
    ("purple", RGBColor(148, 103, 189)),
    ("brown", RGBColor(140, 86, 75)),
    ("pink", RGBColor(227, 119, 194)),
    ("grey", RGBColor(127, 127, 127)),
];

/// The samplers of `points` in first-appearance order.
pub fn samplers(points: &[SweepPoint]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for p in points {
        if !out.contains(&p.sampler.as_str()) {
            out.push(&p.sampler);
        }
    }
    out
}

/// A text table, one row per point, with each sampler's line colour.
pub fn sweep_table(points: &[SweepPoint]) -> String {
    let names = samplers(points);
    let mut out = format!("{:<22} {:>6} {:>6} {:>20} {:>10} {:>8}\n", "sampler (colour)", "steps", "NFE", "FD (95% interval)", "precision", "recall");
    for p in points {
        let i = names.iter().position(|n| *n == p.sampler).unwrap_or(0);
        let label = format!("{} ({})", p.sampler, COLOURS[i % COLOURS.len()].0);
        let fd = if p.repeats > 1 { format!("{:.3} ± {:.3}", p.fd, p.fd_ci95) } else { format!("{:.4}", p.fd) };
        out += &format!("{label:<22} {:>6} {:>6} {fd:>20} {:>10.4} {:>8.4}\n", p.steps, p.nfe, p.precision, p.recall);
    }
    out
}

/// FD (log scale) against NFE (log scale), one line per sampler; no text (no font needed),
/// light lines mark the powers of two of the NFE and the decades of the FD.
pub fn render_sweep_plot(points: &[SweepPoint]) -> Result<RgbImage, EvalError> {
    let (w, h) = SWEEP_PLOT_SIZE;
    let mut buf = vec![0u8; (w * h * 3) as usize];
    draw(&mut buf, points).map_err(|e| EvalError::setting("plot", format!("could not draw the plot: {e}")))?;
    Ok(RgbImage::from_raw(w, h, buf).expect("buffer sized to the plot"))
}

fn draw(buf: &mut [u8], points: &[SweepPoint]) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(buf, SWEEP_PLOT_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let fd = |p: &SweepPoint| p.fd.max(1e-9);
    let (x0, x1) = points.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| (lo.min(p.nfe as f64), hi.max(p.nfe as f64)));
    let (y0, y1) = points.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| (lo.min(fd(p)), hi.max(fd(p))));
    if !(x0.is_finite() && y0.is_finite()) {
        root.present()?;
        return Ok(());
    }
    let (x0, x1) = (x0 / 1.2, (x1 * 1.2).max(x0 * 1.5));
    let (y0, y1) = (y0 / 1.3, (y1 * 1.3).max(y0 * 2.0));
    let mut chart = ChartBuilder::on(&root).margin(16).build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?;
    let grid = RGBColor(225, 225, 225);
    let mut x = 1.0;
    while x <= x1 {
        if x >= x0 {
            chart.draw_series(LineSeries::new([(x, y0), (x, y1)], grid))?;
        }
        x *= 2.0;
    }
    let mut y = 10f64.powf(y0.log10().ceil());
    while y <= y1 {
        chart.draw_series(LineSeries::new([(x0, y), (x1, y)], grid))?;
        y *= 10.0;
    }
    for (i, name) in samplers(points).iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()].1;
        let mut line: Vec<(f64, f64)> = points.iter().filter(|p| p.sampler == *name).map(|p| (p.nfe as f64, fd(p))).collect();
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart.draw_series(LineSeries::new(line.clone(), colour.stroke_width(3)))?;
        chart.draw_series(line.into_iter().map(|c| Circle::new(c, 5, colour.filled())))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_coloured_line_per_sampler_and_names_the_colours() {
        let pts: Vec<SweepPoint> = [("euler", 10.0), ("heun", 3.0)]
            .iter()
            .flat_map(|&(s, c)| {
                [4usize, 8, 16].map(|n| SweepPoint { sampler: s.to_string(), steps: n, nfe: n, fd: c / n as f64, fd_ci95: 0.1, repeats: 3, precision: 0.5, recall: 0.5 })
            })
            .collect();
        let img = render_sweep_plot(&pts).unwrap();
        assert_eq!(img.dimensions(), SWEEP_PLOT_SIZE);
        let has = |c: RGBColor| img.pixels().any(|p| p.0 == [c.0, c.1, c.2]);
        assert!(has(COLOURS[0].1) && has(COLOURS[1].1) && !has(COLOURS[2].1));
        let table = sweep_table(&pts);
        assert!(table.contains("euler (blue)") && table.contains("heun (orange)") && table.contains("2.500 ± 0.100"), "{table}");
    }

    /// Against scipy.stats.t.ppf(0.975, ν).
    #[test]
    fn t_quantiles_and_intervals() {
        for (dof, want) in [(1, 12.706_204_736_174_694), (2, 4.302_652_729_749_462), (4, 2.776_445_105_197_793_4), (30, 2.042_272_456_301_237_8)] {
            assert!((t_quantile_975(dof) - want).abs() < 1e-9 * want, "ν = {dof}: {} vs {want}", t_quantile_975(dof));
        }
        let (m, h) = mean_ci95(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        assert!((h - 4.302_652_729_749_462 / 3f64.sqrt()).abs() < 1e-9);
        assert_eq!(mean_ci95(&[5.0]), (5.0, 0.0));
    }
}
