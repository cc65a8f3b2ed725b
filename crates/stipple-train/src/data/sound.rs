//! Sound as training data: every `.wav` file under a folder (recursively, in sorted path
//! order), read as mono (`stipple_audio::read_wav` averages the channels), cut into
//! consecutive crops of one length. All clips must share one sample rate: a clip at another
//! rate is refused with both rates named (resample it first), not resampled here.

use std::path::{Path, PathBuf};

use stipple_audio::read_wav;

use super::TrainingSet;
use crate::TrainError;

/// Mono crops of one length at one sample rate, stored contiguously.
#[derive(Clone, Debug)]
pub struct ClipSet {
    /// Samples per crop.
    pub length: usize,
    /// The sample rate of every clip, in Hz.
    pub rate: u32,
    /// `n × length` samples in [−1, 1].
    pub samples: Vec<f32>,
    /// `file@start` of each crop (the path relative to the folder, the first sample's index).
    pub names: Vec<String>,
}

/// The `.wav` files under `dir`, sorted.
fn wav_files(dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| TrainError::Io { path: d.clone(), reason: e.to_string() })?;
        for entry in entries {
            let path = entry.map_err(|e| TrainError::Io { path: d.clone(), reason: e.to_string() })?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads every WAV file under `dir` and cuts it into crops of `length` samples (the rest of a
/// clip, shorter than a crop, is left out). `rate` is the sample rate every clip must have
/// (`None`: the first clip's). A file that is not a readable WAV, a clip at another rate, and
/// a folder without one crop are errors naming the file or the folder.
pub fn load_clips(dir: &Path, rate: Option<u32>, length: usize) -> Result<ClipSet, TrainError> {
    let files = wav_files(dir)?;
    let mut set = ClipSet { length, rate: rate.unwrap_or(0), samples: vec![], names: vec![] };
    for path in &files {
        let clip = read_wav(path, (set.rate > 0).then_some(set.rate)).map_err(|e| TrainError::Sound(e.to_string()))?;
        set.rate = clip.rate;
        let name = path.strip_prefix(dir).unwrap_or(path).to_string_lossy().replace('\\', "/");
        for (k, crop) in clip.samples.chunks_exact(length).enumerate() {
            set.samples.extend_from_slice(crop);
            set.names.push(format!("{name}@{}", k * length));
        }
    }
    if set.names.is_empty() {
        return Err(TrainError::Sound(format!(
            "{}: no clip of at least {length} samples among {} .wav file(s); lower --clip-length or add longer clips",
            dir.display(),
            files.len()
        )));
    }
    Ok(set)
}

impl TrainingSet for ClipSet {
    fn len(&self) -> usize {
        self.names.len()
    }

    fn sample_dims(&self) -> Vec<usize> {
        vec![1, self.length]
    }

    fn batch(&self, indices: &[usize], flip: &[bool]) -> Vec<f32> {
        assert_eq!(indices.len(), flip.len(), "batch: one flip flag per index");
        let mut out = Vec::with_capacity(indices.len() * self.length);
        for (&i, &reverse) in indices.iter().zip(flip) {
            let c = &self.samples[i * self.length..(i + 1) * self.length];
            if reverse {
                out.extend(c.iter().rev());
            } else {
                out.extend_from_slice(c);
            }
        }
        out
    }

    fn names(&self) -> &[String] {
        &self.names
    }
}
