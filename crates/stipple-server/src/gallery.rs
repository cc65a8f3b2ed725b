//! The gallery: generated images and their settings, kept across restarts and crashes.
//!
//! A data folder holds `gallery.sqlite3` (one row per image, SQLite in WAL mode with
//! `synchronous = FULL`, the schema version in `PRAGMA user_version`), `images/<id>.png`
//! (the PNG bytes, named by the row's id) and `gallery.lock` (an exclusive lock held while
//! a `Gallery` is open, so one process at a time owns the folder). No name a client gives
//! is ever used as a path: ids are integers parsed strictly and file names are made from them.
//!
//! # Crash consistency
//!
//! The invariant: after `Gallery::open` returns, every row has its file holding exactly the
//! bytes inserted, every `<id>.png` has its row, and no temporary file is left. A process
//! crash (`kill -9`) or power cut may strike between any two steps below.
//!
//! **Insert** (`Gallery::insert`), under the connection's mutex:
//! 1. `BEGIN IMMEDIATE`; `INSERT` the row, which assigns the id. The row is not committed:
//!    a crash here or up to step 5 loses it (SQLite ignores an uncommitted WAL tail).
//! 2. Write the bytes to `images/.tmp-<id>.png` and fsync it. Crash: a temporary file and
//!    no row. `open` removes every `.tmp-` file.
//! 3. Rename it to `images/<id>.png` (atomic: the name holds all the bytes or does not
//!    exist). Crash: an `<id>.png` without a row, an *orphan*; `open` removes files whose id
//!    has no row.
//! 4. Fsync `images/`, so the rename survives a power cut. Crash: as after 3.
//! 5. `COMMIT`, which fsyncs the WAL. Crash before it returns: as after 3, or, if the commit
//!    reached the disk, both row and file exist, which is the insert done. After it: done.
//!
//! A row is thus committed only once its file is durable, and the only debris a crash can
//! leave is a file, which `open` removes; the rolled-back id may be given out again, to an
//! image whose file then replaces the orphan by rename.
//!
//! **Delete** (`Gallery::delete`): 1. delete the row and commit; 2. remove `<id>.png`;
//! 3. fsync `images/`. A crash after 1 (or a power cut that loses the removal) leaves an
//! orphan file, which `open` removes. The row goes first because an image listed but
//! missing would be served as an error, while a file without a row is invisible.
//!
//! **Open** (`Gallery::open`) takes the lock (so no insert or delete of another process is
//! in flight), creates or checks the schema, fsyncs the data folder (whose `images/` entry
//! may be new; SQLite syncs the entries of its own files), then reconciles: removes temporary files,
//! orphan files, and rows whose file is missing (which no crash of this code produces, but
//! a file removed by hand or lost by the file system does), fsyncs the folder and logs what
//! it did. Every repair is idempotent, so a crash during `open` is repaired by the next.
//! A new, empty database beside existing image files (a lost or replaced database file) is
//! refused instead of treated as "all files are orphans".

mod error;
mod files;
mod reconcile;
mod record;
mod schema;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};

pub use error::GalleryError;
use error::Result;
pub use reconcile::ReconcileReport;
pub use record::{ImageId, ImageMeta, ListFilter, Page, ParseImageIdError, Record, DEFAULT_LIMIT, MAX_LIMIT};

/// Name of the database file in the data folder.
pub const DATABASE_FILE: &str = "gallery.sqlite3";
/// Name of the images folder in the data folder.
pub const IMAGES_DIR: &str = "images";
/// Name of the lock file in the data folder.
pub const LOCK_FILE: &str = "gallery.lock";

/// An open gallery. Synchronous and `Send + Sync`: share it in an `Arc` and call it from
/// `spawn_blocking` (an insert waits for fsyncs).
#[derive(Debug)]
pub struct Gallery {
    images: PathBuf,
    conn: Mutex<Connection>,
    /// Holds the exclusive lock on `gallery.lock` until the gallery is dropped.
    _lock: File,
}

impl Gallery {
    /// Opens (creating if needed) the gallery in `data_dir`, repairs what a crash left, and
    /// returns the gallery with the report of the repair.
    pub fn open(data_dir: &Path) -> Result<(Gallery, ReconcileReport)> {
        let images = data_dir.join(IMAGES_DIR);
        fs::create_dir_all(&images).map_err(GalleryError::io(&images))?;
        let lock = lock_folder(&data_dir.join(LOCK_FILE))?;
        let mut conn = schema::connect(&data_dir.join(DATABASE_FILE))?;
        let found = schema::version(&conn)?;
        if found == 0 {
            let existing = reconcile::scan(&images)?.images.len();
            if existing > 0 {
                return Err(GalleryError::Corrupt(format!(
                    "{} holds {existing} images but {DATABASE_FILE} is new; restore the database or move the images away",
                    images.display()
                )));
            }
        }
        schema::ensure(&mut conn, found)?;
        // The entries of `images/` and the lock file in a folder made just now.
        files::sync_dir(data_dir)?;
        let report = reconcile::reconcile(&mut conn, &images)?;
        Ok((Gallery { images, conn: Mutex::new(conn), _lock: lock }, report))
    }

