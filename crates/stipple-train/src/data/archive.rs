//! A data set uploaded as one zip archive, unpacked into a new data folder: only what a data
//! folder holds is written (images and a `labels.csv`), nothing outside the folder, within
//! limits on files and bytes that are checked on the bytes actually unpacked, not on what
//! the archive's headers claim (a "zip bomb" may lie). The folder appears whole or not at
//! all: the archive is unpacked beside it under a temporary name, then renamed.

use std::fs;
use std::io::{Cursor, Read};
use std::path::{Component, Path, PathBuf};

use super::{EXTENSIONS, LABELS_FILE};

/// How much one archive may unpack to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Most entries (files and folders) in the archive.
    pub max_entries: usize,
    /// Most bytes of one unpacked file.
    pub max_file_bytes: u64,
    /// Most bytes of all unpacked files together.
    pub max_total_bytes: u64,
}

impl Default for ArchiveLimits {
    /// 20 000 entries, 32 MiB per file, 1 GiB in all: far above an emoji-sized data set.
    fn default() -> Self {
        Self { max_entries: 20_000, max_file_bytes: 32 << 20, max_total_bytes: 1 << 30 }
    }
}

/// What an unpacked archive held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unpacked {
    /// Images written.
    pub images: usize,
    /// Entries left out (hidden files, other kinds of file), by their names in the archive.
    pub skipped: Vec<String>,
}

/// Why an archive was not unpacked. Every case but [`ArchiveError::Io`] is the archive's
/// fault (bad input).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("not a readable zip archive: {0}")]
    NotZip(String),
    #[error("entry {name:?} names a place outside the data folder (an absolute path or '..'); entries must be relative paths inside it")]
    UnsafePath { name: String },
    #[error("entry {name:?} is a symbolic link; the archive may hold only images, folders and {LABELS_FILE}")]
    Link { name: String },
    #[error("entry {name:?} appears twice, or as both a file and a folder")]
    Clash { name: String },
    #[error("the archive has {entries} entries; at most {max} are accepted")]
    TooManyEntries { entries: usize, max: usize },
    #[error("entry {name:?} unpacks to more than {max} bytes")]
    FileTooLarge { name: String, max: u64 },
    #[error("the archive unpacks to more than {max} bytes")]
    TooLarge { max: u64 },
    #[error("the archive holds no image (.{}); {skipped} entries were left out", EXTENSIONS.join(", ."))]
    NoImages { skipped: usize },
    #[error("a data folder named {0:?} exists; choose another name")]
    Exists(String),
    #[error("could not write {}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl ArchiveError {
    /// Whether the archive broke a size or count limit (a "too large" answer).
    pub fn is_too_large(&self) -> bool {
        matches!(self, ArchiveError::TooManyEntries { .. } | ArchiveError::FileTooLarge { .. } | ArchiveError::TooLarge { .. })
    }
}

