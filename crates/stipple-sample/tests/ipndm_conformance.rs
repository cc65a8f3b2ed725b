//! `ipndm` against an independent 50-digit implementation of iPNDM written from the paper
//! (Zhang & Chen 2023; fixture `fixtures/ipndm_mpmath.json`, made by
//! `tests/reference/make_ipndm_reference.py`, which derives the Adams–Bashforth weights
//! exactly instead of typing them in). No package ships the reference: k-diffusion 0.1.1
//! has no iPNDM and ComfyUI's `sample_ipndm`, whose form (warm-up orders 1–3, order 4 after,
//! the last step to σ = 0 returning D) this follows, is not installable.
//!
//! Sigma lists: one step, Karras 2/5/10/25 (order 4 from the fourth step on), exponential 8,
//! and a Karras list that stops at σ_min (no final 0), on the toy denoiser of the k-diffusion
//! fixtures. Tolerance: the reference is exact to ~1e-50 before its one rounding to f64, so
//! the deviation is Stipple's own f64 rounding, a few ulps per step; we allow 1e-12·(1 + |x|)
//! (the worst is printed; it is ~1e-15).

use serde_json::Value;
use stipple_sample::*;

struct Toy;
impl Denoiser<Vec<f64>> for Toy {
    fn denoise(&mut self, x: &Vec<f64>, s: f64) -> Result<Vec<f64>, BoxError> {
        Ok(x.iter().map(|v| v * s.tanh() / (1.0 + s * s) + 0.1 * v.sin()).collect())
    }
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn ipndm_matches_the_high_precision_reference() {
    let fx: Value = serde_json::from_str(include_str!("fixtures/ipndm_mpmath.json")).unwrap();
    let x_unit = floats(&fx["x_unit"]);
    let mut worst = 0.0f64;
    let runs = fx["runs"].as_array().unwrap();
    for run in runs {
        let name = run["sigmas"].as_str().unwrap();
        let sigmas = Sigmas::new(floats(&fx["sigmas"][name])).unwrap();
        let x0: Vec<f64> = x_unit.iter().map(|v| v * sigmas.first()).collect();
        let got = ipndm(&mut Toy, x0, &sigmas, &mut ()).unwrap();
        let want = floats(&run["x_out"]);
        for (g, w) in got.iter().zip(&want) {
            let err = (g - w).abs() / (1.0 + w.abs());
            assert!(err <= 1e-12, "{name}: got {got:?}, reference {want:?}");
            worst = worst.max(err);
        }
    }
    assert_eq!(runs.len(), 7);
    eprintln!("worst relative deviation from the 50-digit iPNDM: {worst:e}");
}
