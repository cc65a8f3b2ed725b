//! Samplers against mathematics on Gaussian data (DESIGN.md §6).

mod common;
use common::*;
use std::ops::ControlFlow;
use stipple_sample::*;

type OdeSampler = fn(&mut Gaussian, Vec<f64>, &Sigmas, &mut Record) -> Result<Vec<f64>, SampleError>;

const X_START: [f64; 5] = [-20.0, -3.0, 0.0, 5.0, 17.0];
const SIGMA_MAX: f64 = 10.0;
const SIGMA_MIN: f64 = 0.05;

/// `n` steps evenly spaced in ln σ from σ_max to σ_min (a true refinement when n doubles),
/// then 0. Returns the max error at σ_min against the closed-form PF-ODE solution.
fn error_at_sigma_min(sampler: OdeSampler, n: usize) -> f64 {
    let mut v = stipple_math::exponential(n + 1, SIGMA_MIN, SIGMA_MAX);
    v.push(0.0);
    let sigmas = Sigmas::new(v).unwrap();
    let mut rec = Record::default();
    let out = sampler(&mut Gaussian::default(), X_START.to_vec(), &sigmas, &mut rec).unwrap();
    // The last step to σ = 0 returns the denoised estimate.
    let (s_last, x_last) = &rec.xs[n - 1];
    assert_eq!(*s_last, sigmas.as_slice()[n - 1 + 1]);
    for (o, x) in out.iter().zip(x_last) {
        assert!((o - exact_denoise(*x, SIGMA_MIN)).abs() < 1e-12);
    }
    x_last
        .iter()
        .zip(X_START)
        .map(|(x, x0)| (x - pf_ode(x0, SIGMA_MAX, SIGMA_MIN)).abs())
        .fold(0.0, f64::max)
}

fn check_order(name: &str, sampler: OdeSampler, n: usize, order: i32) {
    let (e1, e2) = (error_at_sigma_min(sampler, n), error_at_sigma_min(sampler, 2 * n));
    let ratio = e1 / e2;
    let want = 2f64.powi(order);
    assert!(
        (ratio / want - 1.0).abs() < 0.15,
        "{name}: error {e1:e} at {n} steps, {e2:e} at {} steps: ratio {ratio}, expected ≈ {want}",
        2 * n
    );
}

#[test]
fn euler_converges_at_first_order() {
    check_order("euler", |m, x, s, r| euler(m, x, s, &Churn::NONE, &mut (), r), 40, 1);
}

#[test]
fn heun_converges_at_second_order() {
    check_order("heun", |m, x, s, r| heun(m, x, s, &Churn::NONE, &mut (), r), 20, 2);
}

#[test]
fn dpmpp_2m_converges_at_second_order() {
    check_order("dpmpp_2m", dpmpp_2m, 20, 2);
}

#[test]
fn ddim_eta_zero_is_euler() {
    let sched = DiscreteSchedule::new(BetaSchedule::ScaledLinear, 1000, 0.00085, 0.012);
    for kind in [SigmaSchedule::Leading, SigmaSchedule::Karras] {
        let sigmas = kind.build(&sched, 12, 1).unwrap();
        let x: Vec<f64> = X_START.iter().map(|v| v * sigmas.first() / 10.0).collect();
        let a = euler(&mut Gaussian::default(), x.clone(), &sigmas, &Churn::NONE, &mut (), &mut ()).unwrap();
        let mut noise = Philox4x32::new(0);
        let b = ddim(&mut Gaussian::default(), x, &sigmas, 0.0, 1.0, &mut noise, &mut ()).unwrap();
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() <= 1e-12, "{a:?} vs {b:?}");
        }
        assert_eq!(noise.offset(), 0, "η = 0 draws no noise");
    }
}

/// Draws 20,000 samples with a stochastic sampler from the exact marginal at σ₀ and checks
/// that they have the data's mean and standard deviation.
///
/// Ancestral sampling with the posterior *mean* drops Var[x₀|x] at every step, a bias of
/// first order in the step size (std 0.465 at 100 DDPM steps, 0.484 at 250, 0.496 at
/// 1000 here), so the runs below use many steps; removing the noise or doubling it fails
/// by far more (std → 0 or ≫ s).
fn check_stochastic(name: &str, kind: SamplerKind, schedule: SigmaSchedule, steps: usize, eta: Option<f64>) {
    let sched = DiscreteSchedule::new(BetaSchedule::ScaledLinear, 1000, 0.00085, 0.012);
    let sigmas = schedule.build(&sched, steps, 0).unwrap();
    let mut noise = Philox4x32::new(1234);
    let s0 = sigmas.first();
    let x: Vec<f64> = noise
        .normals(20_000)
        .into_iter()
        .map(|z| MU + (S * S + s0 * s0).sqrt() * f64::from(z))
        .collect();
    let mut model = Gaussian::default();
    let options = SamplerOptions { eta, ..Default::default() };
    let out = sample(kind, &mut model, x, &sigmas, &options, &mut noise, &mut ()).unwrap();
    assert_eq!(model.calls, steps);
    assert!(noise.offset() as usize >= steps, "{name} drew fresh noise every step");
    let (m, s) = mean_std(&out);
    // Standard errors: 0.0035 (mean), 0.0025 (std); the rest is discretisation.
    assert!((m - MU).abs() < 0.015, "{name}: mean {m}, expected {MU}");
    assert!((s - S).abs() < 0.012, "{name}: std {s}, expected {S}");
}

