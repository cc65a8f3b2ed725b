//! The recipe every generated PNG carries: a `parameters` text in the format the popular
//! web UIs write and other tools parse, and a JSON record with everything needed to redo
//! the image bit for bit (model hash, sampler and options, the exact σ's, seeds).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stipple_math::{FinalSigma, SigmaSchedule};
use stipple_sample::{NoiseKind, RngSource, SamplerKind, SamplerOptions};

use crate::{read_png_text, Conditioning, PipelineError};

/// Key of the JSON recipe's text chunk.
pub const RECIPE_KEY: &str = "stipple";
/// Key of the web-UI style text chunk.
pub const PARAMETERS_KEY: &str = "parameters";
/// Version of the recipe layout: 2 records the init image and mask as [`InputRef`]s (version 1
/// kept their paths inside `conditioning`; [`Recipe::from_json`] still reads it).
pub const RECIPE_VERSION: u32 = 2;

/// The model an image came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    /// Where the model file was when the image was made.
    pub path: PathBuf,
    /// SHA-256 of the model file, hex.
    pub sha256: String,
    /// Training step of its weights, when recorded.
    pub step: Option<u64>,
    /// LoRAs merged into a Stable Diffusion checkpoint (from `--lora` and the prompt's
    /// `<lora:NAME:M>` tags), in merge order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loras: Vec<LoraRef>,
    /// The configs folder a single-file checkpoint was loaded with, when it was not the one
    /// the store finds beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_dir: Option<PathBuf>,
}

/// A LoRA merged into the model: its file, the file's SHA-256 (hex) and its multiplier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraRef {
    pub path: PathBuf,
    pub sha256: String,
    pub multiplier: f64,
    /// SHA-256 (hex) of the file's tensor data, after the safetensors header
    /// ([`safetensors_data_sha256`]): the hash the web UIs show for a LoRA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sha256: Option<String>,
}

impl LoraRef {
    /// The name the web UI gives the LoRA in its "Lora hashes" entry: the file's stem without
    /// `:` and `,` (A1111's `extra_networks_lora.py` removes them from the prompt's name).
    fn webui_name(&self) -> String {
        let stem = self.path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        stem.replace([':', ','], "")
    }
}

/// An input image of a generation: its SHA-256 (so `rerun` notices a changed file) and the
/// file it was read from, when a front end read one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputRef {
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

impl InputRef {
    /// The reference of an input image.
    pub fn of(input: &crate::ImageInput) -> Self {
        Self { sha256: input.sha256().to_string(), path: input.source().map(Path::to_path_buf) }
    }
}

/// The samples generated in one batch with a recipe's single output: seeds `first_seed ..
/// first_seed + size`, this output's among them. A batch's arithmetic can differ in the last
/// bits from a lone sample's (its network calls have another batch size, and matrix kernels
/// pick their blocking by size), so a rerun samples the same batch again and keeps this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRef {
    pub first_seed: u64,
    pub size: usize,
}

/// Everything needed to regenerate an image file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub recipe_version: u32,
    /// "stipple X.Y.Z".
    pub software: String,
    pub model: ModelRef,
    pub sampler: SamplerKind,
    #[serde(default)]
    pub options: SamplerOptions,
    pub schedule: SigmaSchedule,
    pub steps: usize,
    /// Where the last step ended (older recipes: zero).
    #[serde(default)]
    pub final_sigma: FinalSigma,
    /// The samplers' noise source (older recipes, made before Brownian noise existed:
    /// independent).
    #[serde(default = "independent")]
    pub noise: NoiseKind,
    /// The exact noise levels walked, ending in 0 (or at σ_min with `final_sigma`).
    pub sigmas: Vec<f64>,
    /// Seed of the first image; image i used `seed + i`.
    pub seed: u64,
    /// Random number source of the seeds (older recipes: nv, the only one then).
    #[serde(default)]
    pub rng: RngSource,
    /// The web UI's eta noise seed delta (older recipes and 0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub eta_noise_seed_delta: u64,
    /// Images in the file: 1, or a grid of `count` images.
    pub count: usize,
    /// Columns of the grid (`None` for a single image).
    pub grid_columns: Option<usize>,
    /// Size of one image in pixels.
    pub width: usize,
    pub height: usize,
    /// Class guidance, init image and mask (absent in plain recipes).
    #[serde(default, skip_serializing_if = "is_plain")]
    pub conditioning: Conditioning,
    /// Whether a Stable Diffusion checkpoint's VAE decoded in tiles (older recipes: no).
    #[serde(default, skip_serializing_if = "is_false")]
    pub vae_tiling: bool,
    /// The init image and the mask, when used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_image: Option<InputRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<InputRef>,
    /// The batch a single output was sampled in, when it had others (older recipes: none,
    /// rerun alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchRef>,
}

