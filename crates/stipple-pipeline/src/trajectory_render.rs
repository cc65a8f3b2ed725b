//! Trajectories as pictures: a PNG grid (rows = images, columns = steps), or an animation
//! (GIF or APNG) with one frame per step; each cell shows x_t and x̂₀ side by side.
//!
//! x_t is shown as the network sees it, x_t/√(1+σ²) (variance-preserving scaling, Ho et
//! al. 2020), so early noisy steps stay visible instead of saturating.

use std::path::Path;

use candle_core::Tensor;
use image::{imageops, DynamicImage, Rgb, RgbImage};

use crate::font::{draw_text, format_sigma, line_height, text_width};
use crate::trajectory::TrajectoryFrame;
use crate::{grid_columns, to_images, write_atomic, PipelineError};

const GAP: u32 = 2;
const LABEL_SCALE: u32 = 2;
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const INK: Rgb<u8> = Rgb([40, 40, 40]);

/// Nearest-neighbour zoom that makes a cell at least 48 pixels tall.
fn zoom_for(size: u32) -> u32 {
    48u32.div_ceil(size.max(1)).max(1)
}

/// The noisy latents `x` at noise level `sigma`, `(N, C, H, W)`, as pictures the way the
/// network sees them: x/√(1+σ²) (see the module's note).
pub fn noisy_images(x: &Tensor, sigma: f64) -> Result<Vec<DynamicImage>, PipelineError> {
    to_images(&(x / (1.0 + sigma * sigma).sqrt())?)
}

/// The pairs [x_t | x̂₀] of one frame, one per image, zoomed.
fn frame_cells(frame: &TrajectoryFrame, zoom: u32) -> Result<Vec<RgbImage>, PipelineError> {
    let xs = noisy_images(&frame.x, frame.sigma)?;
    let ds = to_images(&frame.denoised)?;
    Ok(xs
        .iter()
        .zip(&ds)
        .map(|(x, d)| {
            let (w, h) = (x.width(), x.height());
            let mut pair = RgbImage::from_pixel(2 * w + 1, h, WHITE);
            imageops::replace(&mut pair, &x.to_rgb8(), 0, 0);
            imageops::replace(&mut pair, &d.to_rgb8(), (w + 1) as i64, 0);
            imageops::resize(&pair, pair.width() * zoom, h * zoom, imageops::FilterType::Nearest)
        })
        .collect())
}

fn label(frame: &TrajectoryFrame) -> (String, String) {
    (format!("{}/{}", frame.step + 1, frame.steps), format!("σ={}", format_sigma(frame.sigma)))
}

/// Rows = images, columns = recorded steps; a header labels each column with its step
/// number and σ.
pub fn trajectory_grid(frames: &[TrajectoryFrame]) -> Result<RgbImage, PipelineError> {
    let columns: Vec<Vec<RgbImage>> = {
        let size = frames.first().map_or(1, |f| f.x.dims().last().copied().unwrap_or(1) as u32);
        let zoom = zoom_for(size);
        frames.iter().map(|f| frame_cells(f, zoom)).collect::<Result<_, _>>()?
    };
    let Some(first) = columns.first().and_then(|c| c.first()) else {
        return Ok(RgbImage::from_pixel(1, 1, WHITE));
    };
    let (cw, ch) = (first.width(), first.height());
    let header = 2 * line_height(LABEL_SCALE) + GAP;
    let rows = columns[0].len() as u32;
    let cols = columns.len() as u32;
    let mut img = RgbImage::from_pixel(cols * (cw + GAP) + GAP, header + rows * (ch + GAP) + GAP, WHITE);
    for (c, (cells, frame)) in columns.iter().zip(frames).enumerate() {
        let x0 = GAP + c as u32 * (cw + GAP);
        let (step, sigma) = label(frame);
        draw_text(&mut img, &step, x0, GAP, LABEL_SCALE, INK);
        draw_text(&mut img, &sigma, x0, GAP + line_height(LABEL_SCALE), LABEL_SCALE, INK);
        for (r, cell) in cells.iter().enumerate() {
            imageops::replace(&mut img, cell, x0 as i64, (header + GAP + r as u32 * (ch + GAP)) as i64);
        }
    }
    Ok(img)
}

