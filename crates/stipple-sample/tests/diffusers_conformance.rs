//! Conformance with diffusers 0.42.1's multistep schedulers: `unipc` (bh1) and `unipc_bh2`
//! against `UniPCMultistepScheduler(solver_order=3)`, `deis` against
//! `DEISMultistepScheduler` (orders 2 and 3), `lcm` against `LCMScheduler`, and `dpmpp_2m`
//! ending at σ_min against `DPMSolverMultistepScheduler(final_sigmas_type="sigma_min")`.
//!
//! Fixture `fixtures/diffusers_multistep.json`, made by
//! `tests/reference/make_diffusers_multistep_reference.py` (its docstring lists the
//! configurations and why each is the one where the methods are the same): 1, 2, 5, 10, 25
//! (and 15) steps, ε- and v-prediction, timestep spacings linspace/trailing/leading and
//! Karras sigmas, final σ 0 and σ_min, on a toy network (exact ε / v of Gaussian data plus a
//! sine term) fed through Stipple's own `Preconditioned` wrapper.
//!
//! Tolerance: the script casts the schedulers' float32 sigmas to float64 before stepping and
//! the fixture stores them, so both sides compute in f64 on the same noise levels with the
//! same formulas up to the order of operations; we allow 1e-12·(1 + |x|). The worst
//! deviations (printed) are ~1e-15 for UniPC, LCM and DPM++ 2M, and 5e-14 for DEIS, where
//! diffusers' closed-form log-ρ integrals lose that much to cancellation (checked once
//! against a 40-digit mpmath evaluation of the same runs). The tolerance caught
//! Stipple's DEIS quadrature, whose 16 fixed panels were 6e-12 off on a one-step schedule.

use serde_json::Value;
use stipple_sample::*;

const TOL: f64 = 1e-12;
const MU: f64 = 0.3;
const S: f64 = 0.5;

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/diffusers_multistep.json")).unwrap()
}

/// The script's `toy_network`: F(u, σ) with u the VP sample (Stipple's c_in·x) and σ
/// passed as the noise conditioning.
struct ToyNet {
    prediction: Prediction,
}

impl Network<Vec<f64>> for ToyNet {
    fn predict(&mut self, u: &Vec<f64>, sigma: f64) -> Result<Vec<f64>, BoxError> {
        let alpha = 1.0 / (1.0 + sigma * sigma).sqrt();
        Ok(u.iter()
            .map(|&u| {
                let x = u / alpha;
                let d = (S * S * x + sigma * sigma * MU) / (S * S + sigma * sigma);
                let eps = (x - d) / sigma;
                let wobble = 0.05 * (3.0 * u + sigma).sin();
                match self.prediction {
                    Prediction::Epsilon => eps + wobble,
                    _ => alpha * eps - sigma * alpha * d + wobble,
                }
            })
            .collect())
    }
}

type Toy = Preconditioned<ToyNet, fn(f64) -> f64>;

fn toy(run: &Value) -> Toy {
    let prediction: Prediction = run["prediction"].as_str().unwrap().parse().unwrap();
    Preconditioned::new(ToyNet { prediction }, prediction, |s| s)
}

/// The consistency model's boundary condition, which diffusers' `LCMScheduler.step` applies
/// to the predicted x₀ (Song et al. 2023, "Consistency Models", §3, with LCM's
/// `timestep_scaling` = 10 and σ_data = 0.5; `get_scalings_for_boundary_condition_discrete`):
/// D_lcm = c_out(t)·D + c_skip(t)·x_vp, with x_vp = x/√(1+σ²) the VP sample and
/// c_skip = σ_d²/((10t)² + σ_d²), c_out = 10t/√((10t)² + σ_d²). It belongs to the
/// distilled model, not to the sampler, so it lives here in the test's denoiser.
struct LcmBoundary {
    inner: Toy,
    /// (σ, t) of each step.
    timesteps: Vec<(f64, f64)>,
}

impl Denoiser<Vec<f64>> for LcmBoundary {
    fn denoise(&mut self, x: &Vec<f64>, sigma: f64) -> Result<Vec<f64>, BoxError> {
        let &(_, t) = self.timesteps.iter().find(|(s, _)| *s == sigma).ok_or("σ not in the LCM timesteps")?;
        let (sd, st) = (0.5, 10.0 * t);
        let c_skip = sd * sd / (st * st + sd * sd);
        let c_out = st / (st * st + sd * sd).sqrt();
        let alpha = 1.0 / (1.0 + sigma * sigma).sqrt();
        let d = self.inner.denoise(x, sigma)?;
        Ok(d.iter().zip(x).map(|(d, x)| c_out * d + c_skip * alpha * x).collect())
    }
}

/// Hands out the noise diffusers drew, in order.
struct Recorded {
    draws: Vec<Vec<f64>>,
    next: usize,
}

impl Noise<Vec<f64>> for Recorded {
    fn noise_like(&mut self, _x: &Vec<f64>) -> Result<Vec<f64>, BoxError> {
        self.next += 1;
        self.draws.get(self.next - 1).cloned().ok_or_else(|| "more noise asked than diffusers drew".into())
    }
}

