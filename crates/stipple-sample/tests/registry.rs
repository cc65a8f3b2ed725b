//! The sampler registry: names, serde, properties.

use stipple_sample::*;

#[test]
fn names_round_trip() {
    let names = [
        "ddpm", "ddim", "euler", "euler_ancestral", "heun", "dpmpp_2m", "dpmpp_2m_sde",
        "dpmpp_2m_sde_heun", "dpmpp_3m_sde", "dpmpp_2s_ancestral", "dpmpp_sde", "dpm_2",
        "dpm_2_ancestral", "lms", "ipndm", "deis", "unipc", "unipc_bh2", "lcm", "edm",
    ];
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

#[test]
fn table_has_every_sampler_with_artist_names() {
    let t = SamplerKind::table();
    assert_eq!(t.len(), SamplerKind::ALL.len());
    assert!(t.len() >= 18);
    let names: Vec<&str> = t.iter().map(|r| r.display_name).collect();
    for n in ["DPM++ 2M SDE", "DPM2 a", "LMS", "UniPC", "DPM++ 2S a", "DPM++ 3M SDE", "LCM"] {
        assert!(names.contains(&n), "{n}");
    }
    use SamplerKind::*;
    assert_eq!(Dpm2.evals(10), 19);
    assert_eq!(DpmppSde.evals_per_step(), 2);
    assert!(Dpmpp2mSde.stochastic() && Dpmpp2mSde.uses_eta() && Dpmpp2mSde.uses_s_noise());
    assert!(!Lms.stochastic() && !UniPc.stochastic() && !Deis.stochastic() && !Ipndm.stochastic());
    assert_eq!(Dpm2Ancestral.default_eta(), 1.0);
    assert_eq!(Lcm.default_schedule(), SigmaSchedule::SgmUniform);
    assert_eq!(Lms.diffusers_class(), Some("LMSDiscreteScheduler"));
    assert!(serde_json::from_str::<SamplerOptions>(r#"{"etta": 1}"#).is_err());
}

#[test]
fn noise_kinds_and_defaults() {
    for k in NoiseKind::ALL {
        assert_eq!(k.name().parse::<NoiseKind>().unwrap(), k);
        assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{}\"", k.name()));
    }
    let msg = "brown".parse::<NoiseKind>().unwrap_err().to_string();
    assert!(msg.contains("brownian") && msg.contains("independent"), "{msg}");
    // k-diffusion: Brownian trees for the SDE samplers, randn_like for the ancestral ones.
    use SamplerKind::*;
    for kind in SamplerKind::ALL {
        let brownian = matches!(kind, DpmppSde | Dpmpp2mSde | Dpmpp2mSdeHeun | Dpmpp3mSde);
        let want = if brownian { NoiseKind::Brownian } else { NoiseKind::Independent };
        assert_eq!(kind.default_noise(), want, "{kind}");
        assert_eq!(kind.row().default_noise, want);
    }
}

#[test]
fn options_each_sampler_accepts_follow_k_diffusion() {
    use SamplerKind::*;
    use SamplerOption::*;
    let names = |k: SamplerKind| k.options().into_iter().map(|o| o.name()).collect::<Vec<_>>();
    // k-diffusion's keyword arguments.
    for k in [Euler, Heun, Dpm2, Edm] {
        assert_eq!(names(k), ["s_noise", "s_churn", "s_tmin", "s_tmax"], "{k}");
    }
    for k in [EulerAncestral, Dpm2Ancestral, Dpmpp2sAncestral, Dpmpp2mSde, Dpmpp2mSdeHeun, Dpmpp3mSde, Ddim] {
        assert_eq!(names(k), ["eta", "s_noise"], "{k}");
    }
    assert_eq!(names(DpmppSde), ["eta", "s_noise", "r"]);
    assert_eq!(names(Lcm), ["s_noise"]);
    for k in [Lms, Deis, UniPc, UniPcBh2] {
        assert_eq!(names(k), ["order"], "{k}");
    }
    for k in [Ddpm, Dpmpp2m, Ipndm] {
        assert!(k.options().is_empty(), "{k}");
    }
    for k in SamplerKind::ALL {
        assert_eq!(k.row().options, k.options());
        assert_eq!(k.uses_eta(), k.accepts(Eta));
        assert_eq!(k.uses_s_noise(), k.accepts(SNoise));
    }
    // What a front end would reject.
    let o = SamplerOptions { eta: Some(0.5), s_churn: Some(1.0), r: Some(0.3), ..Default::default() };
    assert_eq!(o.given(), [Eta, SChurn, R]);
    assert_eq!(Euler.ignored(&o), [Eta, R]);
    assert_eq!(DpmppSde.ignored(&o), [SChurn]);
    assert_eq!(Dpmpp2m.ignored(&SamplerOptions::default()), []);
    assert_eq!(serde_json::to_string(&SChurn).unwrap(), "\"s_churn\"");
    assert_eq!(SamplerOption::ALL.map(|o| o.to_string()), ["eta", "s_noise", "s_churn", "s_tmin", "s_tmax", "order", "r"]);
}

#[test]
fn new_options_default_to_nothing_in_requests_and_recipes() {
    // Default options serialise as before (no r, no x0_clamp), so stored recipes are unchanged.
    assert_eq!(serde_json::to_string(&SamplerOptions::default()).unwrap(), "{}");
    let o: SamplerOptions = serde_json::from_str(r#"{"eta": 0.5}"#).unwrap();
    assert_eq!((o.r, o.x0_clamp), (None, X0Clamp::OFF));
    let json = r#"{"r":0.3,"x0_clamp":{"thresholding":true,"dynamic_thresholding_ratio":0.9,"sample_max_value":1.5}}"#;
    let o: SamplerOptions = serde_json::from_str(json).unwrap();
    assert_eq!(o.r, Some(0.3));
    assert!(o.x0_clamp.thresholding && !o.x0_clamp.clip_sample);
    assert_eq!((o.x0_clamp.dynamic_thresholding_ratio, o.x0_clamp.sample_max_value), (0.9, 1.5));
    assert_eq!(o.x0_clamp.clip_sample_range, 1.0);
    let back: SamplerOptions = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
    assert_eq!(back, o);
    assert!(serde_json::from_str::<SamplerOptions>(r#"{"x0_clamp":{"threshold":true}}"#).is_err());
}
