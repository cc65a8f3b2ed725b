//! The gallery on a real SQLite file in a temporary folder.

use std::fs;
use std::path::Path;

use stipple_server::gallery::{Gallery, GalleryError, ImageId, ImageMeta, ListFilter, DATABASE_FILE, IMAGES_DIR, MAX_LIMIT};

fn meta(prompt: &str, model: &str, seed: u64) -> ImageMeta {
    ImageMeta {
        model_name: model.into(),
        model_hash: format!("{:064x}", model.len()),
        prompt: prompt.into(),
        negative_prompt: "blurry".into(),
        sampler: "dpmpp_2m".into(),
        steps: 20,
        seed,
        guidance: 7.5,
        width: 64,
        height: 48,
        recipe_json: format!(r#"{{"seed":{seed}}}"#),
    }
}

/// Bytes that differ per seed (the gallery does not parse them).
fn png(seed: u64) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend(seed.to_le_bytes().iter().cycle().take(100 + (seed % 50) as usize));
    bytes
}

fn open(dir: &Path) -> Gallery {
    let (gallery, report) = Gallery::open(dir).unwrap();
    assert!(report.is_clean(), "unexpected repair: {report:?}");
    gallery
}

fn ids(gallery: &Gallery, filter: &ListFilter) -> Vec<i64> {
    gallery.list(filter).unwrap().records.iter().map(|r| r.id.get()).collect()
}

fn id(n: i64) -> ImageId {
    ImageId::try_from(n).unwrap()
}

#[test]
fn gallery_is_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Gallery>();
}

#[test]
fn insert_get_read_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = open(dir.path());
    let m = meta("a red fox", "emoji16", u64::MAX);
    let record = gallery.insert(&m, &png(1)).unwrap();
    assert_eq!(record.meta, m);
    assert_eq!(record.png_size, png(1).len() as u64);
    assert_eq!(record.png_sha256.len(), 64);
    assert!(record.created_ms > 1_600_000_000_000, "created_ms {} is not a recent UTC time", record.created_ms);
    assert_eq!(gallery.get(record.id).unwrap(), record);
    assert_eq!(gallery.read_png(record.id).unwrap(), png(1));
    assert_eq!(fs::read(gallery.png_path(record.id).unwrap()).unwrap(), png(1));
    assert_eq!(gallery.count().unwrap(), 1);
    drop(gallery);

    // Everything, the u64 seed above i64::MAX included, survives a reopen.
    let gallery = open(dir.path());
    assert_eq!(gallery.get(record.id).unwrap(), record);
    assert_eq!(gallery.read_png(record.id).unwrap(), png(1));
}

#[test]
fn unknown_ids_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = open(dir.path());
    assert!(matches!(gallery.get(id(3)), Err(GalleryError::NotFound(i)) if i == id(3)));
    assert!(matches!(gallery.png_path(id(3)), Err(GalleryError::NotFound(_))));
    assert!(matches!(gallery.read_png(id(3)), Err(GalleryError::NotFound(_))));
    assert!(matches!(gallery.delete(id(3)), Err(GalleryError::NotFound(_))));
}

#[test]
fn delete_removes_row_and_file_and_ids_are_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = open(dir.path());
    let a = gallery.insert(&meta("a", "m", 1), &png(1)).unwrap();
    let b = gallery.insert(&meta("b", "m", 2), &png(2)).unwrap();
    let path = gallery.png_path(b.id).unwrap();
    gallery.delete(b.id).unwrap();
    assert!(!path.exists());
    assert!(matches!(gallery.get(b.id), Err(GalleryError::NotFound(_))));
    assert!(matches!(gallery.delete(b.id), Err(GalleryError::NotFound(_))));
    assert_eq!(gallery.count().unwrap(), 1);
    let c = gallery.insert(&meta("c", "m", 3), &png(3)).unwrap();
    assert!(c.id > b.id, "id {} of a deleted image was given again", b.id);
    assert_eq!(gallery.read_png(a.id).unwrap(), png(1));
}

