//! Per-token attention maps of a generation on the shipped prompt model: the images are the
//! plain generation's bit for bit, one map per prompt token and image, of the image's size,
//! non-negative; models without prompts and generations without a network call say why
//! they have none.

use candle_core::Device;
use stipple_pipeline::{generate, generate_with_attention, GenerateRequest, Model, ModelStore};

static SHIPPED: &[u8] = include_bytes!("../../../models/emoji-prompts.safetensors");

fn request(prompts: &[&str], count: usize) -> GenerateRequest {
    GenerateRequest {
        prompts: prompts.iter().map(|p| p.to_string()).collect(),
        steps: Some(3),
        count: Some(count),
        batch_size: Some(2),
        seed: Some(5),
        guidance_scale: Some(3.0),
        ..GenerateRequest::default()
    }
}

#[test]
fn maps_belong_to_each_images_prompt_and_leave_the_images_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::new(dir.path().join("m"), dir.path().join("r"), Device::Cpu).with_builtin("emoji-prompts", SHIPPED);
    let stored = store.load("emoji-prompts").unwrap();
    let Model::Stipple(model) = &stored.model else { panic!("the shipped model is a Stipple model") };
    // Three images in batches of two; image i takes prompt i mod 2.
    let spec = request(&["red apple", "grinning face with big eyes"], 3).validate().unwrap();
    let sigmas = spec.sigmas(&model.config.diffusion).unwrap();
    let plain = generate(model, &spec, &sigmas, &Device::Cpu, &mut ()).unwrap();
    let (images, maps) = generate_with_attention(model, &spec, &sigmas, &Device::Cpu, &mut ()).unwrap();
    let flat = |t: &candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(flat(&plain), flat(&images), "recording attention changed the images");
    assert_eq!(maps.len(), 3);
    let size = model.config.image_size().expect("an image model");
    let tokenizer = &model.text.as_ref().unwrap().tokenizer;
    for (i, m) in maps.iter().enumerate() {
        let prompt = spec.conditioning.prompts[i % 2].as_str();
        assert_eq!(m.tokens, tokenizer.token_texts(prompt).unwrap(), "image {i}");
        assert_eq!((m.width, m.height), (size, size));
        assert_eq!(m.maps.len(), m.tokens.len());
        for map in &m.maps {
            assert_eq!(map.len(), size * size);
            assert!(map.iter().all(|v| (0.0..=1.0).contains(v)), "a probability average lies in [0, 1]");
            assert!(map.iter().any(|&v| v > 0.0));
        }
    }
    assert_ne!(maps[0].maps, maps[2].maps, "same prompt, other seed: other maps");
}

#[test]
fn no_prompt_or_no_network_call_means_no_maps() {
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::new(dir.path().join("m"), dir.path().join("r"), Device::Cpu).with_builtin("emoji-prompts", SHIPPED);
    let stored = store.load("emoji-prompts").unwrap();
    let Model::Stipple(model) = &stored.model else { panic!("the shipped model is a Stipple model") };
    let init = stipple_pipeline::ImageInput::from_bytes(png_of_grey(model.config.image_size().expect("an image model") as u32));
    let spec = GenerateRequest { init_image: Some(init), strength: Some(0.0), ..request(&["red apple"], 1) }.validate().unwrap();
    let sigmas = spec.sigmas(&model.config.diffusion).unwrap();
    let err = generate_with_attention(model, &spec, &sigmas, &Device::Cpu, &mut ()).unwrap_err();
    assert_eq!(err.bad_input().map(|(s, _)| s), Some("attention"), "{err}");
}

fn png_of_grey(side: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(side, side, image::Rgb([128, 128, 128]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn sd_fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sd").join(name)
}

#[test]
fn a_stable_diffusion_checkpoint_has_maps_for_every_chunk_of_its_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::new(dir.path().join("m"), dir.path().join("r"), Device::Cpu);
    let stored = store.load_path("sd15", &sd_fixture("tiny-sd15")).unwrap();
    let model = &stored.model;
    // 81 tokens (the comma is one): two chunks of the web UI's 75, each with its own start token.
    let long = format!("a (red:1.3) apple, {}", vec!["leaf"; 77].join(" "));
    for (prompt, words) in [("a (red:1.3) apple", 3), (long.as_str(), 81)] {
        let spec = GenerateRequest { width: Some(32), height: Some(24), negative_prompt: Some("blur".into()), ..request(&[prompt], 2) }.validate().unwrap();
        let sigmas = model.sigmas(&spec).unwrap();
        let plain = model.generate(&spec, &sigmas, &Device::Cpu, &mut ()).unwrap();
        let (images, maps) = model.generate_with_attention(&spec, &sigmas, &Device::Cpu, &mut ()).unwrap();
        let flat = |t: &candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(&plain), flat(&images), "recording attention changed the images");
        assert_eq!(maps.len(), 2);
        for m in &maps {
            assert_eq!(m.tokens.len(), words, "{:?}", m.tokens);
            assert_eq!(m.tokens[..3].concat(), "aredapple", "the emphasis syntax is not a token");
            assert_eq!((m.width, m.height), (32, 24));
            for map in &m.maps {
                assert_eq!(map.len(), 32 * 24);
                assert!(map.iter().all(|v| (0.0..=1.0).contains(v)) && map.iter().any(|&v| v > 0.0));
            }
            // Every pixel's attention over the prompt's words, the start, end and padding
            // tokens left out, is at most the whole.
            for px in 0..32 * 24 {
                assert!(m.maps.iter().map(|map| map[px]).sum::<f32>() <= 1.0 + 1e-5);
            }
        }
        assert_ne!(maps[0].maps, maps[1].maps, "another seed, other maps");
    }
}
