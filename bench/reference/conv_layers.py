#!/usr/bin/env python3
"""PyTorch twin of Stipple's `conv_layers` example (see bench/conv_layers.sh): single
convolution layers, forward (F.conv2d with bias) and backward (aten.convolution_backward
with the input, weight and bias gradients: what autograd runs for a conv2d in a training
step), fastest of REPS runs of each pass, one JSON object per layer.

Usage: conv_layers.py THREADS BATCH REPS count,C,O,H,k,stride ...
"""

import json
import sys
import time

import torch


def main():
    threads, batch, reps = (int(a) for a in sys.argv[1:4])
    torch.set_num_threads(threads)
    for layer in sys.argv[4:]:
        count, c, o, h, k, stride = (int(v) for v in layer.split(","))
        pad = k // 2
        ho = (h + 2 * pad - k) // stride + 1
        x = torch.randn(batch, c, h, h)
        w = torch.randn(o, c, k, k) * 0.1
        b = torch.randn(o)
        dy = torch.randn(batch, o, ho, ho)
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
        print(json.dumps({"layer": layer, "count": count, "forward_ms": round(forward * 1e3, 3),
                          "backward_ms": round(backward * 1e3, 3)}))


if __name__ == "__main__":
    main()
