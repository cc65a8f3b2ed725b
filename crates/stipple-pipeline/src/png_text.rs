//! PNG files with text chunks: `tEXt` (Latin-1) or `iTXt` (UTF-8) key–value pairs, as the
//! PNG specification (3rd ed., §11.3.3) defines them, written atomically.

use std::io::{BufReader, BufWriter};
use std::path::Path;

use image::DynamicImage;

use crate::PipelineError;

/// Writes `image` (8-bit grey or RGB) with `texts` under a temporary name, then renames it.
/// Values that are pure Latin-1 go into `tEXt` (what most readers look at first), others
/// into `iTXt`.
pub fn write_png_with_text(image: &DynamicImage, path: &Path, texts: &[(&str, String)]) -> Result<(), PipelineError> {
    let fail = |reason: String| PipelineError::Write { path: path.to_path_buf(), reason };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    }
    let tmp = path.with_extension("png.tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| fail(e.to_string()))?;
    let (color, data) = match image {
        DynamicImage::ImageLuma8(g) => (png::ColorType::Grayscale, g.as_raw().clone()),
        other => (png::ColorType::Rgb, other.to_rgb8().into_raw()),
    };
    let mut enc = png::Encoder::new(BufWriter::new(file), image.width(), image.height());
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    for (key, value) in texts {
        let latin1 = value.chars().all(|c| (c as u32) < 256);
        let r = if latin1 {
            enc.add_text_chunk(key.to_string(), value.clone())
        } else {
            enc.add_itxt_chunk(key.to_string(), value.clone())
        };
        r.map_err(|e| fail(e.to_string()))?;
    }
    let mut writer = enc.write_header().map_err(|e| fail(e.to_string()))?;
    writer.write_image_data(&data).map_err(|e| fail(e.to_string()))?;
    writer.finish().map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| fail(e.to_string()))
}

/// Every text chunk of a PNG (`tEXt`, `zTXt`, `iTXt`) as (key, value), in that order.
pub fn read_png_text(path: &Path) -> Result<Vec<(String, String)>, PipelineError> {
    let bad = |reason: String| PipelineError::Invalid(format!("{} is not a readable PNG: {reason}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut reader = png::Decoder::new(BufReader::new(file)).read_info().map_err(|e| bad(e.to_string()))?;
    // Text chunks after the image data are only seen once the frame has been read.
    let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
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
        let got = read_png_text(&path).unwrap();
        assert!(got.contains(&("parameters".into(), "Steps: 20, Seed: 1".into())));
        assert!(got.contains(&("json".into(), "{\"σ\": 1}".into())));
        assert_eq!(image::open(&path).unwrap().to_rgb8(), img.to_rgb8());
    }
}
