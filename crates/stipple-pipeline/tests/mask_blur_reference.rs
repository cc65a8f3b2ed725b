//! The inpainting mask blur against OpenCV's `GaussianBlur` as the web UI calls it
//! (tests/reference/make_mask_blur_reference.py).

use image::GrayImage;
use serde_json::Value;
use stipple_pipeline::blur_mask;

#[test]
fn mask_blur_matches_opencv_bit_for_bit() {
    let r: Value = serde_json::from_str(include_str!("fixtures/mask_blur.json")).unwrap();
    let (w, h) = (r["width"].as_u64().unwrap() as u32, r["height"].as_u64().unwrap() as u32);
    let bytes = |v: &Value| v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u8).collect::<Vec<u8>>();
    let mask = GrayImage::from_raw(w, h, bytes(&r["mask"])).unwrap();
    for (blur, want) in r["blurred"].as_object().unwrap() {
        let got = blur_mask(&mask, blur.parse().unwrap());
        let want = bytes(want);
        let off = got.as_raw().iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(off, 0, "blur {blur}: {off} of {} values differ from OpenCV's", want.len());
        assert!(want.iter().any(|v| *v != 0 && *v != 255), "blur {blur}: the reference is blurred");
    }
    assert_eq!(blur_mask(&mask, 0.0), mask);
}