#[test]
fn list_is_newest_first_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = open(dir.path());
    let prompts = [("A Red Fox", "alpha"), ("blue whale", "beta"), ("red panda", "alpha"), ("ÉCLAIR rouge", "beta"), ("fox den", "beta")];
    for (i, (prompt, model)) in prompts.iter().enumerate() {
        gallery.insert(&meta(prompt, model, i as u64), &png(i as u64)).unwrap();
    }
    let all = ListFilter::default();
    assert_eq!(ids(&gallery, &all), [5, 4, 3, 2, 1]);
    let prompt = |p: &str| ListFilter { prompt: Some(p.into()), ..ListFilter::default() };
    assert_eq!(ids(&gallery, &prompt("RED")), [3, 1]);
    assert_eq!(ids(&gallery, &prompt("fox")), [5, 1]);
    // Lower-casing beyond ASCII, on both sides.
    assert_eq!(ids(&gallery, &prompt("éclair")), [4]);
    assert_eq!(ids(&gallery, &prompt("%")), Vec::<i64>::new());
    assert_eq!(ids(&gallery, &prompt("")), [5, 4, 3, 2, 1]);
    let model = ListFilter { model: Some("alpha".into()), ..ListFilter::default() };
    assert_eq!(ids(&gallery, &model), [3, 1]);
    let both = ListFilter { model: Some("beta".into()), prompt: Some("FOX".into()), ..ListFilter::default() };
    assert_eq!(ids(&gallery, &both), [5]);
    let none = ListFilter { model: Some("alph".into()), ..ListFilter::default() };
    assert_eq!(ids(&gallery, &none), Vec::<i64>::new());
}

#[test]
fn pages_follow_the_cursor_and_ignore_new_inserts() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = open(dir.path());
    for i in 0..7 {
        gallery.insert(&meta("p", "m", i), &png(i)).unwrap();
    }
    let mut filter = ListFilter { limit: Some(3), ..ListFilter::default() };
    let first = gallery.list(&filter).unwrap();
    assert_eq!(first.records.iter().map(|r| r.id.get()).collect::<Vec<_>>(), [7, 6, 5]);
    assert_eq!(first.next_before, Some(id(5)));

    // Inserts between pages do not shift the pages still to come.
    gallery.insert(&meta("p", "m", 8), &png(8)).unwrap();
    filter.before = first.next_before;
    let second = gallery.list(&filter).unwrap();
    assert_eq!(second.records.iter().map(|r| r.id.get()).collect::<Vec<_>>(), [4, 3, 2]);
    filter.before = second.next_before;
    let last = gallery.list(&filter).unwrap();
    assert_eq!(last.records.iter().map(|r| r.id.get()).collect::<Vec<_>>(), [1]);
    assert_eq!(last.next_before, None);

    // A page that ends exactly at the last image has no next cursor.
    let exact = ListFilter { limit: Some(8), ..ListFilter::default() };
    assert_eq!(gallery.list(&exact).unwrap().next_before, None);
}

#[test]
fn page_size_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let total = MAX_LIMIT as i64 + 2;
    // One image through the gallery, then copies of its row and file made directly (an
    // insert through the gallery waits for three fsyncs; 500 of them would take seconds).
    drop(open(dir.path()).insert(&meta("p", "m", 1), &png(1)).unwrap());
    let mut conn = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    conn.execute_batch("CREATE TEMP TABLE one AS SELECT * FROM images; UPDATE one SET id = NULL;").unwrap();
    let tx = conn.transaction().unwrap();
    for n in 2..=total {
        tx.execute("INSERT INTO images SELECT * FROM one", []).unwrap();
        fs::write(dir.path().join(IMAGES_DIR).join(format!("{n}.png")), png(1)).unwrap();
    }
    tx.commit().unwrap();
    drop(conn);

    let gallery = open(dir.path());
    assert_eq!(gallery.count().unwrap(), total as u64);
    let huge = ListFilter { limit: Some(u32::MAX), ..ListFilter::default() };
    let page = gallery.list(&huge).unwrap();
    assert_eq!(page.records.len(), MAX_LIMIT as usize);
    assert_eq!(page.records[0].id, id(total));
    assert_eq!(page.next_before, Some(id(total - MAX_LIMIT as i64 + 1)));
    assert_eq!(gallery.list(&ListFilter::default()).unwrap().records.len(), 50);
}

