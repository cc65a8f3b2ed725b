//! The recipe every generated PNG carries: a `parameters` text in the format the popular
//! web UIs write and other tools parse, and a JSON record with everything needed to redo
//! the image bit for bit (model hash, sampler and options, the exact σ's, seeds).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stipple_math::{FinalSigma, SigmaSchedule};
use stipple_sample::{NoiseKind, SamplerKind, SamplerOptions};

use crate::{read_png_text, Conditioning, PipelineError};

/// Key of the JSON recipe's text chunk.
pub const RECIPE_KEY: &str = "stipple";
/// Key of the web-UI style text chunk.
pub const PARAMETERS_KEY: &str = "parameters";
/// Version of the recipe layout.
pub const RECIPE_VERSION: u32 = 1;

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
    /// SHA-256 of the init image and of the mask, when used, so `rerun` notices a changed file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_image_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_sha256: Option<String>,
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
    let mut file = std::fs::File::open(path)
        .map_err(|e| PipelineError::Invalid(format!("cannot read model file {}: {e}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| PipelineError::Invalid(format!("{}: {e}", path.display())))?;
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
    /// tools compute it).
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
        if self.count > 1 {
            s += &format!(", Batch size: {}", self.count);
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

    /// Reads the recipe of a PNG; says clearly when there is none or it is not ours.
    pub fn from_png(path: &Path) -> Result<Recipe, PipelineError> {
        let texts = read_png_text(path)?;
        let Some((_, json)) = texts.iter().find(|(k, _)| k == RECIPE_KEY) else {
            let other = if texts.iter().any(|(k, _)| k == PARAMETERS_KEY) {
                " (it has a web-UI \"parameters\" text, but not the Stipple recipe needed to redo it)"
            } else {
                ""
            };
            return Err(PipelineError::Invalid(format!(
                "{} carries no Stipple recipe{other}; images made by `stipple sample` have a \"{RECIPE_KEY}\" text chunk",
                path.display()
            )));
        };
        let recipe: Recipe = serde_json::from_str(json).map_err(|e| {
            PipelineError::Invalid(format!("the \"{RECIPE_KEY}\" text of {} is not a Stipple recipe: {e}", path.display()))
        })?;
        if recipe.recipe_version != RECIPE_VERSION {
            return Err(PipelineError::Invalid(format!(
                "{} has recipe version {}, this build reads version {RECIPE_VERSION}",
                path.display(),
                recipe.recipe_version
            )));
        }
        Ok(recipe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes_without_final_sigma_and_noise_read_as_made_before_them() {
        let recipe = Recipe {
            recipe_version: RECIPE_VERSION,
            software: software(),
            model: ModelRef { path: "m.safetensors".into(), sha256: "ab".repeat(32), step: None },
            sampler: SamplerKind::Dpmpp2mSde,
            options: SamplerOptions::default(),
            schedule: SigmaSchedule::Karras,
            steps: 2,
            final_sigma: FinalSigma::SigmaMin,
            noise: NoiseKind::Brownian,
            sigmas: vec![14.6, 0.9, 0.03],
            seed: 1,
            count: 1,
            grid_columns: None,
            width: 8,
            height: 8,
            conditioning: Conditioning::default(),
            init_image_sha256: None,
            mask_sha256: None,
        };
        let mut json: serde_json::Value = serde_json::from_str(&recipe.to_json()).unwrap();
        assert_eq!((json["final_sigma"].as_str(), json["noise"].as_str()), (Some("sigma_min"), Some("brownian")));
        assert_eq!(serde_json::from_value::<Recipe>(json.clone()).unwrap(), recipe);
        // Older recipes: a final 0 and independent draws (all there was).
        json.as_object_mut().unwrap().retain(|k, _| k != "final_sigma" && k != "noise");
        let old: Recipe = serde_json::from_value(json).unwrap();
        assert_eq!((old.final_sigma, old.noise), (FinalSigma::Zero, NoiseKind::Independent));
    }
}