#[test]
fn ddpm_reproduces_the_data_distribution() {
    // The original DDPM: every one of the 1000 training timesteps.
    check_stochastic("ddpm", SamplerKind::Ddpm, SigmaSchedule::Trailing, 1000, None);
}

#[test]
fn euler_ancestral_reproduces_the_data_distribution() {
    check_stochastic("euler_ancestral", SamplerKind::EulerAncestral, SigmaSchedule::Karras, 400, None);
}

#[test]
fn ddim_eta_one_reproduces_the_data_distribution() {
    check_stochastic("ddim eta=1", SamplerKind::Ddim, SigmaSchedule::Leading, 1000, Some(1.0));
}

/// A network that returns the exact (MSE-optimal) training target a·E[x₀|x] + b·E[ε|x]
/// of its prediction type, computed from `target_coefficients` alone. Its conditioning is
/// σ itself, so it can undo c_in.
struct ExactTargetNet {
    prediction: Prediction,
}

impl Network<Vec<f64>> for ExactTargetNet {
    fn predict(&mut self, x_in: &Vec<f64>, sigma: f64) -> Result<Vec<f64>, BoxError> {
        let c_in = self.prediction.scalings(sigma).c_in;
        let (a, b) = self.prediction.target_coefficients(sigma);
        Ok(x_in
            .iter()
            .map(|v| {
                let x = v / c_in;
                let d = exact_denoise(x, sigma);
                a * d + b * (x - d) / sigma
            })
            .collect())
    }
}

#[test]
fn scalings_round_trip_for_every_prediction_type() {
    let predictions = [
        Prediction::Epsilon,
        Prediction::VPrediction,
        Prediction::Sample,
        Prediction::Edm { sigma_data: 0.5 },
        Prediction::Edm { sigma_data: 1.3 },
    ];
    for prediction in predictions {
        let mut model = Preconditioned::new(ExactTargetNet { prediction }, prediction, |s: f64| s);
        for sigma in [0.002, 0.03, 0.5, 1.0, 7.0, 80.0] {
            let x: Vec<f64> = X_START.iter().map(|v| v * (1.0 + sigma) / 10.0).collect();
            let d = model.denoise(&x, sigma).unwrap();
            for (got, xi) in d.iter().zip(&x) {
                let want = exact_denoise(*xi, sigma);
                assert!(
                    (got - want).abs() <= 1e-10 * (1.0 + xi.abs()),
                    "{prediction:?} at σ = {sigma}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn preconditioned_accepts_discrete_conditioning() {
    let sched = DiscreteSchedule::new(BetaSchedule::Linear, 1000, 0.0001, 0.02);
    struct Echo;
    impl Network<Vec<f64>> for Echo {
        fn predict(&mut self, _x: &Vec<f64>, t: f64) -> Result<Vec<f64>, BoxError> {
            Ok(vec![t])
        }
    }
    let s = sched.sigmas()[400];
    let mut m = Preconditioned::new(Echo, Prediction::Sample, move |sigma| sched.timestep_for(sigma));
    let d = m.denoise(&vec![1.0], s).unwrap();
    assert!((d[0] - 400.0).abs() < 1e-9);
}

struct StopAt(usize);
impl Observer<Vec<f64>> for StopAt {
    fn on_step(&mut self, info: &StepInfo<'_, Vec<f64>>) -> ControlFlow<()> {
        assert_eq!(info.steps, 10);
        if info.step == self.0 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }
}

#[test]
fn cancellation_stops_at_the_right_step() {
    let sigmas = Sigmas::new({
        let mut v = stipple_math::karras(10, 0.03, 14.6, 7.0);
        v.push(0.0);
        v
    })
    .unwrap();
    for kind in SamplerKind::ALL {
        let mut model = Gaussian::default();
        let r = sample(kind, &mut model, vec![1.0; 3], &sigmas, &SamplerOptions::default(), &mut Philox4x32::new(0), &mut StopAt(2));
        assert!(matches!(r, Err(SampleError::Cancelled { step: 2 })), "{kind}: {r:?}");
        assert_eq!(model.calls, 3 * kind.evals_per_step(), "{kind}");
        // Without cancellation: the declared number of evaluations.
        let mut model = Gaussian::default();
        sample(kind, &mut model, vec![1.0; 3], &sigmas, &SamplerOptions::default(), &mut Philox4x32::new(0), &mut ()).unwrap();
        assert_eq!(model.calls, kind.evals(10), "{kind}");
    }
}

#[test]
fn errors_carry_their_cause() {
    struct Broken;
    impl Denoiser<Vec<f64>> for Broken {
        fn denoise(&mut self, _: &Vec<f64>, _: f64) -> Result<Vec<f64>, BoxError> {
            Err("out of memory".into())
        }
    }
    let sigmas = Sigmas::new(vec![1.0, 0.0]).unwrap();
    let e = euler(&mut Broken, vec![0.0], &sigmas, &Churn::NONE, &mut (), &mut ()).unwrap_err();
    assert!(matches!(e, SampleError::Model(_)) && e.to_string().contains("out of memory"));
    let e = euler_ancestral(&mut Gaussian::default(), vec![0.0], &sigmas, f64::NAN, 1.0, &mut Philox4x32::new(0), &mut ()).unwrap_err();
    assert!(matches!(e, SampleError::InvalidEta(_)));
    assert!(<Vec<f64> as Latent>::lincomb(&[(1.0, &vec![1.0]), (1.0, &vec![1.0, 2.0])]).is_err());
    assert!(<Vec<f64> as Latent>::lincomb(&[]).is_err());
}
