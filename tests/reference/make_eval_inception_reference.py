"""Reference features and FID/KID of pytorch-fid's Inception-v3 (the `FIDInceptionA/C/E`
layout of pt_inception-2015-12-05) with deterministic formula weights, for
crates/stipple-eval/tests/inception_reference.rs.

Run from the repository root in a venv with tests/reference/requirements-eval.txt:
    python tests/reference/make_eval_inception_reference.py

The real weights (about 92 MB) cannot be committed, and seeded random weights cannot be
regenerated across frameworks, so every tensor is filled by a formula the Rust test repeats
bit for bit (`formula_weights`): value i of tensor `name` is splitmix64(fnv1a64(name) + i),
its top 24 bits mapped to [−1, 1) and scaled per kind of tensor. pytorch-fid's own
`InceptionV3([3])` is built with these weights (its download is replaced by them; its
`load_state_dict` is strict, so the key set is the real file's), and its `get_activations`,
`calculate_activation_statistics` and `calculate_frechet_distance` run on two small image
sets made here.

Writes, under crates/stipple-eval/tests/fixtures/inception/:
- a/*.png (8 images, 32×32: smooth, bright stripes) and b/*.png (8 images, 40×40: fine,
  dark, noisy ones): the two image sets,
- keys.json: name and shape of every tensor of the state dict,
- reference.json: the 2048-d pool features of a/0.png and b/0.png, pytorch-fid's FID of
  a against b, the exact FID (the trace of the square root as the nuclear norm of the centred
  cross product, see make_eval_metrics_golden.py), and torch-fidelity's KID with the subset
  size equal to the set size (deterministic).
"""
import json
import os

import numpy as np
import torch
from PIL import Image

import pytorch_fid.inception as fid_inception
from pytorch_fid.fid_score import calculate_activation_statistics, calculate_frechet_distance, get_activations
from torch_fidelity.metric_kid import kid_features_to_metric

OUT = "crates/stipple-eval/tests/fixtures/inception"
MASK64 = (1 << 64) - 1


def fnv1a64(name):
    h = 0xCBF29CE484222325
    for byte in name.encode():
        h ^= byte
        h = (h * 0x100000001B3) & MASK64
    return h


