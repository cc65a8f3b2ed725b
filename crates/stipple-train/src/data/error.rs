//! What can go wrong when loading an image data set.

use std::path::PathBuf;

use super::folder::EXTENSIONS;

/// An image data set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The data folder is not there.
    #[error("data folder {} does not exist", .0.display())]
    MissingFolder(PathBuf),
    /// The data path exists but is a file, not a folder.
    #[error("data path {} is not a folder", .0.display())]
    NotAFolder(PathBuf),
    /// The folder (and its sub-folders) held no image that could be decoded.
    #[error(
        "no readable image in data folder {} (looked recursively for files ending in .{}, \
         case-insensitive; {skipped} file(s) skipped as unreadable)",
        dir.display(),
        EXTENSIONS.join(", .")
    )]
    NoImages {
        /// The folder that was searched.
        dir: PathBuf,
        /// How many files with an accepted extension failed to decode.
        skipped: usize,
    },
    /// The requested image size was 0; it must be at least 1 pixel.
    #[error("image size must be at least 1 pixel, got 0")]
    ZeroSize,
    /// A folder could not be listed.
    #[error("cannot list folder {}", path.display())]
    Io {
        /// The folder being listed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Class labels could not be read or do not cover every image.
    #[error("class labels: {0}")]
    Labels(String),
    /// The atlas compiled into the binary could not be decoded or does not match its labels.
    #[error("embedded emoji data is damaged: {0}")]
    Embedded(String),
}
