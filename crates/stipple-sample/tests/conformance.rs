//! Conformance with k-diffusion 0.1.1.post1: every sampler run on the toy denoiser of
//! `tests/reference/make_sampler_reference.py` over six sigma lists (Karras 2/10/25 steps,
//! exponential 4, one step, diffusers trailing 6), replaying the exact noise k-diffusion
//! drew (including its Brownian-tree noise for the SDE samplers), with non-default values
//! of every option k-diffusion's functions take (churn, s_noise, eta, r) — called directly,
//! and through the registry's `sample` with the same `SamplerOptions` a front end sends.
//!
//! Tolerance: both sides compute in f64 with the same formulas up to the order of
//! operations, so the outputs agree to a few ulps times the number of steps; we allow
//! 1e-10·(1 + |x|). (LMS: k-diffusion integrates its coefficients with `scipy.quad`, which
//! is exact for these cubic integrands to ~1e-15.)

use serde_json::Value;
use stipple_sample::*;

const TOL: f64 = 1e-10;

struct Toy;
impl Denoiser<Vec<f64>> for Toy {
    fn denoise(&mut self, x: &Vec<f64>, s: f64) -> Result<Vec<f64>, BoxError> {
        Ok(x.iter().map(|v| v * s.tanh() / (1.0 + s * s) + 0.1 * v.sin()).collect())
    }
}

/// Replays recorded noise: each request (σ, σ') takes the first unused draw recorded for
/// the same interval (to 1e-9 relative; k-diffusion passes e.g. exp(−(−ln σ)) for σ).
struct Replay {
    draws: Vec<(f64, f64, Vec<f64>, bool)>,
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) || a == b
}

impl Noise<Vec<f64>> for Replay {
    fn noise_like(&mut self, _x: &Vec<f64>) -> Result<Vec<f64>, BoxError> {
        Err("replayed noise needs the interval (noise_between)".into())
    }
    fn noise_between(&mut self, _x: &Vec<f64>, s: f64, sn: f64) -> Result<Vec<f64>, BoxError> {
        let d = self
            .draws
            .iter_mut()
            .find(|d| !d.3 && close(d.0, s) && close(d.1, sn))
            .ok_or_else(|| format!("no recorded noise for ({s}, {sn})"))?;
        d.3 = true;
        Ok(d.2.clone())
    }
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn opt(run: &Value, key: &str, default: f64) -> f64 {
    run["options"].get(key).and_then(Value::as_f64).unwrap_or(default)
}

fn replay(run: &Value) -> Replay {
    Replay {
        draws: run["noise"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c[0].as_f64().unwrap(), c[1].as_f64().unwrap(), floats(&c[2]), false))
            .collect(),
    }
}

/// The run's k-diffusion keyword arguments as the `SamplerOptions` a request carries.
fn sampler_options(run: &Value) -> SamplerOptions {
    let o = &run["options"];
    let f = |key: &str| o.get(key).and_then(Value::as_f64);
    SamplerOptions {
        eta: f("eta"),
        s_noise: f("s_noise"),
        s_churn: f("s_churn"),
        s_tmin: f("s_tmin"),
        s_tmax: f("s_tmax"),
        order: o.get("order").and_then(Value::as_u64).map(|v| v as usize),
        r: f("r"),
        x0_clamp: X0Clamp::OFF,
    }
}

