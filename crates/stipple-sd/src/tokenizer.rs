//! CLIP's byte-level BPE tokenizer (Radford et al. 2021) from a `vocab.json` and a
//! `merges.txt`, the files of a diffusers folder's `tokenizer/`.
//!
//! Source: OpenAI CLIP `clip/simple_tokenizer.py` as Hugging Face tokenizers runs it
//! (transformers `convert_slow_tokenizer.CLIPConverter`, the `tokenizer.json` of every
//! `CLIPTokenizer` in transformers 5): text → NFC → runs of whitespace to one space →
//! lower case; split into the pieces matched by CLIP's pattern
//! `'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+` (all else, whitespace, dropped);
//! each piece mapped to GPT-2's printable byte alphabet and merged by BPE with `</w>` marking
//! the end of a word. A prompt is framed `<|startoftext|> … <|endoftext|>` and padded to the
//! text encoder's length with the padding token (`<|endoftext|>` in SD 1.x, `!` in SD 2.x);
//! longer prompts are cut to fit, as diffusers' pipelines do (`truncation=True`).
//!
//! Built on the `tokenizers` crate, which runs this exact pipeline (its `fancy-regex` backend
//! handles the Unicode classes), rather than a port of the BPE loop.

use std::path::Path;

use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::replace::ReplacePattern;
use tokenizers::normalizers::{Lowercase, Replace, Sequence as NormalizerSequence, NFC};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, NormalizerWrapper, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use crate::SdError;

/// CLIP's start-of-text token.
pub const BOS: &str = "<|startoftext|>";
/// CLIP's end-of-text token (also the unknown token, and SD 1.x's padding).
pub const EOS: &str = "<|endoftext|>";
/// CLIP's pre-tokenization pattern (`simple_tokenizer.py`, without the special tokens, which
/// the tokenizer matches as added tokens).
const PATTERN: &str = r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

/// The CLIP tokenizer with its framing and padding tokens resolved.
#[derive(Clone)]
pub struct ClipTokenizer {
    inner: Tokenizer,
    bos: u32,
    eos: u32,
    pad: u32,
}

impl std::fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClipTokenizer {{ vocab: {}, bos: {}, eos: {}, pad: {} }}", self.vocab_size(), self.bos, self.eos, self.pad)
    }
}

fn tok_err(what: &str, e: impl std::fmt::Display) -> SdError {
    SdError::Invalid(format!("CLIP tokenizer: {what}: {e}"))
}

impl ClipTokenizer {
    /// Reads `dir/vocab.json` and `dir/merges.txt`, and the padding token from
    /// `dir/tokenizer_config.json` or `dir/special_tokens_map.json` when present
    /// (default [`EOS`]).
    pub fn from_dir(dir: &Path) -> Result<Self, SdError> {
        let (vocab, merges) = (dir.join("vocab.json"), dir.join("merges.txt"));
        for p in [&vocab, &merges] {
            if !p.is_file() {
                return Err(SdError::MissingTokenizer { path: p.clone(), hint: String::new() });
            }
        }
        let pad = pad_token(dir)?;
        let (v, m) = (vocab.to_string_lossy(), merges.to_string_lossy());
        let bpe = BPE::from_file(&v, &m)
            .end_of_word_suffix("</w>".into())
            .continuing_subword_prefix(String::new())
            .unk_token(EOS.into())
            .build()
            .map_err(|e| tok_err(&format!("reading {} and {}", vocab.display(), merges.display()), e))?;
        Self::from_bpe(bpe, &pad)
    }

