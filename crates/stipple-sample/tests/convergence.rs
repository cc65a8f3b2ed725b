//! The new deterministic samplers against the closed-form probability-flow ODE on Gaussian
//! data (DESIGN.md §6): halving the step must divide the error at σ_min by 2^order.
//!
//! The multistep methods start with lower-order steps (k-diffusion's warm-up), whose local
//! error O(h²) eventually limits the *global* order to 2–3 as n → ∞; their higher order
//! shows at practical step counts (10–40), which is what these tests pin. iPNDM uses the
//! constant-step Adams–Bashforth weights, so on this log-spaced grid it is second order.

mod common;
use common::*;
use stipple_sample::*;

type Ode = fn(&mut Gaussian, Vec<f64>, &Sigmas, &mut Record) -> Result<Vec<f64>, SampleError>;

const X_START: [f64; 5] = [-20.0, -3.0, 0.0, 5.0, 17.0];
const SIGMA_MAX: f64 = 10.0;
const SIGMA_MIN: f64 = 0.05;

/// Max error at σ_min (after n steps evenly spaced in ln σ, before the last step to 0).
fn error_at_sigma_min(sampler: Ode, n: usize) -> f64 {
    let mut v = stipple_math::exponential(n + 1, SIGMA_MIN, SIGMA_MAX);
    v.push(0.0);
    let sigmas = Sigmas::new(v).unwrap();
    let mut rec = Record::default();
    sampler(&mut Gaussian::default(), X_START.to_vec(), &sigmas, &mut rec).unwrap();
    let (s_last, x_last) = &rec.xs[n - 1];
    assert_eq!(*s_last, sigmas.as_slice()[n]);
    x_last
        .iter()
        .zip(X_START)
        .map(|(x, x0)| (x - pf_ode(x0, SIGMA_MAX, *s_last)).abs())
        .fold(0.0, f64::max)
}

fn observed_order(sampler: Ode, n: usize) -> f64 {
    let (e1, e2) = (error_at_sigma_min(sampler, n), error_at_sigma_min(sampler, 2 * n));
    (e1 / e2).log2()
}

fn check(name: &str, sampler: Ode, n: usize, order: f64) {
    let p = observed_order(sampler, n);
    eprintln!("{name}: observed order {p:.3} ({n} → {} steps)", 2 * n);
    assert!(p > order - 0.2 && p < order + 1.6, "{name}: observed order {p}, expected ≥ {order}");
}

#[test]
fn dpm_2_is_second_order() {
    check("dpm_2", |m, x, s, r| dpm_2(m, x, s, &Churn::NONE, &mut Philox4x32::new(0), r), 20, 2.0);
}

#[test]
fn edm_without_churn_is_heun() {
    let ode: Ode = |m, x, s, r| edm(m, x, s, &Churn::NONE, &mut Philox4x32::new(0), r);
    check("edm (no churn)", ode, 20, 2.0);
}

#[test]
fn lms_is_high_order() {
    check("lms", |m, x, s, r| lms(m, x, s, 4, r), 20, 3.2);
}

#[test]
fn ipndm_is_second_order_on_a_log_grid() {
    check("ipndm", ipndm, 20, 2.0);
}

#[test]
fn deis_is_third_order() {
    check("deis", |m, x, s, r| deis(m, x, s, 3, r), 20, 3.0);
}

#[test]
fn unipc_is_third_order() {
    // Order-3 UniPC; lower_order_final lowers only the last steps, which here end at σ_min.
    check("unipc bh1", |m, x, s, r| unipc(m, x, s, 3, UniPcVariant::Bh1, r), 40, 3.0);
    check("unipc bh2", |m, x, s, r| unipc(m, x, s, 3, UniPcVariant::Bh2, r), 40, 3.0);
}

#[test]
fn sde_samplers_at_eta_zero_are_ode_solvers() {
    let mut z = Philox4x32::new(0);
    check("dpmpp_2m_sde η=0", |m, x, s, r| {
        dpmpp_2m_sde(m, x, s, 0.0, 1.0, SdeSolver::Midpoint, &mut Philox4x32::new(0), r)
    }, 20, 2.0);
    check("dpmpp_2m_sde_heun η=0", |m, x, s, r| {
        dpmpp_2m_sde(m, x, s, 0.0, 1.0, SdeSolver::Heun, &mut Philox4x32::new(0), r)
    }, 20, 2.0);
    check("dpmpp_3m_sde η=0", |m, x, s, r| dpmpp_3m_sde(m, x, s, 0.0, 1.0, &mut Philox4x32::new(0), r), 10, 2.7);
    check("dpmpp_2s_ancestral η=0", |m, x, s, r| {
        dpmpp_2s_ancestral(m, x, s, 0.0, 1.0, &mut Philox4x32::new(0), r)
    }, 20, 2.0);
    check("dpmpp_sde η=0", |m, x, s, r| dpmpp_sde(m, x, s, 0.0, 1.0, 0.5, &mut Philox4x32::new(0), r), 20, 2.0);
    check("dpm_2_ancestral η=0", |m, x, s, r| {
        dpm_2_ancestral(m, x, s, 0.0, 1.0, &mut Philox4x32::new(0), r)
    }, 20, 2.0);
    // η = 0 with the midpoint solver is exactly DPM++ 2M, and draws no noise.
    let sigmas = SigmaSchedule::Karras
        .build(&DiscreteSchedule::new(BetaSchedule::ScaledLinear, 1000, 0.00085, 0.012), 15, 0)
        .unwrap();
    let a = dpmpp_2m(&mut Gaussian::default(), X_START.to_vec(), &sigmas, &mut ()).unwrap();
    let b = dpmpp_2m_sde(&mut Gaussian::default(), X_START.to_vec(), &sigmas, 0.0, 1.0, SdeSolver::Midpoint, &mut z, &mut ())
        .unwrap();
    for (p, q) in a.iter().zip(&b) {
        assert!((p - q).abs() < 1e-12);
    }
    assert_eq!(z.offset(), 0);
}

#[test]
#[ignore]
fn print_orders() {
    for n in [10, 20, 40, 80] {
        eprintln!(
            "n={n} lms {:.3} ipndm {:.3} unipc {:.3} unipc2 {:.3} 3m {:.3} deis {:.3}",
            observed_order(|m, x, s, r| lms(m, x, s, 4, r), n),
            observed_order(ipndm, n),
            observed_order(|m, x, s, r| unipc(m, x, s, 3, UniPcVariant::Bh1, r), n),
            observed_order(|m, x, s, r| unipc(m, x, s, 2, UniPcVariant::Bh2, r), n),
            observed_order(|m, x, s, r| dpmpp_3m_sde(m, x, s, 0.0, 1.0, &mut Philox4x32::new(0), r), n),
            observed_order(|m, x, s, r| deis(m, x, s, 3, r), n),
        );
    }
}
