//! PNG files with text chunks: `tEXt` (Latin-1) or `iTXt` (UTF-8) key–value pairs, as the
//! PNG specification (3rd ed., §11.3.3) defines them. Encoding returns bytes; files are
//! written atomically by [`write_atomic`].

use std::io::{Cursor, Write};
use std::path::Path;

use image::DynamicImage;

use crate::PipelineError;

/// Encodes `image` (8-bit grey or RGB) as a PNG with `texts`. Values that are pure Latin-1 go
/// into `tEXt` (what most readers look at first), others into `iTXt`.
pub fn encode_png_with_text(image: &DynamicImage, texts: &[(&str, String)]) -> Result<Vec<u8>, PipelineError> {
    let fail = |e: png::EncodingError| PipelineError::Encode(Box::new(e));
    let (color, data) = match image {
        DynamicImage::ImageLuma8(g) => (png::ColorType::Grayscale, g.as_raw().clone()),
        other => (png::ColorType::Rgb, other.to_rgb8().into_raw()),
    };
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, image.width(), image.height());
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    for (key, value) in texts {
        let latin1 = value.chars().all(|c| (c as u32) < 256);
        if latin1 {
            enc.add_text_chunk(key.to_string(), value.clone()).map_err(fail)?;
        } else {
            enc.add_itxt_chunk(key.to_string(), value.clone()).map_err(fail)?;
        }
    }
    let mut writer = enc.write_header().map_err(fail)?;
    writer.write_image_data(&data).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(out)
}

/// Writes `bytes` to `path` under a temporary name in the same folder, flushed to disk, then
/// renamed over `path`: a crash leaves the old file or the new one, never a torn one. The
/// temporary name is unique to the call (process id and a counter), so concurrent writers of
/// one path (a server's first requests all writing the built-in model) never share it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PipelineError> {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| PipelineError::io("create the folder", dir, e))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.{}.tmp", std::process::id(), WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    let tmp = std::path::PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    };
    write().map_err(|e| PipelineError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| PipelineError::io("rename into place", path, e))
}

/// Encodes `image` with `texts` and writes it atomically to `path`.
pub fn write_png_with_text(image: &DynamicImage, path: &Path, texts: &[(&str, String)]) -> Result<(), PipelineError> {
    write_atomic(path, &encode_png_with_text(image, texts)?)
}

/// Every text chunk of a PNG (`tEXt`, `zTXt`, `iTXt`) as (key, value), in that order; `what`
/// names the PNG in the error (a file name, or the setting it came in).
pub fn read_png_text(bytes: &[u8], what: &str) -> Result<Vec<(String, String)>, String> {
    let bad = |reason: String| format!("{what} is not a readable PNG: {reason}");
    let mut reader = png::Decoder::new(Cursor::new(bytes)).read_info().map_err(|e| bad(e.to_string()))?;
    // Text chunks after the image data are only seen once the frame has been read.
    let size = reader.output_buffer_size().ok_or_else(|| bad("its image is too large".into()))?;
    if size > crate::input::MAX_INPUT_ALLOC as usize {
        return Err(bad("its image is too large".into()));
    }
    let mut buf = vec![0; size];
    reader.next_frame(&mut buf).map_err(|e| bad(e.to_string()))?;
    reader.finish().map_err(|e| bad(e.to_string()))?;
    let info = reader.info();
    let mut out: Vec<(String, String)> =
        info.uncompressed_latin1_text.iter().map(|c| (c.keyword.clone(), c.text.clone())).collect();
    for c in &info.compressed_latin1_text {
        out.push((c.keyword.clone(), c.get_text().map_err(|e| bad(e.to_string()))?));
    }
    for c in &info.utf8_text {
        out.push((c.keyword.clone(), c.get_text().map_err(|e| bad(e.to_string()))?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::RgbImage;

    #[test]
    fn text_round_trips_in_latin1_and_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(3, 2, image::Rgb([1, 2, 3])));
        let texts = [("parameters", "Steps: 20, Seed: 1".to_string()), ("json", "{\"σ\": 1}".to_string())];
        write_png_with_text(&img, &path, &texts).unwrap();
        let got = read_png_text(&std::fs::read(&path).unwrap(), "a.png").unwrap();
        assert!(got.contains(&("parameters".into(), "Steps: 20, Seed: 1".into())));
        assert!(got.contains(&("json".into(), "{\"σ\": 1}".into())));
        assert_eq!(image::open(&path).unwrap().to_rgb8(), img.to_rgb8());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
    }

    #[test]
    fn truncated_png_is_refused_with_its_name() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(3, 2, image::Rgb([1, 2, 3])));
        let bytes = encode_png_with_text(&img, &[]).unwrap();
        let e = read_png_text(&bytes[..bytes.len() - 20], "upload").unwrap_err();
        assert!(e.starts_with("upload is not a readable PNG"), "{e}");
    }
}
