//! RePaint resampling on the analytic Gaussian problem: one take is plain sampling, the
//! observer sees every step once, cancellation keeps the step number, and resampled
//! ancestral sampling still draws from the data distribution.

mod common;

use std::ops::ControlFlow;

use common::{mean_std, Gaussian, Record, MU, S};
use stipple_sample::{
    sample, sample_resampled, BetaSchedule, DiscreteSchedule, Observer, Philox4x32, SampleError, SamplerKind, SamplerOptions,
    SigmaSchedule, Sigmas, StepInfo,
};

fn sigmas(steps: usize) -> Sigmas {
    let sched = DiscreteSchedule::new(BetaSchedule::ScaledLinear, 1000, 0.00085, 0.012);
    SigmaSchedule::Karras.build(&sched, steps, 0).unwrap()
}

#[test]
fn one_take_is_plain_sampling() {
    let s = sigmas(8);
    let opts = SamplerOptions::default();
    let x = vec![2.0, -1.0, 0.5];
    for kind in [SamplerKind::Euler, SamplerKind::EulerAncestral, SamplerKind::Dpmpp2m] {
        let a = sample(kind, &mut Gaussian::default(), x.clone(), &s, &opts, &mut Philox4x32::new(3), &mut ()).unwrap();
        let b = sample_resampled(kind, &mut Gaussian::default(), x.clone(), &s, &opts, &mut Philox4x32::new(3), &mut (), 1).unwrap();
        assert_eq!(a, b, "{kind}");
    }
}

#[test]
fn the_observer_sees_each_step_once_and_cancellation_keeps_its_number() {
    let s = sigmas(6);
    let mut model = Gaussian::default();
    let mut rec = Record::default();
    sample_resampled(SamplerKind::Euler, &mut model, vec![1.0; 4], &s, &SamplerOptions::default(), &mut Philox4x32::new(0), &mut rec, 3)
        .unwrap();
    assert_eq!(model.calls, 6 * 3, "three takes of every step");
    let seen: Vec<f64> = rec.xs.iter().map(|(sigma, _)| *sigma).collect();
    assert_eq!(seen, s.as_slice()[1..].to_vec());

    struct StopAt(usize);
    impl Observer<Vec<f64>> for StopAt {
        fn on_step(&mut self, info: &StepInfo<'_, Vec<f64>>) -> ControlFlow<()> {
            assert_eq!(info.steps, 6);
            if info.step == self.0 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        }
    }
    let r = sample_resampled(SamplerKind::Euler, &mut Gaussian::default(), vec![1.0], &s, &SamplerOptions::default(), &mut Philox4x32::new(0), &mut StopAt(2), 2);
    assert!(matches!(r, Err(SampleError::Cancelled { step: 2 })), "{r:?}");
}

/// Going back up by the forward process and down again with the exact denoiser keeps the
/// marginals up to each take's discretisation error: resampled Euler a keeps the data mean,
/// and the deficit of its spread (ancestral sampling with the posterior mean loses
/// Var[x₀|x] at every take, a first-order bias — see `analytic.rs`) shrinks at first
/// order as the steps get finer.
#[test]
fn resampled_ancestral_sampling_converges_to_the_data_distribution() {
    let run = |steps: usize| {
        let s = sigmas(steps);
        let mut noise = Philox4x32::new(77);
        let s0 = s.as_slice()[0];
        let x: Vec<f64> = noise.normals(20_000).into_iter().map(|z| MU + (S * S + s0 * s0).sqrt() * f64::from(z)).collect();
        let out = sample_resampled(SamplerKind::EulerAncestral, &mut Gaussian::default(), x, &s, &SamplerOptions::default(), &mut noise, &mut (), 3)
            .unwrap();
        mean_std(&out)
    };
    let (m60, sd60) = run(60);
    let (m240, sd240) = run(240);
    for m in [m60, m240] {
        assert!((m - MU).abs() < 0.015, "mean {m}, expected {MU}");
    }
    let (d60, d240) = (S - sd60, S - sd240);
    assert!(d60 > 0.0 && d60 < 0.06, "std {sd60} at 60 steps");
    // First order: a quarter of the step size, about a quarter of the deficit (plus
    // sampling error, standard error 0.0025).
    assert!(d240 < 0.4 * d60, "std deficit {d240} at 240 steps vs {d60} at 60");
}
