"""Makes the tiny random-weight CLIP fixture for Stipple's CLIP score
(crates/stipple-eval/tests/clip_reference.rs), with transformers' own embeddings and scores.

Run from the repository root in a venv with tests/reference/requirements-clip.txt installed:
    python tests/reference/make_clip_reference.py

Writes tests/fixtures/clip/:
- tiny-clip/: a `CLIPModel` folder as transformers saves it (config.json with text_config,
  vision_config and projection_dim; model.safetensors with text_model.*, vision_model.*,
  text_projection.weight, visual_projection.weight), the tokenizer as vocab.json + merges.txt
  (CLIP's real byte-level BPE cut to its first 500 merges, built by make_sd_fixture.py's
  `clip_tokenizer` from the copy of CLIP's merges in the open_clip_torch wheel) and the
  preprocessor_config.json of a `CLIPImageProcessor` (shortest edge 16, centre crop 16×16,
  OpenAI CLIP's mean and std).
- images/: four 16×16 PNGs (one greyscale), an 11×13 and a 30×23 PNG that the processor
  resizes (bicubic, shortest edge to 16: 16×18 and 20×16) and centre-crops, and labels.csv
  (file,caption).
- reference.json: the token ids of each prompt; per image, the pixel_values of
  `CLIPImageProcessorPil` (PIL's bicubic resize, which Stipple implements) and their
  `get_image_features`, and the same from transformers 5's default `CLIPImageProcessor`
  (torchvision backend, whose uint8 bicubic can round a resized pixel one level apart); per
  prompt, `get_text_features`; the cosine of every image–prompt pair; and the CLIP scores of
  the two pairings the tests use.

CLIP score (Hessel et al. 2021, "CLIPScore", eq. 1, with torchmetrics' weight w = 100 in
place of 2.5): per image–text pair 100·max(cos(E_I, E_C), 0), averaged over the pairs.
torchmetrics (`functional/multimodal/clip_score.py`) clamps the mean of 100·cos instead of
each pair; both are recorded (they differ only when some cosine is negative, as it is here
for random weights). torchmetrics is not installed: the formulas are written out below.
"""
import csv
import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPImageProcessor, CLIPImageProcessorPil, CLIPModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_sd_fixture import clip_tokenizer  # noqa: E402

OUT = "tests/fixtures/clip"
FOLDER = os.path.join(OUT, "tiny-clip")
IMAGES = os.path.join(OUT, "images")
# Text positions: 16, so a prompt of more than 14 tokens does not fit (the test of that error).
MAX_POSITIONS = 16
CAPTIONS = {
    "apple.png": "a red apple",
    "cat.png": "a photo of a cat",
    "grey.png": "Alien monster!",
    "noise.png": "static noise",
    "small.png": "a small blue square",
    "wide.png": "a watercolor lighthouse at dusk",
}
PROMPT = "a photo of a cat"


