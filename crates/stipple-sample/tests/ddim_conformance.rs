//! DDIM(η) = Euler-ancestral(η) over the discrete sigmas, proved against diffusers 0.42.1.
//!
//! Numbers from tests/reference/make_sample_golden.py: DDIMScheduler(beta_schedule=
//! "scaled_linear", beta_start=0.00085, beta_end=0.012, set_alpha_to_one=True, clip_sample=False,
//! steps_offset=1,
//! timestep_spacing="leading"), set_timesteps(10), stepped with the exact ε of Gaussian data
//! (μ = 0.3, s = 0.5) from x_T = [-1.5, -0.2, 0.0, 0.7, 2.0] (VP coordinates), with
//! `variance_noise=z[i]` at step i for η = 1. diffusers keeps ᾱ in f32, hence 1e-5.

mod common;
use common::*;
use stipple_sample::*;

struct Replay {
    rows: Vec<Vec<f64>>,
    next: usize,
}

impl Noise<Vec<f64>> for Replay {
    fn noise_like(&mut self, _x: &Vec<f64>) -> Result<Vec<f64>, BoxError> {
        self.next += 1;
        Ok(self.rows[self.next - 1].clone())
    }
}

fn run(eta: f64) -> (Vec<f64>, usize) {
    let sched = DiscreteSchedule::new(BetaSchedule::ScaledLinear, 1000, 0.00085, 0.012);
    // timesteps = [901, 801, 701, 601, 501, 401, 301, 201, 101, 1]
    let sigmas = SigmaSchedule::Leading.build(&sched, 10, 1).unwrap();
    assert_eq!(sigmas.first(), sched.sigmas()[901]);
    let a_t = sched.alphas_cumprod()[901];
    // VP x_T → VE x = x_T/√ᾱ.
    let x: Vec<f64> = [-1.5, -0.2, 0.0, 0.7, 2.0].iter().map(|v| v / a_t.sqrt()).collect();
    // z[i][j] = 0.1 * ((7 i + 3 j) % 11 - 5)
    let rows = (0..10)
        .map(|i| (0..5).map(|j| 0.1 * (((7 * i + 3 * j) % 11) as f64 - 5.0)).collect())
        .collect();
    let mut noise = Replay { rows, next: 0 };
    let out = ddim(&mut Gaussian::default(), x, &sigmas, eta, 1.0, &mut noise, &mut ()).unwrap();
    (out, noise.next)
}

#[test]
fn ddim_eta_0_matches_diffusers() {
    let expected = [-0.321570026842488, 0.20466873741762961, 0.2856285473038015, 0.5689878819054033, 1.0952266461655207];
    let (got, draws) = run(0.0);
    assert_eq!(draws, 0);
    for (g, e) in got.iter().zip(expected) {
        assert!((g - e).abs() < 1e-5, "{got:?} vs {expected:?}");
    }
}

#[test]
fn ddim_eta_1_matches_diffusers() {
    let expected = [0.30263639782485463, 0.32100553364670853, 0.20923015046395596, 0.2640754661465907, 0.39361905995245866];
    let (got, draws) = run(1.0);
    assert_eq!(draws, 9, "noise on every step but the last");
    for (g, e) in got.iter().zip(expected) {
        assert!((g - e).abs() < 1e-5, "{got:?} vs {expected:?}");
    }
}
