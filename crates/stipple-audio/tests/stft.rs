//! The STFT against `torch.stft` and the multi-resolution STFT distance against its formula
//! in torch (tests/reference/make_stft_reference.py → tests/reference/audio/stft.json).

use stipple_audio::{multi_resolution_stft_distance, stft_magnitude};

fn reference() -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference/audio/stft.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

#[test]
fn magnitudes_match_torch_stft() {
    let r = reference();
    let clip = floats(&r["clip"]);
    for (key, frames) in r["stft"].as_object().unwrap() {
        let (n_fft, hop) = key.split_once(',').map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap())).unwrap();
        let got = stft_magnitude(&clip, n_fft, hop).unwrap();
        let want: Vec<Vec<f32>> = frames.as_array().unwrap().iter().map(floats).collect();
        assert_eq!((got.len(), got[0].len()), (want.len(), want[0].len()), "{key}: frames × bins");
        let peak = want.iter().flatten().fold(0.0f32, |m, v| m.max(*v));
        let worst = got.iter().flatten().zip(want.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-5 * peak, "{key}: worst {worst} against a peak of {peak}");
    }
}

#[test]
fn multi_resolution_distance_matches_and_orders() {
    let r = reference();
    let (clip, other) = (floats(&r["clip"]), floats(&r["other"]));
    let got = multi_resolution_stft_distance(&other, &clip, &[(64, 16), (128, 32)]).unwrap();
    let want = r["mr_stft_distance"].as_f64().unwrap();
    assert!((got - want).abs() <= 1e-5 * want, "{got} vs {want}");
    assert!(multi_resolution_stft_distance(&clip, &clip, &[(64, 16)]).unwrap() < 1e-9, "a clip is at distance 0 from itself");
    let e = stft_magnitude(&clip[..10], 64, 16).unwrap_err().to_string();
    assert!(e.contains("longer than n_fft/2 = 32 samples"), "{e}");
}