/// Unpacks the zip archive `bytes` into the new folder `dest` (its parent must exist):
/// images (by extension, [`EXTENSIONS`], and by content: PNG, JPEG or WebP) keep their
/// relative paths, so sub-folders still name classes; a `labels.csv` at the top is kept;
/// hidden entries (a name part starting with '.', or `__MACOSX`) and other files are left
/// out and listed. Absolute paths, '..' and links are refused, as is an archive with no
/// image; on any error nothing is left behind.
pub fn unpack_data_archive(bytes: &[u8], dest: &Path, limits: &ArchiveLimits) -> Result<Unpacked, ArchiveError> {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if dest.exists() {
        return Err(ArchiveError::Exists(name));
    }
    let parent = dest.parent().unwrap_or(Path::new("."));
    let temp = parent.join(format!(".upload-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&temp);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ArchiveError::Io { path, source }
    };
    fs::create_dir(&temp).map_err(io(&temp))?;
    let unpacked = unpack_into(bytes, &temp, limits).and_then(|u| {
        if dest.exists() {
            return Err(ArchiveError::Exists(name.clone()));
        }
        fs::rename(&temp, dest).map_err(io(dest))?;
        Ok(u)
    });
    if unpacked.is_err() {
        let _ = fs::remove_dir_all(&temp);
    }
    unpacked
}

/// The archive's entries written under the fresh folder `root`.
fn unpack_into(bytes: &[u8], root: &Path, limits: &ArchiveLimits) -> Result<Unpacked, ArchiveError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| ArchiveError::NotZip(e.to_string()))?;
    if archive.len() > limits.max_entries {
        return Err(ArchiveError::TooManyEntries { entries: archive.len(), max: limits.max_entries });
    }
    let mut out = Unpacked { images: 0, skipped: vec![] };
    let mut total = 0u64;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| ArchiveError::NotZip(e.to_string()))?;
        let name = entry.name().unwrap_or_default().to_string();
        let Some(relative) = relative_path(&name) else {
            return Err(ArchiveError::UnsafePath { name });
        };
        if entry.is_symlink() {
            return Err(ArchiveError::Link { name });
        }
        if entry.is_dir() || relative.as_os_str().is_empty() {
            continue;
        }
        let kind = kind_of(&relative);
        if kind == Kind::Other {
            out.skipped.push(name);
            continue;
        }
        let mut data = Vec::new();
        (&mut entry)
            .take(limits.max_file_bytes + 1)
            .read_to_end(&mut data)
            .map_err(|e| ArchiveError::NotZip(format!("entry {name:?}: {e}")))?;
        if data.len() as u64 > limits.max_file_bytes {
            return Err(ArchiveError::FileTooLarge { name, max: limits.max_file_bytes });
        }
        total += data.len() as u64;
        if total > limits.max_total_bytes {
            return Err(ArchiveError::TooLarge { max: limits.max_total_bytes });
        }
        if kind == Kind::Image && !is_image(&data) {
            out.skipped.push(name);
            continue;
        }
        write_new(&root.join(&relative), &data, &name)?;
        if kind == Kind::Image {
            out.images += 1;
        }
    }
    if out.images == 0 {
        return Err(ArchiveError::NoImages { skipped: out.skipped.len() });
    }
    Ok(out)
}

/// `name` as a path of plain parts (`None` for an absolute path, a drive, or '..').
fn relative_path(name: &str) -> Option<PathBuf> {
    if name.contains('\0') || name.contains('\\') {
        return None;
    }
    let mut path = PathBuf::new();
    for part in Path::new(name).components() {
        match part {
            Component::Normal(p) => path.push(p),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(path)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Image,
    Labels,
    Other,
}

fn kind_of(path: &Path) -> Kind {
    let hidden = path.components().any(|c| c.as_os_str().to_str().is_none_or(|s| s.starts_with('.') || s == "__MACOSX"));
    if hidden {
        return Kind::Other;
    }
    if path == Path::new(LABELS_FILE) {
        return Kind::Labels;
    }
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if ext.is_some_and(|e| EXTENSIONS.contains(&e.as_str())) {
        Kind::Image
    } else {
        Kind::Other
    }
}

/// Whether `data` starts as a PNG, JPEG or WebP file does.
fn is_image(data: &[u8]) -> bool {
    matches!(image::guess_format(data), Ok(image::ImageFormat::Png | image::ImageFormat::Jpeg | image::ImageFormat::WebP))
}

/// Writes a file that must not exist yet, with its folders.
fn write_new(path: &Path, data: &[u8], name: &str) -> Result<(), ArchiveError> {
    use std::io::{ErrorKind, Write};
    let clash = |e: std::io::Error| match e.kind() {
        ErrorKind::AlreadyExists | ErrorKind::NotADirectory | ErrorKind::IsADirectory => ArchiveError::Clash { name: name.to_string() },
        _ => ArchiveError::Io { path: path.to_path_buf(), source: e },
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(clash)?;
    }
    let mut file = fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(clash)?;
    file.write_all(data).map_err(|source| ArchiveError::Io { path: path.to_path_buf(), source })
}
