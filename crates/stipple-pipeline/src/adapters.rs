//! What is merged into a Stable Diffusion checkpoint when it is loaded: LoRA files with their
//! multipliers (from `--lora FILE:M` and from the prompt's `<lora:NAME:M>` tags, as the web UI
//! takes them) and the configs folder of a single file.

use std::path::{Path, PathBuf};

use crate::store::is_model_name;
use crate::{ModelRef, PipelineError};

/// Folder of the LoRA files that prompt tags name, inside the models folder
/// (`models/loras/NAME.safetensors`).
pub const LORAS_DIR: &str = "loras";

/// LoRAs and configs folder for loading a checkpoint. The default merges nothing and takes
/// the configs the store finds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Adapters {
    /// LoRA files and multipliers, in merge order.
    pub loras: Vec<(PathBuf, f64)>,
    /// The configs folder of a single file, instead of `NAME.config/` beside it.
    pub config_dir: Option<PathBuf>,
}

impl Adapters {
    /// Whether nothing is merged and the configs are the store's.
    pub fn is_empty(&self) -> bool {
        self.loras.is_empty() && self.config_dir.is_none()
    }

    /// What a recipe's model was loaded with: its recorded LoRAs and configs folder (so
    /// `rerun` loads it the same way; prompt tags are not read again).
    pub fn of(model: &ModelRef) -> Self {
        Self { loras: model.loras.iter().map(|l| (l.path.clone(), l.multiplier)).collect(), config_dir: model.config_dir.clone() }
    }

    /// `--lora` arguments `FILE:MULTIPLIER` (the multiplier after the last `:`).
    pub fn parse_lora_args(args: &[String]) -> Result<Vec<(PathBuf, f64)>, PipelineError> {
        args.iter()
            .map(|l| match l.rsplit_once(':').map(|(f, m)| (f, m.parse::<f64>())) {
                Some((file, Ok(m))) if !file.is_empty() && m.is_finite() => Ok((PathBuf::from(file), m)),
                _ => Err(PipelineError::bad("lora", format!("expected FILE:MULTIPLIER (e.g. style.safetensors:0.8), got {l:?}"))),
            })
            .collect()
    }

    /// These adapters with the LoRAs that `prompts` name in `<lora:NAME:M>` tags appended,
    /// each found as `NAME.safetensors` in `loras_dir` (a missing one is bad input in
    /// `prompt` that says where it was looked for).
    pub fn with_prompt_loras(mut self, prompts: &[String], loras_dir: &Path) -> Result<Self, PipelineError> {
        for prompt in prompts {
            let (_, tags) = stipple_sd::extract_loras(prompt).map_err(|e| PipelineError::bad("prompt", e.to_string()))?;
            for tag in tags {
                if !is_model_name(&tag.name) {
                    return Err(PipelineError::bad("prompt", format!("<lora:{}>: a LoRA name is a file name (letters, digits, '.', '_', '-')", tag.name)));
                }
                let file = loras_dir.join(format!("{}.safetensors", tag.name));
                if !file.is_file() {
                    return Err(PipelineError::bad("prompt", format!("<lora:{}>: no LoRA file {}", tag.name, file.display())));
                }
                self.loras.push((file, tag.multiplier));
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lora_arguments_and_prompt_tags_become_files_and_multipliers() {
        let explicit = Adapters::parse_lora_args(&["a/style.safetensors:0.8".into(), "c:\\x.safetensors:-1".into()]).unwrap();
        assert_eq!(explicit, vec![(PathBuf::from("a/style.safetensors"), 0.8), (PathBuf::from("c:\\x.safetensors"), -1.0)]);
        for bad in ["nonsense", "x.safetensors:", ":0.8", "x:inf"] {
            let e = Adapters::parse_lora_args(&[bad.into()]).unwrap_err();
            assert_eq!(e.bad_input().map(|b| b.0), Some("lora"), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ink.safetensors"), b"").unwrap();
        let a = Adapters { loras: explicit.clone(), config_dir: None }.with_prompt_loras(&["a cat <lora:ink:0.5>".into(), "<lora:ink>".into()], dir.path()).unwrap();
        let ink = dir.path().join("ink.safetensors");
        assert_eq!(a.loras[2..], [(ink.clone(), 0.5), (ink, 1.0)]);
        for (prompt, says) in [("<lora:gone:1>", "no LoRA file"), ("<lora:../ink:1>", "file name"), ("<hypernet:x:1>", "only extra network")] {
            let e = Adapters::default().with_prompt_loras(&[prompt.into()], dir.path()).unwrap_err();
            assert!(e.bad_input().is_some_and(|b| b.0 == "prompt" && b.1.contains(says)), "{prompt}: {e}");
        }
    }
}