    fn from_bpe(bpe: BPE, pad: &str) -> Result<Self, SdError> {
        let mut inner = Tokenizer::new(bpe);
        let normalizer = NormalizerSequence::new(vec![
            NormalizerWrapper::NFC(NFC),
            NormalizerWrapper::Replace(Replace::new(ReplacePattern::Regex(r"\s+".into()), " ").map_err(|e| tok_err("pattern", e))?),
            NormalizerWrapper::Lowercase(Lowercase),
        ]);
        let split = Split::new(SplitPattern::Regex(PATTERN.into()), SplitDelimiterBehavior::Removed, true)
            .map_err(|e| tok_err("pattern", e))?;
        let pre = PreTokenizerSequence::new(vec![
            PreTokenizerWrapper::Split(split),
            PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
        ]);
        inner.with_normalizer(Some(normalizer)).map_err(|e| tok_err("normalizer", e))?;
        inner.with_pre_tokenizer(Some(pre));
        // The padding token is a special token too, as in transformers: SD 2.x's "!" is then
        // matched anywhere in a prompt as its own token ("!!" → "!", "!"), which diffusers'
        // SD 2.x pipelines feed the text encoder.
        let mut special = vec![AddedToken::from(BOS, true), AddedToken::from(EOS, true)];
        if pad != BOS && pad != EOS {
            special.push(AddedToken::from(pad, true));
        }
        inner.add_special_tokens(special).map_err(|e| tok_err("special tokens", e))?;
        let id = |t: &str| inner.token_to_id(t).ok_or_else(|| SdError::Invalid(format!("CLIP tokenizer: the vocabulary has no {t:?} token")));
        let (bos, eos, pad) = (id(BOS)?, id(EOS)?, id(pad)?);
        Ok(Self { inner, bos, eos, pad })
    }

    /// Entries of the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The padding token id.
    pub fn pad_id(&self) -> u32 {
        self.pad
    }

    /// The tokens of `text`, unframed and uncut.
    pub fn tokens(&self, text: &str) -> Result<Vec<u32>, SdError> {
        let enc = self.inner.encode(text, false).map_err(|e| tok_err(&format!("tokenizing {text:?}"), e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The text of token `id` for people: its vocabulary entry without the end-of-word mark
    /// `</w>` (byte-level pieces as the vocabulary spells them).
    pub fn token_text(&self, id: u32) -> String {
        let piece = self.inner.id_to_token(id).unwrap_or_default();
        piece.strip_suffix("</w>").unwrap_or(&piece).to_string()
    }

    /// Whether `id` is the end-of-text token.
    pub fn is_eos(&self, id: u32) -> bool {
        id == self.eos
    }

    /// The id of a vocabulary entry (`",</w>"`, …).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// `[BOS, ids…, EOS, PAD…]` of `chunk + 2` positions with `weights` for `ids` and 1 for
    /// the rest (`ids.len() ≤ chunk`).
    pub(crate) fn frame(&self, ids: Vec<u32>, weights: Vec<f32>, chunk: usize) -> crate::prompt::Chunk {
        let mut row = Vec::with_capacity(chunk + 2);
        row.push(self.bos);
        row.extend(ids);
        row.push(self.eos);
        row.resize(chunk + 2, self.pad);
        let mut w = Vec::with_capacity(chunk + 2);
        w.push(1.0);
        w.extend(weights);
        w.resize(chunk + 2, 1.0);
        crate::prompt::Chunk { ids: row, weights: w }
    }

    /// `[BOS, tokens…, EOS, PAD…]`, exactly `length` ids; tokens beyond `length − 2` are cut
    /// (diffusers' `tokenizer(…, padding="max_length", truncation=True)`).
    pub fn encode(&self, text: &str, length: usize) -> Result<Vec<u32>, SdError> {
        if length < 2 {
            return Err(SdError::Invalid(format!("a CLIP token row needs room for 2 framing tokens, got length {length}")));
        }
        let tokens = self.tokens(text)?;
        let mut ids = Vec::with_capacity(length);
        ids.push(self.bos);
        ids.extend(tokens.iter().take(length - 2));
        ids.push(self.eos);
        ids.resize(length, self.pad);
        Ok(ids)
    }
}

/// The `pad_token` of `tokenizer_config.json` (or `special_tokens_map.json`): a string or
/// `{"content": …}`; [`EOS`] when neither file names one.
fn pad_token(dir: &Path) -> Result<String, SdError> {
    for name in ["tokenizer_config.json", "special_tokens_map.json"] {
        let path = dir.join(name);
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| SdError::config(&path, format!("not valid JSON: {e}")))?;
        match v.get("pad_token") {
            Some(serde_json::Value::String(s)) => return Ok(s.clone()),
            Some(o) => {
                if let Some(s) = o.get("content").and_then(|c| c.as_str()) {
                    return Ok(s.to_string());
                }
            }
            None => {}
        }
    }
    Ok(EOS.to_string())
}
