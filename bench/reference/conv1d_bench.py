#!/usr/bin/env python3
"""Stipple's 1-D convolution and DiffWave against their PyTorch twins on the CPU; prints a
Markdown table.

Stipple's side is `cargo run -p stipple-nn --example diffwave_bench` (built here, run with
RAYON_NUM_THREADS=THREADS); PyTorch's runs in this process with torch.set_num_threads(THREADS),
eagerly and, when it builds, under torch.compile. The DiffWave twin is the model of
tests/reference/make_diffwave_reference.py (lmnt-com/diffwave's architecture), built with the
same configuration. Measured, each the fastest of REPS runs after one warm-up:
- conv forward / backward: DiffWave's widest dilated convolution, C -> 2C, kernel 3, dilation
  2^(CYCLE-1), on (BATCH, C, LENGTH); the backward pass is aten.convolution_backward with the
  input, weight and bias gradients (what autograd runs for it in a training step);
- DiffWave forward: the network on (BATCH, 1, LENGTH) without a graph;
- DiffWave train step: forward, the eps-prediction MSE loss and its backward pass (no
  optimizer update on either side).

Usage (from anywhere; a venv with tests/reference/requirements-diffwave.txt):
    python bench/reference/conv1d_bench.py [--threads 2] [--batch 4] [--length 16000]
        [--channels 64] [--layers 10] [--cycle 10] [--reps 3] [--no-compile]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "reference"))
from make_diffwave_reference import DiffWave  # noqa: E402

MAX_STEPS = 50


def fastest(reps, f):
    f()  # warm-up (and compilation)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def stipple(a):
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    subprocess.run(["cargo", "build", "-q", "-p", "stipple-nn", "--example", "diffwave_bench"], cwd=ROOT, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    args = [a.batch, a.length, a.channels, a.layers, a.cycle, a.reps]
    out = subprocess.run([str(target / "debug" / "examples" / "diffwave_bench"), *map(str, args)],
                         cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    return {r["name"]: r["ms"] for r in map(json.loads, out.splitlines())}


def pytorch(a, compile_model):
    b, c, l = a.batch, a.channels, a.length
    d = 2 ** (a.cycle - 1)
    res = {}
    if not compile_model:
        x, w = torch.randn(b, c, l), torch.randn(2 * c, c, 3) * 0.1
        bias, dy = torch.randn(2 * c), torch.randn(b, 2 * c, l)
        res["conv_forward"] = fastest(a.reps, lambda: F.conv1d(x, w, bias, 1, d, d))
        res["conv_backward"] = fastest(a.reps, lambda: torch.ops.aten.convolution_backward(
            dy, x, w, [2 * c], [1], [d], [d], False, [0], 1, [True, True, True]))
    cfg = {"in_channels": 1, "out_channels": 1, "residual_layers": a.layers, "residual_channels": c,
           "dilation_cycle_length": a.cycle, "embedding_dim": 512, "num_class_embeds": None}
    model = DiffWave(cfg, MAX_STEPS)
    run = torch.compile(model) if compile_model else model
    audio, noise = torch.randn(b, 1, l) * 0.5, torch.randn(b, 1, l)
    steps = torch.tensor([i * 37 % MAX_STEPS for i in range(b)])
    x_t = audio * 0.8 + noise * 0.6

    def forward():
        with torch.no_grad():
            run(x_t, steps)

    def train_step():
        model.zero_grad(set_to_none=True)
        F.mse_loss(run(x_t, steps), noise).backward()

    res["diffwave_forward"] = fastest(a.reps, forward)
    res["diffwave_train_step"] = fastest(a.reps, train_step)
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in [("threads", 2), ("batch", 4), ("length", 16000), ("channels", 64), ("layers", 10),
                          ("cycle", 10), ("reps", 3)]:
        p.add_argument(f"--{name}", type=int, default=default)
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile column")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    st = stipple(a)
    eager = pytorch(a, False)
    compiled = {}
    if not a.no_compile:
        try:
            compiled = pytorch(a, True)
        except Exception as e:  # torch.compile needs a C++ compiler and may not build here
            print(f"torch.compile: not measured ({type(e).__name__}: {e})", file=sys.stderr)
    print(f"CPU, {a.threads} threads; batch {a.batch}, length {a.length}, C = {a.channels}, "
          f"{a.layers} layers, dilation cycle {a.cycle}; fastest of {a.reps} runs, ms\n")
    print("| measurement | Stipple | PyTorch eager | Stipple ÷ eager | PyTorch compiled |")
    print("|---|---:|---:|---:|---:|")
    labels = {"conv_forward": f"dilated conv {a.channels}→{2 * a.channels}, k 3, d {2 ** (a.cycle - 1)}: forward",
              "conv_backward": "dilated conv: backward (input, weight, bias)",
              "diffwave_forward": "DiffWave forward",
              "diffwave_train_step": "DiffWave train step (forward + loss + backward)"}
    for key, label in labels.items():
        c = f"{compiled[key]:.1f}" if key in compiled else "–"
        print(f"| {label} | {st[key]:.1f} | {eager[key]:.1f} | {st[key] / eager[key]:.2f} | {c} |")


if __name__ == "__main__":
    main()