fn is_false(v: &bool) -> bool {
    !*v
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn independent() -> NoiseKind {
    NoiseKind::Independent
}

fn is_plain(c: &Conditioning) -> bool {
    *c == Conditioning::default()
}

/// The software name and version written into recipes.
pub fn software() -> String {
    format!("stipple {}", env!("CARGO_PKG_VERSION"))
}

/// SHA-256 of a file, hex.
pub fn file_sha256(path: &Path) -> Result<String, PipelineError> {
    let file = std::fs::File::open(path).map_err(|e| PipelineError::io("read", path, e))?;
    sha256_of(file, path)
}

/// SHA-256 (hex) of a safetensors file's tensor data: everything after the 8-byte header length
/// and the JSON header it counts, so that editing the metadata keeps the hash. This is the hash
/// of kohya's sd-scripts (`addnet_hash_safetensors` in `library/train_util.py`), which the web
/// UIs record for LoRAs (A1111 writes its first 12 digits as "Lora hashes").
pub fn safetensors_data_sha256(path: &Path) -> Result<String, PipelineError> {
    use std::io::{Seek, SeekFrom};
    let read_err = |e| PipelineError::io("read", path, e);
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|_| PipelineError::bad("lora", format!("{} is not a safetensors file: expected an 8-byte header length", path.display())))?;
    let header = u64::from_le_bytes(len);
    let size = file.metadata().map_err(read_err)?.len();
    if header > size - 8 {
        return Err(PipelineError::bad("lora", format!("{} is not a safetensors file: its header length {header} exceeds the file's {size} bytes", path.display())));
    }
    file.seek(SeekFrom::Start(8 + header)).map_err(read_err)?;
    sha256_of(file, path)
}

/// SHA-256 (hex) of what is left to read of `file` (read from `path`).
fn sha256_of(mut file: std::fs::File, path: &Path) -> Result<String, PipelineError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| PipelineError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

