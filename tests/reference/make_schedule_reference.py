"""Reference sigma lists for crates/stipple-math/tests/schedules.rs (SD 1.x betas, f64).

polyexponential and vp: k-diffusion 0.1.1.post1 `get_sigmas_polyexponential` /
`get_sigmas_vp` (default beta_d=19.9, beta_min=0.1, eps_s=1e-3); beta: timesteps from
`scipy.stats.beta.ppf` (ComfyUI `beta_scheduler`); zero terminal SNR: diffusers 0.42.1
`rescale_zero_terminal_snr`. sgm_uniform / normal / simple / ddim_uniform /
linear_quadratic follow ComfyUI's `comfy/samplers.py` formulas, restated here in numpy
(ComfyUI is not a pip package) over the f64 training sigmas.

    python tests/reference/make_schedule_reference.py \
        > crates/stipple-math/tests/fixtures/schedules.json
"""

import json

import numpy as np
import scipy.stats
import torch
from diffusers.schedulers.scheduling_ddpm import rescale_zero_terminal_snr
from k_diffusion import sampling as K

T = 1000
betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, T, dtype=np.float64) ** 2
ab = np.cumprod(1 - betas)
sigmas = np.sqrt((1 - ab) / ab)
log_sigmas = np.log(sigmas)


def sigma_at(t):  # ComfyUI ModelSamplingDiscrete.sigma (log-sigma interpolation)
    t = np.clip(t, 0, T - 1)
    lo, hi = np.floor(t).astype(int), np.ceil(t).astype(int)
    w = t - lo
    return np.exp((1 - w) * log_sigmas[lo] + w * log_sigmas[hi])


def sgm_uniform(n):
    return list(sigma_at(np.linspace(T - 1, 0, n + 1)[:-1])) + [0.0]


def normal(n):
    return list(sigma_at(np.linspace(T - 1, 0, n))) + [0.0]


def simple(n):
    ss = T / n
    return [sigmas[-(1 + int(x * ss))] for x in range(n)] + [0.0]


def ddim_uniform(n):
    ss = max(T // n, 1)
    out, x = [], 1
    while x < T:
        out.append(sigmas[x])
        x += ss
    return out[::-1] + [0.0]


def beta(n, a=0.6, b=0.6):
    ts = np.rint(scipy.stats.beta.ppf(1 - np.linspace(0, 1, n, endpoint=False), a, b) * (T - 1))
    out, last = [], -1
    for t in ts:
        if t != last:
            out.append(sigmas[int(t)])
        last = t
    return out + [0.0]


def linear_quadratic(n, thr=0.025):
    if n == 1:
        sch = [1.0, 0.0]
    else:
        ls = n // 2
        lin = [i * thr / ls for i in range(ls)]
        diff = ls - thr * n
        qs = n - ls
        qc = diff / (ls * qs ** 2)
        lc = thr / ls - 2 * diff / (qs ** 2)
        c = qc * ls ** 2
        sch = [1.0 - x for x in lin + [qc * i ** 2 + lc * i + c for i in range(ls, n)] + [1.0]]
    return [x * sigmas[-1] for x in sch]


def vp(n):
    torch.set_default_dtype(torch.float64)
    return K.get_sigmas_vp(n).tolist()


def poly(n):
    torch.set_default_dtype(torch.float64)
    return K.get_sigmas_polyexponential(n, float(sigmas[0]), float(sigmas[-1]), rho=1.0).tolist()


out = {}
for n in [1, 2, 7, 10, 25]:
    out[f"sgm_uniform_{n}"] = sgm_uniform(n)
    out[f"normal_{n}"] = normal(n)
    out[f"simple_{n}"] = simple(n)
    out[f"ddim_uniform_{n}"] = ddim_uniform(n)
    out[f"beta_{n}"] = beta(n)
    out[f"linear_quadratic_{n}"] = linear_quadratic(n)
    out[f"polyexponential_{n}"] = poly(n)
    out[f"vp_{n}"] = vp(n)
zb = rescale_zero_terminal_snr(torch.tensor(betas, dtype=torch.float64))
out["zero_snr_betas_pick"] = [float(zb[i]) for i in [0, 1, 10, 100, 500, 998, 999]]
print(json.dumps({"generator": "tests/reference/make_schedule_reference.py", "schedules": out}))
