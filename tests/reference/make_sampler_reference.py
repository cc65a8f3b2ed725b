"""Reference trajectories for crates/stipple-sample/tests/conformance.rs.

Runs k-diffusion 0.1.1.post1's sampling functions in float64 on a deterministic toy
denoiser, from fixed initial latents, over several sigma lists, and records every noise
tensor the samplers draw (the `noise_sampler(sigma, sigma_next)` calls, including
k-diffusion's BrownianTreeNoiseSampler for the SDE samplers, and the `torch.randn_like`
calls of the churn samplers), so the Rust tests can replay exactly the same noise.

Toy denoiser (nonlinear, so that multistep and Runge-Kutta weights all matter):
    D(x; sigma) = x * tanh(sigma) / (1 + sigma^2) + 0.1 * sin(x)

Usage (same venv as make_math_golden.py; requirements.txt):
    python tests/reference/make_sampler_reference.py \
        > crates/stipple-sample/tests/fixtures/k_diffusion_samplers.json
"""

import json
import math

import torch
from k_diffusion import sampling as K

torch.set_default_dtype(torch.float64)
N = 6  # latent size


def toy_denoiser(x, sigma, **_):
    s = float(sigma.reshape(-1)[0])
    return x * math.tanh(s) / (1 + s * s) + 0.1 * torch.sin(x)


class Recorder:
    """A noise_sampler that hands out N(0, 1) draws (or those of `inner`) and records them."""

    def __init__(self, seed, inner=None):
        self.gen = torch.Generator().manual_seed(seed)
        self.inner = inner
        self.calls = []

    def __call__(self, sigma, sigma_next):
        if self.inner is not None:
            z = self.inner(sigma, sigma_next).reshape(N)
        else:
            z = torch.randn(N, generator=self.gen)
        self.calls.append([float(sigma), float(sigma_next), z.tolist()])
        return z.reshape(1, N)


def with_recorded_randn_like(rec, sigmas, fn):
    """Runs fn with k-diffusion's torch.randn_like replaced: the i-th call is step i."""
    orig = K.torch.randn_like
    count = [0]

    def fake(x):
        i = count[0]
        count[0] += 1
        z = torch.randn(N, generator=rec.gen)
        rec.calls.append([float(sigmas[i]), float(sigmas[i + 1]), z.tolist()])
        return z.reshape(x.shape)

    K.torch.randn_like = fake
    try:
        return fn()
    finally:
        K.torch.randn_like = orig


def sigma_lists():
    smin, smax = 0.029167532920837402, 14.614642143249512  # SD 1.x training range
    out = {
        "karras_10": K.get_sigmas_karras(10, smin, smax),
        "karras_25": K.get_sigmas_karras(25, smin, smax),
        "exponential_4": K.get_sigmas_exponential(4, smin, smax),
        "karras_2": K.get_sigmas_karras(2, smin, smax),
        "one_step": torch.tensor([smax, 0.0]),
    }
    # diffusers trailing spacing, 6 steps (EulerDiscreteScheduler, SD 1.x betas).
    from diffusers import EulerDiscreteScheduler

    sch = EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                 timestep_spacing="trailing")
    sch.set_timesteps(6)
    out["trailing_6"] = sch.sigmas.double()
    return {k: v.double() for k, v in out.items()}


# The Stipple sampler (SamplerKind name) that each case's k-diffusion function is, when run
# through the registry with the case's options.
STIPPLE = {
    "sample_euler": "euler", "sample_heun": "heun", "sample_dpmpp_2m": "dpmpp_2m",
    "sample_euler_ancestral": "euler_ancestral", "sample_dpm_2": "dpm_2",
    "sample_dpm_2_ancestral": "dpm_2_ancestral", "sample_lms": "lms",
    "sample_dpmpp_2s_ancestral": "dpmpp_2s_ancestral", "sample_dpmpp_sde": "dpmpp_sde",
    "sample_dpmpp_3m_sde": "dpmpp_3m_sde",
}


def stipple_kind(name, fn, kwargs):
    if name == "edm":
        return "edm"
    if fn is K.sample_dpmpp_2m_sde:
        return "dpmpp_2m_sde_heun" if kwargs.get("solver_type") == "heun" else "dpmpp_2m_sde"
    return STIPPLE[fn.__name__]