impl Recipe {
    /// The web-UI `parameters` text: for a prompt model, the prompt line (several prompts
    /// joined by " | ") and a "Negative prompt: …" line, then "Steps: 20, Sampler: DPM++ 2M,
    /// Schedule type: Karras, CFG scale: 1, Seed: 42, Size: 16x16, Model hash: …, Model: …,
    /// Version: …" ("Model hash" is the first 10 hex digits of the file's SHA-256, as those
    /// tools compute it; merged LoRAs add `Lora hashes: "NAME: 12 digits, …"` from
    /// [`LoraRef::data_sha256`], as A1111 writes them).
    pub fn parameters(&self) -> String {
        let c = &self.conditioning;
        let mut head = String::new();
        if !c.prompts.is_empty() {
            head += &format!("{}\n", c.prompts.join(" | "));
        }
        if let Some(n) = &c.negative_prompt {
            head += &format!("Negative prompt: {n}\n");
        }
        let model = self.model.path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let mut s = format!(
            "Steps: {}, Sampler: {}, Schedule type: {}, CFG scale: {}, Seed: {}, Size: {}x{}, Model hash: {}, Model: {}",
            self.steps,
            self.sampler.display_name(),
            self.schedule.display_name(),
            self.conditioning.guidance_scale,
            self.seed,
            self.width,
            self.height,
            &self.model.sha256[..self.model.sha256.len().min(10)],
            model,
        );
        if let Some(eta) = self.options.eta {
            s += &format!(", Eta: {eta}");
        }
        if self.rng != RngSource::default() {
            s += &format!(", RNG: {}", self.rng.webui_name());
        }
        if self.eta_noise_seed_delta != 0 {
            s += &format!(", ENSD: {}", self.eta_noise_seed_delta);
        }
        if self.count > 1 {
            s += &format!(", Batch size: {}", self.count);
        }
        if c.mask_blur > 0.0 {
            s += &format!(", Mask blur: {}", c.mask_blur);
        }
        let lora_hashes: Vec<String> = self.model.loras.iter().filter_map(|l| Some(format!("{}: {}", l.webui_name(), l.data_sha256.as_deref()?.get(..12)?))).collect();
        if !lora_hashes.is_empty() {
            // Quoted as the web UI quotes values holding ':' or ',' (a JSON string).
            s += &format!(", Lora hashes: {}", serde_json::Value::from(lora_hashes.join(", ")));
        }
        head + &s + &format!(", Version: {}", self.software)
    }

    /// The recipe as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data serialises")
    }

    /// The two text chunks to store in a PNG.
    pub fn text_chunks(&self) -> [(&'static str, String); 2] {
        [(PARAMETERS_KEY, self.parameters()), (RECIPE_KEY, self.to_json())]
    }

    /// The PNG bytes of `image` with this recipe's text chunks.
    pub fn encode_png(&self, image: &image::DynamicImage) -> Result<Vec<u8>, PipelineError> {
        crate::encode_png_with_text(image, &self.text_chunks())
    }

    /// Reads the recipe of a PNG file.
    pub fn from_png(path: &Path) -> Result<Recipe, PipelineError> {
        let bytes = std::fs::read(path).map_err(|e| PipelineError::io("read", path, e))?;
        Self::from_png_bytes(&bytes, &path.display().to_string()).map_err(|e| PipelineError::bad("image", e))
    }

    /// Reads the recipe of PNG bytes; `what` names the PNG in the error, which says clearly
    /// when there is no recipe or it is not ours.
    pub fn from_png_bytes(bytes: &[u8], what: &str) -> Result<Recipe, String> {
        let texts = read_png_text(bytes, what)?;
        let Some((_, json)) = texts.iter().find(|(k, _)| k == RECIPE_KEY) else {
            let other = if texts.iter().any(|(k, _)| k == PARAMETERS_KEY) {
                " (it has a web-UI \"parameters\" text, but not the Stipple recipe needed to redo it)"
            } else {
                ""
            };
            return Err(format!("{what} carries no Stipple recipe{other}; images made by Stipple have a \"{RECIPE_KEY}\" text chunk"));
        };
        Self::from_json(json).map_err(|e| format!("the \"{RECIPE_KEY}\" text of {what} {e}"))
    }

    /// Parses a recipe's JSON, reading version 1 (whose init image and mask were paths inside
    /// `conditioning`, with their hashes beside) into the current layout.
    pub fn from_json(json: &str) -> Result<Recipe, String> {
        let mut value: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("is not JSON: {e}"))?;
        let version = value.get("recipe_version").and_then(|v| v.as_u64());
        match version {
            Some(1) => upgrade_v1(&mut value),
            Some(v) if v == RECIPE_VERSION as u64 => {}
            Some(v) => return Err(format!("has recipe version {v}, this build reads versions 1 to {RECIPE_VERSION}")),
            None => return Err("is not a Stipple recipe: it has no recipe_version".into()),
        }
        serde_json::from_value(value).map_err(|e| format!("is not a Stipple recipe: {e}"))
    }
}

