"""Reference runs of diffusers' multistep schedulers for
crates/stipple-sample/tests/diffusers_conformance.rs.

Runs diffusers 0.42.1's UniPCMultistepScheduler (solver_type "bh1" and "bh2", solver_order=3),
DEISMultistepScheduler (solver_order 2 and 3), DPMSolverMultistepScheduler (DPM++ 2M with
final_sigmas_type="sigma_min") and LCMScheduler on a deterministic toy network, from fixed
initial latents, and stores the sigmas each run walked and its result.

Precision: the schedulers keep `sigmas` (and LCM `alphas_cumprod`) as float32 tensors; right
after `set_timesteps` this script casts them to float64, so every step computes in float64 on
the float32-rounded noise levels. DPMSolverMultistepScheduler.step also rounds the sample to
float32 on every step (an "upcast" meant for float16); its module sees a `torch` whose float32
is float64 (`F64Torch`). The fixture stores the noise levels exactly, and the Rust side walks
the same ones, so the two agree to rounding (~1e-15 per operation).

Toy network F(u, sigma), called with the VP sample u = x_t and the sigma of the step (the
scheduler's own sigmas[step_index]; for LCM sqrt((1 - abar_t) / abar_t)): the exact epsilon
(or v) of Gaussian data x0 ~ N(0.3, 0.5^2), plus 0.05 * sin(3u + sigma) so that the multistep
weights all matter.

Coordinates: diffusers works with the VP sample x_vp = x / sqrt(1 + sigma^2), Stipple with
x = x0 + sigma * eps. Runs start from x_T = x_unit (VP; diffusers' init_noise_sigma is 1), and
`x_out` is converted to Stipple's coordinates: x = x_vp * sqrt(1 + sigma_last^2) (the same
value when the last sigma is 0).

Configurations where Stipple's method is the same as the scheduler's:
- UniPC bh1 only with final_sigmas_type="sigma_min": with "zero", diffusers' last step computes
  B(h) * 0 with B(h) = -h = -inf and returns NaN (bh2 has B(h) = expm1(-h) = -1 and is fine).
- DEIS always ends at sigma_min (DEISMultistepScheduler has no final_sigmas_type).
- UniPC with Karras sigmas only with "zero": with "sigma_min" diffusers repeats sigma_min and
  its zero-length last step still applies the corrector; Stipple drops that step.
- DEIS and DPM++ 2M with sigma_min: diffusers lowers the order of the last steps only below
  15 steps (`lower_order_final`); Stipple never does (with a final 0 its last step returns D,
  which is what a first-order step to 0 gives). Below 15 steps the runs use
  lower_order_final=False, from 15 on the default.
- LCM: the boundary-condition scalings c_skip, c_out (timestep_scaling 10) belong to the
  consistency model; the Rust test applies them in its denoiser, as a distilled model would.

Usage (same venv as make_math_golden.py; requirements.txt):
    python tests/reference/make_diffusers_multistep_reference.py \
        > crates/stipple-sample/tests/fixtures/diffusers_multistep.json
"""

import json
import math

import torch
import diffusers.schedulers.scheduling_dpmsolver_multistep as dpm_module
import diffusers.schedulers.scheduling_lcm as lcm_module
from diffusers import (DEISMultistepScheduler, DPMSolverMultistepScheduler, LCMScheduler,
                       UniPCMultistepScheduler)

torch.set_default_dtype(torch.float64)
N = 6  # latent size
MU, S = 0.3, 0.5
SD_BETAS = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)


def toy_network(u, sigma, prediction):
    """Exact epsilon / v of N(MU, S^2) data at noise level sigma, plus a nonlinear term."""
    alpha = 1.0 / math.sqrt(1.0 + sigma * sigma)
    x = u / alpha  # VE sample
    d = (S * S * x + sigma * sigma * MU) / (S * S + sigma * sigma)
    eps = (x - d) / sigma
    wobble = 0.05 * torch.sin(3.0 * u + sigma)
    if prediction == "epsilon":
        return eps + wobble
    return alpha * eps - sigma * alpha * d + wobble  # v = alpha * eps - sigma_vp * x0


class F64Torch:
    """torch with `float32` meaning float64, for the DPMSolverMultistepScheduler module."""

    float32 = torch.float64

    def __getattr__(self, name):
        return getattr(torch, name)


dpm_module.torch = F64Torch()


def run_multistep(cls, steps, prediction, x_unit, **config):
    sch = cls(prediction_type=prediction, **SD_BETAS, **config)
    sch.set_timesteps(steps)
    sch.sigmas = sch.sigmas.double()
    x = x_unit.clone().reshape(1, N)
    for i, t in enumerate(sch.timesteps):
        sigma = float(sch.sigmas[i])
        x = sch.step(toy_network(x, sigma, prediction), t, x).prev_sample
    sigmas = sch.sigmas.tolist()
    if sigmas[-1] == sigmas[-2]:
        # Karras sigmas with final_sigmas_type="sigma_min" repeat sigma_min; the step between
        # the two is zero-length. Stipple's FinalSigma::SigmaMin leaves it out.
        sigmas = sigmas[:-1]
    return sigmas, (x.reshape(N) * math.sqrt(1.0 + sigmas[-1] ** 2)).tolist()


