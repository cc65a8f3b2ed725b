//! Repair at open: make the rows and the image files agree again after a crash.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde::Serialize;

use super::error::{GalleryError, Result};
use super::files::{self, Entry};
use super::ImageId;

/// What `Gallery::open` repaired. Each list is empty after a clean shutdown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Temporary files of writes that never reached their rename, removed.
    pub removed_temp_files: Vec<PathBuf>,
    /// Image files without a row (an insert that did not commit, or a delete that committed
    /// before its file was removed), removed.
    pub removed_orphan_files: Vec<ImageId>,
    /// Rows whose image file is missing (only possible when a file was removed by hand or
    /// the file system lost it), removed.
    pub removed_rows: Vec<ImageId>,
    /// Entries of the images folder that are not the gallery's; left in place.
    pub unknown_entries: Vec<PathBuf>,
}

impl ReconcileReport {
    /// Whether nothing needed repair.
    pub fn is_clean(&self) -> bool {
        self.removed_temp_files.is_empty()
            && self.removed_orphan_files.is_empty()
            && self.removed_rows.is_empty()
            && self.unknown_entries.is_empty()
    }
}

/// The entries of the images folder, sorted by kind.
pub(crate) struct Listing {
    pub images: BTreeSet<ImageId>,
    pub temps: Vec<PathBuf>,
    pub unknown: Vec<PathBuf>,
}

pub(crate) fn scan(images: &Path) -> Result<Listing> {
    let mut listing = Listing { images: BTreeSet::new(), temps: Vec::new(), unknown: Vec::new() };
    for entry in fs::read_dir(images).map_err(GalleryError::io(images))? {
        let entry = entry.map_err(GalleryError::io(images))?;
        let path = entry.path();
        let is_file = entry.file_type().map_err(GalleryError::io(&path))?.is_file();
        match entry.file_name().to_str().map(files::classify) {
            Some(Entry::Image(id)) if is_file => {
                listing.images.insert(id);
            }
            Some(Entry::Temp) if is_file => listing.temps.push(path),
            _ => listing.unknown.push(path),
        }
    }
    listing.temps.sort();
    listing.unknown.sort();
    Ok(listing)
}

/// Deletes rows without files, files without rows and temporary files; logs what it did.
/// Runs while the gallery's lock is held, so no insert or delete is in flight. Each step is
/// idempotent, so a crash during repair is repaired by the next open.
pub(crate) fn reconcile(conn: &mut Connection, images: &Path) -> Result<ReconcileReport> {
    let listing = scan(images)?;
    let rows: BTreeSet<ImageId> = {
        let mut stmt = conn.prepare("SELECT id FROM images")?;
        let ids = stmt.query_map([], |r| r.get::<_, ImageId>(0))?;
        ids.collect::<rusqlite::Result<_>>()?
    };
    let report = ReconcileReport {
        removed_rows: rows.difference(&listing.images).copied().collect(),
        removed_orphan_files: listing.images.difference(&rows).copied().collect(),
        removed_temp_files: listing.temps,
        unknown_entries: listing.unknown,
    };
    if !report.removed_rows.is_empty() {
        let tx = conn.transaction()?;
        for id in &report.removed_rows {
            tx.execute("DELETE FROM images WHERE id = ?1", [id])?;
        }
        tx.commit()?;
    }
    for id in &report.removed_orphan_files {
        files::remove_if_present(&files::image_path(images, *id))?;
    }
    for path in &report.removed_temp_files {
        files::remove_if_present(path)?;
    }
    if !report.removed_orphan_files.is_empty() || !report.removed_temp_files.is_empty() {
        files::sync_dir(images)?;
    }
    log(&report, images);
    Ok(report)
}

fn log(report: &ReconcileReport, images: &Path) {
    if !report.removed_rows.is_empty() {
        tracing::warn!("gallery: removed {} rows whose image file was missing: {:?}", report.removed_rows.len(), report.removed_rows);
    }
    if !report.removed_orphan_files.is_empty() {
        tracing::info!(
            "gallery: removed {} image files without a row (unfinished inserts or deletes): {:?}",
            report.removed_orphan_files.len(),
            report.removed_orphan_files
        );
    }
    if !report.removed_temp_files.is_empty() {
        tracing::info!("gallery: removed {} temporary files of unfinished writes", report.removed_temp_files.len());
    }
    if !report.unknown_entries.is_empty() {
        tracing::warn!("gallery: {} left {} entries that are not the gallery's: {:?}", images.display(), report.unknown_entries.len(), report.unknown_entries);
    }
}
