//! Mel filterbank, log-mel spectrogram and MFCCs against librosa 0.11 on a fixed clip
//! (tests/reference/make_audio_reference.py → tests/reference/audio/mel.json).

use stipple_audio::{hz_to_mel, log_mel_distance, log_mel_spectrogram, mel_filterbank, mel_to_hz, mfcc, MelConfig};

fn reference() -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference/audio/mel.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn config(c: &serde_json::Value) -> MelConfig {
    let u = |k: &str| c[k].as_u64().unwrap() as usize;
    MelConfig { rate: u("rate") as u32, n_fft: u("n_fft"), hop: u("hop"), n_mels: u("n_mels"), fmin: c["fmin"].as_f64().unwrap(), fmax: c["fmax"].as_f64().unwrap(), n_mfcc: u("n_mfcc") }
}

#[test]
fn the_default_configuration_is_the_first_reference_one() {
    let r = reference();
    assert_eq!(MelConfig::for_rate(16000), config(&r["configs"][0]["config"]));
}

#[test]
fn mel_scale_and_filterbank_match_librosa() {
    let r = reference();
    for entry in r["configs"].as_array().unwrap() {
        for (hz, want) in entry["mel_of_hz"].as_object().unwrap() {
            let hz: f64 = hz.parse().unwrap();
            let (got, want) = (hz_to_mel(hz), want.as_f64().unwrap());
            assert!((got - want).abs() < 1e-12, "hz_to_mel({hz}) = {got}, librosa {want}");
            assert!((mel_to_hz(got) - hz).abs() < 1e-9 * hz.max(1.0), "mel_to_hz inverts hz_to_mel at {hz}");
        }
        let Some(bank) = entry.get("filterbank") else { continue };
        let cfg = config(&entry["config"]);
        let got: Vec<f64> = mel_filterbank(&cfg).unwrap().into_iter().flatten().collect();
        let want = floats(bank);
        assert_eq!(got.len(), want.len());
        let peak = want.iter().copied().fold(0.0, f64::max);
        // librosa computes in float64 (dtype=np.float64 asked for); 9 significant digits kept.
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-8 * peak, "weight {i}: {g} vs librosa {w}");
        }
    }
}

#[test]
fn log_mel_and_mfcc_match_librosa() {
    let r = reference();
    let clip: Vec<f32> = floats(&r["clip"]).into_iter().map(|v| v as f32).collect();
    for entry in r["configs"].as_array().unwrap() {
        let cfg = config(&entry["config"]);
        let log_mel = log_mel_spectrogram(&clip, &cfg).unwrap();
        assert_eq!(log_mel.len() as u64, entry["frames"].as_u64().unwrap());
        // librosa's STFT and mel product run in float32 (complex64 for a float32 clip): 1e-3 dB
        // is a relative power error of 2.3e-4, a few float32 roundings of an 80-term sum.
        let want = floats(&entry["log_mel_db"]);
        for (i, (g, w)) in log_mel.iter().flatten().zip(&want).enumerate() {
            assert!((g - w).abs() < 1e-3, "{cfg:?} log-mel value {i}: {g} dB vs librosa {w} dB");
        }
        let want = floats(&entry["mfcc"]);
        let got: Vec<f64> = mfcc(&clip, &cfg).unwrap().into_iter().flatten().collect();
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 2e-3, "{cfg:?} MFCC {i}: {g} vs librosa {w}");
        }
    }
}

#[test]
fn log_mel_distance_is_zero_for_a_clip_and_grows_with_a_change() {
    let cfg = MelConfig::for_rate(16000);
    let tone = |f: f32, a: f32| -> Vec<f32> { (0..8000).map(|i| a * (std::f32::consts::TAU * f * i as f32 / 16000.0).sin()).collect() };
    let a = tone(440.0, 0.5);
    assert_eq!(log_mel_distance(&a, &a, &cfg).unwrap(), 0.0);
    let quieter = log_mel_distance(&tone(440.0, 0.25), &a, &cfg).unwrap();
    let other = log_mel_distance(&tone(2000.0, 0.5), &a, &cfg).unwrap();
    // Halving the amplitude lowers every unclipped band by 20·log10(2) = 6.02 dB.
    assert!((quieter - 6.02).abs() < 0.1, "{quieter}");
    assert!(other > quieter, "another pitch is farther than a quieter copy: {other} vs {quieter}");
}

#[test]
fn bad_settings_are_refused() {
    let mut cfg = MelConfig::for_rate(16000);
    cfg.fmax = 9000.0;
    let e = mel_filterbank(&cfg).unwrap_err().to_string();
    assert!(e.contains("fmax ≤ rate/2 = 8000"), "{e}");
    cfg = MelConfig::for_rate(16000);
    cfg.n_mfcc = 81;
    assert!(mfcc(&[0.0; 100], &cfg).is_err());
}
