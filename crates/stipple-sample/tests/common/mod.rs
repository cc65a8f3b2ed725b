//! The analytic Gaussian problem of DESIGN.md §6: data x₀ ~ N(μ, s²).
#![allow(dead_code)]

use std::ops::ControlFlow;
use stipple_sample::{BoxError, Denoiser, Observer, StepInfo};

pub const MU: f64 = 0.3;
pub const S: f64 = 0.5;

/// The exact denoiser D(x;σ) = (s²x + σ²μ)/(s²+σ²), counting its calls.
#[derive(Default)]
pub struct Gaussian {
    pub calls: usize,
}

pub fn exact_denoise(x: f64, sigma: f64) -> f64 {
    (S * S * x + sigma * sigma * MU) / (S * S + sigma * sigma)
}

impl Denoiser<Vec<f64>> for Gaussian {
    fn denoise(&mut self, x: &Vec<f64>, sigma: f64) -> Result<Vec<f64>, BoxError> {
        self.calls += 1;
        Ok(x.iter().map(|&v| exact_denoise(v, sigma)).collect())
    }
}

/// The probability-flow ODE solution from x at σ_from, evaluated at σ_to.
pub fn pf_ode(x: f64, sigma_from: f64, sigma_to: f64) -> f64 {
    MU + (x - MU) * ((S * S + sigma_to * sigma_to) / (S * S + sigma_from * sigma_from)).sqrt()
}

/// Records the latent after every step.
#[derive(Default)]
pub struct Record {
    pub xs: Vec<(f64, Vec<f64>)>,
}

impl Observer<Vec<f64>> for Record {
    fn on_step(&mut self, info: &StepInfo<'_, Vec<f64>>) -> ControlFlow<()> {
        self.xs.push((info.sigma_next, info.x.clone()));
        ControlFlow::Continue(())
    }
}

pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
    (m, var.sqrt())
}
