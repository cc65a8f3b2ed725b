//! Training data as host-side `f32` samples behind one trait, [`TrainingSet`]: image sets
//! (`N × C × H × W`, values in `[-1, 1]`; any folder of PNG/JPEG/WebP files, or the embedded
//! Fluent Emoji default), windows of time series from a CSV file ([`SeriesSet`]) and the WAV
//! clips of a folder (`stipple_audio::ClipSet`). No
//! backend here; the training loop uploads [`TrainingSet::batch`] buffers itself.

mod archive;
mod atlas;
mod error;
mod folder;
mod labels;
mod series;
mod sound;
mod transform;

use std::path::PathBuf;

pub use archive::{unpack_data_archive, ArchiveError, ArchiveLimits, Unpacked};
pub use atlas::{embedded_column, embedded_emoji, EMBEDDED_EMOJI_COUNT};
pub use error::DataError;
pub use folder::{load_folder, EXTENSIONS, PROGRESS_MIN_FILES};
pub use labels::{csv_column, load_labels, LabelSource, Labels, LABELS_FILE};
pub use series::{load_series, SeriesSet};

/// A training data set: `len()` samples of one shape, copied into batches on the host.
pub trait TrainingSet: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// Whether the set holds no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `[C, spatial…]`: the shape of one sample.
    fn sample_dims(&self) -> Vec<usize>;

    /// Copies the samples `indices` into one batch buffer (`N × sample_dims`), mirroring
    /// sample `k` along its last axis where `flip[k]` is true. Panics if the two slices differ
    /// in length or an index is out of range.
    fn batch(&self, indices: &[usize], flip: &[bool]) -> Vec<f32>;

    /// One name per sample (an image's relative path, a window's column and start row).
    fn names(&self) -> &[String];
}

impl TrainingSet for ImageSet {
    fn len(&self) -> usize {
        self.names.len()
    }

    fn sample_dims(&self) -> Vec<usize> {
        vec![self.channels, self.size, self.size]
    }

    fn batch(&self, indices: &[usize], flip: &[bool]) -> Vec<f32> {
        ImageSet::batch(self, indices, flip)
    }

    fn names(&self) -> &[String] {
        &self.names
    }
}

/// The channels a data set is loaded with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorMode {
    /// Three channels, red, green, blue.
    Rgb,
    /// One channel, Rec. 709 luma.
    Grey,
}

impl ColorMode {
    /// 3 for [`ColorMode::Rgb`], 1 for [`ColorMode::Grey`].
    pub fn channels(self) -> usize {
        match self {
            ColorMode::Rgb => 3,
            ColorMode::Grey => 1,
        }
    }
}

/// Square images of one size, stored contiguously.
#[derive(Clone, Debug)]
pub struct ImageSet {
    /// Height and width of every image.
    pub size: usize,
    /// Channels per image (3 or 1).
    pub channels: usize,
    /// `n × channels × size × size` values in `[-1, 1]`, planar (CHW) per image.
    pub pixels: Vec<f32>,
    /// One name per image (a relative path, or the emoji's name).
    pub names: Vec<String>,
}

impl ImageSet {
    fn empty(size: usize, channels: usize) -> Self {
        ImageSet {
            size,
            channels,
            pixels: Vec::new(),
            names: Vec::new(),
        }
    }

    /// Values per image: `channels × size × size`.
    pub fn image_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Image `i`, `channels × size × size` values (CHW). Panics if `i >= len()`.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Copies the images `indices` into one batch buffer (`N × C × H × W`), mirroring image `k`
    /// left-to-right where `flip[k]` is true. Panics if the two slices differ in length or an
    /// index is out of range.
    pub fn batch(&self, indices: &[usize], flip: &[bool]) -> Vec<f32> {
        assert_eq!(indices.len(), flip.len(), "batch: one flip flag per index");
        let mut out = Vec::with_capacity(indices.len() * self.image_len());
        for (&i, &mirror) in indices.iter().zip(flip) {
            let img = self.image(i);
            if mirror {
                for row in img.chunks_exact(self.size) {
                    out.extend(row.iter().rev());
                }
            } else {
                out.extend_from_slice(img);
            }
        }
        out
    }
}

/// What [`load_folder`] did: how many images it loaded and which files it skipped, and why.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// Images loaded.
    pub loaded: usize,
    /// Files with an accepted extension that could not be decoded, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}
