//! The web UI's prompt syntax on the SD 1.x fixture: emphasis weights land on the right
//! tokens, long prompts become 75-token chunks, and a plain prompt is unchanged.

mod common;

use candle_core::{Device, Tensor, D};
use common::*;
use stipple_sd::prompt::{prompt_chunks, CHUNK_TOKENS};
use stipple_sd::SdPipeline;

fn pipeline() -> SdPipeline {
    SdPipeline::load(&folder(), &Device::Cpu).unwrap()
}

#[test]
fn plain_prompt_equals_the_diffusers_encoding() {
    let sd = pipeline();
    let plain = sd.encode_prompt(&["a watercolor lighthouse at dusk"], 1).unwrap();
    let weighted = sd.encode_weighted("a watercolor lighthouse at dusk", 1).unwrap().context;
    assert_eq!(max_abs_diff(&plain, &weighted), 0.0);
}

#[test]
fn emphasis_scales_its_tokens_and_keeps_the_mean() {
    let sd = pipeline();
    let z = sd.encode_prompt(&["a cat"], 1).unwrap(); // [BOS, a, cat, EOS, PAD…]
    let got = sd.encode_weighted("a (cat:1.5)", 1).unwrap().context;
    let mut w = vec![1f32; 77];
    w[2] = 1.5;
    let weighted = z.broadcast_mul(&Tensor::from_vec(w, (1, 77, 1), &Device::Cpu).unwrap()).unwrap();
    let want = weighted.broadcast_mul(&(z.mean_all().unwrap() / weighted.mean_all().unwrap()).unwrap()).unwrap();
    assert!(max_abs_diff(&got, &want) < 1e-6);
    let mean = |t: &Tensor| t.mean_all().unwrap().to_scalar::<f32>().unwrap();
    assert!((mean(&got) - mean(&z)).abs() < 1e-6);
}

#[test]
fn long_prompts_become_chunks_broken_after_a_comma() {
    let sd = pipeline();
    let m = meta();
    let long = m["prompts"][5].as_str().unwrap();
    let n_tokens = sd.tokenizer.tokens(long).unwrap().len();
    assert!(n_tokens > 2 * CHUNK_TOKENS, "the fixture's long prompt has {n_tokens} tokens");
    let chunks = prompt_chunks(&sd.tokenizer, long, CHUNK_TOKENS).unwrap();
    assert_eq!(chunks.len(), 3);
    let comma = sd.tokenizer.token_id(",</w>").unwrap();
    let eos = sd.tokenizer.token_id(stipple_sd::EOS).unwrap();
    for c in &chunks {
        assert_eq!(c.ids.len(), 77);
        let end = c.ids.iter().skip(1).position(|&t| t == eos).unwrap() + 1;
        assert!(end <= 76);
    }
    // The full first chunk was cut after its last comma (within 20 tokens of the end).
    let first_end = chunks[0].ids.iter().skip(1).position(|&t| t == eos).unwrap();
    assert_eq!(chunks[0].ids[first_end], comma);
    assert!(first_end > CHUNK_TOKENS - 20);
    // Every token is kept, in order.
    let kept: Vec<u32> = chunks.iter().flat_map(|c| c.ids[1..].iter().take_while(|&&t| t != eos).copied().collect::<Vec<_>>()).collect();
    assert_eq!(kept, sd.tokenizer.tokens(long).unwrap());
    let z = sd.encode_weighted(long, 1).unwrap().context;
    assert_eq!(z.dims(), &[1, 3 * 77, 8]);
}

#[test]
fn break_starts_a_chunk_and_pairs_get_equal_lengths() {
    let sd = pipeline();
    let chunks = prompt_chunks(&sd.tokenizer, "a cat BREAK a dog", CHUNK_TOKENS).unwrap();
    assert_eq!(chunks.len(), 2);
    let (c, u) = sd.encode_weighted_pair("a cat BREAK a dog", "blurry", 1).unwrap();
    let (c, u) = (c.context, u.context);
    assert_eq!(c.dims(), &[1, 154, 8]);
    assert_eq!(u.dims(), c.dims());
    // The negative's second chunk is the empty prompt's encoding.
    let empty = sd.encode_prompt(&[""], 1).unwrap();
    assert_eq!(max_abs_diff(&u.narrow(D::Minus2, 77, 77).unwrap(), &empty), 0.0);
}

/// On SDXL a plain prompt gives exactly diffusers' conditioning (both encoders' penultimate
/// states and the pooled embedding), and emphasis changes the context but not the pooled one.
#[test]
fn sdxl_plain_prompt_equals_the_diffusers_encoding() {
    let sd = SdPipeline::load(&repo().join("tests/fixtures/sd/tiny-sdxl"), &Device::Cpu).unwrap();
    let plain = sd.encode(&["a watercolor lighthouse at dusk"], 1).unwrap();
    let weighted = sd.encode_weighted("a watercolor lighthouse at dusk", 1).unwrap();
    assert_eq!(max_abs_diff(&plain.context, &weighted.context), 0.0);
    assert_eq!(max_abs_diff(plain.pooled.as_ref().unwrap(), weighted.pooled.as_ref().unwrap()), 0.0);
    let emphasised = sd.encode_weighted("a watercolor (lighthouse:1.4) at dusk", 1).unwrap();
    assert!(max_abs_diff(&emphasised.context, &plain.context) > 1e-4);
    let (c, u) = sd.encode_weighted_pair("a cat BREAK a dog", "blurry", 1).unwrap();
    assert_eq!((c.context.dims(), u.context.dims()), (&[1, 154, 16][..], &[1, 154, 16][..]));
    assert_eq!(c.pooled.unwrap().dims(), &[1, 8]);
}
