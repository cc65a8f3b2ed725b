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
