//! `TextEncoderConfig`: the hyper-parameters of a CLIP text transformer, under the keys of
//! Hugging Face transformers' `CLIPTextConfig` (so a pretrained CLIP `config.json` reads as is).

use serde::{Deserialize, Serialize};

use crate::NnError;

/// The activation inside the MLP of each encoder layer (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HiddenAct {
    /// `x·σ(1.702x)`, OpenAI CLIP's approximation of GELU (Hendrycks & Gimpel 2016, §2).
    QuickGelu,
    /// The exact GELU `x·Φ(x)` (OpenCLIP models).
    Gelu,
}

/// Configuration of [`crate::text::TextEncoder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextEncoderConfig {
    /// Entries of the token embedding (the tokenizer's vocabulary).
    pub vocab_size: usize,
    /// Width of every token's hidden state (the U-Net's `cross_attention_dim`).
    pub hidden_size: usize,
    /// Width of the MLP inside each layer.
    pub intermediate_size: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Heads of each self-attention (must divide `hidden_size`).
    pub num_attention_heads: usize,
    /// Tokens per prompt, framing included (CLIP: 77).
    pub max_position_embeddings: usize,
    /// MLP activation.
    pub hidden_act: HiddenAct,
    /// Epsilon of every LayerNorm (CLIP: 1e-5).
    pub layer_norm_eps: f64,
}

/// `CLIPTextConfig` keys that do not change the forward pass of the last hidden state.
const IGNORED_HF_KEYS: &[&str] = &[
    "architectures", "attention_dropout", "bos_token_id", "dropout", "eos_token_id", "initializer_factor",
    "initializer_range", "model_type", "pad_token_id", "projection_dim", "torch_dtype", "dtype",
    "transformers_version", "hidden_dropout", "use_cache",
];

impl TextEncoderConfig {
    /// The small encoder Stipple trains jointly with a U-Net: 2 layers of width `hidden`,
    /// 4 heads, an MLP 4× wide, prompts of up to `max_tokens − 2` tokens.
    pub fn small(vocab_size: usize, hidden: usize, max_tokens: usize) -> Self {
        Self {
            vocab_size,
            hidden_size: hidden,
            intermediate_size: 4 * hidden,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            max_position_embeddings: max_tokens,
            hidden_act: HiddenAct::QuickGelu,
            layer_norm_eps: 1e-5,
        }
    }

    /// Reads a transformers `config.json` of a `CLIPTextModel`, or of a whole `CLIPModel`
    /// (its `text_config`). Keys that do not affect the hidden states are ignored; any other
    /// unknown key is an error.
    pub fn from_hf_json(text: &str) -> Result<Self, NnError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| NnError::Text(format!("config.json is not valid JSON: {e}")))?;
        let mut map = match value.get("text_config").cloned().unwrap_or(value) {
            serde_json::Value::Object(m) => m,
            _ => return Err(NnError::Text("config.json must be a JSON object".into())),
        };
        map.retain(|k, _| !k.starts_with('_') && !IGNORED_HF_KEYS.contains(&k.as_str()));
        map.entry("layer_norm_eps").or_insert(serde_json::json!(1e-5));
        map.entry("hidden_act").or_insert(serde_json::json!("quick_gelu"));
        let cfg: Self = serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| NnError::Text(format!("config.json is not a CLIP text config this build reads: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks sizes; messages name the key.
    pub fn validate(&self) -> Result<(), NnError> {
        let bad = |m: String| Err(NnError::Text(m));
        if self.vocab_size == 0 || self.hidden_size == 0 || self.intermediate_size == 0 || self.num_hidden_layers == 0 {
            return bad("vocab_size, hidden_size, intermediate_size and num_hidden_layers must be at least 1".into());
        }
        if self.num_attention_heads == 0 || !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(format!(
                "num_attention_heads = {} must divide hidden_size = {}",
                self.num_attention_heads, self.hidden_size
            ));
        }
        if self.max_position_embeddings < 3 {
            return bad(format!(
                "max_position_embeddings = {} leaves no room for a prompt between the two framing tokens",
                self.max_position_embeddings
            ));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return bad(format!("layer_norm_eps must be finite and > 0, got {}", self.layer_norm_eps));
        }
        Ok(())
    }
}
