//! Errors of the gallery.

use std::path::PathBuf;

use super::ImageId;

/// What can go wrong in the gallery. A server answers `NotFound` with 404, `InUse` with 503
/// at start-up, and the others with a generic 500 (the message goes to the log).
#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    /// No image has this id (never had, or it was deleted).
    #[error("no image with id {0}")]
    NotFound(ImageId),
    /// Reading or writing a file or folder failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The database failed (including a constraint, e.g. a NaN guidance, which SQLite
    /// stores as NULL).
    #[error("gallery database error: {0}")]
    Db(#[from] rusqlite::Error),
    /// The stored data is not what the gallery wrote: a PNG whose bytes differ from its
    /// recorded hash, a database from a newer version, images without their database.
    #[error("gallery data is inconsistent: {0}")]
    Corrupt(String),
    /// Another open gallery (this process or another) holds the data folder's lock.
    #[error("the gallery in {} is already open (lock file held)", path.display())]
    InUse { path: PathBuf },
}

impl GalleryError {
    /// The `Io` variant for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> GalleryError {
        let path = path.into();
        move |source| GalleryError::Io { path, source }
    }
}

pub type Result<T, E = GalleryError> = std::result::Result<T, E>;
