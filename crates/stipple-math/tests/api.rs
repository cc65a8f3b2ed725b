//! Names, validation and serde of the public types (no reference numbers needed).

use stipple_math::*;

#[test]
fn names_round_trip_and_errors_list_every_name() {
    for b in BetaSchedule::ALL {
        assert_eq!(b.name().parse::<BetaSchedule>().unwrap(), b);
    }
    for t in TimestepSpacing::ALL {
        assert_eq!(t.name().parse::<TimestepSpacing>().unwrap(), t);
    }
    for s in SigmaSchedule::ALL {
        assert_eq!(s.name().parse::<SigmaSchedule>().unwrap(), s);
    }
    for p in [Prediction::Epsilon, Prediction::VPrediction, Prediction::Sample] {
        assert_eq!(p.name().parse::<Prediction>().unwrap(), p);
    }
    assert_eq!("edm".parse::<Prediction>().unwrap(), Prediction::Edm { sigma_data: 0.5 });

    let msg = "cosine".parse::<BetaSchedule>().unwrap_err().to_string();
    for n in ["linear", "scaled_linear", "squaredcos_cap_v2", "cosine"] {
        assert!(msg.contains(n), "{msg}");
    }
    let msg = "karas".parse::<SigmaSchedule>().unwrap_err().to_string();
    for s in SigmaSchedule::ALL {
        assert!(msg.contains(s.name()), "{msg}");
    }
    let msg = "x".parse::<TimestepSpacing>().unwrap_err().to_string();
    assert!(msg.contains("leading") && msg.contains("trailing") && msg.contains("linspace"));
    let msg = "v".parse::<Prediction>().unwrap_err().to_string();
    assert!(msg.contains("v_prediction") && msg.contains("edm"), "{msg}");
}

#[test]
fn sigmas_validation() {
    assert!(Sigmas::new(vec![3.0, 1.0, 0.0]).is_ok());
    assert_eq!(Sigmas::new(vec![0.0]), Err(SigmasError::TooShort { len: 1 }));
    assert!(matches!(Sigmas::new(vec![f64::NAN, 0.0]), Err(SigmasError::NotFinite { index: 0, .. })));
    assert!(matches!(Sigmas::new(vec![f64::INFINITY, 0.0]), Err(SigmasError::NotFinite { .. })));
    assert!(matches!(Sigmas::new(vec![1.0, -1.0]), Err(SigmasError::Negative { index: 1, .. })));
    assert!(matches!(Sigmas::new(vec![1.0, 1.0, 0.0]), Err(SigmasError::NotDecreasing { index: 0, .. })));
    // A positive last level stops sampling there (FinalSigma::SigmaMin).
    assert_eq!(Sigmas::new(vec![2.0, 1.0]).unwrap().steps(), 1);
    let s = Sigmas::new(vec![3.0, 1.0, 0.0]).unwrap();
    assert_eq!((s.steps(), s.first(), s.as_slice()), (2, 3.0, &[3.0, 1.0, 0.0][..]));
}

#[test]
fn build_every_schedule_and_reject_bad_requests() {
    let sched = DiscreteSchedule::new(BetaSchedule::ScaledLinear, 1000, 0.00085, 0.012);
    for kind in SigmaSchedule::ALL {
        for steps in [1, 2, 10, 50, 1000] {
            let s = kind.build(&sched, steps, 0).unwrap_or_else(|e| panic!("{kind} {steps}: {e}"));
            if matches!(kind, SigmaSchedule::DdimUniform | SigmaSchedule::Beta) {
                // ComfyUI's ddim_uniform strides ⌊T/steps⌋ from t = 1 (one step more or
                // less than asked), and beta drops repeated timesteps.
                assert!(s.steps() >= 1 && s.steps() <= steps + 1, "{kind} {steps}: {}", s.steps());
            } else {
                assert_eq!(s.steps(), steps, "{kind}");
            }
            if kind == SigmaSchedule::Vp {
                // The continuous VP SDE's levels ignore the training range (σ(1) ≈ 152).
                assert!((s.first() - 152.1669702839464).abs() < 1e-9, "{}", s.first());
            } else {
                assert!(s.first() <= sched.sigma_max() * (1.0 + 1e-12));
            }
        }
        assert_eq!(kind.build(&sched, 0, 0), Err(SigmasError::ZeroSteps));
    }
    // Leading with steps_offset 1 over all 1000 timesteps would need t = 1000.
    let err = SigmaSchedule::Leading.build(&sched, 1000, 1).unwrap_err();
    assert!(err.to_string().contains("outside the training range"), "{err}");
    // More steps than training timesteps repeat a timestep.
    assert!(SigmaSchedule::Leading.build(&sched, 1001, 0).is_err());
}

#[test]
fn discrete_schedule_basics() {
    let sched = DiscreteSchedule::new(BetaSchedule::Linear, 1000, 0.0001, 0.02);
    assert_eq!(sched.num_train_timesteps(), 1000);
    assert!(sched.sigmas().windows(2).all(|w| w[0] < w[1]));
    for (a, s) in sched.alphas_cumprod().iter().zip(sched.sigmas()) {
        assert!((sigma_from_alpha_bar(*a) - s).abs() <= 1e-15 * s);
        assert!((alpha_bar_from_sigma(*s) - a).abs() <= 1e-12 * a);
    }
    // At integer timesteps the interpolations are exact.
    for t in [0usize, 1, 500, 999] {
        assert!((sched.sigma_at(t as f64) - sched.sigmas()[t]).abs() <= 1e-13 * sched.sigmas()[t]);
        assert!((sched.timestep_for(sched.sigmas()[t]) - t as f64).abs() < 1e-9);
    }
    assert_eq!(edm_c_noise(1.0), 0.0);
    assert!((edm_c_noise(std::f64::consts::E.powi(4)) - 1.0).abs() < 1e-15);
}

#[test]
fn ancestral_step_never_nan_and_preserves_variance() {
    assert_eq!(ancestral_step(2.0, 1.0, 0.0), (1.0, 0.0));
    assert_eq!(ancestral_step(2.0, 0.0, 1.0), (0.0, 0.0));
    for (from, to) in [(1.0, 1.0 - 1e-16), (14.6, 14.599999999999), (1e-3, 9e-4), (80.0, 0.002)] {
        for eta in [0.3, 1.0, 2.0] {
            let (d, u) = ancestral_step(from, to, eta);
            assert!(d.is_finite() && u.is_finite() && u <= to, "{from} {to} {eta}");
            assert!((d * d + u * u - to * to).abs() <= 1e-12 * to * to);
        }
    }
}

#[cfg(feature = "serde")]
#[test]
fn serde_names() {
    let j = |v: &str| serde_json::from_str::<Prediction>(v).unwrap();
    assert_eq!(j("\"epsilon\""), Prediction::Epsilon);
    assert_eq!(j("\"v_prediction\""), Prediction::VPrediction);
    assert_eq!(j("\"sample\""), Prediction::Sample);
    assert_eq!(j(r#"{"edm":{"sigma_data":0.5}}"#), Prediction::Edm { sigma_data: 0.5 });
    let p = Prediction::Edm { sigma_data: 0.25 };
    assert_eq!(j(&serde_json::to_string(&p).unwrap()), p);
    for b in BetaSchedule::ALL {
        assert_eq!(serde_json::to_string(&b).unwrap(), format!("\"{}\"", b.name()));
    }
    for s in SigmaSchedule::ALL {
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.name()));
    }
    for t in TimestepSpacing::ALL {
        assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{}\"", t.name()));
    }
}
