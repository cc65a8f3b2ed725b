//! Writing the clips of a sound model as WAV files that carry their recipe, in a RIFF
//! `LIST`/`INFO` comment (`stipple_audio::encode_wav`), as PNGs carry theirs in a text chunk.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use image::DynamicImage;
use stipple_audio::{encode_wav, read_info, spectrogram_image, spectrogram_png, Clip};
use stipple_nn::{LoadedModel, TensorLatent};
use stipple_sample::{Observer, Sigmas};

use crate::recipe::{ModelRef, Recipe};
use crate::{generate, grid, recipe, replay, write_atomic, GenerateSpec, PipelineError, TrajectoryFrame};

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
    let (_, _, length) = samples.dims3()?;
    for (i, (samples, path)) in clip_rows(samples)?.into_iter().zip(&paths).enumerate() {
        write_clip(path, samples, rate, &recipe(spec, sigmas, model, (length, 1), spec.seed + i as u64, 1, None))?;
    }
    Ok(paths)
}

/// Writes one clip (samples in [−1, 1] at `rate` Hz) as the WAV file `path` carrying
/// `recipe`, with its spectrogram picture beside it (`path` with `.png`).
pub fn write_clip(path: &Path, samples: Vec<f32>, rate: u32, recipe: &Recipe) -> Result<(), PipelineError> {
    let picture = spectrogram_png(&samples, rate).map_err(|e| PipelineError::Encode(Box::new(e)))?;
    let bytes = encode_wav(&Clip { rate, samples }, &recipe.to_json()).map_err(|e| PipelineError::Encode(Box::new(e)))?;
    write_atomic(path, &bytes)?;
    write_atomic(&path.with_extension("png"), &picture)
}

/// The clips of `(n, 1, L)` samples, clamped to [−1, 1].
fn clip_rows(samples: &Tensor) -> Result<Vec<Vec<f32>>, PipelineError> {
    let (n, _, length) = samples.dims3()?;
    Ok(samples.clamp(-1f32, 1f32)?.to_dtype(DType::F32)?.reshape((n, length))?.to_vec2::<f32>()?)
}

/// Regenerates the clip a WAV file's recipe describes with the sound model `model` (over the
/// recipe's exact σ's and seed; [`crate::replay`]); returns its samples in [−1, 1] and the
/// model's sample rate, for [`write_clip`]. A model that makes no clips of the recipe's length
/// is bad input in `model`.
pub fn regenerate_clip(
    recipe: &Recipe,
    model: &LoadedModel,
    device: &Device,
    observer: &mut impl Observer<TensorLatent>,
) -> Result<(Vec<f32>, u32), PipelineError> {
    let length = model.config.sample_shape().spatial.iter().product::<usize>();
    let rate = match &model.config.sound {
        Some(sound) if (recipe.width, recipe.height, recipe.count) == (length, 1, 1) => sound.sample_rate,
        Some(_) => {
            return Err(PipelineError::bad(
                "model",
                format!("the recipe is of one clip of {} samples; this sound model makes clips of {length}", recipe.width * recipe.height),
            ))
        }
        None => return Err(PipelineError::bad("model", format!("the recipe is a sound clip's; this model is {}, not a sound model", model.config.network.describe()))),
    };
    let (spec, sigmas, outputs) = replay(recipe, None, None)?;
    let samples = generate(model, &spec, &sigmas, device, observer)?;
    let clip = clip_rows(&samples.narrow(0, outputs.start, 1)?)?.pop().expect("one clip");
    Ok((clip, rate))
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
        let text = read_info(bytes)
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| format!("{what} carries no Stipple recipe (no RIFF INFO comment, or an empty one); clips made by Stipple have one"))?;
        Recipe::from_json(&text).map_err(|e| format!("{what}: {e}"))
    }
}
