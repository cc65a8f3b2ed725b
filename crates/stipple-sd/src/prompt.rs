//! The web UI's prompt syntax: emphasis `(word)`, `[word]`, `(word:1.2)`, escapes `\(`, and
//! `BREAK`; and its way of reading prompts longer than the text encoder's 77 positions as
//! several chunks of 75 tokens.
//!
//! Source: AUTOMATIC1111 stable-diffusion-webui `modules/prompt_parser.py`
//! (`parse_prompt_attention`, `re_attention`, `re_break`) and `modules/sd_hijack_clip.py`
//! (`FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line`, with its default
//! `comma_padding_backtrack = 20`), and `modules/sd_emphasis.py` (`EmphasisOriginal`).

use crate::{ClipTokenizer, SdError};

/// `(` multiplies the weight of what it encloses by 1.1, `[` divides it by 1.1.
const ROUND: f64 = 1.1;
const SQUARE: f64 = 1.0 / 1.1;
/// Tokens per chunk between the framing tokens.
pub const CHUNK_TOKENS: usize = 75;
/// How far back (in tokens) a full chunk looks for a comma to break after.
const COMMA_BACKTRACK: usize = 20;

/// One piece of a parsed prompt: text and its weight, or a `BREAK`.
#[derive(Debug, Clone, PartialEq)]
pub enum Fragment {
    Text(String, f64),
    Break,
}

/// The `[+-]?[.\d]+` number and the `\s*\)` after it, if `s` (just after a `:`) starts with
/// `\s*number\s*)`; returns the number's text and the bytes consumed.
fn weight_suffix(s: &str) -> Option<(&str, usize)> {
    let start = s.len() - s.trim_start().len();
    let rest = &s[start..];
    let sign = rest.starts_with(['+', '-']) as usize;
    let digits = rest[sign..].find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len() - sign);
    if digits == 0 {
        return None;
    }
    let number = &rest[..sign + digits];
    let after = &rest[sign + digits..];
    let close = after.len() - after.trim_start().len();
    after[close..].starts_with(')').then_some((number, start + sign + digits + close + 1))
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits `text` at whole-word `BREAK`s, dropping the whitespace around each (`re_break`).
fn split_breaks(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut from = 0;
    let mut search = 0;
    while let Some(i) = text[search..].find("BREAK").map(|i| i + search) {
        let end = i + 5;
        let before_ok = text[..i].chars().next_back().is_none_or(|c| !is_word(c));
        let after_ok = text[end..].chars().next().is_none_or(|c| !is_word(c));
        if before_ok && after_ok {
            parts.push(text[from..i].trim_end().to_string());
            from = end + (text[end..].len() - text[end..].trim_start().len());
        }
        search = end;
    }
    parts.push(text[from..].to_string());
    parts
}

/// Parses the emphasis syntax into weighted fragments, merging neighbours of equal weight.
/// Unclosed brackets apply to the end of the prompt; brackets that close nothing are text.
pub fn parse_emphasis(text: &str) -> Vec<Fragment> {
    let mut res: Vec<(String, f64)> = Vec::new(); // weight −1 marks a BREAK
    let (mut round, mut square) = (Vec::new(), Vec::new());
    let multiply = |res: &mut Vec<(String, f64)>, from: usize, m: f64| res[from..].iter_mut().for_each(|r| r.1 *= m);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let len = c.len_utf8();
        let mut consumed = len;
        match c {
            '\\' => match rest[1..].chars().next() {
                Some(e @ ('(' | ')' | '[' | ']' | '\\')) => {
                    res.push((e.to_string(), 1.0));
                    consumed = 2;
                }
                _ => res.push((String::new(), 1.0)),
            },
            '(' => round.push(res.len()),
            '[' => square.push(res.len()),
            ':' => match weight_suffix(&rest[1..]).and_then(|(n, used)| Some((n.parse::<f64>().ok()?, used))) {
                Some((w, used)) if !round.is_empty() => {
                    let from = round.pop().unwrap_or(0);
                    multiply(&mut res, from, w);
                    consumed = 1 + used;
                }
                Some((_, used)) => {
                    push_text(&mut res, &rest[..1 + used]);
                    consumed = 1 + used;
                }
                None => push_text(&mut res, ":"),
            },
            ')' if !round.is_empty() => {
                let from = round.pop().unwrap_or(0);
                multiply(&mut res, from, ROUND);
            }
            ']' if !square.is_empty() => {
                let from = square.pop().unwrap_or(0);
                multiply(&mut res, from, SQUARE);
            }
            ')' | ']' => push_text(&mut res, &rest[..1]),
            _ => {
                let end = rest.find(['\\', '(', ')', '[', ']', ':']).unwrap_or(rest.len());
                push_text(&mut res, &rest[..end]);
                consumed = end;
            }
        }
        rest = &rest[consumed..];
    }
    for from in round {
        multiply(&mut res, from, ROUND);
    }
    for from in square {
        multiply(&mut res, from, SQUARE);
    }
    if res.is_empty() {
        res.push((String::new(), 1.0));
    }
    let mut merged: Vec<(String, f64)> = Vec::with_capacity(res.len());
    for (t, w) in res {
        match merged.last_mut() {
            Some(last) if last.1 == w => last.0.push_str(&t),
            _ => merged.push((t, w)),
        }
    }
    merged.into_iter().map(|(t, w)| if w == -1.0 && t == "BREAK" { Fragment::Break } else { Fragment::Text(t, w) }).collect()
}

