//! Prompt tokenizer: text → a fixed-length row of token ids for the text encoder.
//!
//! Any Hugging Face `tokenizer.json` works (a pretrained CLIP tokenizer, for one); Stipple's own
//! text models train a byte-level BPE (Sennrich et al. 2016; GPT-2's byte-level alphabet, as CLIP
//! uses, so no character is ever unknown) on the training captions. Every prompt is lower-cased
//! by the tokenizer's normaliser, framed as CLIP frames it — `<|startoftext|> tokens
//! <|endoftext|>` — and padded to the encoder's `max_position_embeddings` with the padding
//! token (the end token unless the tokenizer names another, as Stable Diffusion 1.x does).

use std::str::FromStr;

use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::normalizers::Lowercase;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer, TokenizerBuilder};

use crate::NnError;

/// The start token of CLIP's tokenizer, reused by Stipple's own.
pub const BOS: &str = "<|startoftext|>";
/// The end token of CLIP's tokenizer, reused by Stipple's own (also the default padding).
pub const EOS: &str = "<|endoftext|>";

/// A tokenizer with its framing tokens resolved.
#[derive(Clone)]
pub struct PromptTokenizer {
    inner: Tokenizer,
    bos: u32,
    eos: u32,
    pad: u32,
}

impl std::fmt::Debug for PromptTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PromptTokenizer {{ vocab: {}, bos: {}, eos: {}, pad: {} }}", self.vocab_size(), self.bos, self.eos, self.pad)
    }
}

impl PromptTokenizer {
    /// Reads a `tokenizer.json` document. It must know [`BOS`] and [`EOS`].
    pub fn from_json(json: &str) -> Result<Self, NnError> {
        let inner = Tokenizer::from_str(json).map_err(|e| NnError::Text(format!("tokenizer JSON does not parse: {e}")))?;
        Self::new(inner)
    }

    fn new(inner: Tokenizer) -> Result<Self, NnError> {
        let id = |t: &str| {
            inner.token_to_id(t).ok_or_else(|| NnError::Text(format!("the tokenizer has no {t} token (a CLIP-style tokenizer is expected)")))
        };
        let (bos, eos) = (id(BOS)?, id(EOS)?);
        let pad = match inner.get_padding() {
            Some(p) => inner.token_to_id(&p.pad_token).unwrap_or(eos),
            None => eos,
        };
        Ok(Self { inner, bos, eos, pad })
    }

    /// Trains a byte-level BPE of `vocab_size` entries (the 256 byte symbols, [`BOS`], [`EOS`]
    /// and learned merges) on `captions`. The result depends only on the captions and the size.
    pub fn train(captions: &[String], vocab_size: usize) -> Result<Self, NnError> {
        let alphabet = ByteLevel::alphabet();
        if vocab_size < alphabet.len() + 2 {
            return Err(NnError::Text(format!(
                "a byte-level tokenizer needs a vocabulary of at least {} (256 bytes and 2 framing tokens), got {vocab_size}",
                alphabet.len() + 2
            )));
        }
        let mut trainer = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .initial_alphabet(alphabet.into_iter().collect())
            .special_tokens(vec![AddedToken::from(BOS, true), AddedToken::from(EOS, true)])
            .build();
        let mut tokenizer = TokenizerBuilder::<BPE, Lowercase, ByteLevel, ByteLevel, ByteLevel>::new()
            .with_model(BPE::default())
            .with_normalizer(Some(Lowercase))
            .with_pre_tokenizer(Some(ByteLevel::new(true, true, true)))
            .with_post_processor(Some(ByteLevel::default()))
            .with_decoder(Some(ByteLevel::default()))
            .build()
            .map_err(|e| NnError::Text(format!("building the tokenizer: {e}")))?;
        tokenizer
            .train(&mut trainer, captions.iter())
            .map_err(|e| NnError::Text(format!("training the tokenizer: {e}")))?;
        Self::new(Tokenizer::from(tokenizer))
    }

    /// The `tokenizer.json` document (stored in model files and checkpoints).
    pub fn to_json(&self) -> Result<String, NnError> {
        self.inner.to_string(false).map_err(|e| NnError::Text(format!("serialising the tokenizer: {e}")))
    }

    /// Entries of the vocabulary, framing tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Tokens of `text` without framing (empty text gives none).
    fn tokens(&self, text: &str) -> Result<Vec<u32>, NnError> {
        let enc = self.inner.encode(text, false).map_err(|e| NnError::Text(format!("tokenizing {text:?}: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The piece of `text` each of its tokens covers (by the tokenizer's offsets), in the
    /// order of [`PromptTokenizer::encode`]'s ids after the start token; surrounding spaces
    /// trimmed. Names the maps of [`crate::CrossAttentionRecorder`] for people.
    pub fn token_texts(&self, text: &str) -> Result<Vec<String>, NnError> {
        let enc = self.inner.encode(text, false).map_err(|e| NnError::Text(format!("tokenizing {text:?}: {e}")))?;
        Ok(enc.get_offsets().iter().map(|&(a, b)| text.get(a..b).unwrap_or("").trim().to_string()).collect())
    }

    /// `[BOS, tokens…, EOS, PAD…]`, exactly `length` ids. The empty string is the
    /// unconditional input of classifier-free guidance (`[BOS, EOS, PAD…]`). A prompt longer
    /// than `length − 2` tokens is an error that says by how much, never silently cut.
    pub fn encode(&self, text: &str, length: usize) -> Result<Vec<u32>, NnError> {
        let tokens = self.tokens(text)?;
        if tokens.len() + 2 > length {
            return Err(NnError::Text(format!(
                "the prompt {text:?} is {} tokens long; this model reads at most {} (shorten it by {})",
                tokens.len(),
                length.saturating_sub(2),
                tokens.len() + 2 - length
            )));
        }
        let mut ids = Vec::with_capacity(length);
        ids.push(self.bos);
        ids.extend(tokens);
        ids.push(self.eos);
        ids.resize(length, self.pad);
        Ok(ids)
    }
}
