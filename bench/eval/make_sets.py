"""The sanity sets of docs/QUALITY.md from an image folder (bench/eval/quality.sh runs it):
its even-numbered images (the reference) and, from its odd-numbered images, the same images
as they are, blurred (Gaussian, radius 1 and 2 px), and uniform noise images of the same
size. Every set compared with `even` then holds other images than the reference, so the
figures share the finite-sample bias of the real-against-real one. Needs pillow and numpy
(tests/reference/requirements-eval.txt).

    python bench/eval/make_sets.py SRC OUT
"""
import os
import sys

import numpy as np
from PIL import Image, ImageFilter


def main(src, out):
    names = sorted(n for n in os.listdir(src) if n.lower().endswith(".png"))
    rng = np.random.default_rng(0)
    sets = ("even", "odd", "odd-blur1", "odd-blur2", "noise")
    for sub in sets:
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    for i, name in enumerate(names):
        img = Image.open(os.path.join(src, name)).convert("RGB")
        if i % 2 == 0:
            img.save(os.path.join(out, "even", name))
            continue
        img.save(os.path.join(out, "odd", name))
        for r in (1, 2):
            img.filter(ImageFilter.GaussianBlur(radius=r)).save(os.path.join(out, f"odd-blur{r}", name))
        noise = rng.integers(0, 256, size=(img.height, img.width, 3), dtype=np.uint8)
        Image.fromarray(noise, "RGB").save(os.path.join(out, "noise", name))
    print(f"{len(names)} images: {', '.join(os.path.join(out, s) for s in sets)}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
