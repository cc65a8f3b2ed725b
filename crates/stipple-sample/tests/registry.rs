//! The sampler registry: names, serde, properties.

use stipple_sample::*;

#[test]
fn names_round_trip() {
    let names = ["ddpm", "ddim", "euler", "euler_ancestral", "heun", "dpmpp_2m"];
    assert_eq!(SamplerKind::ALL.len(), names.len());
    for (kind, name) in SamplerKind::ALL.into_iter().zip(names) {
        assert_eq!(kind.name(), name);
        assert_eq!(name.parse::<SamplerKind>().unwrap(), kind);
        assert_eq!(kind.to_string(), name);
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<SamplerKind>(&json).unwrap(), kind);
    }
}

#[test]
fn unknown_name_lists_every_name() {
    let msg = "dpm++2m".parse::<SamplerKind>().unwrap_err().to_string();
    assert!(msg.contains("dpm++2m"), "{msg}");
    for kind in SamplerKind::ALL {
        assert!(msg.contains(kind.name()), "{msg}");
    }
}

#[test]
fn properties() {
    use SamplerKind::*;
    assert_eq!(EulerAncestral.display_name(), "Euler a");
    assert_eq!(Dpmpp2m.display_name(), "DPM++ 2M");
    assert_eq!(Heun.evals_per_step(), 2);
    assert!(Ddpm.stochastic() && EulerAncestral.stochastic());
    assert!(!Ddim.stochastic() && !Euler.stochastic() && !Heun.stochastic() && !Dpmpp2m.stochastic());
    assert_eq!((Ddim.default_eta(), EulerAncestral.default_eta(), Ddpm.default_eta()), (0.0, 1.0, 1.0));
    assert_eq!(Ddpm.default_schedule(), SigmaSchedule::Leading);
    assert_eq!(Ddim.default_schedule(), SigmaSchedule::Leading);
    assert_eq!(Dpmpp2m.default_schedule(), SigmaSchedule::Karras);
    let o: SamplerOptions = serde_json::from_str("{}").unwrap();
    assert_eq!(o.eta, None);
}
