//! `inspect` tells a checkpoint's format, architecture, input channels and stored dtypes
//! from headers and configs alone.

mod common;

use common::*;
use stipple_sd::{inspect, Architecture, Format, SdError};

#[test]
fn inspect_tells_the_checkpoint_without_loading_it() {
    let i = inspect(&folder()).unwrap();
    assert_eq!((i.format, i.architecture, i.unet_in_channels), (Format::DiffusersFolder, Architecture::Sd1, 4));
    // The fixture's U-Net is stored in f16, its VAE in f32 and its text encoder in bf16.
    assert_eq!(i.parameters_by_dtype.keys().map(String::as_str).collect::<Vec<_>>(), ["BF16", "F16", "F32"]);
    let s = inspect(&single_file()).unwrap();
    assert_eq!((s.format, s.architecture), (Format::SingleFile, Architecture::Sd1));
    // The same weights (the single file also holds the text model's 77 position ids, as I64).
    assert_eq!(s.parameters(), i.parameters() + 77);
    assert!(s.to_string().contains("Stable Diffusion 1.x, single file"), "{s}");
    let inpaint = inspect(&repo().join("tests/fixtures/sd/tiny-sd2-inpaint")).unwrap();
    assert_eq!((inpaint.architecture, inpaint.unet_in_channels), (Architecture::Sd2, 9));
    let xl = inspect(&repo().join("tests/fixtures/sd/tiny-sdxl.safetensors")).unwrap();
    assert_eq!(xl.architecture, Architecture::SdxlBase);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.safetensors");
    std::fs::write(&file, b"nope").unwrap();
    assert!(matches!(inspect(&file), Err(SdError::NotACheckpoint { .. })));
}
