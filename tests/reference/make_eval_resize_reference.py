"""PyTorch's bilinear resize to 299×299 as pytorch-fid applies it (`F.interpolate(...,
mode='bilinear', align_corners=False)`) on images larger and smaller than 299 px, for
crates/stipple-eval/tests/resize_reference.rs.

Run from the repository root in a venv with tests/reference/requirements-eval.txt:
    python tests/reference/make_eval_resize_reference.py

Writes crates/stipple-eval/tests/fixtures/resize/: large.png (333×421, blocks with a fine
checkerboard) and small.png (45×37), and reference.json: for each, every 97th value of the resized
(3, 299, 299) tensor (flattened, from index 0) and the sum of all values.
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
import torchvision.transforms.functional as TF

OUT = "crates/stipple-eval/tests/fixtures/resize"


def make(path, w, h):
    yy, xx = np.mgrid[0:h, 0:w]
    # Blocks of four grey levels, different per channel, and a fine checkerboard: sharp
    # edges for the interpolation weights, periodic so that the PNG stays small.
    img = np.stack([((xx // (5 + c) + yy // (7 - c) + c) % 4) / 3 for c in range(3)], axis=-1)
    img = np.clip(img + 0.1 * (((xx + yy) % 2)[..., None] - 0.5), 0, 1)
    Image.fromarray((img * 255).round().astype(np.uint8), "RGB").save(path)


def main():
    os.makedirs(OUT, exist_ok=True)
    ref = {}
    for name, (w, h) in {"large": (333, 421), "small": (45, 37)}.items():
        path = os.path.join(OUT, f"{name}.png")
        make(path, w, h)
        x = TF.to_tensor(Image.open(path).convert("RGB")).unsqueeze(0)
        y = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)[0]
        flat = y.flatten().double()
        ref[name] = {"every_97th": flat[::97].tolist(), "sum": float(flat.sum())}
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(ref, f)
    print({k: v["sum"] for k, v in ref.items()})


if __name__ == "__main__":
    main()
