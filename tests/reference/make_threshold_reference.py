"""Reference values for the x0-clamping wrapper (stipple-sample `ClampedX0`, `X0Clamp`):
diffusers 0.42.1 `DDIMScheduler` with `clip_sample` and with dynamic thresholding
(Saharia et al. 2022, Imagen §2.3).

1. `DDIMScheduler._threshold_sample` on a fixed (3, 2, 4, 4) float64 batch whose samples
   fall in the three regimes of s = clamp(quantile(|x0|, ratio), 1, sample_max_value):
   below 1, between 1 and the maximum, above the maximum.
2. Whole DDIM runs (SD 1.x betas, 10 leading steps, steps_offset=1, set_alpha_to_one=True)
   with the exact eps-prediction of wide Gaussian data x0 ~ N(mu, s^2) (its denoised
   estimate leaves [-1, 1]), for eta = 0 and eta = 1 (fixed variance noise), with
   clip_sample and with thresholding. `step(..., use_clipped_model_output=True)`: the
   wrapper limits D, from which every sampler also derives eps.

Usage (same venv as make_math_golden.py; requirements.txt):
    python tests/reference/make_threshold_reference.py \
        > crates/stipple-sample/tests/fixtures/diffusers_threshold.json
"""

import json

import torch
from diffusers import DDIMScheduler

torch.set_default_dtype(torch.float64)
RATIO, MAX = 0.9, 1.5


def threshold_case():
    gen = torch.Generator().manual_seed(7)
    z = torch.randn(3, 2, 4, 4, generator=gen)
    x = torch.stack([0.4 * z[0], 0.9 * z[1], 2.0 * z[2]])
    sch = DDIMScheduler(thresholding=True, dynamic_thresholding_ratio=RATIO, sample_max_value=MAX)
    out = sch._threshold_sample(x.clone())
    s = torch.quantile(x.reshape(3, -1).abs(), RATIO, dim=1)
    return {
        "ratio": RATIO,
        "sample_max_value": MAX,
        "shape": list(x.shape),
        "x": x.flatten().tolist(),
        "quantiles": s.tolist(),
        "out": out.flatten().tolist(),
    }


MU, S = 0.8, 2.5
# One sample of shape (1, 2, 4): diffusers' `_threshold_sample` needs a channel axis and
# fails on a bare (batch, n) tensor (`np.prod([])` is a float).
X_T = torch.tensor([-2.5, -1.2, -0.4, 0.0, 0.3, 0.9, 1.7, 2.6]).reshape(1, 2, 4)
Z = torch.tensor([[0.1 * ((7 * i + 3 * j) % 11 - 5) for j in range(8)] for i in range(10)]).reshape(10, 1, 2, 4)


def eps_exact(x, a):
    """E[eps | x_t] for x_t = sqrt(a) x0 + sqrt(1 - a) eps, x0 ~ N(MU, S^2)."""
    x0 = MU + (a ** 0.5) * S * S / (a * S * S + 1 - a) * (x - a ** 0.5 * MU)
    return (x - a ** 0.5 * x0) / (1 - a) ** 0.5


def ddim_run(eta, **limits):
    sch = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                        set_alpha_to_one=True, steps_offset=1, timestep_spacing="leading", **limits)
    sch.set_timesteps(10)
    x = X_T.clone()
    for i, t in enumerate(sch.timesteps):
        a = sch.alphas_cumprod[t].double()
        x = sch.step(eps_exact(x, a), t, x, eta=eta, use_clipped_model_output=True,
                     variance_noise=Z[i]).prev_sample
    return [int(t) for t in sch.timesteps], x.flatten().tolist()


def main():
    clip = {"clip_sample": True, "clip_sample_range": 1.0}
    # s per step (eta 0): 1.7 … 3.0 … 1.09; (eta 1): 1.7 … 0.92: every regime of the clamp.
    thr = {"clip_sample": False, "thresholding": True, "dynamic_thresholding_ratio": 0.8,
           "sample_max_value": 2.0}
    off = {"clip_sample": False}
    runs = []
    for name, limits in [("off", off), ("clip_sample", clip), ("thresholding", thr)]:
        for eta in [0.0, 1.0]:
            ts, out = ddim_run(eta, **limits)
            runs.append({"limits": name, "config": limits, "eta": eta, "x_out": out})
    print(json.dumps({
        "generator": "tests/reference/make_threshold_reference.py (diffusers 0.42.1, torch float64)",
        "threshold_sample": threshold_case(),
        "ddim": {"mu": MU, "s": S, "x_T": X_T.flatten().tolist(), "timesteps": ts,
                 "variance_noise": Z.reshape(10, -1).tolist(), "runs": runs},
    }, separators=(",", ":")))


if __name__ == "__main__":
    main()