def cases():
    """(name, sampler function, kwargs, noise kind) with noise kind None / 'sampler' /
    'brownian' / 'randn_like'. New cases go at the end: a case's noise seed is its index."""
    return [
        ("euler", K.sample_euler, {}, None),
        ("heun", K.sample_heun, {}, None),
        ("dpmpp_2m", K.sample_dpmpp_2m, {}, None),
        ("euler_ancestral", K.sample_euler_ancestral, {"eta": 1.0}, "sampler"),
        ("dpm_2", K.sample_dpm_2, {}, None),
        ("dpm_2_churn", K.sample_dpm_2, {"s_churn": 2.0, "s_tmin": 0.1, "s_tmax": 10.0, "s_noise": 1.003}, "randn_like"),
        ("edm", K.sample_heun, {"s_churn": 2.0, "s_tmin": 0.1, "s_tmax": 10.0, "s_noise": 1.003}, "randn_like"),
        ("dpm_2_ancestral", K.sample_dpm_2_ancestral, {"eta": 1.0, "s_noise": 1.0}, "sampler"),
        ("dpm_2_ancestral_eta05", K.sample_dpm_2_ancestral, {"eta": 0.5, "s_noise": 0.9}, "sampler"),
        ("lms", K.sample_lms, {"order": 4}, None),
        ("dpmpp_2s_ancestral", K.sample_dpmpp_2s_ancestral, {"eta": 1.0, "s_noise": 1.0}, "sampler"),
        ("dpmpp_sde", K.sample_dpmpp_sde, {"eta": 1.0, "s_noise": 1.0}, "brownian"),
        ("dpmpp_sde_eta05", K.sample_dpmpp_sde, {"eta": 0.5, "s_noise": 0.9}, "sampler"),
        ("dpmpp_2m_sde", K.sample_dpmpp_2m_sde, {"eta": 1.0, "s_noise": 1.0, "solver_type": "midpoint"}, "brownian"),
        ("dpmpp_2m_sde_heun", K.sample_dpmpp_2m_sde, {"eta": 1.0, "s_noise": 1.0, "solver_type": "heun"}, "brownian"),
        ("dpmpp_2m_sde_eta0", K.sample_dpmpp_2m_sde, {"eta": 0.0, "solver_type": "midpoint"}, "sampler"),
        ("dpmpp_3m_sde", K.sample_dpmpp_3m_sde, {"eta": 1.0, "s_noise": 1.0}, "brownian"),
        ("dpmpp_3m_sde_eta05", K.sample_dpmpp_3m_sde, {"eta": 0.5, "s_noise": 0.9}, "sampler"),
        # Non-default values of every keyword argument the web UIs pass (churn on Euler,
        # Heun and DPM2; s_noise with eta on the ancestral and SDE samplers; r).
        ("euler_churn", K.sample_euler, {"s_churn": 2.0, "s_tmin": 0.1, "s_tmax": 10.0, "s_noise": 1.003}, "randn_like"),
        ("heun_churn", K.sample_heun, {"s_churn": 1.5, "s_tmin": 0.05, "s_tmax": 5.0, "s_noise": 0.95}, "randn_like"),
        ("dpm_2_churn_s_noise", K.sample_dpm_2, {"s_churn": 0.8, "s_noise": 0.9}, "randn_like"),
        ("euler_ancestral_s_noise", K.sample_euler_ancestral, {"eta": 0.7, "s_noise": 0.9}, "sampler"),
        ("dpmpp_2s_ancestral_s_noise", K.sample_dpmpp_2s_ancestral, {"eta": 0.6, "s_noise": 1.1}, "sampler"),
        ("dpmpp_sde_r", K.sample_dpmpp_sde, {"eta": 0.8, "s_noise": 0.9, "r": 0.3}, "sampler"),
        ("dpmpp_sde_r_brownian", K.sample_dpmpp_sde, {"eta": 1.0, "s_noise": 1.0, "r": 0.7}, "brownian"),
        ("dpmpp_2m_sde_s_noise", K.sample_dpmpp_2m_sde, {"eta": 0.7, "s_noise": 0.9, "solver_type": "midpoint"}, "sampler"),
        ("dpmpp_2m_sde_heun_s_noise", K.sample_dpmpp_2m_sde, {"eta": 0.7, "s_noise": 1.1, "solver_type": "heun"}, "brownian"),
        ("dpmpp_3m_sde_s_noise", K.sample_dpmpp_3m_sde, {"eta": 1.0, "s_noise": 1.1}, "brownian"),
    ]


def main():
    gen = torch.Generator().manual_seed(1234)
    x_unit = torch.randn(N, generator=gen)
    sig = sigma_lists()
    runs = []
    for si, (sname, sigmas) in enumerate(sig.items()):
        x0 = (x_unit * sigmas[0]).reshape(1, N)
        for ci, (name, fn, kwargs, noise) in enumerate(cases()):
            rec = Recorder(seed=1000 * si + ci)
            kw = dict(kwargs)
            if noise == "sampler":
                kw["noise_sampler"] = rec
            elif noise == "brownian":
                smin = float(sigmas[sigmas > 0].min())
                smax = float(sigmas.max())
                bt = K.BrownianTreeNoiseSampler(x0, smin, smax, seed=42 + si)
                rec.inner = bt
                kw["noise_sampler"] = rec
            call = lambda: fn(toy_denoiser, x0.clone(), sigmas, disable=True, **kw)
            try:
                if noise == "randn_like":
                    out = with_recorded_randn_like(rec, sigmas, call)
                else:
                    out = call()
            except UnboundLocalError:
                # k-diffusion 0.1.1's 2M/3M SDE samplers crash on a single step to 0
                # (`h` unbound); Stipple returns D there. Skipped.
                continue
            runs.append({
                "sampler": name,
                "stipple": stipple_kind(name, fn, kwargs),
                "sigmas": sname,
                "options": {k: v for k, v in kwargs.items() if not callable(v)},
                "noise": rec.calls,
                "x_out": out.reshape(N).tolist(),
            })
    print(json.dumps({
        "generator": "tests/reference/make_sampler_reference.py (k-diffusion 0.1.1.post1, torch float64)",
        "denoiser": "x * tanh(sigma) / (1 + sigma^2) + 0.1 * sin(x)",
        "x_unit": x_unit.tolist(),
        "sigmas": {k: v.tolist() for k, v in sig.items()},
        "runs": runs,
    }, separators=(",", ":")))


if __name__ == "__main__":
    main()