/// One picture per recorded step: all images' [x_t | x̂₀] pairs in a near-square grid under
/// a label "step/steps σ=…".
pub fn trajectory_frames(frames: &[TrajectoryFrame]) -> Result<Vec<RgbImage>, PipelineError> {
    let size = frames.first().map_or(1, |f| f.x.dims().last().copied().unwrap_or(1) as u32);
    let zoom = zoom_for(size);
    let mut out = Vec::with_capacity(frames.len());
    for frame in frames {
        let cells = frame_cells(frame, zoom)?;
        let cols = grid_columns(cells.len()) as u32;
        let rows = cells.len().div_ceil(cols as usize) as u32;
        let (cw, ch) = (cells[0].width(), cells[0].height());
        let header = line_height(LABEL_SCALE) + GAP;
        let (step, sigma) = label(frame);
        let text = format!("{step} {sigma}");
        let width = (cols * (cw + GAP) + GAP).max(text_width(&text, LABEL_SCALE) + 2 * GAP);
        let mut img = RgbImage::from_pixel(width, header + rows * (ch + GAP) + GAP, WHITE);
        draw_text(&mut img, &text, GAP, GAP, LABEL_SCALE, INK);
        for (i, cell) in cells.iter().enumerate() {
            let (r, c) = (i as u32 / cols, i as u32 % cols);
            imageops::replace(&mut img, cell, (GAP + c * (cw + GAP)) as i64, (header + GAP + r * (ch + GAP)) as i64);
        }
        out.push(img);
    }
    Ok(out)
}

/// Milliseconds per animation frame; the last frame holds for [`LAST_FRAME_MS`].
pub const FRAME_MS: u16 = 150;
pub const LAST_FRAME_MS: u16 = 1500;

/// How a trajectory is drawn: a grid (rows = images, columns = steps) or an animation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrajectoryFormat {
    /// A PNG grid.
    Grid,
    Gif,
    /// Animated PNG.
    Apng,
}

impl TrajectoryFormat {
    /// The format a file name asks for by its extension: `.png` → grid, `.gif`, `.apng`.
    pub fn from_path(path: &Path) -> Result<Self, PipelineError> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
        match ext.as_str() {
            "png" => Ok(Self::Grid),
            "gif" => Ok(Self::Gif),
            "apng" => Ok(Self::Apng),
            _ => Err(PipelineError::bad(
                "trajectory",
                format!("{} must end in .png (grid), .gif or .apng (animations)", path.display()),
            )),
        }
    }
}

/// The trajectory encoded in `format`.
pub fn encode_trajectory(frames: &[TrajectoryFrame], format: TrajectoryFormat) -> Result<Vec<u8>, PipelineError> {
    let fail = |e: String| PipelineError::Encode(e.into());
    let mut out = Vec::new();
    match format {
        TrajectoryFormat::Grid => {
            let grid = DynamicImage::ImageRgb8(trajectory_grid(frames)?);
            grid.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).map_err(|e| fail(e.to_string()))?
        }
        TrajectoryFormat::Gif => write_gif(&trajectory_frames(frames)?, &mut out).map_err(fail)?,
        TrajectoryFormat::Apng => write_apng(&trajectory_frames(frames)?, &mut out).map_err(fail)?,
    }
    Ok(out)
}

/// Writes the trajectory in the format its extension names, atomically.
pub fn save_trajectory(frames: &[TrajectoryFrame], path: &Path) -> Result<(), PipelineError> {
    let bytes = encode_trajectory(frames, TrajectoryFormat::from_path(path)?)?;
    write_atomic(path, &bytes)
}

fn delay_ms(i: usize, n: usize) -> u16 {
    if i + 1 == n {
        LAST_FRAME_MS
    } else {
        FRAME_MS
    }
}

fn write_gif(frames: &[RgbImage], out: &mut Vec<u8>) -> Result<(), String> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let mut enc = GifEncoder::new_with_speed(out, 10);
    enc.set_repeat(Repeat::Infinite).map_err(|e| e.to_string())?;
    for (i, f) in frames.iter().enumerate() {
        let rgba = DynamicImage::ImageRgb8(f.clone()).to_rgba8();
        let delay = image::Delay::from_numer_denom_ms(delay_ms(i, frames.len()) as u32, 1);
        enc.encode_frame(image::Frame::from_parts(rgba, 0, 0, delay)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Animated PNG (APNG, the `acTL`/`fcTL`/`fdAT` chunks of the PNG 3rd edition) via the
/// `png` crate; every frame has the size of the first.
fn write_apng(frames: &[RgbImage], out: &mut Vec<u8>) -> Result<(), String> {
    let (w, h) = frames.first().map_or((1, 1), |f| (f.width(), f.height()));
    let mut enc = png::Encoder::new(out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_animated(frames.len() as u32, 0).map_err(|e| e.to_string())?;
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    for (i, f) in frames.iter().enumerate() {
        writer.set_frame_delay(delay_ms(i, frames.len()), 1000).map_err(|e| e.to_string())?;
        let mut canvas = RgbImage::from_pixel(w, h, WHITE);
        imageops::replace(&mut canvas, f, 0, 0);
        writer.write_image_data(canvas.as_raw()).map_err(|e| e.to_string())?;
    }
    writer.finish().map_err(|e| e.to_string())
}

