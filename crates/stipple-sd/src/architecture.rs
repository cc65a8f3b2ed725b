//! Which Stable Diffusion a single-file checkpoint holds, told from its tensor names (as the
//! web UI and diffusers' `single_file_utils.infer_diffusers_model_type` tell it).

use std::collections::BTreeSet;

/// A Stable Diffusion generation, as far as the tensor names tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Architecture {
    /// SD 1.x: CLIP ViT-L/14 text encoder under `cond_stage_model.transformer.*`.
    Sd1,
    /// SD 2.x: OpenCLIP ViT-H/14 under `cond_stage_model.model.*` (ε- or v-prediction; the
    /// names do not say which).
    Sd2,
    /// SDXL base: two text encoders under `conditioner.embedders.0.transformer.*` (CLIP ViT-L)
    /// and `conditioner.embedders.1.model.*` (OpenCLIP ViT-bigG).
    SdxlBase,
    /// SDXL refiner: OpenCLIP ViT-bigG alone under `conditioner.embedders.0.model.*`.
    SdxlRefiner,
}

impl Architecture {
    /// What artists call it.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Sd1 => "Stable Diffusion 1.x",
            Architecture::Sd2 => "Stable Diffusion 2.x",
            Architecture::SdxlBase => "Stable Diffusion XL base",
            Architecture::SdxlRefiner => "Stable Diffusion XL refiner",
        }
    }

    /// The architectures this build loads from a diffusers folder.
    pub const SUPPORTED_FOLDER: &'static [Architecture] = &[Architecture::Sd1, Architecture::Sd2, Architecture::SdxlBase];
    /// The architectures this build loads from an original-layout single file.
    pub const SUPPORTED_SINGLE_FILE: &'static [Architecture] = &[Architecture::Sd1, Architecture::Sd2, Architecture::SdxlBase];

    /// Tells the architecture from the tensor names of an original-layout (CompVis / SGM)
    /// checkpoint; `None` when the names fit none.
    pub fn detect<'a>(keys: impl IntoIterator<Item = &'a str> + Clone) -> Option<Architecture> {
        let has = |prefix: &str| keys.clone().into_iter().any(|k| k.starts_with(prefix));
        if !has("model.diffusion_model.") {
            return None;
        }
        if has("conditioner.embedders.1.model.") {
            Some(Architecture::SdxlBase)
        } else if has("conditioner.embedders.0.model.") {
            Some(Architecture::SdxlRefiner)
        } else if has("cond_stage_model.model.") {
            Some(Architecture::Sd2)
        } else if has("cond_stage_model.transformer.") {
            Some(Architecture::Sd1)
        } else {
            None
        }
    }

    /// The distinct two-segment prefixes of `keys` (`model.diffusion_model`, `encoder.down`, …),
    /// at most `limit`, to show what an unrecognised file holds.
    pub fn key_summary<'a>(keys: impl IntoIterator<Item = &'a str>, limit: usize) -> String {
        let prefixes: BTreeSet<String> = keys.into_iter().map(|k| k.split('.').take(2).collect::<Vec<_>>().join(".")).collect();
        let n = prefixes.len();
        let mut s = prefixes.into_iter().take(limit).map(|p| format!("{p}.*")).collect::<Vec<_>>().join(", ");
        if n > limit {
            s.push_str(&format!(" and {} more", n - limit));
        }
        if s.is_empty() {
            s.push_str("no tensors");
        }
        s
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_generation_from_names() {
        let unet = "model.diffusion_model.input_blocks.0.0.weight";
        let case = |te: &str| Architecture::detect([unet, te, "first_stage_model.encoder.conv_in.weight"]);
        assert_eq!(case("cond_stage_model.transformer.text_model.final_layer_norm.weight"), Some(Architecture::Sd1));
        assert_eq!(case("cond_stage_model.model.ln_final.weight"), Some(Architecture::Sd2));
        assert_eq!(
            Architecture::detect([unet, "conditioner.embedders.0.transformer.x", "conditioner.embedders.1.model.ln_final.weight"]),
            Some(Architecture::SdxlBase)
        );
        assert_eq!(Architecture::detect([unet, "conditioner.embedders.0.model.ln_final.weight"]), Some(Architecture::SdxlRefiner));
        assert_eq!(Architecture::detect(["encoder.conv_in.weight"]), None);
        assert_eq!(Architecture::detect([unet]), None);
    }

    #[test]
    fn summary_lists_prefixes() {
        let s = Architecture::key_summary(["a.b.c", "a.b.d", "x.y", "z"], 2);
        assert_eq!(s, "a.b.*, x.y.* and 1 more");
    }
}