def splitmix64(x):
    """Vectorised splitmix64 finaliser of x + golden gamma (uint64 arrays wrap mod 2^64)."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniform(name, numel):
    """numel values in [−1, 1): 2·(top 24 bits / 2^24) − 1, exact in float32."""
    idx = np.arange(numel, dtype=np.uint64) + np.uint64(fnv1a64(name))
    with np.errstate(over="ignore"):
        z = splitmix64(idx)
    return ((z >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)) * np.float32(2) - np.float32(1)


def formula_tensor(name, shape):
    u = uniform(name, int(np.prod(shape, dtype=np.int64))).reshape(shape)
    if name.endswith("conv.weight"):
        fan_in = int(np.prod(shape[1:]))
        return u * np.float32(np.sqrt(6.0 / fan_in))
    if name.endswith("bn.weight"):
        return np.float32(1) + np.float32(0.2) * u
    if name.endswith("bn.bias") or name.endswith("bn.running_mean"):
        return np.float32(0.1) * u
    if name.endswith("bn.running_var"):
        return np.float32(1.5) + np.float32(0.5) * u
    if name.startswith("fc."):
        return np.float32(0.01) * u
    raise ValueError(f"no formula for {name}")


def formula_state_dict(template):
    out = {}
    for name, t in template.items():
        if name.endswith("num_batches_tracked"):
            out[name] = torch.zeros_like(t)
        else:
            out[name] = torch.from_numpy(formula_tensor(name, tuple(t.shape)).copy())
    return out


def make_images(folder, count, size, rng, freqs, noise, gain):
    os.makedirs(folder, exist_ok=True)
    paths = []
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        freq = rng.uniform(*freqs, size=3)
        phase = rng.uniform(0, 6.3, size=3)
        img = np.stack([0.5 + 0.5 * np.sin(2 * np.pi * (f * xx + 0.7 * f * yy) + p) for f, p in zip(freq, phase)], axis=-1)
        img = np.clip(gain * img + rng.normal(scale=noise, size=img.shape), 0, 1)
        path = os.path.join(folder, f"{i}.png")
        Image.fromarray((img * 255).round().astype(np.uint8), "RGB").save(path)
        paths.append(path)
    return paths


def main():
    rng = np.random.default_rng(2015)
    # Smooth bright stripes against fine, darker, noisier ones.
    a = make_images(os.path.join(OUT, "a"), 8, 32, rng, (1, 4), 0.05, 1.0)
    b = make_images(os.path.join(OUT, "b"), 8, 40, rng, (5, 12), 0.3, 0.6)

    # The module fid_inception_v3 builds, before its download: its state dict is the template.
    template = {}

    def formula_download(url, progress=True):
        return formula_state_dict(template)

    original = fid_inception.fid_inception_v3

    def build():
        inception = fid_inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
        inception.Mixed_5b = fid_inception.FIDInceptionA(192, pool_features=32)
        inception.Mixed_5c = fid_inception.FIDInceptionA(256, pool_features=64)
        inception.Mixed_5d = fid_inception.FIDInceptionA(288, pool_features=64)
        inception.Mixed_6b = fid_inception.FIDInceptionC(768, channels_7x7=128)
        inception.Mixed_6c = fid_inception.FIDInceptionC(768, channels_7x7=160)
        inception.Mixed_6d = fid_inception.FIDInceptionC(768, channels_7x7=160)
        inception.Mixed_6e = fid_inception.FIDInceptionC(768, channels_7x7=192)
        inception.Mixed_7b = fid_inception.FIDInceptionE_1(1280)
        inception.Mixed_7c = fid_inception.FIDInceptionE_2(2048)
        template.update(inception.state_dict())
        return original()

    fid_inception.load_state_dict_from_url = formula_download
    fid_inception.fid_inception_v3 = build
    model = fid_inception.InceptionV3([3]).eval()

    keys = [{"name": k, "shape": list(v.shape)} for k, v in template.items() if not k.endswith("num_batches_tracked")]
    with open(os.path.join(OUT, "keys.json"), "w") as f:
        json.dump(keys, f)

    acts_a = get_activations(a, model, batch_size=4, dims=2048, device="cpu", num_workers=0)
    acts_b = get_activations(b, model, batch_size=4, dims=2048, device="cpu", num_workers=0)
    mu_a, sigma_a = calculate_activation_statistics(a, model, batch_size=4, dims=2048, device="cpu", num_workers=0)
    mu_b, sigma_b = calculate_activation_statistics(b, model, batch_size=4, dims=2048, device="cpu", num_workers=0)
    fid = calculate_frechet_distance(mu_a, sigma_a, mu_b, sigma_b)
    a64, b64 = acts_a.astype(np.float64), acts_b.astype(np.float64)
    xa, xb = a64 - a64.mean(axis=0), b64 - b64.mean(axis=0)
    nuclear = np.linalg.svd(xa @ xb.T, compute_uv=False).sum() / (len(a) - 1)
    fid_exact = ((a64.mean(0) - b64.mean(0)) ** 2).sum() + (xa**2).sum() / (len(a) - 1) + (xb**2).sum() / (len(b) - 1) - 2 * nuclear
    kid = kid_features_to_metric(torch.from_numpy(acts_a), torch.from_numpy(acts_b), kid_subsets=2, kid_subset_size=len(a), kid_kernel="poly",
                                 kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1, rng_seed=2020, verbose=False)
    ref = {
        "features_a0": acts_a[0].tolist(),
        "features_b0": acts_b[0].tolist(),
        "fid_pytorch_fid": float(fid),
        "fid_exact": float(fid_exact),
        "kid_torch_fidelity": kid["kernel_inception_distance_mean"],
    }
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(ref, f)
    print({k: v for k, v in ref.items() if not k.startswith("features")}, "feature range", acts_a.min(), acts_a.max(), acts_a.mean())


if __name__ == "__main__":
    main()
