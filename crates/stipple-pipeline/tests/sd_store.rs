//! The model store with Stable Diffusion checkpoints: a diffusers folder `models/NAME/` and a
//! single file `models/NAME.safetensors` (its configs in `models/NAME.config/`) are listed with
//! their architecture and loaded by name, once per file version, at most one at a time.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::Device;
use stipple_pipeline::{file_sha256, Model, ModelSource, ModelStore};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sd").join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn checkpoints_are_listed_with_their_architecture_and_loaded_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    copy_dir(&fixture("tiny-sd15"), &models.join("sd15"));
    std::fs::copy(fixture("tiny-sdxl.safetensors"), models.join("xl.safetensors")).unwrap();
    // The tiny single file does not fit the released SDXL configs: it loads only with its own.
    copy_dir(&fixture("tiny-sdxl"), &models.join("xl.config"));
    let store = ModelStore::new(&models, dir.path().join("runs"), Device::Cpu);
    let list = store.list().unwrap();
    let rows: Vec<(&str, ModelSource, Option<&str>)> = list.iter().map(|e| (e.name.as_str(), e.source, e.architecture.as_deref())).collect();
    assert_eq!(
        rows,
        [("sd15", ModelSource::ModelsFolder, Some("Stable Diffusion 1.x")), ("xl", ModelSource::ModelsFolder, Some("Stable Diffusion XL base"))],
        "the configs folder is not a model of its own"
    );
    let sd15 = store.load("sd15").unwrap();
    assert!(matches!(&sd15.model, Model::Sd(sd) if sd.architecture == stipple_sd::Architecture::Sd1));
    assert_eq!(sd15.model.default_size(), (512, 512));
    assert_eq!(sd15.model_ref.sha256, file_sha256(&models.join("sd15/unet/diffusion_pytorch_model.safetensors")).unwrap());
    assert!(Arc::ptr_eq(&sd15, &store.load("sd15").unwrap()), "loaded once");
    let xl = store.load("xl").unwrap();
    assert_eq!(xl.model.default_size(), (1024, 1024));
    assert_eq!(xl.model_ref.sha256, file_sha256(&models.join("xl.safetensors")).unwrap());
    assert!(Arc::ptr_eq(&xl, &store.load("xl").unwrap()));
    assert!(!Arc::ptr_eq(&sd15, &store.load("sd15").unwrap()), "loading the SDXL file dropped the SD 1.x pipeline");
    assert_eq!(store.resolve_arg(Path::new("sd15")).unwrap(), models.join("sd15"));
}