def make_images():
    """Deterministic images with edges and texture, so resizing and patches matter."""
    os.makedirs(IMAGES, exist_ok=True)
    g = np.random.default_rng(7)
    yy, xx = np.mgrid[0:16, 0:16]
    disc = ((xx - 7.5) ** 2 + (yy - 8.5) ** 2 < 30).astype(float)
    apple = np.stack([0.2 + 0.7 * disc, 0.15 + 0.1 * (1 - disc), 0.1 + 0.05 * xx / 15], axis=-1)
    Image.fromarray((apple * 255).round().astype(np.uint8), "RGB").save(os.path.join(IMAGES, "apple.png"))
    stripes = np.stack([(xx // 3 % 2) * 0.8 + 0.1, (yy / 15) ** 2, 0.5 + 0.4 * np.sin(xx + yy)], axis=-1)
    Image.fromarray((stripes * 255).round().astype(np.uint8), "RGB").save(os.path.join(IMAGES, "cat.png"))
    grey = (xx * 13 + yy * 3) % 256
    Image.fromarray(grey.astype(np.uint8), "L").save(os.path.join(IMAGES, "grey.png"))
    Image.fromarray(g.integers(0, 256, (16, 16, 3), dtype=np.uint8), "RGB").save(os.path.join(IMAGES, "noise.png"))
    wy, wx = np.mgrid[0:23, 0:30]
    wide = np.stack([(wx // 4 + wy // 5) % 2 * 0.7 + 0.15, wx / 29, 0.5 + 0.45 * np.cos(0.7 * wy)], axis=-1)
    wide = np.clip(wide + 0.05 * g.standard_normal(wide.shape), 0, 1)
    Image.fromarray((wide * 255).round().astype(np.uint8), "RGB").save(os.path.join(IMAGES, "wide.png"))
    sy, sx = np.mgrid[0:13, 0:11]
    small = np.stack([0.1 + 0.05 * sx, (sx + sy) % 3 / 2, 0.9 - 0.02 * sy], axis=-1)
    Image.fromarray((small * 255).round().astype(np.uint8), "RGB").save(os.path.join(IMAGES, "small.png"))
    with open(os.path.join(IMAGES, "labels.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["file", "caption"])
        for name, caption in CAPTIONS.items():
            w.writerow([name, caption])


def f32(t):
    """A float32 tensor as nested lists of the shortest decimals that read back as the same
    float32 values (about half the digits of float64's)."""
    return np.vectorize(lambda v: float(str(np.float32(v))), otypes=[object])(t.numpy()).tolist()


def make_model(vocab):
    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         max_position_embeddings=MAX_POSITIONS, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                         bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=vocab - 1),
        # GELU in the vision tower (quick GELU in the text one), so both activations are checked.
        vision_config=dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, image_size=16,
                           patch_size=4, hidden_act="gelu", layer_norm_eps=1e-5),
        projection_dim=16,
    )
    model = CLIPModel(cfg).eval()
    with torch.no_grad():  # non-trivial LayerNorm parameters and a larger class embedding, so loading them is checked
        for name, p in model.named_parameters():
            if "layer_norm" in name or "layrnorm" in name:
                p.add_(0.1 * torch.randn_like(p))
        model.vision_model.embeddings.class_embedding.mul_(5.0)
    model.save_pretrained(FOLDER, safe_serialization=True)
    return model


def main():
    os.makedirs(FOLDER, exist_ok=True)
    build = os.path.join(OUT, "build-tokenizer")
    tok = clip_tokenizer(build, n_merges=500)
    for name in ("vocab.json", "merges.txt"):
        os.replace(os.path.join(build, name), os.path.join(FOLDER, name))
    for name in os.listdir(build):
        os.remove(os.path.join(build, name))
    os.rmdir(build)
    make_images()
    model = make_model(len(tok))
    proc = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    proc.save_pretrained(FOLDER)
    proc_pil = CLIPImageProcessorPil(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})

    names = list(CAPTIONS)
    images = [Image.open(os.path.join(IMAGES, n)).convert("RGB") for n in names]
    # The references are computed from CLIPImageProcessorPil's pixels (PIL's bicubic, which
    # Stipple implements); the default torchvision backend's pixels and features are kept too.
    pixels = proc_pil(images=images, return_tensors="pt")["pixel_values"]
    pixels_tv = proc(images=images, return_tensors="pt")["pixel_values"]
    prompts = sorted(set(CAPTIONS.values()) | {PROMPT, ""})  # and the empty prompt
    ids = tok(prompts, padding="max_length", max_length=MAX_POSITIONS)["input_ids"]
    with torch.no_grad():
        img = model.get_image_features(pixel_values=pixels).pooler_output
        img_tv = model.get_image_features(pixel_values=pixels_tv).pooler_output
        txt = model.get_text_features(input_ids=torch.tensor(ids)).pooler_output
    cos = torch.nn.functional.normalize(img, dim=-1) @ torch.nn.functional.normalize(txt, dim=-1).T

    def scores(pairs):
        c = torch.stack([cos[i, j] for i, j in pairs]).double()
        per = 100 * c.clamp(min=0)
        return {"per_pair": per.tolist(), "mean": per.mean().item(), "std": per.std(unbiased=True).item(),
                "torchmetrics": max(100 * c.mean().item(), 0.0)}

    one = scores([(i, prompts.index(PROMPT)) for i in range(len(names))])
    own = scores([(i, prompts.index(CAPTIONS[n])) for i, n in enumerate(names)])
    ref = {
        "images": names,
        "prompts": prompts,
        "input_ids": ids,
        "pixel_values": f32(pixels.flatten(1)),
        "pixel_values_torchvision": f32(pixels_tv.flatten(1)),
        "image_embeds": f32(img),
        "image_embeds_torchvision": f32(img_tv),
        "text_embeds": f32(txt),
        "cosine": f32(cos),
        "one_prompt": {"prompt": PROMPT, **one},
        "own_captions": own,
    }
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(ref, f)
    print("cosines", cos)
    print("one prompt", one)
    print("own captions", own)
    d = (pixels - pixels_tv).abs()
    print("torchvision vs PIL pixel values: max |Δ|", d.max().item(), "values differing by > 1e-6 per image:", (d.flatten(1) > 1e-6).sum(dim=1).tolist())
    print("torchvision vs PIL image features: max |Δ|", (img - img_tv).abs().max().item())


if __name__ == "__main__":
    main()
