//! Writing the clips of a sound model as WAV files that carry their recipe, in a RIFF
//! `LIST`/`INFO` comment (`stipple_audio::encode_wav`), as PNGs carry theirs in a text chunk.

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use image::DynamicImage;
use stipple_audio::{encode_wav, read_info, spectrogram_image, spectrogram_png, Clip};
use stipple_sample::Sigmas;

use crate::recipe::{ModelRef, Recipe};
use crate::{grid, recipe, write_atomic, GenerateSpec, PipelineError, TrajectoryFrame};

/// Where the clips of a request go: `out` itself when it names a `.wav` file (one clip only),
/// else the folder `out` without its extension (`samples.png`, the image default, becomes
/// `samples/`), holding `seed-N.wav`.
pub fn clip_paths(out: &Path, spec: &GenerateSpec) -> Result<Vec<PathBuf>, PipelineError> {
    let is_wav = out.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav"));
    match (is_wav, spec.count) {
        (true, 1) => Ok(vec![out.to_path_buf()]),
        (true, n) => Err(PipelineError::bad("out", format!("{} is one WAV file, but {n} clips were asked for; give a folder", out.display()))),
        (false, n) => {
            let dir = out.with_extension("");
            Ok((0..n as u64).map(|i| dir.join(format!("seed-{}.wav", spec.seed + i))).collect())
        }
    }
}

/// Writes `samples` (`(count, 1, L)` in [−1, 1]) at `rate` Hz to [`clip_paths`], each clip
/// with the recipe of its seed and its spectrogram picture beside it (`seed-N.png`,
/// [`stipple_audio::spectrogram_png`]); returns the WAV paths written.
pub fn write_clips(samples: &Tensor, rate: u32, spec: &GenerateSpec, sigmas: &Sigmas, model: &ModelRef, out: &Path) -> Result<Vec<PathBuf>, PipelineError> {
    let paths = clip_paths(out, spec)?;
    let (n, _, length) = samples.dims3()?;
    let clips = samples.clamp(-1f32, 1f32)?.to_dtype(DType::F32)?.reshape((n, length))?.to_vec2::<f32>()?;
    for (i, (samples, path)) in clips.into_iter().zip(&paths).enumerate() {
        let r = recipe(spec, sigmas, model, (length, 1), spec.seed + i as u64, 1, None);
        let picture = spectrogram_png(&samples, rate).map_err(|e| PipelineError::Encode(Box::new(e)))?;
        let bytes = encode_wav(&Clip { rate, samples }, &r.to_json()).map_err(|e| PipelineError::Encode(Box::new(e)))?;
        write_atomic(path, &bytes)?;
        write_atomic(&path.with_extension("png"), &picture)?;
    }
    Ok(paths)
}

/// Refuses a trajectory file that is not a PNG (a sound trajectory is a picture of
/// spectrograms), so that a front end can check before sampling.
pub fn check_sound_trajectory_path(out: &Path) -> Result<(), PipelineError> {
    match out.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) {
        true => Ok(()),
        false => Err(PipelineError::bad("trajectory", format!("a sound trajectory is a PNG of spectrograms; got {}", out.display()))),
    }
}

/// The trajectory of a sound model's clips as one PNG: the spectrogram
/// ([`stipple_audio::spectrogram_image`]) of the denoised estimate x̂₀ at every recorded
/// step, one row per step (top: the first), one column per clip.
pub fn write_sound_trajectory(frames: &[TrajectoryFrame], rate: u32, out: &Path) -> Result<(), PipelineError> {
    check_sound_trajectory_path(out)?;
    let clips = frames.first().map_or(Ok(1), |f| f.denoised.dim(0))?;
    let mut pictures = Vec::new();
    for frame in frames {
        let (n, _, length) = frame.denoised.dims3()?;
        for clip in frame.denoised.to_dtype(DType::F32)?.reshape((n, length))?.to_vec2::<f32>()? {
            let picture = spectrogram_image(&clip, rate).map_err(|e| PipelineError::Encode(Box::new(e)))?;
            pictures.push(DynamicImage::ImageRgb8(picture));
        }
    }
    let mut bytes = std::io::Cursor::new(Vec::new());
    grid(&pictures, clips, 2).write_to(&mut bytes, image::ImageFormat::Png).map_err(|e| PipelineError::Encode(Box::new(e)))?;
    write_atomic(out, &bytes.into_inner())
}

impl Recipe {
    /// The recipe in a WAV file's `LIST`/`INFO` comment (`what` names the file in messages).
    pub fn from_wav_bytes(bytes: &[u8], what: &str) -> Result<Recipe, String> {
        let text = read_info(bytes).ok_or_else(|| format!("{what} carries no Stipple recipe (no RIFF INFO comment)"))?;
        Recipe::from_json(&text).map_err(|e| format!("{what}: {e}"))
    }
}
