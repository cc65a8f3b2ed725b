//! Loading every image found under a folder.

use std::path::{Path, PathBuf};

use image::ImageReader;

use crate::progress::files_bar;

use super::{transform, ColorMode, DataError, ImageSet, LoadReport};

/// File extensions that are loaded (compared case-insensitively).
pub const EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];

/// Folders with fewer files load without a progress bar (they take well under a second).
pub const PROGRESS_MIN_FILES: usize = 500;

/// Loads every PNG/JPEG/WebP under `dir` (recursively, in sorted path order for determinism)
/// as `size × size` images in `[-1, 1]`: alpha is composited onto white, the shorter side is
/// resized to `size` (Catmull-Rom) and the centre square is kept.
///
/// A file that cannot be decoded is skipped with a warning and listed in
/// [`LoadReport::skipped`]; it is an error only when no image at all could be read.
/// The names are the paths relative to `dir`, with `/` separators.
///
/// With `progress`, a folder of at least [`PROGRESS_MIN_FILES`] files shows a bar while it
/// is decoded.
pub fn load_folder(
    dir: &Path,
    size: usize,
    mode: ColorMode,
    progress: bool,
) -> Result<(ImageSet, LoadReport), DataError> {
    if size == 0 {
        return Err(DataError::ZeroSize);
    }
    if !dir.exists() {
        return Err(DataError::MissingFolder(dir.to_path_buf()));
    }
    if !dir.is_dir() {
        return Err(DataError::NotAFolder(dir.to_path_buf()));
    }
    let mut files = Vec::new();
    collect_images(dir, &mut files)?;
    files.sort();

    let mut set = ImageSet::empty(size, mode.channels());
    let mut report = LoadReport {
        loaded: 0,
        skipped: Vec::new(),
    };
    let bar = files_bar(progress && files.len() >= PROGRESS_MIN_FILES, files.len());
    for path in files {
        bar.inc(1);
        match ImageReader::open(&path)
            .map_err(|e| e.to_string())
            .and_then(|r| r.with_guessed_format().map_err(|e| e.to_string()))
            .and_then(|r| r.decode().map_err(|e| e.to_string()))
        {
            Ok(img) => {
                set.pixels.extend(transform::prepare(&img, size, mode));
                set.names.push(relative_name(dir, &path));
                report.loaded += 1;
            }
            Err(reason) => {
                bar.suspend(|| tracing::warn!("skipping unreadable image {}: {reason}", path.display()));
                report.skipped.push((path, reason));
            }
        }
    }
    bar.finish_and_clear();
    if report.loaded == 0 {
        return Err(DataError::NoImages {
            dir: dir.to_path_buf(),
            skipped: report.skipped.len(),
        });
    }
    tracing::debug!("loaded {} images from {}", report.loaded, dir.display());
    Ok((set, report))
}

/// Appends the files under `dir` whose extension is in [`EXTENSIONS`], descending into sub-folders
/// (symbolic links to folders are not followed, so there can be no cycles).
fn collect_images(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        if entry.file_type().map_err(io)?.is_dir() {
            collect_images(&path, out)?;
        } else if has_image_extension(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn relative_name(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
