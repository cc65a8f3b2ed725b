"""Golden values for crates/stipple-sample/tests/ddim_conformance.rs: diffusers'
DDIMScheduler (set_alpha_to_one=True, clip_sample=False, steps_offset=1, leading spacing, SD 1.x betas) run
with the exact ε-prediction of Gaussian data x0 ~ N(mu, s^2), for eta = 0 and eta = 1 with
given variance noise. Same environment as make_math_golden.py.
"""

import torch
from diffusers import DDIMScheduler

mu, s = 0.3, 0.5
x_T = torch.tensor([-1.5, -0.2, 0.0, 0.7, 2.0], dtype=torch.float64)
# Fixed "random" normals for the eta = 1 run, one row per step (9 rows: the last step adds none).
z = torch.tensor([[0.1 * ((7 * i + 3 * j) % 11 - 5) for j in range(5)] for i in range(10)], dtype=torch.float64)


def eps_exact(x, a):
    """E[eps | x_t] for x_t = sqrt(a) x0 + sqrt(1 - a) eps, x0 ~ N(mu, s^2)."""
    x0 = mu + (a ** 0.5) * s * s / (a * s * s + 1 - a) * (x - a ** 0.5 * mu)
    return (x - a ** 0.5 * x0) / (1 - a) ** 0.5


def run(eta):
    sch = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                        set_alpha_to_one=True, steps_offset=1, timestep_spacing="leading",
                        clip_sample=False)
    sch.set_timesteps(10)
    x = x_T.clone()
    for i, t in enumerate(sch.timesteps):
        a = sch.alphas_cumprod[t].double()
        x = sch.step(eps_exact(x, a), t, x, eta=eta, variance_noise=z[i]).prev_sample
    return sch.timesteps, x


ts, x0 = run(0.0)
print("timesteps =", [int(t) for t in ts])
print("ddim_eta0 =", [float(v) for v in x0])
print("ddim_eta1 =", [float(v) for v in run(1.0)[1]])
print("z =", z.tolist())
