//! Images given to a generation (img2img's init image, inpainting's mask) as encoded bytes.
//! A front end reads them at its edge (the CLI from a file it was named, the server from a
//! request body), so no request type the library takes carries a path to open; decoding is
//! bounded in pixels and memory before any pixel is allocated.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::{DynamicImage, ImageReader, Limits};
use sha2::{Digest, Sha256};

use crate::PipelineError;

/// Widest and tallest input image accepted, in pixels.
pub const MAX_INPUT_SIDE: u32 = 8192;
/// Most bytes the decoder may allocate for one input image (an 8192² RGBA image is 256 MiB).
pub const MAX_INPUT_ALLOC: u64 = 256 << 20;

/// An encoded image (PNG, JPEG, WebP or GIF) and its SHA-256, with the file it came from when
/// a front end read one (recorded in the recipe so `rerun` can read it again).
#[derive(Clone, Debug, PartialEq)]
pub struct ImageInput {
    bytes: Arc<[u8]>,
    sha256: String,
    source: Option<PathBuf>,
}

impl ImageInput {
    /// An image received as bytes (e.g. in a request body).
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>) -> Self {
        let bytes = bytes.into();
        Self { sha256: sha256_hex(&bytes), bytes, source: None }
    }

    /// Reads an image file named on a command line (the bytes are decoded later, by
    /// [`ImageInput::decode`]).
    pub fn read(path: &Path) -> Result<Self, PipelineError> {
        let bytes = std::fs::read(path).map_err(|e| PipelineError::io("read", path, e))?;
        Ok(Self { source: Some(path.canonicalize().unwrap_or_else(|_| path.to_path_buf())), ..Self::from_bytes(bytes) })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// SHA-256 of the bytes, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The file it was read from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Decodes the image for `setting`, refusing images wider or taller than
    /// [`MAX_INPUT_SIDE`] before decoding them.
    pub fn decode(&self, setting: &'static str) -> Result<DynamicImage, PipelineError> {
        decode_bounded(&self.bytes).map_err(|e| match &self.source {
            Some(path) => PipelineError::bad(setting, format!("{}: {e}", path.display())),
            None => PipelineError::bad(setting, e),
        })
    }
}

/// Decodes encoded image bytes with the size bounds of [`ImageInput::decode`]; the error says
/// what was expected.
pub fn decode_bounded(bytes: &[u8]) -> Result<DynamicImage, String> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read the image: {e}"))?;
    if reader.format().is_none() {
        return Err("expected a PNG, JPEG, WebP or GIF image; these bytes are none of them".into());
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_INPUT_SIDE);
    limits.max_image_height = Some(MAX_INPUT_SIDE);
    limits.max_alloc = Some(MAX_INPUT_ALLOC);
    reader.limits(limits);
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => {
            format!("the image is too large: at most {MAX_INPUT_SIDE}×{MAX_INPUT_SIDE} pixels are accepted")
        }
        other => format!("cannot decode the image (expected a complete PNG, JPEG, WebP or GIF): {other}"),
    })
}

/// SHA-256 of bytes, hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode_png_with_text;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(w, h, image::Rgb([9, 8, 7])));
        encode_png_with_text(&img, &[]).unwrap()
    }

    #[test]
    fn decodes_what_it_was_given() {
        let input = ImageInput::from_bytes(png(3, 2));
        let img = input.decode("init_image").unwrap();
        assert_eq!((img.width(), img.height()), (3, 2));
        assert_eq!(input.sha256().len(), 64);
        assert!(input.source().is_none());
    }

    #[test]
    fn garbage_and_truncated_bytes_are_bad_input_of_their_setting() {
        for bytes in [b"not an image".to_vec(), png(4, 4)[..40].to_vec(), Vec::new()] {
            let e = ImageInput::from_bytes(bytes).decode("mask").unwrap_err();
            let (setting, expected) = e.bad_input().expect("bad input");
            assert_eq!(setting, "mask");
            assert!(expected.contains("PNG, JPEG, WebP or GIF"), "{expected}");
        }
    }

    #[test]
    fn oversized_images_are_refused_before_decoding() {
        // A valid PNG header claiming 100000 × 1 pixels; the limit check fires on the header.
        let e = ImageInput::from_bytes(png(MAX_INPUT_SIDE + 1, 1)).decode("init_image").unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
    }
}
