//! Making clips alike: resampling keeps a tone's pitch and phase, trimming finds the sound,
//! fitting centres it.

use stipple_audio::{fit_length, resample, trim_silence, Trim};

fn tone(freq: f64, rate: u32, len: usize) -> Vec<f32> {
    (0..len).map(|i| (0.5 * (std::f64::consts::TAU * freq * i as f64 / f64::from(rate)).sin()) as f32).collect()
}

/// The amplitude and the lag (in samples at `rate`) of the `freq` tone that best fits `y`
/// over `range` (least squares on sin and cos).
fn fit_tone(y: &[f32], freq: f64, rate: u32, range: std::ops::Range<usize>) -> (f64, f64) {
    let w = std::f64::consts::TAU * freq / f64::from(rate);
    let n = range.len() as f64;
    let (mut s, mut c) = (0.0, 0.0);
    for i in range {
        s += f64::from(y[i]) * (w * i as f64).sin();
        c += f64::from(y[i]) * (w * i as f64).cos();
    }
    let (a, b) = (2.0 * s / n, 2.0 * c / n);
    ((a * a + b * b).sqrt(), -b.atan2(a) / w)
}

#[test]
fn resampling_keeps_a_tone_in_time() {
    // One second of a 440 Hz tone at each rate becomes one second of the same tone at 16 kHz,
    // amplitude kept, aligned with the input to within half an input sample (rubato trims its
    // start-up delay; from the 44.1 kHz family a constant lag of half an input sample,
    // 11–23 µs, remains).
    for from in [48_000, 44_100, 22_050, 8_000] {
        let x = tone(440.0, from, from as usize);
        let y = resample(&x, from, 16_000).unwrap();
        assert_eq!(y.len(), 16_000, "{from} Hz: one second in, one second out");
        let (amp, lag) = fit_tone(&y, 440.0, 16_000, 1000..15_000);
        assert!((amp - 0.5).abs() < 1e-3, "{from} Hz: amplitude {amp}");
        assert!(lag.abs() <= 0.5 * 16_000.0 / f64::from(from) + 1e-3, "{from} Hz: lag of {lag} output samples");
        if from % 16_000 == 0 || 16_000 % from == 0 {
            // Integer ratios: no lag, the tone sampled directly away from the edges.
            let want = tone(440.0, 16_000, 16_000);
            let worst = y[1000..15_000].iter().zip(&want[1000..15_000]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(worst < 1e-3, "{from} Hz: largest error {worst} of an amplitude of 0.5");
        }
    }
    assert_eq!(resample(&[0.1, 0.2], 16_000, 16_000).unwrap(), [0.1, 0.2], "same rate: untouched");
    assert!(resample(&[0.1], 0, 16_000).unwrap_err().to_string().contains("rates above 0 Hz"));
}

#[test]
fn resampling_removes_what_the_new_rate_cannot_hold() {
    // A 7 kHz tone at 48 kHz is above 4 kHz, the Nyquist frequency of 8 kHz: it is filtered
    // out instead of folding back to 1 kHz.
    let y = resample(&tone(7000.0, 48_000, 48_000), 48_000, 8_000).unwrap();
    let rms = (y[800..7200].iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / 6400.0).sqrt();
    assert!(rms < 0.01, "aliased energy left: RMS {rms} (the tone's is 0.35)");
}

#[test]
fn trimming_keeps_the_frames_within_top_db_of_the_peak() {
    let rate = 16_000;
    let trim = Trim::for_rate(rate);
    assert_eq!(trim.frame, 160, "10 ms frames");
    // 0.1 s silence, 0.2 s tone, 0.1 s hiss 50 dB below the tone, 0.1 s silence.
    let mut x = vec![0.0f32; 1600];
    x.extend(tone(300.0, rate, 3200));
    x.extend((0..1600).map(|i| if i % 2 == 0 { 0.5 * 0.707 * 10f32.powf(-50.0 / 20.0) } else { -0.5 * 0.707 * 10f32.powf(-50.0 / 20.0) }));
    x.extend(vec![0.0f32; 1600]);
    let kept = trim_silence(&x, trim);
    assert_eq!(kept.len(), 3200, "the hiss is below the 40 dB threshold");
    assert_eq!(kept.as_ptr(), x[1600..].as_ptr(), "starts where the tone starts");
    let louder = trim_silence(&x, Trim { top_db: 60.0, frame: 160 });
    assert_eq!(louder.len(), 4800, "with 60 dB the hiss is sound");
    assert!(trim_silence(&[0.0; 500], trim).is_empty());
    // A quiet recording is trimmed as a loud one: the threshold is relative.
    let quiet: Vec<f32> = x.iter().map(|v| v * 1e-3).collect();
    assert_eq!(trim_silence(&quiet, trim).len(), 3200);
}

#[test]
fn fitting_centres_the_clip() {
    assert_eq!(fit_length(&[1.0, 2.0, 3.0], 7), [0.0, 0.0, 1.0, 2.0, 3.0, 0.0, 0.0]);
    assert_eq!(fit_length(&[1.0, 2.0], 5), [0.0, 1.0, 2.0, 0.0, 0.0], "the odd zero goes at the end");
    assert_eq!(fit_length(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3), [2.0, 3.0, 4.0], "the odd sample is cut at the end");
    assert_eq!(fit_length(&[1.0, 2.0], 2), [1.0, 2.0]);
}
