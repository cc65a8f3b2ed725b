//! A data set of sound clips: every WAV file under a folder, made alike (one rate, mono,
//! silence trimmed, one length) for training.
//!
//! Clips are named by their path under the folder, `/`-separated and sorted, as image folders
//! name their images, so the same label sources apply: the first sub-folder of each name
//! (`yes/alice.wav` → class `yes`) or a column of the folder's `labels.csv` keyed by that name.

use std::path::{Path, PathBuf};

use crate::prepare::{fit_length, resample, trim_silence, Trim};
use crate::{decode_wav_channels, AudioError};

/// How the files of a folder are made alike.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipSpec {
    /// The sample rate of every clip, in Hz.
    pub rate: u32,
    /// The length of every clip, in samples at `rate`.
    pub length: usize,
    /// Resample a file at another rate ([`resample`]); refuse it when false.
    pub resample: bool,
    /// Average the channels of a file with several ([`crate::decode_wav`]); refuse it when false.
    pub down_mix: bool,
    /// Trim leading and trailing silence ([`trim_silence`]) before fitting the length.
    pub trim: Option<Trim>,
}

impl ClipSpec {
    /// Resampling and down-mixing allowed, silence trimmed with [`Trim::for_rate`].
    pub fn new(rate: u32, length: usize) -> Self {
        Self { rate, length, resample: true, down_mix: true, trim: Some(Trim::for_rate(rate)) }
    }
}

/// What was done to a file to make it fit the spec (only files that needed it are listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    pub name: String,
    /// The file's own rate when it was resampled.
    pub resampled_from: Option<u32>,
    /// The file's channel count when it was down-mixed.
    pub down_mixed_from: Option<u16>,
}

/// The clips of a folder: `clips[i]` (exactly `length` samples at `rate`) is the file `names[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipSet {
    pub rate: u32,
    pub names: Vec<String>,
    pub clips: Vec<Vec<f32>>,
    pub conversions: Vec<Conversion>,
}

/// The WAV files under `dir` at `rate` Hz and `length` samples, with [`ClipSpec::new`]'s
/// defaults (resampled and down-mixed where needed, silence trimmed, centred).
pub fn load_clips(dir: &Path, rate: u32, length: usize) -> Result<ClipSet, AudioError> {
    load_clips_with(dir, &ClipSpec::new(rate, length))
}

/// The WAV files (`*.wav`, any case) under `dir` and its sub-folders, each decoded, brought to
/// `spec.rate` and mono (or refused, as `spec` says), trimmed and fitted to `spec.length`
/// ([`fit_length`]). Other files (`labels.csv`, notes) are skipped, and so are hidden ones.
/// Fails on the first file that is not a readable WAV, on a file left silent by trimming,
/// and on a folder without WAV files.
pub fn load_clips_with(dir: &Path, spec: &ClipSpec) -> Result<ClipSet, AudioError> {
    if spec.rate == 0 || spec.length == 0 {
        return Err(AudioError::Setting { setting: "clips", expected: format!("a rate and a length above 0, got {} Hz and {} samples", spec.rate, spec.length) });
    }
    let mut names = Vec::new();
    wav_files(dir, dir, &mut names)?;
    names.sort();
    if names.is_empty() {
        return Err(AudioError::NoClips { dir: dir.to_path_buf() });
    }
    let mut set = ClipSet { rate: spec.rate, names: Vec::new(), clips: Vec::with_capacity(names.len()), conversions: Vec::new() };
    for name in names {
        let path = dir.join(&name);
        let bytes = std::fs::read(&path).map_err(|source| AudioError::Io { path: path.clone(), source })?;
        let source_name = path.display().to_string();
        let (clip, channels) = decode_wav_channels(&bytes, &source_name)?;
        if channels > 1 && !spec.down_mix {
            return Err(AudioError::Channels { source_name, got: channels });
        }
        if clip.rate != spec.rate && !spec.resample {
            return Err(AudioError::SampleRate { source_name, got: clip.rate, expected: spec.rate });
        }
        let samples = resample(&clip.samples, clip.rate, spec.rate)?;
        let sound = match spec.trim {
            Some(trim) => trim_silence(&samples, trim),
            None => &samples[..],
        };
        if sound.is_empty() {
            return Err(AudioError::Silent { source_name });
        }
        set.clips.push(fit_length(sound, spec.length));
        if clip.rate != spec.rate || channels > 1 {
            set.conversions.push(Conversion {
                name: name.clone(),
                resampled_from: (clip.rate != spec.rate).then_some(clip.rate),
                down_mixed_from: (channels > 1).then_some(channels),
            });
        }
        set.names.push(name);
    }
    Ok(set)
}

/// Appends the `/`-separated paths, relative to `root`, of the WAV files under `dir`.
fn wav_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), AudioError> {
    let io = |path: PathBuf| move |source| AudioError::Io { path, source };
    for entry in std::fs::read_dir(dir).map_err(io(dir.to_path_buf()))? {
        let path = entry.map_err(io(dir.to_path_buf()))?.path();
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if file_name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            wav_files(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")) {
            let relative = path.strip_prefix(root).expect("walked from root");
            out.push(relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"));
        }
    }
    Ok(())
}
