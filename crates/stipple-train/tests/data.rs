//! The image data set module: folder loading, transform, batching, the embedded default.

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage, Rgba, RgbaImage};
use stipple_train::data::{
    embedded_emoji, load_folder, ColorMode, DataError, ImageSet, EMBEDDED_EMOJI_COUNT,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// Value of channel `c` at (x, y) of image `i`.
fn px(set: &ImageSet, i: usize, c: usize, x: usize, y: usize) -> f32 {
    set.image(i)[(c * set.size + y) * set.size + x]
}

fn to_unit(v: u8) -> f32 {
    v as f32 / 255.0 * 2.0 - 1.0
}

#[test]
fn loads_the_emoji_fixture() {
    let dir = fixture("emoji16");
    let labels = std::fs::read_to_string(dir.join("labels.csv")).unwrap();
    let expected = labels.lines().skip(1).filter(|l| !l.is_empty()).count();
    let (set, report) = load_folder(&dir, 16, ColorMode::Rgb, false).unwrap();
    assert_eq!(set.len(), expected);
    assert_eq!(report.loaded, expected);
    assert!(report.skipped.is_empty());
    assert_eq!((set.size, set.channels), (16, 3));
    assert_eq!(set.pixels.len(), expected * 3 * 16 * 16);
    assert!(set.pixels.iter().all(|v| (-1.0..=1.0).contains(v)));
    // The icons are drawn on white: the top-left corner is white in most of them.
    let white = (0..set.len())
        .filter(|&i| (0..3).all(|c| px(&set, i, c, 0, 0) > 0.99))
        .count();
    assert!(
        white * 10 > expected * 9,
        "{white} of {expected} have a white corner"
    );
    assert!(set.names.windows(2).all(|w| w[0] < w[1]), "sorted names");
}

#[test]
fn resize_and_centre_crop_keep_the_middle() {
    let tmp = tempfile::tempdir().unwrap();
    // 60×20 in three vertical bands: red | green | blue; the centre 20×20 square is the green band.
    let img = RgbImage::from_fn(60, 20, |x, _| match x / 20 {
        0 => Rgb([255, 0, 0]),
        1 => Rgb([0, 255, 0]),
        _ => Rgb([0, 0, 255]),
    });
    img.save(tmp.path().join("bands.png")).unwrap();
    let (set, _) = load_folder(tmp.path(), 20, ColorMode::Rgb, false).unwrap();
    assert_eq!(set.image(0).len(), 3 * 20 * 20);
    for y in 0..20 {
        for x in 0..20 {
            assert_eq!(
                [0, 1, 2].map(|c| px(&set, 0, c, x, y)),
                [-1.0, 1.0, -1.0],
                "({x}, {y})"
            );
        }
    }

    // 40×20, left half black, right half white, resized to 10: shorter side 20 → 10, 20×10 wide,
    // the centre crop keeps columns 5..15, i.e. five black then five white (blurred at the seam).
    let img = RgbImage::from_fn(
        40,
        20,
        |x, _| if x < 20 { Rgb([0; 3]) } else { Rgb([255; 3]) },
    );
    img.save(tmp.path().join("bands.png")).unwrap();
    let (set, _) = load_folder(tmp.path(), 10, ColorMode::Grey, false).unwrap();
    assert_eq!((set.size, set.channels), (10, 1));
    for y in 0..10 {
        for x in 0..3 {
            assert!(
                px(&set, 0, 0, x, y) < -0.99,
                "({x}, {y}) = {}",
                px(&set, 0, 0, x, y)
            );
            assert!(px(&set, 0, 0, 9 - x, y) > 0.99, "({}, {y})", 9 - x);
        }
    }
}

#[test]
fn greyscale_has_one_channel_of_luma() {
    let tmp = tempfile::tempdir().unwrap();
    RgbImage::from_pixel(8, 8, Rgb([0, 255, 0]))
        .save(tmp.path().join("g.png"))
        .unwrap();
    let (set, _) = load_folder(tmp.path(), 8, ColorMode::Grey, false).unwrap();
    assert_eq!(set.channels, 1);
    assert_eq!(set.image(0).len(), 64);
    let expected = 0.7152 * 2.0 - 1.0;
    assert!(set.image(0).iter().all(|v| (v - expected).abs() < 1e-4));
}

#[test]
fn alpha_is_composited_on_white() {
    let tmp = tempfile::tempdir().unwrap();
    // Left half: transparent black; right half: half-transparent red.
    let img = RgbaImage::from_fn(4, 4, |x, _| {
        if x < 2 {
            Rgba([0, 0, 0, 0])
        } else {
            Rgba([255, 0, 0, 128])
        }
    });
    img.save(tmp.path().join("a.png")).unwrap();
    let (set, _) = load_folder(tmp.path(), 4, ColorMode::Rgb, false).unwrap();
    let a = 128.0 / 255.0;
    let half = 1.0 - a; // green and blue of red over white, in [0, 1]
    for y in 0..4 {
        assert_eq!([0, 1, 2].map(|c| px(&set, 0, c, 0, y)), [1.0; 3]);
        assert!((px(&set, 0, 0, 3, y) - 1.0).abs() < 1e-6);
        for c in 1..3 {
            assert!((px(&set, 0, c, 3, y) - (half * 2.0 - 1.0)).abs() < 1e-5);
        }
    }
}

#[test]
fn flip_reverses_each_row() {
    let tmp = tempfile::tempdir().unwrap();
    let img = RgbImage::from_fn(5, 5, |x, y| {
        Rgb([(x * 50) as u8, (y * 50) as u8, (x * y * 10) as u8])
    });
    img.save(tmp.path().join("ramp.png")).unwrap();
    let (set, _) = load_folder(tmp.path(), 5, ColorMode::Rgb, false).unwrap();
    let plain = set.batch(&[0], &[false]);
    assert_eq!(plain, set.image(0));
    let both = set.batch(&[0, 0], &[true, false]);
    assert_eq!(both.len(), 2 * 75);
    let (flipped, same) = both.split_at(75);
    assert_eq!(same, set.image(0));
    for c in 0..3 {
        for y in 0..5 {
            for x in 0..5 {
                let v = flipped[(c * 5 + y) * 5 + x];
                assert_eq!(v, px(&set, 0, c, 4 - x, y));
            }
        }
    }
    assert!((px(&set, 0, 0, 4, 0) - to_unit(200)).abs() < 1e-6);
}

#[test]
fn missing_folder_names_the_path() {
    let err = load_folder(Path::new("/no/such/stipple-data"), 16, ColorMode::Rgb, false).unwrap_err();
    assert!(matches!(err, DataError::MissingFolder(_)));
    assert_eq!(
        err.to_string(),
        "data folder /no/such/stipple-data does not exist"
    );
}

#[test]
fn zero_size_is_an_error() {
    assert!(matches!(
        load_folder(&fixture("emoji16"), 0, ColorMode::Rgb, false),
        Err(DataError::ZeroSize)
    ));
    assert!(matches!(
        embedded_emoji(0, ColorMode::Rgb),
        Err(DataError::ZeroSize)
    ));
}

#[test]
fn only_corrupt_images_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("broken.png"), b"not a png at all").unwrap();
    std::fs::write(tmp.path().join("notes.txt"), b"ignored").unwrap();
    let err = load_folder(tmp.path(), 16, ColorMode::Rgb, false).unwrap_err();
    assert!(matches!(err, DataError::NoImages { skipped: 1, .. }));
    let msg = err.to_string();
    assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
    assert!(msg.contains("1 file(s) skipped"), "{msg}");
    assert!(
        msg.contains(".png") && msg.contains(".jpeg") && msg.contains(".webp"),
        "{msg}"
    );
}

