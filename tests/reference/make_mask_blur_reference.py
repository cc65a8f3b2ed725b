"""The web UI's inpainting mask blur (AUTOMATIC1111 `modules/processing.py`,
`StableDiffusionProcessingImg2Img.init`): `cv2.GaussianBlur` of the 8-bit binary mask with a
kernel of `2*int(2.5*blur + 0.5) + 1` taps and sigma = blur, along the rows, then along the
columns, for crates/stipple-pipeline/tests/mask_blur_reference.rs.

Run from the repository root in a venv with tests/reference/requirements-mask.txt:
    python tests/reference/make_mask_blur_reference.py

Writes crates/stipple-pipeline/tests/fixtures/mask_blur.json: the mask (24 x 20, a rectangle,
a diagonal band and a lone pixel; values 0 or 255, row-major) and, for blurs 1, 2, 3 and 4,
the blurred mask.
"""
import json

import cv2
import numpy as np

W, H = 24, 20
OUT = "crates/stipple-pipeline/tests/fixtures/mask_blur.json"


def blur(mask, b):
    # As the web UI does it: one pass along x, then one along y, each rounded to 8 bits.
    size = 2 * int(2.5 * b + 0.5) + 1
    m = cv2.GaussianBlur(mask, (size, 1), b)
    return cv2.GaussianBlur(m, (1, size), b)


def main():
    yy, xx = np.mgrid[0:H, 0:W]
    mask = np.zeros((H, W), np.uint8)
    mask[4:11, 3:12] = 255
    mask[np.abs(xx - yy - 6) <= 1] = 255
    mask[17, 2] = 255
    out = {"width": W, "height": H, "mask": mask.flatten().tolist(),
           "blurred": {str(b): blur(mask, b).flatten().tolist() for b in (1, 2, 3, 4)},
           "opencv": cv2.__version__}
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
