//! The 299×299 bilinear resize of the Inception input against PyTorch's
//! `F.interpolate(mode='bilinear', align_corners=False)`, shrinking and enlarging. Reference:
//! tests/reference/make_eval_resize_reference.py.

use candle_core::Device;
use stipple_eval::images::to_unit_rgb;
use stipple_eval::inception::INPUT_SIZE;

#[test]
fn resizing_to_299_matches_pytorch_both_ways() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/resize");
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
    for name in ["large", "small"] {
        let image = image::open(dir.join(format!("{name}.png"))).unwrap();
        let x = to_unit_rgb(&image, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let y: Vec<f32> = x.upsample_bilinear2d(INPUT_SIZE, INPUT_SIZE, false).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let want = reference[name]["every_97th"].as_array().unwrap();
        assert_eq!(want.len(), y.len().div_ceil(97));
        let worst = y.iter().step_by(97).zip(want).map(|(g, w)| (*g as f64 - w.as_f64().unwrap()).abs()).fold(0.0, f64::max);
        // PyTorch computes the source coordinate `(dst + 0.5)·(in/out) − 0.5` in f32: the
        // scale's rounding (≤ 2⁻²⁴ relative, times dst + 0.5 ≤ 299), the product's and the
        // difference's (≤ 2⁻¹⁶ px each below 512) move it by at most 5.5e-5 px, and a value by
        // that times the largest step between neighbouring pixels (1.1 in these images).
        println!("{name}: largest difference {worst:e}");
        assert!(worst < 5.5e-5 * 1.1, "{name}: largest difference {worst:e}");
        let sum: f64 = y.iter().map(|&v| v as f64).sum();
        let want_sum = reference[name]["sum"].as_f64().unwrap();
        assert!((sum - want_sum).abs() < 1e-6 * want_sum, "{name}: sum {sum} vs {want_sum}");
    }
}
