"""Reads a Stipple training run's TensorBoard logs with TensorBoard's own loaders.

Run in a throw-away virtual environment (never committed):

    python3 -m venv /tmp/tbvenv
    /tmp/tbvenv/bin/pip install tensorboard==2.21.0
    /tmp/tbvenv/bin/python tests/reference/check_tensorboard.py RUN_FOLDER

or let `cargo test -p stipple-train --test dashboard` run it on a fresh tiny run with
`STIPPLE_TENSORBOARD_PYTHON=/tmp/tbvenv/bin/python`.

It loads RUN_FOLDER/tensorboard twice: with the classic `EventAccumulator` (scalars and
images as written) and with `plugin_event_accumulator`, the loader behind TensorBoard 2.x's
dashboards, which migrates `simple_value` and `Summary.Image` to the scalars and images
plugins. Every scalar must equal the matching key of RUN_FOLDER/train.jsonl (as float32)
at every step, and every image must decode to its stated size. Exit status 0 means
TensorBoard reads everything.
"""

import json
import pathlib
import sys

import numpy as np
import tensorboard
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.util import tensor_util

TAGS = {
    "loss/raw": "loss",
    "loss/smoothed": "loss_smoothed",
    "train/lr": "lr",
    "train/grad_norm": "grad_norm",
    "train/ema_decay": "ema_decay",
    "train/steps_per_sec": "steps_per_sec",
}


def main(run):
    run = pathlib.Path(run)
    logs = [json.loads(line) for line in (run / "train.jsonl").read_text().splitlines()]
    expected = {tag: [(l["step"], np.float32(l[key])) for l in logs] for tag, key in TAGS.items()}

    classic = ea.EventAccumulator(str(run / "tensorboard"), size_guidance={ea.SCALARS: 0, ea.IMAGES: 0})
    classic.Reload()
    tags = classic.Tags()
    assert sorted(tags["scalars"]) == sorted(TAGS), tags
    for tag, want in expected.items():
        got = [(e.step, np.float32(e.value)) for e in classic.Scalars(tag)]
        assert got == want, (tag, got[:3], want[:3])
    images = classic.Images("samples")
    assert images, "no sample grids"
    for im in images:
        assert im.encoded_image_string.startswith(b"\x89PNG"), im.step
        assert im.width > 0 and im.height > 0

    modern = pea.EventAccumulator(str(run / "tensorboard"), size_guidance={pea.TENSORS: 0})
    modern.Reload()
    by_plugin = modern.PluginTagToContent("scalars")
    assert sorted(by_plugin) == sorted(TAGS), by_plugin
    for tag, want in expected.items():
        got = [(e.step, np.float32(tensor_util.make_ndarray(e.tensor_proto).item())) for e in modern.Tensors(tag)]
        assert got == want, (tag, got[:3], want[:3])
    assert list(modern.PluginTagToContent("images")) == ["samples"]
    grids = modern.Tensors("samples")
    for g in grids:
        width, height, png = tensor_util.make_ndarray(g.tensor_proto)[:3]
        assert png.startswith(b"\x89PNG") and int(width) > 0 and int(height) > 0

    print(
        f"tensorboard {tensorboard.__version__}: {len(TAGS)} scalar tags x {len(logs)} steps equal to train.jsonl; "
        f"{len(images)} sample grids at steps {[i.step for i in images]} "
        f"({images[0].width}x{images[0].height}) via the images plugin"
    )


if __name__ == "__main__":
    main(sys.argv[1])
