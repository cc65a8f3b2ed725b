//! Robustness and statistics of every sampler through the registry:
//! - no NaN or ∞ for any sampler × schedule × step count from 1 to 1000, ending at 0 or at
//!   σ_min (also on a zero-terminal-SNR schedule, σ_max ≈ 4096, and for ancestral steps
//!   where rounding would put σ_up above σ_to);
//! - the stochastic samplers reproduce the mean and spread of Gaussian data.

mod common;
use common::*;
use stipple_sample::*;

#[test]
fn no_nan_for_any_sampler_schedule_and_step_count() {
    let schedules = [
        DiscreteSchedule::new(BetaSchedule::ScaledLinear, 1000, 0.00085, 0.012),
        DiscreteSchedule::zero_terminal_snr(BetaSchedule::ScaledLinear, 1000, 0.00085, 0.012),
    ];
    let x_unit = [-2.5, -0.7, 0.0, 0.3, 1.9];
    for sched in &schedules {
        for schedule in SigmaSchedule::ALL {
            for steps in [1, 2, 3, 5, 8, 20, 100, 1000] {
                let Ok(zero) = schedule.build(sched, steps, 1) else {
                    // Only leading spacing with steps_offset 1 over all 1000 timesteps.
                    assert!(schedule == SigmaSchedule::Leading && steps == 1000, "{schedule} {steps}");
                    continue;
                };
                let mut ends = vec![zero.clone()];
                match FinalSigma::SigmaMin.apply(zero, sched.sigma_min()) {
                    Ok(s) => ends.push(s),
                    // One linspace step is timestep 0 alone.
                    Err(_) => assert!(schedule == SigmaSchedule::Linspace && steps == 1, "{schedule} {steps}"),
                }
                for (sigmas, kind) in ends.iter().flat_map(|s| SamplerKind::ALL.map(|k| (s, k))) {
                    let x: Vec<f64> = x_unit.iter().map(|v| v * sigmas.first()).collect();
                    let mut noise = Philox4x32::new(7);
                    let out = sample(kind, &mut Gaussian::default(), x, sigmas, &SamplerOptions::default(), &mut noise, &mut ())
                        .unwrap_or_else(|e| panic!("{kind} {schedule} {steps} → {:?}: {e}", sigmas.as_slice().last()));
                    assert!(out.iter().all(|v| v.is_finite()), "{kind} {schedule} {steps} → {:?}: {out:?}", sigmas.as_slice().last());
                    // A blow-up check only: one or two giant steps from σ ≈ 4096 can be very
                    // inaccurate (DPM2 a's midpoint lands below the data scale and barely
                    // moves, as in k-diffusion), but never grow beyond the start.
                    let bound = 3.0 * 2.5 * sigmas.first() + 10.0;
                    assert!(out.iter().all(|v| v.abs() < bound), "{kind} {schedule} {steps} → {:?}: {out:?}", sigmas.as_slice().last());
                }
            }
        }
    }
}

#[test]
fn ancestral_steps_with_sigma_up_at_its_cap_stay_finite() {
    // η large enough that σ_up is clamped to σ_to (σ_down = 0) on every step.
    let sigmas = Sigmas::new(vec![14.6, 3.0, 0.4, 0.0]).unwrap();
    for kind in SamplerKind::ALL.into_iter().filter(|k| k.uses_eta()) {
        for eta in [1.0, 1.0 + 1e-12, 5.0] {
            let mut noise = Philox4x32::new(3);
            let o = SamplerOptions { eta: Some(eta), ..Default::default() };
            let out = sample(kind, &mut Gaussian::default(), vec![5.0, -9.0], &sigmas, &o, &mut noise, &mut ());
            // η > 1 gives σ_down = 0 for dpmpp_sde's sub-steps (ln 0): an error or finite.
            if let Ok(out) = out {
                assert!(out.iter().all(|v| v.is_finite()) || kind == SamplerKind::DpmppSde, "{kind} η={eta}: {out:?}");
            }
        }
    }
}

/// Draws 20,000 samples from the exact marginal at σ₀ and checks mean and spread of the
/// result (standard errors 0.0035 and 0.0025; see analytic.rs for the discretisation bias).
fn check_stochastic(kind: SamplerKind, steps: usize, tol_std: f64) {
    let sched = DiscreteSchedule::new(BetaSchedule::ScaledLinear, 1000, 0.00085, 0.012);
    let sigmas = SigmaSchedule::Karras.build(&sched, steps, 0).unwrap();
    let mut noise = Philox4x32::new(99);
    let s0 = sigmas.first();
    let x: Vec<f64> =
        noise.normals(20_000).into_iter().map(|z| MU + (S * S + s0 * s0).sqrt() * f64::from(z)).collect();
    let out = sample(kind, &mut Gaussian::default(), x, &sigmas, &SamplerOptions::default(), &mut noise, &mut ())
        .unwrap();
    assert!(noise.offset() as usize >= steps / 2, "{kind} drew fresh noise");
    let (m, s) = mean_std(&out);
    eprintln!("{kind}: mean {m:.4}, std {s:.4} ({steps} steps)");
    assert!((m - MU).abs() < 0.015, "{kind}: mean {m}, expected {MU}");
    assert!((s - S).abs() < tol_std, "{kind}: std {s}, expected {S}");
}

#[test]
fn stochastic_samplers_reproduce_the_data_distribution() {
    use SamplerKind::*;
    for kind in [Dpmpp2mSde, Dpmpp2mSdeHeun, Dpmpp3mSde, DpmppSde, Dpmpp2sAncestral, Dpm2Ancestral] {
        check_stochastic(kind, 200, 0.012);
    }
    // EDM churn leaves the marginals exact only in the limit; 1.003 inflates the noise.
    check_stochastic(Edm, 200, 0.02);
}

#[test]
fn lcm_on_exact_denoiser_keeps_the_mean() {
    // LCM re-noises D, whose variance is below the data's (Var D < s²): only the mean is
    // exact for the Gaussian problem at few steps.
    let sched = DiscreteSchedule::new(BetaSchedule::ScaledLinear, 1000, 0.00085, 0.012);
    let sigmas = SigmaSchedule::SgmUniform.build(&sched, 4, 0).unwrap();
    let mut noise = Philox4x32::new(5);
    let s0 = sigmas.first();
    let x: Vec<f64> =
        noise.normals(20_000).into_iter().map(|z| MU + (S * S + s0 * s0).sqrt() * f64::from(z)).collect();
    let out = sample(SamplerKind::Lcm, &mut Gaussian::default(), x, &sigmas, &SamplerOptions::default(), &mut noise, &mut ())
        .unwrap();
    let (m, _) = mean_std(&out);
    assert!((m - MU).abs() < 0.015, "lcm mean {m}");
    assert_eq!(noise.offset(), 1 + 3, "one draw for x_T, then one per re-noising step");
}
