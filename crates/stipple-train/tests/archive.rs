//! Uploaded data archives: what a data folder holds is unpacked with its sub-folders, the
//! rest left out; hostile archives (paths out of the folder, links, bombs, too many
//! entries, not a zip) are refused and leave nothing behind.

use std::io::{Cursor, Write};
use std::path::Path;

use stipple_train::data::{load_folder, unpack_data_archive, ArchiveError, ArchiveLimits};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

fn png() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(4, 4, image::Rgb([200, 10, 10]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A zip of `(name, bytes)` files, deflated.
fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, bytes) in files {
        w.start_file(*name, opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Everything under `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if p.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = vec![];
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn images_and_labels_are_unpacked_with_their_folders_and_the_rest_left_out() {
    let root = tempfile::tempdir().unwrap();
    let png = png();
    let bytes = zip_of(&[
        ("a.png", &png),
        ("cats/b.PNG", &png),
        ("labels.csv", b"file,caption\na.png,red\ncats/b.PNG,cat\n"),
        ("readme.txt", b"hello"),
        ("__MACOSX/._a.png", b"\x00\x05\x16\x07"),
        (".hidden.png", &png),
        ("fake.png", b"not a picture"),
    ]);
    let dest = root.path().join("upload");
    let got = unpack_data_archive(&bytes, &dest, &ArchiveLimits::default()).unwrap();
    assert_eq!(got.images, 2);
    assert_eq!(got.skipped, vec!["readme.txt", "__MACOSX/._a.png", ".hidden.png", "fake.png"]);
    assert_eq!(listing(&dest), vec!["a.png", "cats", "cats/b.PNG", "labels.csv"]);
    assert_eq!(listing(root.path()), vec!["upload", "upload/a.png", "upload/cats", "upload/cats/b.PNG", "upload/labels.csv"], "no temporary folder left");
    let (set, report) = load_folder(&dest, 4, stipple_train::data::ColorMode::Rgb, false).unwrap();
    assert_eq!((report.loaded, set.names.len()), (2, 2));
    // The same name again: refused, the first folder untouched.
    let err = unpack_data_archive(&bytes, &dest, &ArchiveLimits::default()).unwrap_err();
    assert!(matches!(err, ArchiveError::Exists(_)), "{err}");
    assert_eq!(listing(&dest).len(), 4);
}

/// A refused archive leaves the parent folder as it was.
fn refused(bytes: &[u8], limits: &ArchiveLimits) -> ArchiveError {
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().join("data").join("upload");
    std::fs::create_dir(root.path().join("data")).unwrap();
    let err = unpack_data_archive(bytes, &dest, limits).unwrap_err();
    assert!(listing(root.path()) == vec!["data"], "left behind: {:?}", listing(root.path()));
    err
}

#[test]
fn paths_out_of_the_folder_and_links_are_refused() {
    let png = png();
    for name in ["../evil.png", "ok/../../evil.png", "/etc/evil.png", "a/../b.png", "c:\\evil.png"] {
        let err = refused(&zip_of(&[("good.png", &png), (name, &png)]), &ArchiveLimits::default());
        assert!(matches!(err, ArchiveError::UnsafePath { .. }), "{name}: {err}");
        assert!(err.to_string().contains("outside the data folder"), "{err}");
    }
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("good.png", SimpleFileOptions::default()).unwrap();
    w.write_all(&png).unwrap();
    w.add_symlink("link.png", "/etc/passwd", SimpleFileOptions::default()).unwrap();
    let err = refused(&w.finish().unwrap().into_inner(), &ArchiveLimits::default());
    assert!(matches!(err, ArchiveError::Link { .. }), "{err}");
}

#[test]
fn bombs_and_floods_are_stopped_by_what_is_unpacked() {
    let png = png();
    // 4 MiB of zeros deflate to a few KiB: the per-file limit holds on the unpacked bytes.
    let mut bomb = png.clone();
    bomb.resize(4 << 20, 0);
    let small = ArchiveLimits { max_entries: 100, max_file_bytes: 1 << 20, max_total_bytes: 3 << 20 };
    let bytes = zip_of(&[("bomb.png", &bomb)]);
    assert!(bytes.len() < 64 << 10, "the bomb is small packed: {}", bytes.len());
    let err = refused(&bytes, &small);
    assert!(matches!(err, ArchiveError::FileTooLarge { .. }) && err.is_too_large(), "{err}");
    // Each file under the per-file limit, together over the total.
    let mut part = png.clone();
    part.resize(900 << 10, 0);
    let names: Vec<String> = (0..4).map(|i| format!("p{i}.png")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), part.as_slice())).collect();
    let err = refused(&zip_of(&files), &small);
    assert!(matches!(err, ArchiveError::TooLarge { .. }), "{err}");
    // Too many entries.
    let names: Vec<String> = (0..101).map(|i| format!("{i}.png")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), png.as_slice())).collect();
    let err = refused(&zip_of(&files), &small);
    assert!(matches!(err, ArchiveError::TooManyEntries { entries: 101, max: 100 }), "{err}");
}

#[test]
fn not_a_zip_or_no_image_is_a_clear_error() {
    let err = refused(b"PK\x03\x04 this is not really a zip", &ArchiveLimits::default());
    assert!(matches!(err, ArchiveError::NotZip(_)) && !err.is_too_large(), "{err}");
    let err = refused(&png(), &ArchiveLimits::default());
    assert!(matches!(err, ArchiveError::NotZip(_)), "{err}");
    let err = refused(&zip_of(&[("notes.txt", b"x"), ("fake.jpg", b"not a jpeg")]), &ArchiveLimits::default());
    assert!(matches!(err, ArchiveError::NoImages { skipped: 2 }), "{err}");
    assert!(err.to_string().contains(".png"), "{err}");
}
