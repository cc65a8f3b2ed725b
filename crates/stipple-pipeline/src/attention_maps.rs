//! The per-token cross-attention maps of one generated image, for people and front ends.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::PipelineError;

/// DAAM maps (Tang et al. 2022, §3.1) of one image: for each token of its prompt, the
/// cross-attention it received at every pixel, averaged over heads, layers and sampling
/// steps (see [`stipple_nn::CrossAttentionRecorder`]). The start, end and padding tokens are
/// left out: they absorb most attention without saying where a word painted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenMaps {
    /// The piece of the prompt each map belongs to.
    pub tokens: Vec<String>,
    pub width: usize,
    pub height: usize,
    /// One row-major `height × width` map per token, values in [0, 1].
    pub maps: Vec<Vec<f32>>,
}

impl TokenMaps {
    /// The maps of `tokens` from one image's recorded maps `(M, H, W)`, whose row 0 is the
    /// start token and rows `1..=tokens.len()` the prompt's tokens.
    pub fn from_recorded(tokens: Vec<String>, recorded: &Tensor) -> Result<Self, PipelineError> {
        Self::from_positions(tokens.into_iter().enumerate().map(|(i, t)| (i + 1, t)).collect(), recorded)
    }

    /// The maps of the tokens at the given rows of one image's recorded maps `(M, H, W)`
    /// (a Stable Diffusion prompt of several chunks has a start token in each).
    pub fn from_positions(tokens: Vec<(usize, String)>, recorded: &Tensor) -> Result<Self, PipelineError> {
        let (m, height, width) = recorded.dims3()?;
        if let Some((row, _)) = tokens.iter().find(|(row, _)| *row >= m) {
            return Err(PipelineError::bad("attention", format!("token row {row} does not fit {m} recorded maps")));
        }
        if tokens.is_empty() {
            return Ok(Self { tokens: vec![], width, height, maps: vec![] });
        }
        let rows: Vec<u32> = tokens.iter().map(|(row, _)| *row as u32).collect();
        let index = Tensor::from_vec(rows, tokens.len(), recorded.device())?;
        let maps = recorded.index_select(&index, 0)?.flatten_from(1)?.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
        Ok(Self { tokens: tokens.into_iter().map(|(_, t)| t).collect(), width, height, maps })
    }
}