#[test]
fn corrupt_image_among_good_ones_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let sub = tmp.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    RgbImage::from_pixel(8, 8, Rgb([10, 20, 30]))
        .save(tmp.path().join("a.PNG"))
        .unwrap();
    RgbImage::from_pixel(12, 8, Rgb([10, 20, 30]))
        .save(sub.join("b.jpg"))
        .unwrap();
    let bad = tmp.path().join("c.webp");
    std::fs::write(&bad, b"RIFF....WEBPjunk").unwrap();
    let (set, report) = load_folder(tmp.path(), 8, ColorMode::Rgb, false).unwrap();
    assert_eq!(report.loaded, 2);
    assert_eq!(set.len(), 2);
    assert_eq!(set.names, ["a.PNG", "sub/b.jpg"]);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].0, bad);
}

#[test]
fn embedded_emoji_at_native_and_smaller_size() {
    let set = embedded_emoji(32, ColorMode::Rgb).unwrap();
    assert_eq!(set.len(), EMBEDDED_EMOJI_COUNT);
    assert_eq!(set.pixels.len(), EMBEDDED_EMOJI_COUNT * 3 * 32 * 32);
    assert_eq!(set.names[0], "1st-place-medal");
    assert!(set.pixels.iter().all(|v| (-1.0..=1.0).contains(v)));
    // Every tile holds a drawing (even the white ones have a grey outline).
    let blank: Vec<_> = (0..set.len())
        .filter(|&i| set.image(i).iter().all(|&v| v > 0.9))
        .collect();
    assert!(blank.is_empty(), "blank tiles: {blank:?}");

    let small = embedded_emoji(16, ColorMode::Grey).unwrap();
    assert_eq!(small.len(), EMBEDDED_EMOJI_COUNT);
    assert_eq!((small.size, small.channels), (16, 1));
    assert_eq!(small.image(0).len(), 16 * 16);
    assert!(small.pixels.iter().all(|v| (-1.0..=1.0).contains(v)));
}