    /// Stores an image and its settings; returns its record. Crash-safe (see the module
    /// documentation): the row is committed only after the file is durable.
    pub fn insert(&self, meta: &ImageMeta, png: &[u8]) -> Result<Record> {
        let png_sha256 = sha256_hex(png);
        let png_size = png.len() as u64;
        let created_ms = now_ms();
        let mut conn = self.lock();
        // IMMEDIATE: take the write lock now, not at the first write.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO images (created_ms, model_name, model_hash, prompt, negative_prompt, sampler, steps, seed, \
             guidance, width, height, recipe_json, png_size, png_sha256) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                created_ms,
                meta.model_name,
                meta.model_hash,
                meta.prompt,
                meta.negative_prompt,
                meta.sampler,
                meta.steps,
                meta.seed.cast_signed(),
                meta.guidance,
                meta.width,
                meta.height,
                meta.recipe_json,
                png_size,
                png_sha256,
            ],
        )?;
        let id = ImageId::try_from(tx.last_insert_rowid())
            .map_err(|e| GalleryError::Corrupt(format!("SQLite assigned a non-positive id: {e}")))?;
        // On error the transaction rolls back when `tx` drops.
        files::write_image(&self.images, id, png)?;
        if let Err(e) = tx.commit() {
            let _ = files::remove_if_present(&files::image_path(&self.images, id));
            return Err(e.into());
        }
        Ok(Record { id, created_ms, meta: meta.clone(), png_size, png_sha256 })
    }

    /// A page of records, newest first, matching `filter`.
    pub fn list(&self, filter: &ListFilter) -> Result<Page> {
        let mut clauses = Vec::new();
        let mut values = Vec::new();
        if let Some(before) = filter.before {
            clauses.push("id < ?".to_owned());
            values.push(Value::Integer(before.get()));
        }
        if let Some(model) = &filter.model {
            clauses.push("model_name = ?".to_owned());
            values.push(Value::Text(model.clone()));
        }
        if let Some(prompt) = filter.prompt.as_deref().filter(|p| !p.is_empty()) {
            // Case-insensitive substring: both sides lower-cased by Rust's `to_lowercase`.
            clauses.push(format!("instr({}(prompt), ?) > 0", schema::LOWER_FN));
            values.push(Value::Text(prompt.to_lowercase()));
        }
        let size = filter.page_size();
        values.push(Value::Integer(i64::from(size) + 1));
        let condition = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        let sql = format!("SELECT {} FROM images {condition} ORDER BY id DESC LIMIT ?", schema::COLUMNS);
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut records =
            stmt.query_map(rusqlite::params_from_iter(values), schema::record_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        let next_before = if records.len() > size as usize {
            records.truncate(size as usize);
            records.last().map(|r| r.id)
        } else {
            None
        };
        Ok(Page { records, next_before })
    }

    /// The record of image `id`.
    pub fn get(&self, id: ImageId) -> Result<Record> {
        let conn = self.lock();
        conn.query_row(&format!("SELECT {} FROM images WHERE id = ?1", schema::COLUMNS), [id], schema::record_from_row)
            .optional()?
            .ok_or(GalleryError::NotFound(id))
    }

    /// The path of image `id`'s PNG file (for serving it as a file); `NotFound` if there is
    /// no such image. The file may vanish if the image is deleted meanwhile.
    pub fn png_path(&self, id: ImageId) -> Result<PathBuf> {
        self.get(id)?;
        Ok(files::image_path(&self.images, id))
    }

    /// The PNG bytes of image `id`, checked against the recorded size and hash (`Corrupt`
    /// if they differ).
    pub fn read_png(&self, id: ImageId) -> Result<Vec<u8>> {
        let record = self.get(id)?;
        let path = files::image_path(&self.images, id);
        let bytes = fs::read(&path).map_err(GalleryError::io(&path))?;
        if bytes.len() as u64 != record.png_size || sha256_hex(&bytes) != record.png_sha256 {
            return Err(GalleryError::Corrupt(format!(
                "{} holds {} bytes that differ from the {} recorded for image {id}",
                path.display(),
                bytes.len(),
                record.png_size
            )));
        }
        Ok(bytes)
    }

    /// Deletes image `id`: its row (committed), then its file. `NotFound` if there is no such
    /// image. A failure to remove the file is logged, not returned: the image is already gone
    /// from the gallery, and the next `open` removes the file.
    pub fn delete(&self, id: ImageId) -> Result<()> {
        let conn = self.lock();
        if conn.execute("DELETE FROM images WHERE id = ?1", [id])? == 0 {
            return Err(GalleryError::NotFound(id));
        }
        let removed = files::remove_if_present(&files::image_path(&self.images, id)).and_then(|()| files::sync_dir(&self.images));
        if let Err(e) = removed {
            tracing::warn!("gallery: image {id} deleted, but its file stays until the next open: {e}");
        }
        Ok(())
    }

    /// The number of images.
    pub fn count(&self) -> Result<u64> {
        Ok(self.lock().query_row("SELECT count(*) FROM images", [], |r| r.get(0))?)
    }

    /// The connection. A panic while it was held cannot leave a transaction open (a dropped
    /// `Transaction` rolls back), so a poisoned lock is safe to take over.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Takes the data folder's exclusive lock (an advisory `flock` on Unix), released by the
/// kernel when the file is closed or the process dies.
fn lock_folder(path: &Path) -> Result<File> {
    let file = File::options().create(true).truncate(false).write(true).open(path).map_err(GalleryError::io(path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(GalleryError::InUse { path: path.to_owned() }),
        Err(fs::TryLockError::Error(source)) => Err(GalleryError::Io { path: path.to_owned(), source }),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