#[test]
fn reconcile_removes_orphans_temps_and_rows_without_files() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join(IMAGES_DIR);
    let gallery = open(dir.path());
    let kept = gallery.insert(&meta("kept", "m", 1), &png(1)).unwrap();
    let lost = gallery.insert(&meta("lost", "m", 2), &png(2)).unwrap();
    drop(gallery);
    fs::remove_file(images.join(format!("{}.png", lost.id))).unwrap();
    fs::write(images.join("99.png"), png(99)).unwrap();
    fs::write(images.join(".tmp-100.png"), b"half").unwrap();
    fs::write(images.join("notes.txt"), b"mine").unwrap();

    let (gallery, report) = Gallery::open(dir.path()).unwrap();
    assert_eq!(report.removed_rows, [lost.id]);
    assert_eq!(report.removed_orphan_files, [id(99)]);
    assert_eq!(report.removed_temp_files, [images.join(".tmp-100.png")]);
    assert_eq!(report.unknown_entries, [images.join("notes.txt")]);
    assert!(!images.join("99.png").exists() && !images.join(".tmp-100.png").exists());
    assert!(images.join("notes.txt").exists(), "a file that is not the gallery's was removed");
    assert!(matches!(gallery.get(lost.id), Err(GalleryError::NotFound(_))));
    assert_eq!(gallery.read_png(kept.id).unwrap(), png(1));
    drop(gallery);

    // The repair is complete: the next open has only the unknown file to mention.
    let (_gallery, again) = Gallery::open(dir.path()).unwrap();
    assert!(again.removed_rows.is_empty() && again.removed_orphan_files.is_empty() && again.removed_temp_files.is_empty());
}

#[test]
fn a_second_open_of_the_same_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = open(dir.path());
    assert!(matches!(Gallery::open(dir.path()), Err(GalleryError::InUse { .. })));
    drop(gallery);
    open(dir.path());
}

#[test]
fn a_new_database_beside_old_images_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = open(dir.path());
    gallery.insert(&meta("p", "m", 1), &png(1)).unwrap();
    drop(gallery);
    for name in [DATABASE_FILE.to_owned(), format!("{DATABASE_FILE}-wal"), format!("{DATABASE_FILE}-shm")] {
        let _ = fs::remove_file(dir.path().join(name));
    }
    let err = Gallery::open(dir.path()).unwrap_err();
    assert!(matches!(err, GalleryError::Corrupt(_)), "{err}");
    assert!(dir.path().join(IMAGES_DIR).join("1.png").exists());
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let conn = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    conn.pragma_update(None, "user_version", 2).unwrap();
    drop(conn);
    let err = Gallery::open(dir.path()).unwrap_err();
    assert!(matches!(&err, GalleryError::Corrupt(m) if m.contains("version 2")), "{err}");
}

#[test]
fn altered_png_bytes_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = open(dir.path());
    let record = gallery.insert(&meta("p", "m", 1), &png(1)).unwrap();
    let mut bytes = png(1);
    *bytes.last_mut().unwrap() ^= 1;
    fs::write(gallery.png_path(record.id).unwrap(), bytes).unwrap();
    assert!(matches!(gallery.read_png(record.id), Err(GalleryError::Corrupt(_))));
}

#[test]
fn nan_guidance_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = open(dir.path());
    let bad = ImageMeta { guidance: f64::NAN, ..meta("p", "m", 1) };
    assert!(matches!(gallery.insert(&bad, &png(1)), Err(GalleryError::Db(_))));
    // Nothing of the failed insert stays behind.
    assert_eq!(gallery.count().unwrap(), 0);
    assert_eq!(fs::read_dir(dir.path().join(IMAGES_DIR)).unwrap().count(), 0);
}

#[test]
fn concurrent_inserts_and_listings() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = open(dir.path());
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let gallery = &gallery;
            s.spawn(move || {
                for i in 0..10 {
                    gallery.insert(&meta("p", "m", t * 100 + i), &png(t * 100 + i)).unwrap();
                    let page = gallery.list(&ListFilter::default()).unwrap();
                    assert!(page.records.windows(2).all(|w| w[0].id > w[1].id));
                }
            });
        }
    });
    assert_eq!(gallery.count().unwrap(), 40);
    for record in gallery.list(&ListFilter::default()).unwrap().records {
        assert_eq!(gallery.read_png(record.id).unwrap(), png(record.meta.seed));
    }
}
