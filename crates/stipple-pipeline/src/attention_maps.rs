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
        let (m, height, width) = recorded.dims3()?;
        if tokens.len() + 1 > m {
            return Err(PipelineError::bad("attention", format!("{} tokens do not fit {m} recorded maps", tokens.len())));
        }
        let maps = recorded.narrow(0, 1, tokens.len())?.flatten_from(1)?.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
        Ok(Self { tokens, width, height, maps })
    }
}
