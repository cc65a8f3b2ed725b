//! Image sets read from folders, and the feature networks that embed them.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use image::DynamicImage;

use crate::inception::FidInception;
use crate::{EvalError, Features};

/// File extensions read as images.
pub const IMAGE_EXTENSIONS: [&str; 5] = ["png", "jpg", "jpeg", "webp", "gif"];

/// An image and where it came from (for error messages).
pub struct NamedImage {
    pub path: PathBuf,
    pub image: DynamicImage,
}

fn collect_images(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), EvalError> {
    let entries = std::fs::read_dir(dir).map_err(|e| EvalError::io("read the folder", dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| EvalError::io("read the folder", dir, e))?.path();
        if path.is_dir() {
            collect_images(&path, out)?;
        } else if path.extension().and_then(|x| x.to_str()).is_some_and(|x| IMAGE_EXTENSIONS.contains(&x.to_ascii_lowercase().as_str())) {
            out.push(path);
        }
    }
    Ok(())
}

/// The images under `dir` (sub-folders included), in path order. An image that cannot be
/// decoded is an error naming it.
pub fn load_folder(dir: &Path) -> Result<Vec<NamedImage>, EvalError> {
    let mut paths = Vec::new();
    collect_images(dir, &mut paths)?;
    paths.sort();
    if paths.is_empty() {
        return Err(EvalError::BadImage { path: dir.to_path_buf(), reason: format!("no images ({}) in the folder", IMAGE_EXTENSIONS.join(", ")) });
    }
    paths
        .into_iter()
        .map(|path| {
            let image = image::open(&path).map_err(|e| EvalError::BadImage { path: path.clone(), reason: e.to_string() })?;
            Ok(NamedImage { path, image })
        })
        .collect()
}

/// A network that maps images to feature vectors.
pub trait FeatureNet {
    /// Dimension of the features.
    fn dim(&self) -> usize;
    /// Features of `images`, one row each, in order.
    fn embed(&self, images: &[NamedImage]) -> Result<Features, EvalError>;
}

/// `image` in RGB as a `(3, H, W)` f32 tensor in [0, 1] (PIL's `convert('RGB')`, then
/// `u8 / 255` as torchvision's `ToTensor`).
pub fn to_unit_rgb(image: &DynamicImage, device: &Device) -> candle_core::Result<Tensor> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    Tensor::from_vec(image.to_rgb8().into_raw(), (h, w, 3), device)?.permute((2, 0, 1))?.to_dtype(candle_core::DType::F32)? / 255.0
}

/// Images embedded this many at a time.
const BATCH: usize = 8;

/// pytorch-fid's treatment of an image set: every image is converted to RGB (PIL's
/// `convert('RGB')`, so grayscale and RGBA images are accepted) and resized on its own to
/// 299×299, so sets of any and of mixed sizes are accepted.
impl FeatureNet for FidInception {
    fn dim(&self) -> usize {
        crate::inception::FEATURE_DIM
    }

    fn embed(&self, images: &[NamedImage]) -> Result<Features, EvalError> {
        let size = crate::inception::INPUT_SIZE;
        let mut rows = Vec::with_capacity(images.len() * self.dim());
        for chunk in images.chunks(BATCH) {
            let batch = chunk
                .iter()
                .map(|im| to_unit_rgb(&im.image, self.device())?.unsqueeze(0)?.upsample_bilinear2d(size, size, false))
                .collect::<candle_core::Result<Vec<_>>>()?;
            let f = self.features(&Tensor::cat(&batch, 0)?)?;
            rows.extend(f.flatten_all()?.to_vec1::<f32>()?);
        }
        Features::from_f32(&rows, self.dim())
    }
}
