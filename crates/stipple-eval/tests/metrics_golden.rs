//! The metrics against the Python tools on fixed feature arrays: pytorch-fid and clean-fid
//! (Fréchet distance), torch-fidelity and clean-fid (KID), torch-fidelity (precision/recall).
//! Golden values: tests/reference/make_eval_metrics_golden.py.

use serde_json::Value;
use stipple_eval::{frechet_distance_of, kid, precision_recall, Features, KidOptions};

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/metrics_golden.json")).unwrap();
    serde_json::from_str::<Vec<Value>>(&text).unwrap()
}

fn features(v: &Value) -> Features {
    let rows = v.as_array().unwrap();
    let dim = rows[0].as_array().unwrap().len();
    Features::new(rows.iter().flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap())).collect(), dim).unwrap()
}

fn close(got: f64, want: f64, rel: f64, what: &str) {
    assert!((got - want).abs() <= rel * want.abs(), "{what}: {got} vs {want} (relative {:e})", (got - want).abs() / want.abs());
}

#[test]
fn frechet_distance_agrees_with_pytorch_fid_and_clean_fid() {
    for c in cases() {
        let name = c["name"].as_str().unwrap();
        let fd = frechet_distance_of(&features(&c["a"]), &features(&c["b"])).unwrap();
        // Where both covariances are singular (24 samples in 64 dimensions) the square roots
        // of the product's zero eigenvalues are √(rounding) ≈ 1e-8 for both methods.
        let rel = if name == "rank_deficient" { 3e-8 } else { 1e-9 };
        close(fd, c["fid_exact"].as_f64().unwrap(), rel, name);
        // Same f64 statistics, scipy's Schur-based sqrtm.
        close(fd, c["fid_float64"].as_f64().unwrap(), rel, name);
        close(fd, c["fid_clean_fid"].as_f64().unwrap(), rel, name);
        // pytorch-fid's mean is a float32 np.mean.
        close(fd, c["fid_pytorch_fid"].as_f64().unwrap(), 1e-6, name);
    }
}

#[test]
fn kid_agrees_with_torch_fidelity_and_clean_fid() {
    for c in cases() {
        let name = c["name"].as_str().unwrap();
        let (a, b) = (features(&c["a"]), features(&c["b"]));
        let k = kid(&a, &b, KidOptions { subsets: 3, subset_size: a.len(), seed: 0 }).unwrap();
        close(k.mean, c["kid_clean_fid"].as_f64().unwrap(), 1e-9, name);
        // torch-fidelity multiplies in float32.
        close(k.mean, c["kid_torch_fidelity"].as_f64().unwrap(), 1e-5, name);
    }
}

#[test]
fn precision_and_recall_agree_with_torch_fidelity() {
    for c in cases() {
        let pr = precision_recall(&features(&c["a"]), &features(&c["b"]), 3).unwrap();
        // Fractions of at most 200 samples, reported by torch as float32.
        assert!((pr.precision - c["precision"].as_f64().unwrap()).abs() < 1e-6, "{}: precision {}", c["name"], pr.precision);
        assert!((pr.recall - c["recall"].as_f64().unwrap()).abs() < 1e-6, "{}: recall {}", c["name"], pr.recall);
    }
}
