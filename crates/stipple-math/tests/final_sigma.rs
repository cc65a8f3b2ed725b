//! The final-σ choice: names, and what `FinalSigma::apply` does to each kind of schedule.
//! (Against diffusers' `final_sigmas_type="sigma_min"` lists: stipple-sample's
//! `diffusers_conformance.rs`.)

use stipple_math::*;

fn sd() -> DiscreteSchedule {
    DiscreteSchedule::new(BetaSchedule::ScaledLinear, 1000, 0.00085, 0.012)
}

#[test]
fn names_and_default() {
    assert_eq!(FinalSigma::default(), FinalSigma::Zero);
    for f in FinalSigma::ALL {
        assert_eq!(f.name().parse::<FinalSigma>().unwrap(), f);
        assert_eq!(f.to_string(), f.name());
    }
    assert_eq!("sigma-min".parse::<FinalSigma>().unwrap(), FinalSigma::SigmaMin);
    let msg = "min".parse::<FinalSigma>().unwrap_err().to_string();
    assert!(msg.contains("zero") && msg.contains("sigma_min"), "{msg}");
}

#[test]
fn zero_keeps_the_schedule() {
    let s = SigmaSchedule::Trailing.build(&sd(), 10, 0).unwrap();
    assert_eq!(FinalSigma::Zero.apply(s.clone(), sd().sigma_min()).unwrap(), s);
}

#[test]
fn sigma_min_replaces_the_final_zero_of_the_spacings() {
    let sched = sd();
    for kind in [SigmaSchedule::Leading, SigmaSchedule::Trailing, SigmaSchedule::SgmUniform, SigmaSchedule::Simple] {
        for steps in [1, 2, 10, 50] {
            let zero = kind.build(&sched, steps, 1).unwrap();
            let min = FinalSigma::SigmaMin.apply(zero.clone(), sched.sigma_min()).unwrap();
            let (z, m) = (zero.as_slice(), min.as_slice());
            // Same steps, same levels, the last one σ(t = 0) instead of 0.
            assert_eq!(min.steps(), steps, "{kind} {steps}");
            assert_eq!(&m[..steps], &z[..steps], "{kind} {steps}");
            assert_eq!(m[steps], sched.sigma_min());
            assert_eq!(m[steps], sched.sigmas()[0]);
        }
    }
}

#[test]
fn sigma_min_drops_the_repeated_level_of_schedules_ending_at_sigma_min() {
    let sched = sd();
    // Euler-style linspace ends at timestep 0 too.
    for kind in [SigmaSchedule::Karras, SigmaSchedule::Exponential, SigmaSchedule::Normal, SigmaSchedule::Linspace] {
        let zero = kind.build(&sched, 10, 0).unwrap();
        let z = zero.as_slice();
        assert!((z[9] / sched.sigma_min() - 1.0).abs() < 1e-12, "{kind}: {z:?}");
        let min = FinalSigma::SigmaMin.apply(zero.clone(), sched.sigma_min()).unwrap();
        // diffusers would walk σ_min → σ_min (a zero-length step); we stop at σ_min.
        assert_eq!(min.steps(), 9, "{kind}");
        assert_eq!(&min.as_slice()[..9], &z[..9]);
        assert_eq!(min.as_slice()[9], sched.sigma_min());
    }
    // One karras step is [σ_max, 0]: it becomes [σ_max, σ_min].
    let one = SigmaSchedule::Karras.build(&sched, 1, 0).unwrap();
    let top = one.first();
    assert_eq!(FinalSigma::SigmaMin.apply(one, sched.sigma_min()).unwrap().as_slice(), &[top, sched.sigma_min()]);
    // One linspace step is timestep 0 alone: nothing lies above σ_min.
    let one = SigmaSchedule::Linspace.build(&sched, 1, 0).unwrap();
    assert!(FinalSigma::SigmaMin.apply(one, sched.sigma_min()).is_err());
}

#[test]
fn sigma_min_rejects_what_it_cannot_end() {
    let s = Sigmas::new(vec![0.02, 0.0]).unwrap();
    assert!(matches!(FinalSigma::SigmaMin.apply(s.clone(), 0.03), Err(SigmasError::InvalidArgument(_))));
    for bad in [0.0, -1.0, f64::NAN] {
        assert!(FinalSigma::SigmaMin.apply(s.clone(), bad).is_err(), "{bad}");
    }
}