/// Version 1 → 2: `conditioning.init_image` / `conditioning.mask` (paths) and
/// `init_image_sha256` / `mask_sha256` become `init_image` / `mask` [`InputRef`]s.
fn upgrade_v1(value: &mut serde_json::Value) {
    let Some(obj) = value.as_object_mut() else { return };
    for (key, hash_key) in [("init_image", "init_image_sha256"), ("mask", "mask_sha256")] {
        let path = obj.get_mut("conditioning").and_then(|c| c.as_object_mut()).and_then(|c| c.remove(key));
        let hash = obj.remove(hash_key);
        if let Some(serde_json::Value::String(sha256)) = hash {
            let path = path.filter(|p| p.is_string());
            obj.insert(key.into(), serde_json::json!({ "sha256": sha256, "path": path }));
        }
    }
    obj.insert("recipe_version".into(), RECIPE_VERSION.into());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes_without_final_sigma_noise_and_rng_read_as_made_before_them() {
        let recipe = Recipe {
            recipe_version: RECIPE_VERSION,
            software: software(),
            model: ModelRef { path: "m.safetensors".into(), sha256: "ab".repeat(32), step: None, loras: vec![], config_dir: None },
            sampler: SamplerKind::Dpmpp2mSde,
            options: SamplerOptions::default(),
            schedule: SigmaSchedule::Karras,
            steps: 2,
            final_sigma: FinalSigma::SigmaMin,
            noise: NoiseKind::Brownian,
            sigmas: vec![14.6, 0.9, 0.03],
            seed: 1,
            rng: RngSource::Cpu,
            eta_noise_seed_delta: 31337,
            count: 1,
            grid_columns: None,
            width: 8,
            height: 8,
            conditioning: Conditioning::default(),
            vae_tiling: true,
            init_image: None,
            mask: None,
            batch: Some(BatchRef { first_seed: 0, size: 4 }),
        };
        let mut json: serde_json::Value = serde_json::from_str(&recipe.to_json()).unwrap();
        assert_eq!((json["final_sigma"].as_str(), json["noise"].as_str(), json["rng"].as_str()), (Some("sigma_min"), Some("brownian"), Some("cpu")));
        assert_eq!(serde_json::from_value::<Recipe>(json.clone()).unwrap(), recipe);
        assert!(recipe.parameters().contains("Seed: 1, Size: 8x8, Model hash: abababab") && recipe.parameters().contains(", RNG: CPU, ENSD: 31337"));
        // Older recipes: a final 0, independent draws and NV seeds (all there was).
        json.as_object_mut().unwrap().retain(|k, _| !["final_sigma", "noise", "rng", "eta_noise_seed_delta", "vae_tiling", "batch"].contains(&k.as_str()));
        let old: Recipe = serde_json::from_value(json).unwrap();
        assert_eq!((old.final_sigma, old.noise, old.rng, old.eta_noise_seed_delta, old.vae_tiling), (FinalSigma::Zero, NoiseKind::Independent, RngSource::Nv, 0, false));
        assert_eq!(old.batch, None);
        assert!(!old.parameters().contains("RNG"), "the default source is not written, as the web UI omits its default");
    }
}

#[cfg(test)]
mod upgrade_tests {
    use super::*;

