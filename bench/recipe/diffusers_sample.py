#!/usr/bin/env python3
"""Samples a diffusers UNet2DModel folder into one PNG per image; image i starts from
torch.Generator seeded with SEED + i.

--scheduler dpmpp_2m (default): DPM-Solver++(2M) on Karras σ's (diffusers'
DPMSolverMultistepScheduler, algorithm_type "dpmsolver++", solver_order 2, use_karras_sigmas),
the sampler and schedule of Stipple's default. --scheduler ddim: diffusers' DDIMScheduler with
its defaults (η = 0, x̂₀ clipped to [−1, 1]), as its DDIMPipeline samples."""
import argparse
import os


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--unet", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("-n", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--scheduler", choices=["dpmpp_2m", "ddim"], default="dpmpp_2m")
    a = p.parse_args()

    import numpy as np
    import torch
    from PIL import Image
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, UNet2DModel

    torch.set_num_threads(a.threads)
    model = UNet2DModel.from_pretrained(a.unet).eval()
    size, channels = model.config.sample_size, model.config.in_channels
    os.makedirs(a.out, exist_ok=True)
    with torch.no_grad():
        for first in range(0, a.n, a.batch):
            seeds = range(a.seed + first, a.seed + min(first + a.batch, a.n))
            if a.scheduler == "ddim":
                scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", prediction_type="epsilon")
            else:
                scheduler = DPMSolverMultistepScheduler(
                    num_train_timesteps=1000, beta_schedule="linear", prediction_type="epsilon",
                    algorithm_type="dpmsolver++", solver_order=2, use_karras_sigmas=True)
            scheduler.set_timesteps(a.steps)
            x = torch.cat([torch.randn((1, channels, size, size), generator=torch.Generator().manual_seed(s)) for s in seeds])
            x = x * scheduler.init_noise_sigma
            for t in scheduler.timesteps:
                eps = model(scheduler.scale_model_input(x, t), t).sample
                x = scheduler.step(eps, t, x).prev_sample
            images = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
            for s, img in zip(seeds, images):
                Image.fromarray(np.ascontiguousarray(img)).save(os.path.join(a.out, f"seed-{s}.png"))


if __name__ == "__main__":
    main()
