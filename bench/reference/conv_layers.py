#!/usr/bin/env python3
"""PyTorch twin of Stipple's `conv_layers` example (see bench/conv_layers.sh): single
convolution layers, forward (F.conv2d with bias) and backward (aten.convolution_backward
with the input, weight and bias gradients: what autograd runs for a conv2d in a training
step), fastest of REPS runs of each pass, one JSON object per layer.

Usage: conv_layers.py THREADS BATCH REPS count,C,O,H,k,stride ...

LAYOUT (environment) picks PyTorch's memory layout for the input, weight and gradient:
`nchw` (the default, the twin's), `channels_last` (the layout oneDNN prefers on CPUs), or
`best`: both, each pass reported at the faster of the two (with the per-layout times as
`forward_ms_<layout>` and `backward_ms_<layout>`).
"""

import json
import os
import sys
import time

import torch


def time_layer(batch, reps, c, o, h, k, stride, layout):
    """The fastest of `reps` runs of the forward and the backward pass, in seconds."""
    pad = k // 2
    ho = (h + 2 * pad - k) // stride + 1
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    x = torch.randn(batch, c, h, h).contiguous(memory_format=fmt)
    w = (torch.randn(o, c, k, k) * 0.1).contiguous(memory_format=fmt)
    b = torch.randn(o)
    dy = torch.randn(batch, o, ho, ho).contiguous(memory_format=fmt)
    forward = backward = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        y = torch.nn.functional.conv2d(x, w, b, stride, pad)
        forward = min(forward, time.perf_counter() - t)
        del y
        t = time.perf_counter()
        grads = torch.ops.aten.convolution_backward(
            dy, x, w, [o], [stride, stride], [pad, pad], [1, 1], False, [0, 0], 1, [True, True, True]
        )
        backward = min(backward, time.perf_counter() - t)
        del grads
    return forward, backward


def main():
    threads, batch, reps = (int(a) for a in sys.argv[1:4])
    torch.set_num_threads(threads)
    layout = os.environ.get("LAYOUT", "nchw")
    layouts = {"nchw": ["nchw"], "channels_last": ["channels_last"], "best": ["nchw", "channels_last"]}[layout]
    for layer in sys.argv[4:]:
        count, c, o, h, k, stride = (int(v) for v in layer.split(","))
        times = {lay: time_layer(batch, reps, c, o, h, k, stride, lay) for lay in layouts}
        row = {"layer": layer, "count": count,
               "forward_ms": round(min(f for f, _ in times.values()) * 1e3, 3),
               "backward_ms": round(min(b for _, b in times.values()) * 1e3, 3)}
        if len(layouts) > 1:
            for lay, (f, b) in times.items():
                row[f"forward_ms_{lay}"] = round(f * 1e3, 3)
                row[f"backward_ms_{lay}"] = round(b * 1e3, 3)
        print(json.dumps(row))


if __name__ == "__main__":
    main()
