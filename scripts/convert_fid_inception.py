#!/usr/bin/env python3
"""Converts pytorch-fid's Inception weights file (pt_inception-2015-12-05-6726825d.pth, which
you already have: Stipple never downloads it) to the safetensors file `stipple eval
--inception` reads. Needs torch and safetensors.

    python3 scripts/convert_fid_inception.py pt_inception-2015-12-05-6726825d.pth pt_inception.safetensors

The tensor names are kept (torchvision's: Conv2d_1a_3x3.conv.weight, Mixed_5b.branch1x1.bn.*,
...); the classifier (fc.*) and the batch counters are dropped, as the 2048-d pool features
do not use them.
"""
import sys

import torch
from safetensors.torch import save_file


def main(src, dst):
    state = torch.load(src, map_location="cpu", weights_only=True)
    keep = {k: v.float().contiguous() for k, v in state.items() if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
    save_file(keep, dst)
    print(f"wrote {len(keep)} tensors to {dst}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
