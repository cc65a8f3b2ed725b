"""Golden values for crates/stipple-math/tests/golden.rs.

Run in a throw-away virtual environment with the versions of requirements.txt:

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install -r tests/reference/requirements.txt
    /tmp/refvenv/bin/python tests/reference/make_math_golden.py

It prints each golden array under the name of the test that uses it; the tests carry the
same snippets in comments. diffusers computes its schedules in float32 (the tests compare
with f32-sized tolerances); k-diffusion is run with float64 as the default dtype and fed
float64 schedules, so those comparisons are tight.
"""

import torch
import k_diffusion as K
from diffusers import DDIMScheduler, DDPMScheduler, EulerDiscreteScheduler

torch.set_default_dtype(torch.float64)
IDX = [0, 1, 2, 499, 500, 997, 998, 999]


def show(name, values):
    values = [float(v) for v in values]
    print(f"{name} = [{', '.join(repr(v) for v in values)}]")


def pick(t):
    return [t[i] for i in IDX]


# --- betas and alphas_cumprod (diffusers, float32) -------------------------------------
show("betas_linear", pick(DDPMScheduler(beta_schedule="linear", beta_start=0.0001, beta_end=0.02).betas))
show("betas_scaled_linear", pick(DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).betas))
show("betas_squaredcos_cap_v2", pick(DDPMScheduler(beta_schedule="squaredcos_cap_v2").betas))
show("alphas_cumprod_scaled_linear", pick(DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).alphas_cumprod))
show("alphas_cumprod_squaredcos_cap_v2", pick(DDPMScheduler(beta_schedule="squaredcos_cap_v2").alphas_cumprod))

# --- timesteps ---------------------------------------------------------------------------
for spacing in ["leading", "trailing", "linspace"]:
    for steps in [5, 7]:
        s = DDIMScheduler(timestep_spacing=spacing, steps_offset=1)
        s.set_timesteps(steps)
        show(f"ddim_timesteps_{spacing}_{steps}", s.timesteps)
        e = EulerDiscreteScheduler(timestep_spacing=spacing, steps_offset=1)
        e.set_timesteps(steps)
        show(f"euler_timesteps_{spacing}_{steps}", e.timesteps)

# --- Euler discrete sigmas (SD 1.x schedule) ---------------------------------------------
for spacing in ["leading", "trailing", "linspace"]:
    e = EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                               timestep_spacing=spacing, steps_offset=1)
    e.set_timesteps(7)
    show(f"euler_sigmas_{spacing}_7", e.sigmas)

# --- k-diffusion, float64 ----------------------------------------------------------------
show("karras_7", K.sampling.get_sigmas_karras(7, 0.0292, 14.6146, rho=7.0)[:-1])
show("karras_1", K.sampling.get_sigmas_karras(1, 0.0292, 14.6146, rho=7.0)[:-1])
show("exponential_7", K.sampling.get_sigmas_exponential(7, 0.0292, 14.6146)[:-1])

betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
ac = torch.cumprod(1 - betas, 0)
eps = K.external.DiscreteEpsDDPMDenoiser(torch.nn.Identity(), ac, quantize=False)
show("kd_sigma_min_max", [eps.sigma_min, eps.sigma_max])
show("kd_karras_discrete_7", K.sampling.get_sigmas_karras(7, eps.sigma_min, eps.sigma_max, rho=7.0)[:-1])
show("kd_exponential_discrete_7", K.sampling.get_sigmas_exponential(7, eps.sigma_min, eps.sigma_max)[:-1])
query = torch.tensor([0.01, 0.0292, 0.05, 0.1, 1.0, 3.3, 14.0, 14.6146, 20.0])
show("kd_sigma_to_t", eps.sigma_to_t(query))
ts = torch.tensor([0.0, 0.5, 1.0, 10.25, 499.9, 998.5, 999.0])
show("kd_t_to_sigma", eps.t_to_sigma(ts))

sig = torch.tensor([0.0292, 0.5, 1.0, 2.5, 14.6146])
c_out, c_in = eps.get_scalings(sig)
show("kd_eps_c_out", c_out)
show("kd_eps_c_in", c_in)
v = K.external.DiscreteVDDPMDenoiser(torch.nn.Identity(), ac, quantize=False)
for name, val in zip(["c_skip", "c_out", "c_in"], v.get_scalings(sig)):
    show(f"kd_v_{name}", val)
edm = K.layers.Denoiser(torch.nn.Identity(), sigma_data=0.5)
for name, val in zip(["c_skip", "c_out", "c_in"], edm.get_scalings(sig)):
    show(f"kd_edm_{name}", val)
# The training target of Denoiser.loss / VDenoiser.loss, (x0 - c_skip*x)/c_out with
# x = x0 + sigma*noise, split into its x0 and noise coefficients.
for name, den in [("v", v), ("edm", edm)]:
    c_skip, c_out, _ = den.get_scalings(sig)
    show(f"kd_{name}_target_a", (1 - c_skip * 1) / c_out)          # x0 = 1, noise = 0
    show(f"kd_{name}_target_b", (0 - c_skip * sig) / c_out)        # x0 = 0, noise = 1

# Ancestral step (k-diffusion get_ancestral_step).
for (a, b, e) in [(14.6146, 10.0, 1.0), (1.0, 0.5, 1.0), (1.0, 0.5, 0.5), (0.1, 0.05, 1.0)]:
    d, u = K.sampling.get_ancestral_step(torch.tensor(a), torch.tensor(b), eta=e)
    show(f"kd_ancestral_{a}_{b}_{e}", [d, u])
