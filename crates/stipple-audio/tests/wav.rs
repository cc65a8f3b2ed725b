//! WAV clips: round trip with the text inside, files other tools wrote (stereo, 24-bit,
//! float), and the bad input a user meets (not a WAV, cut short, another sample rate).

use std::io::Cursor;

use stipple_audio::{decode_wav, encode_wav, read_info, read_wav, AudioError, Clip};

fn hound_file(spec: hound::WavSpec, write: impl Fn(&mut hound::WavWriter<&mut Cursor<Vec<u8>>>)) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
    write(&mut w);
    w.finalize().unwrap();
    out.into_inner()
}

#[test]
fn round_trip_keeps_samples_and_text() {
    let clip = Clip { rate: 16_000, samples: (0..1000).map(|i| (i as f32 * 0.05).sin() * 0.8).collect() };
    let recipe = r#"{"recipe_version":2,"seed":7,"prompt":"café"}"#;
    let bytes = encode_wav(&clip, recipe).unwrap();
    assert_eq!(read_info(&bytes).as_deref(), Some(recipe));
    let back = decode_wav(&bytes, "clip.wav").unwrap();
    assert_eq!(back.rate, 16_000);
    assert_eq!(back.samples.len(), 1000);
    let worst = back.samples.iter().zip(&clip.samples).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(worst <= 0.5 / 32_768.0, "16-bit rounding only: {worst}");
    // An odd-length text is padded and still read back exactly.
    assert_eq!(read_info(&encode_wav(&clip, "ab").unwrap()).as_deref(), Some("ab"));
    assert!(encode_wav(&Clip { rate: 8000, samples: vec![0.0, f32::NAN] }, "").unwrap_err().to_string().contains("sample 1"));
}

#[test]
fn stereo_24_bit_and_float_files_read_as_mono() {
    let stereo = hound::WavSpec { channels: 2, sample_rate: 8000, bits_per_sample: 24, sample_format: hound::SampleFormat::Int };
    let bytes = hound_file(stereo, |w| {
        for (l, r) in [(4_194_304, 0), (-8_388_608, -8_388_608)] {
            w.write_sample(l).unwrap();
            w.write_sample(r).unwrap();
        }
    });
    assert_eq!(decode_wav(&bytes, "s").unwrap().samples, [0.25, -1.0], "channels averaged, 24-bit scaled by 2^23");
    assert_eq!(read_info(&bytes), None, "no INFO chunk");
    let float = hound::WavSpec { channels: 1, sample_rate: 22_050, bits_per_sample: 32, sample_format: hound::SampleFormat::Float };
    let bytes = hound_file(float, |w| w.write_sample(0.5f32).unwrap());
    assert_eq!(decode_wav(&bytes, "f").unwrap(), Clip { rate: 22_050, samples: vec![0.5] });
}

#[test]
fn bad_files_say_what_was_expected() {
    let e = decode_wav(b"\x89PNG\r\n\x1a\n not a wav at all", "photo.png").unwrap_err().to_string();
    assert!(e.starts_with("photo.png: not a readable WAV file") && e.contains("expected RIFF/WAVE"), "{e}");
    let whole = encode_wav(&Clip { rate: 8000, samples: vec![0.1; 100] }, "recipe").unwrap();
    let cut = &whole[..60];
    assert!(matches!(decode_wav(cut, "cut.wav"), Err(AudioError::BadWav { .. })), "a file cut inside its samples");
    assert_eq!(read_info(cut), None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.wav");
    std::fs::write(&path, &whole).unwrap();
    let e = read_wav(&path, Some(16_000)).unwrap_err().to_string();
    assert!(e.contains("sampled at 8000 Hz, expected 16000 Hz"), "{e}");
    assert_eq!(read_wav(&path, Some(8000)).unwrap().samples.len(), 100);
    assert!(read_wav(&dir.path().join("missing.wav"), None).unwrap_err().to_string().contains("missing.wav"));
}
