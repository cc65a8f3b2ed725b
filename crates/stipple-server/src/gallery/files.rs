//! The image files: their names, and the durable atomic write and removal.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::{GalleryError, Result};
use super::ImageId;

/// Prefix of the temporary names a PNG is written under before its rename.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";
const EXTENSION: &str = ".png";

/// What a name in the images folder is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// `<id>.png` in canonical spelling.
    Image(ImageId),
    /// `.tmp-…`: a write that never reached its rename.
    Temp,
    /// Anything else: not the gallery's, left alone.
    Unknown,
}

pub(crate) fn classify(name: &str) -> Entry {
    if name.starts_with(TEMP_PREFIX) {
        return Entry::Temp;
    }
    match name.strip_suffix(EXTENSION).map(str::parse::<ImageId>) {
        Some(Ok(id)) => Entry::Image(id),
        _ => Entry::Unknown,
    }
}

pub(crate) fn image_path(images: &Path, id: ImageId) -> PathBuf {
    images.join(format!("{id}{EXTENSION}"))
}

fn temp_path(images: &Path, id: ImageId) -> PathBuf {
    images.join(format!("{TEMP_PREFIX}{id}{EXTENSION}"))
}

/// Makes the folder's entries (creations, renames, removals) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(GalleryError::io(dir))
}

/// Writes `bytes` as the image `id`: to a temporary name in the same folder, fsync, rename
/// to `<id>.png`, fsync the folder. On return the file is durable under its final name; on
/// error neither name is left behind (as far as removal succeeds: what stays is repaired by
/// the next reconcile).
pub(crate) fn write_image(images: &Path, id: ImageId, bytes: &[u8]) -> Result<()> {
    let temp = temp_path(images, id);
    let path = image_path(images, id);
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&temp);
        return Err(GalleryError::Io { path: temp, source });
    }
    if let Err(source) = fs::rename(&temp, &path) {
        let _ = fs::remove_file(&temp);
        return Err(GalleryError::Io { path, source });
    }
    sync_dir(images).inspect_err(|_| {
        let _ = fs::remove_file(&path);
    })
}

/// Removes a file; a file already gone is not an error.
pub(crate) fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(GalleryError::Io { path: path.to_owned(), source: e }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classified_strictly() {
        let id = |s: &str| s.parse::<ImageId>().unwrap();
        assert_eq!(classify("12.png"), Entry::Image(id("12")));
        assert_eq!(classify(".tmp-12.png"), Entry::Temp);
        for other in ["012.png", "12.PNG", "12.png.bak", "a.png", "12", ".12.png", "notes.txt"] {
            assert_eq!(classify(other), Entry::Unknown, "{other}");
        }
        assert_eq!(classify(image_path(Path::new("x"), id("7")).file_name().unwrap().to_str().unwrap()), Entry::Image(id("7")));
        assert_eq!(classify(temp_path(Path::new("x"), id("7")).file_name().unwrap().to_str().unwrap()), Entry::Temp);
    }
}
