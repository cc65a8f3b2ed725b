//! `stipple bench` runs and writes JSON with the keys the report script reads (no timing
//! assertions: the benchmark is a tool, not a test that can fail on a slow machine).

use std::process::Command;

#[test]
fn bench_tiny_writes_json_with_the_expected_keys() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_stipple"))
        .args(["bench", "--preset", "tiny", "--runs", "1", "--warmup", "0", "--threads", "1", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for k in ["tool", "threads", "runs", "warmup", "gemm_peak", "presets"] {
        assert!(!v[k].is_null(), "missing {k}");
    }
    assert_eq!(v["tool"], "stipple");
    assert!(v["gemm_peak"]["best_gflops"].as_f64().unwrap() > 0.0);
    let row = &v["presets"][0];
    assert_eq!(row["preset"], "tiny");
    assert_eq!(row["parameters"], 45_259);
    for fig in ["train", "forward", "sample"] {
        for k in ["batch", "median_s", "times_s", "gflop", "gflops", "peak_rss_mib", "runs", "warmup"] {
            assert!(!row[fig][k].is_null(), "missing {fig}.{k}");
        }
        assert!(row[fig]["median_s"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(row["sample"]["steps"], 20);
}
