//! Weights I/O: `.safetensors` files with string metadata, and checked loading of a U-Net.
//!
//! Format: <https://github.com/huggingface/safetensors> (8-byte little-endian header length,
//! a JSON header with `dtype`/`shape`/`data_offsets` per tensor and an optional
//! `__metadata__` string map, then the raw little-endian data).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use candle_core::safetensors::Load;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use safetensors::SafeTensors;

use crate::{NnError, UNet2D, UNetConfig};

/// The largest header we accept (the `safetensors` crate's own limit).
const MAX_HEADER: u64 = 100_000_000;
/// How many problems of each kind a mismatch message lists.
const LIST: usize = 5;

/// Writes `tensors` and `metadata` to `path` atomically: to a temporary file in the same
/// folder, synced, then renamed over `path` (a crash never leaves a torn file).
pub fn save_safetensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &HashMap<String, String>,
) -> Result<(), NnError> {
    let mut seen = std::collections::HashSet::new();
    let mut host = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        if !seen.insert(name.as_str()) {
            return Err(NnError::WeightsMismatch {
                path: path.to_path_buf(),
                details: format!("tensor name {name:?} appears twice"),
            });
        }
        // Move to the host first so the serializer's infallible `View::data` cannot fail.
        host.push((name.as_str(), t.to_device(&Device::Cpu)?.contiguous()?));
    }
    let bytes = safetensors::serialize(host.iter().map(|(n, t)| (*n, t)), Some(metadata.clone()))
        .map_err(|e| NnError::Config(format!("cannot serialize tensors for {}: {e}", path.display())))?;
    let tmp = temp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        NnError::io(path, e)
    })
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

fn not_st(path: &Path, reason: impl Into<String>) -> NnError {
    NnError::NotSafetensors { path: path.to_path_buf(), reason: reason.into() }
}

/// Reads only the header of a `.safetensors` file and returns its `__metadata__` map
/// (empty when the file has none).
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>, NnError> {
    let mut f = std::fs::File::open(path).map_err(|e| NnError::io(path, e))?;
    let len = f.metadata().map_err(|e| NnError::io(path, e))?.len();
    let mut n_bytes = [0u8; 8];
    if len < 8 {
        return Err(not_st(path, format!("the file is {len} bytes, shorter than the 8-byte header length")));
    }
    f.read_exact(&mut n_bytes).map_err(|e| NnError::io(path, e))?;
    let n = u64::from_le_bytes(n_bytes);
    if n > MAX_HEADER || n + 8 > len {
        return Err(not_st(path, format!("the header claims {n} bytes but the file has {len}")));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(|e| NnError::io(path, e))?;
    let json: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| not_st(path, format!("the header is not JSON: {e}")))?;
    let serde_json::Value::Object(map) = json else {
        return Err(not_st(path, "the header is not a JSON object"));
    };
    // The tensors' byte ranges must end exactly where the file does: a cut-off download
    // or copy is caught here without reading the data.
    let data_end = map
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    if 8 + n + data_end != len {
        return Err(not_st(
            path,
            format!("the header describes {} bytes of tensor data but the file holds {}", data_end, len - 8 - n),
        ));
    }
    match map.get("__metadata__") {
        None | Some(serde_json::Value::Null) => Ok(HashMap::new()),
        Some(serde_json::Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(not_st(path, format!("metadata value of {k:?} is not a string"))),
            })
            .collect(),
        Some(_) => Err(not_st(path, "__metadata__ is not a string map")),
    }
}

/// Loads every tensor of a `.safetensors` file onto `device`, keeping its dtype.
pub fn load_tensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>, NnError> {
    let bytes = std::fs::read(path).map_err(|e| NnError::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| not_st(path, e.to_string()))?;
    let mut out = HashMap::with_capacity(st.len());
    for (name, view) in st.tensors() {
        let t = view
            .load(device)
            .map_err(|e| not_st(path, format!("tensor {name:?}: {e}")))?;
        out.insert(name, t);
    }
    Ok(out)
}

/// Compares a tensor set with the parameters `cfg` needs: missing names, unexpected names
/// and wrong shapes, each listing up to a few with expected vs found.
/// `path` is only used for the error message.
pub fn check_unet_tensors(
    tensors: &HashMap<String, Tensor>,
    cfg: &UNetConfig,
    path: &Path,
) -> Result<(), NnError> {
    check_tensors(tensors, UNet2D::parameter_shapes(cfg)?, path)
}

/// Compares a tensor set with the `expected` names and shapes (see [`check_unet_tensors`]).
pub fn check_tensors(
    tensors: &HashMap<String, Tensor>,
    expected: Vec<(String, Vec<usize>)>,
    path: &Path,
) -> Result<(), NnError> {
    let expected: BTreeMap<String, Vec<usize>> = expected.into_iter().collect();
    let mut missing: Vec<&String> = expected.keys().filter(|k| !tensors.contains_key(*k)).collect();
    let mut unexpected: Vec<&String> = tensors.keys().filter(|k| !expected.contains_key(*k)).collect();
    let mut wrong: Vec<String> = expected
        .iter()
        .filter_map(|(k, shape)| {
            let t = tensors.get(k)?;
            (t.dims() != shape.as_slice())
                .then(|| format!("{k}: expected {shape:?}, found {:?}", t.dims()))
        })
        .collect();
    missing.sort();
    unexpected.sort();
    wrong.sort();
    let mut parts = Vec::new();
    let list = |v: Vec<String>| {
        let more = v.len().saturating_sub(LIST);
        let mut s = v.into_iter().take(LIST).collect::<Vec<_>>().join(", ");
        if more > 0 {
            s.push_str(&format!(" and {more} more"));
        }
        s
    };
    if !missing.is_empty() {
        let n = missing.len();
        parts.push(format!("{n} missing ({})", list(missing.into_iter().map(|k| format!("{k} {:?}", expected[k])).collect())));
    }
    if !unexpected.is_empty() {
        let n = unexpected.len();
        parts.push(format!(
            "{n} unexpected ({})",
            list(unexpected.into_iter().map(|k| format!("{k} {:?}", tensors[k].dims())).collect())
        ));
    }
    if !wrong.is_empty() {
        parts.push(format!("{} with the wrong shape ({})", wrong.len(), list(wrong)));
    }
    if parts.is_empty() {
        Ok(())
    } else {
        Err(NnError::WeightsMismatch { path: path.to_path_buf(), details: parts.join("; ") })
    }
}

/// Builds a [`UNet2D`] from a tensor set after checking it against `cfg` (see
/// [`check_unet_tensors`]); tensors are converted to f32 on `device`.
pub fn unet_from_tensors(
    tensors: HashMap<String, Tensor>,
    cfg: &UNetConfig,
    device: &Device,
) -> Result<UNet2D, NnError> {
    check_unet_tensors(&tensors, cfg, Path::new("<tensors>"))?;
    let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
    Ok(UNet2D::new(vb, cfg)?)
}

/// [`load_tensors`] + [`unet_from_tensors`], with the file's path in any mismatch message.
pub fn load_unet(path: &Path, cfg: &UNetConfig, device: &Device) -> Result<UNet2D, NnError> {
    let tensors = load_tensors(path, device)?;
    check_unet_tensors(&tensors, cfg, path)?;
    let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
    Ok(UNet2D::new(vb, cfg)?)
}