    #[test]
    fn version_1_recipes_with_an_init_image_read_as_version_2() {
        let v1 = serde_json::json!({
            "recipe_version": 1, "software": "stipple 0.1.0",
            "model": {"path": "m.safetensors", "sha256": "ab", "step": null},
            "sampler": "euler", "schedule": "karras", "steps": 2, "sigmas": [1.0, 0.0],
            "seed": 3, "count": 1, "grid_columns": null, "width": 16, "height": 16,
            "conditioning": {"init_image": "in.png", "mask": "m.png", "strength": 0.5, "guidance_scale": 1.0},
            "init_image_sha256": "11", "mask_sha256": "22"
        });
        let r = Recipe::from_json(&v1.to_string()).unwrap();
        assert_eq!(r.recipe_version, RECIPE_VERSION);
        assert_eq!(r.init_image, Some(InputRef { sha256: "11".into(), path: Some("in.png".into()) }));
        assert_eq!(r.mask, Some(InputRef { sha256: "22".into(), path: Some("m.png".into()) }));
        assert_eq!(r.conditioning.strength, 0.5);
        let e = Recipe::from_json(&serde_json::json!({"recipe_version": 9}).to_string()).unwrap_err();
        assert!(e.contains("version 9"), "{e}");
    }
}

#[cfg(test)]
mod lora_hash_tests {
    use super::*;

    /// A safetensors-shaped file: the header length, `header`, then `data`.
    fn write(dir: &Path, name: &str, header: &str, data: &[u8]) -> PathBuf {
        let path = dir.join(name);
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn the_lora_hash_covers_the_tensor_data_only_and_reaches_the_parameters_text() {
        let dir = tempfile::tempdir().unwrap();
        // SHA-256("abc") is FIPS 180-2's first test vector.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let a = write(dir.path(), "a.safetensors", r#"{"__metadata__":{"ss_name":"one"}}"#, b"abc");
        let b = write(dir.path(), "b.safetensors", r#"{"__metadata__":{"ss_name":"another name"}}"#, b"abc");
        let c = write(dir.path(), "c.safetensors", r#"{"__metadata__":{"ss_name":"one"}}"#, b"abd");
        assert_eq!(safetensors_data_sha256(&a).unwrap(), abc);
        assert_eq!(safetensors_data_sha256(&b).unwrap(), abc, "the metadata is not hashed");
        assert_ne!(safetensors_data_sha256(&c).unwrap(), abc);
        assert_ne!(file_sha256(&a).unwrap(), abc, "the whole-file hash includes the header");

        let short = dir.path().join("short.safetensors");
        std::fs::write(&short, [1u8, 0, 0]).unwrap();
        let e = safetensors_data_sha256(&short).unwrap_err().to_string();
        assert!(e.contains("8-byte header length"), "{e}");
        let long = write(dir.path(), "long.safetensors", "{}", b"");
        std::fs::write(&long, [200u8, 0, 0, 0, 0, 0, 0, 0, b'{', b'}']).unwrap();
        let e = safetensors_data_sha256(&long).unwrap_err().to_string();
        assert!(e.contains("header length 200 exceeds the file's 10 bytes"), "{e}");

        let lora = |name: &str, hash: Option<&str>| LoraRef { path: dir.path().join(name), sha256: "cd".repeat(32), multiplier: 0.8, data_sha256: hash.map(str::to_string) };
        let mut recipe: Recipe = serde_json::from_value(serde_json::json!({
            "recipe_version": RECIPE_VERSION, "software": "stipple 0.1.0",
            "model": {"path": "m.safetensors", "sha256": "ab", "step": null},
            "sampler": "euler", "schedule": "karras", "steps": 2, "sigmas": [1.0, 0.0],
            "seed": 3, "count": 1, "grid_columns": null, "width": 16, "height": 16,
            "conditioning": {"guidance_scale": 1.0}
        }))
        .unwrap();
        assert!(!recipe.parameters().contains("Lora hashes"));
        recipe.model.loras = vec![lora("my,style:v2.safetensors", Some(abc)), lora("old.safetensors", None), lora("b.safetensors", Some(&"0123456789abcdef".repeat(4)))];
        let text = recipe.parameters();
        assert!(text.contains(r#", Lora hashes: "mystylev2: ba7816bf8f01, b: 0123456789ab", Version: "#), "{text}");
        let back: Recipe = serde_json::from_str(&recipe.to_json()).unwrap();
        assert_eq!(back, recipe, "the data hash survives the recipe's JSON");
    }
}