def run_lcm(steps, prediction, x_unit, seed):
    sch = LCMScheduler(prediction_type=prediction, **SD_BETAS)
    sch.set_timesteps(steps)
    sch.alphas_cumprod = sch.alphas_cumprod.double()
    gen = torch.Generator().manual_seed(seed)
    draws = []

    def recorded_randn(shape, generator=None, device=None, dtype=None):
        z = torch.randn(N, generator=gen)
        draws.append(z.tolist())
        return z.reshape(shape)

    orig = lcm_module.randn_tensor
    lcm_module.randn_tensor = recorded_randn
    try:
        x = x_unit.clone().reshape(1, N)
        for t in sch.timesteps:
            abar = float(sch.alphas_cumprod[t])
            sigma = math.sqrt((1.0 - abar) / abar)
            x = sch.step(toy_network(x, sigma, prediction), t, x).prev_sample
    finally:
        lcm_module.randn_tensor = orig
    ts = [int(t) for t in sch.timesteps]
    sigmas = [math.sqrt((1.0 - float(sch.alphas_cumprod[t])) / float(sch.alphas_cumprod[t])) for t in ts]
    return ts, sigmas + [0.0], draws, x.reshape(N).tolist()


def main():
    x_unit = torch.randn(N, generator=torch.Generator().manual_seed(4321))
    runs = []

    def add(sampler, options, prediction, steps, spacing, scheduler, sigmas, x_out, **extra):
        runs.append({"sampler": sampler, "options": options, "prediction": prediction, "steps": steps,
                     "spacing": spacing, "scheduler": scheduler, "sigmas": sigmas, "x_out": x_out, **extra})

    step_counts = [1, 2, 5, 10, 25]
    for prediction in ["epsilon", "v_prediction"]:
        # UniPC, order 3 (predictor-corrector, lower_order_final as in Stipple).
        for variant, finals in [("bh2", ["zero", "sigma_min"]), ("bh1", ["sigma_min"])]:
            for final in finals:
                for spacing in ["linspace", "trailing", "leading", "karras"]:
                    if spacing == "karras" and final == "sigma_min":
                        continue  # diffusers repeats sigma_min there (a zero-length step)
                    for steps in step_counts:
                        config = dict(solver_type=variant, solver_order=3, final_sigmas_type=final)
                        if spacing == "karras":
                            config["use_karras_sigmas"] = True
                        else:
                            config["timestep_spacing"] = spacing
                        sigmas, x_out = run_multistep(UniPCMultistepScheduler, steps, prediction, x_unit, **config)
                        name = "unipc" if variant == "bh1" else "unipc_bh2"
                        add(name, {"order": 3}, prediction, steps, spacing,
                            f"UniPCMultistepScheduler({config})", sigmas, x_out)
        # DEIS (log-rho), orders 2 and 3, always ending at sigma_min.
        for order in [2, 3]:
            for spacing in ["linspace", "trailing"]:
                for steps in step_counts + [15]:
                    config = dict(solver_order=order, timestep_spacing=spacing, lower_order_final=steps >= 15)
                    sigmas, x_out = run_multistep(DEISMultistepScheduler, steps, prediction, x_unit, **config)
                    add("deis", {"order": order}, prediction, steps, spacing,
                        f"DEISMultistepScheduler({config})", sigmas, x_out)
        # DPM++ 2M ending at sigma_min (the final-sigma check). With Karras sigmas diffusers
        # repeats sigma_min; its zero-length last step leaves a DPM++ 2M sample unchanged.
        for spacing in ["trailing", "linspace", "karras"]:
            for steps in step_counts + [15]:
                if spacing == "karras" and steps == 1:
                    continue  # [sigma_max, sigma_max]: diffusers takes no real step at all
                config = dict(algorithm_type="dpmsolver++", solver_order=2, final_sigmas_type="sigma_min",
                              lower_order_final=steps >= 15)
                if spacing == "karras":
                    config["use_karras_sigmas"] = True
                else:
                    config["timestep_spacing"] = spacing
                sigmas, x_out = run_multistep(DPMSolverMultistepScheduler, steps, prediction, x_unit, **config)
                add("dpmpp_2m", {}, prediction, steps, spacing,
                    f"DPMSolverMultistepScheduler({config})", sigmas, x_out)
        # LCM (its own timesteps from original_inference_steps=50), recorded noise.
        for steps in [1, 2, 4, 8]:
            ts, sigmas, draws, x_out = run_lcm(steps, prediction, x_unit, seed=100 + steps)
            add("lcm", {}, prediction, steps, "lcm", "LCMScheduler()", sigmas, x_out,
                timesteps=ts, noise=draws)

    print(json.dumps({
        "generator": "tests/reference/make_diffusers_multistep_reference.py (diffusers 0.42.1, torch float64)",
        "network": "exact eps / v of N(0.3, 0.5^2) data + 0.05 * sin(3 u + sigma), u = VP sample",
        "x_unit": x_unit.tolist(),
        "runs": runs,
    }, separators=(",", ":")))


if __name__ == "__main__":
    main()
