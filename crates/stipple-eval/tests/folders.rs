//! Image folders: read recursively in path order; an empty folder or an undecodable image is
//! an error naming it.

use stipple_eval::{load_folder, EvalError};

#[test]
fn reads_sub_folders_in_path_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("b")).unwrap();
    for (name, shade) in [("b/1.png", 10u8), ("a.png", 20), ("c.PNG", 30)] {
        image::GrayImage::from_pixel(3, 2, image::Luma([shade])).save_with_format(dir.path().join(name), image::ImageFormat::Png).unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();
    let images = load_folder(dir.path()).unwrap();
    let names: Vec<String> = images.iter().map(|i| i.path.strip_prefix(dir.path()).unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["a.png", "b/1.png", "c.PNG"]);
    assert_eq!(images[1].image.to_luma8().get_pixel(0, 0).0, [10]);
}

#[test]
fn empty_folders_and_broken_images_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_folder(dir.path()).err().unwrap();
    assert!(matches!(err, EvalError::BadImage { .. }) && err.to_string().contains("no images"), "{err}");
    std::fs::write(dir.path().join("broken.png"), b"not a png").unwrap();
    let err = load_folder(dir.path()).err().unwrap();
    assert!(matches!(err, EvalError::BadImage { ref path, .. } if path.ends_with("broken.png")), "{err}");
    let err = load_folder(&dir.path().join("missing")).err().unwrap();
    assert!(matches!(err, EvalError::Io { .. }), "{err}");
}