fn run_one(run: &Value, sigmas: &Sigmas, x0: Vec<f64>) -> Vec<f64> {
    let mut noise = replay(run);
    let m = &mut Toy;
    let o = &mut ();
    let n = &mut noise;
    let eta = opt(run, "eta", 1.0);
    let s_noise = opt(run, "s_noise", 1.0);
    let churn = Churn {
        s_churn: opt(run, "s_churn", 0.0),
        s_tmin: opt(run, "s_tmin", 0.0),
        s_tmax: opt(run, "s_tmax", f64::INFINITY),
        s_noise,
    };
    let name = run["sampler"].as_str().unwrap();
    let solver = if run["options"]["solver_type"] == "heun" { SdeSolver::Heun } else { SdeSolver::Midpoint };
    let r = match name {
        "euler" | "euler_churn" => euler(m, x0, sigmas, &churn, n, o),
        "heun" | "heun_churn" => heun(m, x0, sigmas, &churn, n, o),
        "dpmpp_2m" => dpmpp_2m(m, x0, sigmas, o),
        "euler_ancestral" | "euler_ancestral_s_noise" => euler_ancestral(m, x0, sigmas, eta, s_noise, n, o),
        "dpm_2" | "dpm_2_churn" | "dpm_2_churn_s_noise" => dpm_2(m, x0, sigmas, &churn, n, o),
        "edm" => edm(m, x0, sigmas, &churn, n, o),
        "dpm_2_ancestral" | "dpm_2_ancestral_eta05" => dpm_2_ancestral(m, x0, sigmas, eta, s_noise, n, o),
        "lms" => lms(m, x0, sigmas, 4, o),
        "dpmpp_2s_ancestral" | "dpmpp_2s_ancestral_s_noise" => {
            dpmpp_2s_ancestral(m, x0, sigmas, eta, s_noise, n, o)
        }
        "dpmpp_sde" | "dpmpp_sde_eta05" | "dpmpp_sde_r" | "dpmpp_sde_r_brownian" => {
            dpmpp_sde(m, x0, sigmas, eta, s_noise, opt(run, "r", 0.5), n, o)
        }
        "dpmpp_2m_sde" | "dpmpp_2m_sde_heun" | "dpmpp_2m_sde_eta0" | "dpmpp_2m_sde_s_noise"
        | "dpmpp_2m_sde_heun_s_noise" => dpmpp_2m_sde(m, x0, sigmas, eta, s_noise, solver, n, o),
        "dpmpp_3m_sde" | "dpmpp_3m_sde_eta05" | "dpmpp_3m_sde_s_noise" => {
            dpmpp_3m_sde(m, x0, sigmas, eta, s_noise, n, o)
        }
        other => panic!("unknown sampler {other} in the fixture"),
    };
    r.unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn samplers_match_k_diffusion() {
    let text = include_str!("fixtures/k_diffusion_samplers.json");
    let fx: Value = serde_json::from_str(text).unwrap();
    let x_unit = floats(&fx["x_unit"]);
    let mut worst = 0.0f64;
    let mut seen = std::collections::BTreeSet::new();
    for run in fx["runs"].as_array().unwrap() {
        let sname = run["sigmas"].as_str().unwrap();
        let sigmas = Sigmas::new(floats(&fx["sigmas"][sname])).unwrap();
        let x0: Vec<f64> = x_unit.iter().map(|v| v * sigmas.first()).collect();
        let want = floats(&run["x_out"]);
        let got = run_one(run, &sigmas, x0);
        let name = run["sampler"].as_str().unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!(g.is_finite(), "{name} on {sname}: {got:?}");
            let err = (g - w).abs() / (1.0 + w.abs());
            worst = worst.max(err);
            assert!(err <= TOL, "{name} on {sname}: got {got:?}, k-diffusion {want:?}");
        }
        seen.insert(name.to_string());
    }
    assert!(seen.len() >= 28, "{seen:?}");
    eprintln!("worst relative deviation from k-diffusion: {worst:e}");
}

/// The same runs through the registry: each option reaches the sampler as k-diffusion's
/// keyword argument of the same name, and the options a run sets are ones its sampler
/// accepts.
#[test]
fn registry_options_match_k_diffusion() {
    let fx: Value = serde_json::from_str(include_str!("fixtures/k_diffusion_samplers.json")).unwrap();
    let x_unit = floats(&fx["x_unit"]);
    let mut kinds = std::collections::HashSet::new();
    for run in fx["runs"].as_array().unwrap() {
        let (name, sname) = (run["sampler"].as_str().unwrap(), run["sigmas"].as_str().unwrap());
        let kind: SamplerKind = run["stipple"].as_str().unwrap().parse().unwrap();
        let sigmas = Sigmas::new(floats(&fx["sigmas"][sname])).unwrap();
        let x0: Vec<f64> = x_unit.iter().map(|v| v * sigmas.first()).collect();
        let options = sampler_options(run);
        assert_eq!(kind.ignored(&options), vec![], "{name}: {options:?}");
        let got = sample(kind, &mut Toy, x0, &sigmas, &options, &mut replay(run), &mut ())
            .unwrap_or_else(|e| panic!("{name} on {sname}: {e}"));
        let want = floats(&run["x_out"]);
        for (g, w) in got.iter().zip(&want) {
            let err = (g - w).abs() / (1.0 + w.abs());
            assert!(err <= TOL, "{kind} ({name}) on {sname}: got {got:?}, k-diffusion {want:?}");
        }
        kinds.insert(kind);
    }
    assert_eq!(kinds.len(), 13, "{kinds:?}");
}
