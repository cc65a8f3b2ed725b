//! The database: connection settings, the table, and its version.

use std::path::Path;

use rusqlite::functions::FunctionFlags;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, Row};

use super::error::{GalleryError, Result};
use super::{ImageId, ImageMeta, Record};

/// The schema this code reads and writes, kept in `PRAGMA user_version` (0: a new file).
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// Version 1. `STRICT` makes SQLite refuse values of the wrong type instead of storing them.
/// `AUTOINCREMENT` keeps ids of deleted images from being given to new ones. `seed` holds the
/// u64 seed's bits as an i64 (SQLite integers are signed).
const CREATE_V1: &str = "
CREATE TABLE images (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ms      INTEGER NOT NULL,
    model_name      TEXT    NOT NULL,
    model_hash      TEXT    NOT NULL,
    prompt          TEXT    NOT NULL,
    negative_prompt TEXT    NOT NULL,
    sampler         TEXT    NOT NULL,
    steps           INTEGER NOT NULL,
    seed            INTEGER NOT NULL,
    guidance        REAL    NOT NULL,
    width           INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    recipe_json     TEXT    NOT NULL,
    png_size        INTEGER NOT NULL,
    png_sha256      TEXT    NOT NULL
) STRICT;
CREATE INDEX images_by_model ON images (model_name, id);
PRAGMA user_version = 1;
";

/// The columns of a `Record`, in the order `record_from_row` reads them.
pub(crate) const COLUMNS: &str = "id, created_ms, model_name, model_hash, prompt, negative_prompt, \
     sampler, steps, seed, guidance, width, height, recipe_json, png_size, png_sha256";

/// SQL name of the Unicode lower-casing function the prompt filter uses (SQLite's own
/// `lower` folds ASCII only).
pub(crate) const LOWER_FN: &str = "unicode_lower";

/// Opens the database with the settings the crash-consistency argument relies on:
/// - `journal_mode = WAL`: a commit appends to the write-ahead log; a crash mid-transaction
///   leaves a log tail that the next open ignores, so the transaction vanishes whole.
/// - `synchronous = FULL`: the log is fsynced at every commit, so an insert that returned
///   survives a power cut, not only a process crash. `NORMAL` would also keep the gallery
///   consistent (a commit lost to a power cut leaves an orphan file, which reconcile
///   removes) but could lose an image the client was told was saved; one fsync per image
///   is nothing next to the seconds a generation takes.
pub(crate) fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(GalleryError::Corrupt(format!("{} refused WAL mode (journal mode {mode})", path.display())));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.create_scalar_function(LOWER_FN, 1, FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC, |ctx| {
        Ok(ctx.get::<String>(0)?.to_lowercase())
    })?;
    Ok(conn)
}

/// The schema version stored in the file.
pub(crate) fn version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Creates the schema in a new file, or checks that an existing one is a version this code
/// knows.
pub(crate) fn ensure(conn: &mut Connection, found: i64) -> Result<()> {
    match found {
        0 => {
            let tx = conn.transaction()?;
            tx.execute_batch(CREATE_V1)?;
            Ok(tx.commit()?)
        }
        SCHEMA_VERSION => Ok(()),
        newer => Err(GalleryError::Corrupt(format!(
            "the database has schema version {newer}; this program knows version {SCHEMA_VERSION} (is it older than the one that wrote it?)"
        ))),
    }
}

/// Reads a row selected with `COLUMNS`.
pub(crate) fn record_from_row(row: &Row<'_>) -> rusqlite::Result<Record> {
    Ok(Record {
        id: row.get(0)?,
        created_ms: row.get(1)?,
        meta: ImageMeta {
            model_name: row.get(2)?,
            model_hash: row.get(3)?,
            prompt: row.get(4)?,
            negative_prompt: row.get(5)?,
            sampler: row.get(6)?,
            steps: row.get(7)?,
            seed: row.get::<_, i64>(8)?.cast_unsigned(),
            guidance: row.get(9)?,
            width: row.get(10)?,
            height: row.get(11)?,
            recipe_json: row.get(12)?,
        },
        png_size: row.get(13)?,
        png_sha256: row.get(14)?,
    })
}

impl ToSql for ImageId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.get().into())
    }
}

impl FromSql for ImageId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        ImageId::try_from(i64::column_result(value)?).map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}
