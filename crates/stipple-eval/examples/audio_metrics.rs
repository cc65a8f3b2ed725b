//! The audio metric table: sets of clips against held-out real clips, as a markdown table.
//!
//! ```text
//! cargo run --release -p stipple-eval --example audio_metrics -- \
//!     --reference HELD_OUT_DIR [--set NAME=DIR]... [--noise] [--rate 16000] [--seconds 1]
//! ```
//! Every folder is read with `stipple_audio::load_clips` (resampled to `--rate`, mono,
//! silence trimmed, centred in `--seconds`). `--noise` adds a row for white noise: one clip
//! per reference clip, uniform noise scaled to that clip's RMS (seeded, so the row repeats).

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use stipple_audio::{load_clips, MelConfig};
use stipple_eval::audio_metrics;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut reference, mut sets, mut noise, mut rate, mut seconds) = (None, Vec::new(), false, 16_000u32, 1.0f64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--reference" => reference = Some(PathBuf::from(value()?)),
            "--set" => {
                let v = value()?;
                let (name, dir) = v.split_once('=').ok_or(format!("--set takes NAME=DIR, got {v}"))?;
                sets.push((name.to_string(), PathBuf::from(dir)));
            }
            "--noise" => noise = true,
            "--rate" => rate = value()?.parse()?,
            "--seconds" => seconds = value()?.parse()?,
            other => return Err(format!("unknown argument {other}; expected --reference, --set, --noise, --rate, --seconds").into()),
        }
    }
    let reference = reference.ok_or("--reference DIR is required")?;
    let length = (seconds * f64::from(rate)).round() as usize;
    let held_out = load_clips(&reference, rate, length)?;
    let cfg = MelConfig::for_rate(rate);
    println!("Against {} held-out clips of {} ({} Hz, {} samples; n_fft {}, hop {}, {} mel bands, {} MFCCs).\n", held_out.clips.len(), reference.display(), rate, length, cfg.n_fft, cfg.hop, cfg.n_mels, cfg.n_mfcc);
    println!("| set | clips | MFCC Fréchet distance | log-mel average spectrum (dB RMS) | log-mel to nearest (dB) | MR-STFT to nearest |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut rows: Vec<(String, Vec<Vec<f32>>)> = Vec::new();
    if noise {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let clips = held_out
            .clips
            .iter()
            .map(|c| {
                let rms = (c.iter().map(|v| v * v).sum::<f32>() / c.len() as f32).sqrt();
                // Uniform on [−√3, √3] has unit variance.
                (0..length).map(|_| rms * 3f32.sqrt() * rng.random_range(-1.0f32..1.0)).collect()
            })
            .collect();
        rows.push(("white noise (RMS of each held-out clip)".into(), clips));
    }
    for (name, dir) in sets {
        rows.push((name, load_clips(&dir, rate, length)?.clips));
    }
    for (name, clips) in rows {
        let m = audio_metrics(&clips, &held_out.clips, &cfg)?;
        println!("| {name} | {} | {:.1} | {:.2} | {:.2} | {:.3} |", clips.len(), m.mfcc_frechet, m.log_mel_average_db, m.log_mel_nearest_db, m.mr_stft_nearest);
    }
    Ok(())
}
