//! A folder of WAV clips as a data set: names for labels, conversions reported, and the bad
//! input a user meets (not a WAV, cut short, another rate or channel count, silence, an
//! empty folder).

use std::io::Cursor;
use std::path::Path;

use stipple_audio::{load_clips, load_clips_with, AudioError, ClipSpec, Conversion};

fn wav(path: &Path, rate: u32, channels: u16, frames: &[f32]) {
    let spec = hound::WavSpec { channels, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut out = Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
    for s in frames {
        for _ in 0..channels {
            w.write_sample((s * 32_767.0) as i16).unwrap();
        }
    }
    w.finalize().unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, out.into_inner()).unwrap();
}

/// `before` zeros, `len` samples of a 500 Hz tone at `rate`, `after` zeros.
fn word(rate: u32, before: usize, len: usize, after: usize) -> Vec<f32> {
    let mut x = vec![0.0; before];
    x.extend((0..len).map(|i| 0.5 * (std::f32::consts::TAU * 500.0 * i as f32 / rate as f32).sin()));
    x.extend(vec![0.0; after]);
    x
}

#[test]
fn a_labelled_folder_loads_trimmed_centred_and_named() {
    let dir = tempfile::tempdir().unwrap();
    wav(&dir.path().join("yes/a.wav"), 8000, 1, &word(8000, 800, 1600, 400));
    wav(&dir.path().join("no/b.WAV"), 8000, 1, &word(8000, 0, 4000, 0));
    wav(&dir.path().join("no/deeper/c.wav"), 8000, 1, &word(8000, 80, 800, 80));
    std::fs::write(dir.path().join("labels.csv"), "file,word\nyes/a.wav,yes\n").unwrap();
    std::fs::write(dir.path().join("yes/.hidden.wav"), b"not read").unwrap();
    let set = load_clips(dir.path(), 8000, 2000).unwrap();
    assert_eq!(set.names, ["no/b.WAV", "no/deeper/c.wav", "yes/a.wav"], "sorted, /-separated, relative: the image folders' label keys");
    assert_eq!(set.rate, 8000);
    assert!(set.clips.iter().all(|c| c.len() == 2000));
    assert!(set.conversions.is_empty());
    // yes/a: 1600 samples of tone after trimming, centred in 2000: 200 zeros on each side.
    let a = &set.clips[2];
    assert!(a[..200].iter().all(|&v| v == 0.0) && a[1800..].iter().all(|&v| v == 0.0));
    assert!(a[200..1800].iter().any(|&v| v.abs() > 0.4));
    // no/b: 4000 samples of tone cropped to its middle 2000.
    assert!(set.clips[0].iter().filter(|v| v.abs() > 0.4).count() > 500);
}

#[test]
fn other_rates_and_channel_counts_are_converted_and_reported_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    wav(&dir.path().join("a.wav"), 16_000, 1, &word(16_000, 0, 8000, 0));
    wav(&dir.path().join("b.wav"), 48_000, 2, &word(48_000, 0, 24_000, 0));
    let set = load_clips(dir.path(), 16_000, 8000).unwrap();
    assert_eq!(set.conversions, [Conversion { name: "b.wav".into(), resampled_from: Some(48_000), down_mixed_from: Some(2) }]);
    let diff = set.clips[0].iter().zip(&set.clips[1]).skip(500).take(7000).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(diff < 0.01, "the 48 kHz stereo copy becomes the 16 kHz mono clip: {diff}");

    let strict = ClipSpec { resample: false, ..ClipSpec::new(16_000, 8000) };
    let e = load_clips_with(dir.path(), &strict).unwrap_err();
    assert!(matches!(e, AudioError::SampleRate { got: 48_000, expected: 16_000, .. }), "{e}");
    assert!(e.to_string().contains("b.wav: sampled at 48000 Hz, expected 16000 Hz"), "{e}");
    let mono_only = ClipSpec { down_mix: false, ..ClipSpec::new(16_000, 8000) };
    let e = load_clips_with(dir.path(), &mono_only).unwrap_err();
    assert!(matches!(e, AudioError::Channels { got: 2, .. }), "{e}");
    assert!(e.to_string().contains("b.wav: 2 channels, expected mono"), "{e}");
}

#[test]
fn bad_files_and_folders_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_clips(dir.path(), 16_000, 100).unwrap_err();
    assert!(matches!(e, AudioError::NoClips { .. }), "{e}");
    assert!(e.to_string().contains("no .wav files in the folder or its sub-folders"), "{e}");
    std::fs::write(dir.path().join("notes.txt"), "only text").unwrap();
    assert!(matches!(load_clips(dir.path(), 16_000, 100).unwrap_err(), AudioError::NoClips { .. }), "other files are not clips");

    std::fs::write(dir.path().join("fake.wav"), "ID3 this is an mp3").unwrap();
    let e = load_clips(dir.path(), 16_000, 100).unwrap_err().to_string();
    assert!(e.contains("fake.wav: not a readable WAV file"), "{e}");
    std::fs::remove_file(dir.path().join("fake.wav")).unwrap();

    wav(&dir.path().join("cut.wav"), 16_000, 1, &word(16_000, 0, 4000, 0));
    let bytes = std::fs::read(dir.path().join("cut.wav")).unwrap();
    std::fs::write(dir.path().join("cut.wav"), &bytes[..bytes.len() / 2 + 1]).unwrap();
    let e = load_clips(dir.path(), 16_000, 100).unwrap_err().to_string();
    assert!(e.contains("cut.wav: not a readable WAV file"), "a file cut short: {e}");

    wav(&dir.path().join("cut.wav"), 16_000, 1, &[0.0; 400]);
    let e = load_clips(dir.path(), 16_000, 100).unwrap_err().to_string();
    assert!(e.contains("cut.wav: silent"), "{e}");

    let e = load_clips(dir.path(), 16_000, 0).unwrap_err().to_string();
    assert!(e.contains("a length above 0"), "{e}");
    assert!(matches!(load_clips(&dir.path().join("missing"), 16_000, 10).unwrap_err(), AudioError::Io { .. }));
}
