//! What a checkpoint is, told without loading its weights (for `stipple inspect` and model
//! stores): the format, the architecture, the U-Net's input channels, the storage dtypes and
//! the number of parameters, from the safetensors headers and the configs alone.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::configs::read;
use crate::ldm::UNET_PREFIX;
use crate::{Architecture, SdError, UNet2DConditionConfig};

/// How the checkpoint is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A diffusers folder (`model_index.json`).
    DiffusersFolder,
    /// One original-layout `.safetensors` file (CompVis / SGM names).
    SingleFile,
}

/// A summary of a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    pub path: PathBuf,
    pub format: Format,
    pub architecture: Architecture,
    /// The U-Net's input channels: 4, or 9 for an inpainting model.
    pub unet_in_channels: usize,
    /// Parameters per storage dtype (`"F16"`, `"F32"`, `"BF16"`, …) over every weight file.
    pub parameters_by_dtype: BTreeMap<String, u64>,
}

impl Inspection {
    /// Total parameters (scalars) over every weight file.
    pub fn parameters(&self) -> u64 {
        self.parameters_by_dtype.values().sum()
    }
}

impl std::fmt::Display for Inspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let format = match self.format {
            Format::DiffusersFolder => "diffusers folder",
            Format::SingleFile => "single file",
        };
        let dtypes: Vec<String> = self.parameters_by_dtype.iter().map(|(d, n)| format!("{d} {n}")).collect();
        write!(
            f,
            "{}: {}, {format}, {}{}, {} parameters ({})",
            self.path.display(),
            self.architecture,
            self.unet_in_channels,
            if self.unet_in_channels == 9 { " U-Net input channels (inpainting)" } else { " U-Net input channels" },
            self.parameters(),
            dtypes.join(", ")
        )
    }
}

/// The tensor names, dtypes and shapes of a `.safetensors` file, from its header alone.
fn header(path: &Path) -> Result<Vec<(String, String, Vec<u64>)>, SdError> {
    let not = |reason: String| SdError::NotACheckpoint { path: path.to_path_buf(), reason };
    let mut f = std::fs::File::open(path).map_err(|e| SdError::io(path, e))?;
    let len = f.metadata().map_err(|e| SdError::io(path, e))?.len();
    let mut n = [0u8; 8];
    f.read_exact(&mut n).map_err(|_| not(format!("{len} bytes: too short for a .safetensors header")))?;
    let n = u64::from_le_bytes(n);
    if n > 100_000_000 || n + 8 > len {
        return Err(not(format!("not a .safetensors file (its header would be {n} bytes of {len})")));
    }
    let mut text = vec![0u8; n as usize];
    f.read_exact(&mut text).map_err(|e| SdError::io(path, e))?;
    let json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| not(format!("the header is not JSON: {e}")))?;
    let map = json.as_object().ok_or_else(|| not("the header is not a JSON object".into()))?;
    Ok(map
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .map(|(k, v)| {
            let dtype = v.get("dtype").and_then(|d| d.as_str()).unwrap_or("?").to_string();
            let shape = v.get("shape").and_then(|s| s.as_array()).map(|a| a.iter().filter_map(|x| x.as_u64()).collect()).unwrap_or_default();
            (k.clone(), dtype, shape)
        })
        .collect())
}

fn count(into: &mut BTreeMap<String, u64>, tensors: &[(String, String, Vec<u64>)]) {
    for (_, dtype, shape) in tensors {
        *into.entry(dtype.clone()).or_default() += shape.iter().product::<u64>();
    }
}

/// Inspects a diffusers folder or a single file (see [`Inspection`]); errors as
/// [`crate::SdPipeline::load`] gives them for unknown formats and architectures.
pub fn inspect(path: &Path) -> Result<Inspection, SdError> {
    let meta = std::fs::metadata(path).map_err(|e| SdError::io(path, e))?;
    let mut by_dtype = BTreeMap::new();
    if !meta.is_dir() {
        let tensors = header(path)?;
        let Some(architecture) = Architecture::detect(tensors.iter().map(|(k, _, _)| k.as_str())) else {
            return Err(SdError::UnknownArchitecture {
                path: path.to_path_buf(),
                found: Architecture::key_summary(tensors.iter().map(|(k, _, _)| k.as_str()), 8),
            });
        };
        let conv_in = format!("{UNET_PREFIX}input_blocks.0.0.weight");
        let unet_in_channels = tensors.iter().find(|(k, _, _)| *k == conv_in).and_then(|(_, _, s)| s.get(1)).copied().unwrap_or(4) as usize;
        count(&mut by_dtype, &tensors);
        return Ok(Inspection { path: path.to_path_buf(), format: Format::SingleFile, architecture, unet_in_channels, parameters_by_dtype: by_dtype });
    }
    if !path.join("model_index.json").is_file() {
        return Err(SdError::NotACheckpoint { path: path.to_path_buf(), reason: "a folder without model_index.json".into() });
    }
    let architecture = crate::load::folder_architecture(path)?;
    let unet_path = path.join("unet").join("config.json");
    let unet = UNet2DConditionConfig::from_json(&read(&unet_path)?).map_err(|m| SdError::config(&unet_path, m))?;
    for part in ["unet", "vae", "text_encoder", "text_encoder_2"] {
        let dir = path.join(part);
        if let Ok(files) = crate::load::weights_files(&dir, if part.starts_with("text") { "model" } else { "diffusion_pytorch_model" }) {
            for file in files {
                count(&mut by_dtype, &header(&file)?);
            }
        }
    }
    Ok(Inspection { path: path.to_path_buf(), format: Format::DiffusersFolder, architecture, unet_in_channels: unet.in_channels, parameters_by_dtype: by_dtype })
}