fn run_one(run: &Value, x_unit: &[f64]) -> Vec<f64> {
    let sigmas = Sigmas::new(floats(&run["sigmas"])).unwrap();
    // diffusers starts from the VP sample x_unit: x = x_unit·√(1 + σ₀²).
    let x0: Vec<f64> = x_unit.iter().map(|v| v * (1.0 + sigmas.first().powi(2)).sqrt()).collect();
    let order = run["options"]["order"].as_u64().map_or(3, |o| o as usize);
    let o = &mut ();
    let name = run["sampler"].as_str().unwrap();
    let r = match name {
        "unipc" => unipc(&mut toy(run), x0, &sigmas, order, UniPcVariant::Bh1, o),
        "unipc_bh2" => unipc(&mut toy(run), x0, &sigmas, order, UniPcVariant::Bh2, o),
        "deis" => deis(&mut toy(run), x0, &sigmas, order, o),
        "dpmpp_2m" => dpmpp_2m(&mut toy(run), x0, &sigmas, o),
        "lcm" => {
            let ts = floats(&run["timesteps"]);
            let timesteps = sigmas.as_slice().iter().copied().zip(ts).collect();
            let mut model = LcmBoundary { inner: toy(run), timesteps };
            let draws: Vec<Vec<f64>> = run["noise"].as_array().unwrap().iter().map(floats).collect();
            let mut noise = Recorded { draws, next: 0 };
            let out = lcm(&mut model, x0, &sigmas, 1.0, &mut noise, o);
            assert_eq!(noise.next, noise.draws.len(), "LCM draws noise on every step but the last");
            out
        }
        other => panic!("unknown sampler {other} in the fixture"),
    };
    r.unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn label(run: &Value) -> String {
    format!(
        "{} {} {} steps, {} spacing, options {}, sigmas {:?}",
        run["sampler"], run["prediction"], run["steps"], run["spacing"], run["options"], floats(&run["sigmas"])
    )
}

/// Every run of the fixture for `samplers`; returns the worst relative deviation.
fn check(samplers: &[&str]) -> f64 {
    let fx = fixture();
    let x_unit = floats(&fx["x_unit"]);
    let mut worst = 0.0f64;
    let mut count = 0;
    for run in fx["runs"].as_array().unwrap() {
        if !samplers.contains(&run["sampler"].as_str().unwrap()) {
            continue;
        }
        let want = floats(&run["x_out"]);
        let got = run_one(run, &x_unit);
        for (g, w) in got.iter().zip(&want) {
            let err = (g - w).abs() / (1.0 + w.abs());
            assert!(err <= TOL, "{}: got {got:?}, diffusers {want:?}", label(run));
            worst = worst.max(err);
        }
        count += 1;
    }
    assert!(count >= 8, "{samplers:?}: only {count} runs");
    eprintln!("{samplers:?}: {count} runs, worst relative deviation from diffusers {worst:e}");
    worst
}

#[test]
fn unipc_bh1_and_bh2_match_diffusers() {
    check(&["unipc", "unipc_bh2"]);
}

#[test]
fn deis_matches_diffusers() {
    check(&["deis"]);
}

#[test]
fn lcm_matches_diffusers() {
    check(&["lcm"]);
}

#[test]
fn dpmpp_2m_ending_at_sigma_min_matches_diffusers() {
    check(&["dpmpp_2m"]);
}

/// diffusers' trailing spacing and Karras sigmas with `final_sigmas_type="sigma_min"` are
/// Stipple's `SigmaSchedule::Trailing` / `Karras` ended by `FinalSigma::SigmaMin` (Karras:
/// the script drops diffusers' repeated σ_min, as `FinalSigma` does). diffusers rounds the levels to
/// float32, and `DEISMultistepScheduler` forms ᾱ by a float32 cumulative product and 1 − ᾱ
/// in float32 (see stipple-math's `euler_discrete_sigmas_golden`): ~1e-6 relative in general
/// and up to 2e-5 at σ_min, where 1 − ᾱ₀ ≈ 8.5e-4 cancels.
#[test]
fn sigmas_ending_at_sigma_min_match_diffusers() {
    let sched = DiscreteSchedule::new(BetaSchedule::ScaledLinear, 1000, 0.00085, 0.012);
    let mut checked = 0;
    for run in fixture()["runs"].as_array().unwrap() {
        let schedule = match run["spacing"].as_str() {
            Some("trailing") => SigmaSchedule::Trailing,
            Some("karras") => SigmaSchedule::Karras,
            _ => continue,
        };
        if !matches!(run["sampler"].as_str(), Some("dpmpp_2m" | "deis")) {
            continue;
        }
        let steps = run["steps"].as_u64().unwrap() as usize;
        let ours = FinalSigma::SigmaMin.apply(schedule.build(&sched, steps, 0).unwrap(), sched.sigma_min()).unwrap();
        let theirs = floats(&run["sigmas"]);
        assert_eq!(ours.as_slice().len(), theirs.len(), "{}", label(run));
        for (i, (a, b)) in ours.as_slice().iter().zip(&theirs).enumerate() {
            let tol = if i + 1 == theirs.len() { 2e-5 } else { 3e-6 };
            assert!((a - b).abs() <= tol * b, "{}: σ[{i}] {a} vs {b}", label(run));
        }
        checked += 1;
    }
    assert!(checked >= 20, "{checked}");
}