/// A run of text, split at `BREAK`s (each marked by weight −1).
fn push_text(res: &mut Vec<(String, f64)>, text: &str) {
    for (i, part) in split_breaks(text).into_iter().enumerate() {
        if i > 0 {
            res.push(("BREAK".into(), -1.0));
        }
        res.push((part, 1.0));
    }
}

/// One row of the text encoder: `[BOS, 75 tokens (padded), EOS]` and a weight per position
/// (1 for the framing and padding).
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub ids: Vec<u32>,
    pub weights: Vec<f32>,
}

/// Tokens and weights of a prompt in chunks of `chunk` tokens (the web UI's 75 for a
/// 77-position encoder, [`CHUNK_TOKENS`]), as the web UI makes them: a
/// `BREAK` or a full chunk starts a new one, and a full chunk with a comma among its last 20
/// tokens moves what follows the comma to the next chunk. The empty prompt is one chunk.
/// Extra-network tags (`<lora:NAME:0.8>`) are not text: they are left out
/// ([`crate::extract_loras`]).
pub fn prompt_chunks(tokenizer: &ClipTokenizer, prompt: &str, chunk: usize) -> Result<Vec<Chunk>, SdError> {
    let (prompt, _) = crate::extract_loras(prompt)?;
    let comma = tokenizer.token_id(",</w>");
    let mut b = Builder { tokenizer, chunk, chunks: Vec::new(), ids: Vec::new(), weights: Vec::new(), last_comma: None };
    for fragment in parse_emphasis(&prompt) {
        let (text, weight) = match fragment {
            Fragment::Break => {
                b.close();
                continue;
            }
            Fragment::Text(t, w) => (t, w as f32),
        };
        for token in tokenizer.tokens(&text)? {
            if Some(token) == comma {
                b.last_comma = Some(b.ids.len());
            } else if let Some(at) = b.last_comma.filter(|&at| b.ids.len() == chunk && b.ids.len() - at <= COMMA_BACKTRACK) {
                let (ids, weights) = (b.ids.split_off(at + 1), b.weights.split_off(at + 1));
                b.close();
                (b.ids, b.weights) = (ids, weights);
            }
            if b.ids.len() == chunk {
                b.close();
            }
            b.ids.push(token);
            b.weights.push(weight);
        }
    }
    if !b.ids.is_empty() || b.chunks.is_empty() {
        b.close();
    }
    Ok(b.chunks)
}

/// The chunk being filled and those done.
struct Builder<'a> {
    tokenizer: &'a ClipTokenizer,
    chunk: usize,
    chunks: Vec<Chunk>,
    ids: Vec<u32>,
    weights: Vec<f32>,
    /// Position of the last comma in the current chunk.
    last_comma: Option<usize>,
}

impl Builder<'_> {
    fn close(&mut self) {
        let (ids, weights) = (std::mem::take(&mut self.ids), std::mem::take(&mut self.weights));
        self.chunks.push(self.tokenizer.frame(ids, weights, self.chunk));
        self.last_comma = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str, w: f64) -> Fragment {
        Fragment::Text(s.into(), w)
    }

    fn assert_fragments(got: Vec<Fragment>, want: Vec<Fragment>) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(&want) {
            match (g, w) {
                (Fragment::Text(a, x), Fragment::Text(b, y)) => assert!(a == b && (x - y).abs() < 1e-12, "{got:?} vs {want:?}"),
                (Fragment::Break, Fragment::Break) => {}
                _ => panic!("{got:?} vs {want:?}"),
            }
        }
    }

    /// The examples of the web UI's own `parse_prompt_attention` docstring.
    #[test]
    fn emphasis_as_the_web_ui_parses_it() {
        assert_fragments(parse_emphasis("normal text"), vec![t("normal text", 1.0)]);
        assert_fragments(parse_emphasis("an (important) word"), vec![t("an ", 1.0), t("important", 1.1), t(" word", 1.0)]);
        assert_fragments(parse_emphasis("(unbalanced"), vec![t("unbalanced", 1.1)]);
        assert_fragments(parse_emphasis(r"\(literal\]"), vec![t("(literal]", 1.0)]);
        assert_fragments(parse_emphasis("(unnecessary)(parens)"), vec![t("unnecessaryparens", 1.1)]);
        assert_fragments(
            parse_emphasis("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky)))."),
            vec![
                t("a ", 1.0),
                t("house", 1.5730000000000004),
                t(" ", 1.1),
                t("on", 1.0),
                t(" a ", 1.1),
                t("hill", 0.55),
                t(", sun, ", 1.1),
                t("sky", 1.4641000000000006),
                t(".", 1.1),
            ],
        );
    }

    #[test]
    fn breaks_colons_and_stray_brackets() {
        assert_fragments(parse_emphasis("a cat BREAK a dog"), vec![t("a cat", 1.0), Fragment::Break, t("a dog", 1.0)]);
        assert_fragments(parse_emphasis("BREAKFAST"), vec![t("BREAKFAST", 1.0)]);
        assert_fragments(parse_emphasis("ratio 16:9"), vec![t("ratio 16:9", 1.0)]);
        assert_fragments(parse_emphasis("x:2) y]"), vec![t("x:2) y]", 1.0)]);
        assert_fragments(parse_emphasis("[[a]]"), vec![t("a", 1.0 / 1.1 / 1.1)]);
        assert_fragments(parse_emphasis(""), vec![t("", 1.0)]);
    }
}
