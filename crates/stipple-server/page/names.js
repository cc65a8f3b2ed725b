// One-line descriptions of the samplers and σ schedules, keyed by the API's names; the
// menus show the names artists know (the server's `display_name`) with these as help.

export const SAMPLER_HELP = {
  ddpm: "The original ancestral sampler (Ho et al. 2020): fresh noise every step; needs many steps.",
  ddim: "Deterministic DDIM (Song et al. 2021): the same seed gives the same picture; good at 20–50 steps.",
  euler: "First-order ODE step (Karras et al. 2022): simple, deterministic, a safe default.",
  euler_ancestral: "Euler with fresh noise each step: varied, painterly results that keep changing with steps.",
  heun: "Second-order ODE (two model calls a step): more accurate than Euler for the same steps.",
  dpmpp_2m: "DPM-Solver++ 2M (Lu et al. 2022): sharp, deterministic, converges in 20–30 steps.",
  dpmpp_2m_sde: "DPM-Solver++ 2M with noise injection: more detail and variety than 2M.",
  dpmpp_2m_sde_heun: "DPM++ 2M SDE with a Heun-style correction of the noise step.",
  dpmpp_3m_sde: "Third-order multistep SDE solver: fine detail, wants a few more steps.",
  dpmpp_2s_ancestral: "DPM-Solver++ single-step second order with ancestral noise (two calls a step).",
  dpmpp_sde: "DPM-Solver++ SDE (two calls a step): high quality at few steps, stochastic.",
  dpm_2: "DPM-Solver second order (two calls a step), deterministic.",
  dpm_2_ancestral: "DPM2 with ancestral noise: stochastic, two calls a step.",
  lms: "Linear multistep: reuses past steps for accuracy at one model call a step.",
  ipndm: "Improved pseudo-numerical multistep (Zhang & Chen 2023): strong at very few steps.",
  deis: "Diffusion exponential integrator sampler (Zhang & Chen 2023): accurate multistep ODE solver.",
  unipc: "UniPC predictor–corrector (Zhao et al. 2023): good pictures in 10–20 steps.",
  unipc_bh2: "UniPC with the B(h)=exp(h)−1 variant: often better at the fewest steps.",
  lcm: "Latent consistency sampling: for consistency-distilled models, 2–8 steps.",
  edm: "Karras et al.'s stochastic sampler: Heun steps with noise churn.",
};

export const SCHEDULE_HELP = {
  leading: "diffusers' leading timesteps: the classic DDIM spacing.",
  trailing: "diffusers' trailing timesteps: starts at the very top noise level.",
  linspace: "Timesteps evenly spaced from the top to the bottom of training.",
  karras: "Karras ρ = 7: dense steps at low noise, where fine detail forms.",
  exponential: "Evenly spaced in log σ.",
  polyexponential: "A1111's polyexponential: between Karras and exponential.",
  sgm_uniform: "Evenly spaced timesteps, endpoint left out (as SDXL-Turbo samples).",
  normal: "Evenly spaced timesteps including the last (ComfyUI 'normal').",
  simple: "Every n-th training noise level from the top (ComfyUI 'simple').",
  ddim_uniform: "ComfyUI's DDIM uniform spacing (may add one step).",
  beta: "Timesteps at the quantiles of Beta(0.6, 0.6): more steps at both ends.",
  linear_quadratic: "Linear, then quadratic (Mochi's schedule).",
  vp: "The continuous VP SDE's noise levels (k-diffusion defaults).",
};
