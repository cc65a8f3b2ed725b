"""Makes the tiny random-weight CLIP text encoder fixture that tests Stipple's pretrained-CLIP
loading path (crates/stipple-nn/tests/fixtures/tiny-clip/), with transformers' own outputs.

Run from the repository root in a throw-away venv with torch and transformers installed:
    python tests/reference/make_clip_fixture.py

Writes config.json, model.safetensors (weights named text_model.*), tokenizer.json (a CLIP
byte-level BPE with a small vocabulary and a handful of merges, built by transformers' CLIPTokenizer),
and reference.json: the padded input ids and the last hidden state of a few prompts.
Versions used for the committed files: torch 2.15.0, transformers 5.24.0, tokenizers 0.23.3.
"""
import json
import os

import torch
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

OUT = "crates/stipple-nn/tests/fixtures/tiny-clip"
MERGES = ["r e", "re d</w>", "a p", "ap p", "app l", "appl e</w>", "a l", "al i", "ali e", "alie n</w>",
          "m o", "mo n", "mon s", "mons t", "monst e", "monste r</w>", "c a", "ca t</w>"]


def bytes_to_unicode():
    """GPT-2's reversible byte → printable-character table, which CLIP's BPE works over."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def main():
    os.makedirs(OUT, exist_ok=True)
    chars = list(bytes_to_unicode().values())
    vocab = chars + [c + "</w>" for c in chars]
    vocab += [m.replace(" ", "") for m in MERGES]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    tok = CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=[tuple(m.split()) for m in MERGES])
    tok.backend_tokenizer.save(os.path.join(OUT, "tokenizer.json"))

    torch.manual_seed(0)
    cfg = CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=12, hidden_act="quick_gelu",
                         bos_token_id=len(vocab) - 2, eos_token_id=len(vocab) - 1, pad_token_id=len(vocab) - 1)
    model = CLIPTextModel(cfg).eval()
    with torch.no_grad():  # non-trivial LayerNorm parameters, so loading them is checked
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(OUT, safe_serialization=True)

    prompts = ["a red apple", "Alien monster!", "cat", ""]
    ids = tok(prompts, padding="max_length", max_length=cfg.max_position_embeddings)["input_ids"]
    with torch.no_grad():
        hidden = model(input_ids=torch.tensor(ids)).last_hidden_state
    json.dump({"prompts": prompts, "input_ids": ids, "shape": list(hidden.shape),
               "last_hidden_state": hidden.flatten().tolist()}, open(os.path.join(OUT, "reference.json"), "w"))


if __name__ == "__main__":
    main()
