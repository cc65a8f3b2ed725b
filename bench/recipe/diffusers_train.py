#!/usr/bin/env python3
"""diffusers' unconditional training recipe (examples/unconditional_image_generation/
train_unconditional.py, its defaults) on a folder of PNGs, with Stipple's network.

The recipe as that example runs it: DDPM with 1000 linear-β steps, ε-prediction and plain MSE,
AdamW (lr 1e-4, betas 0.95/0.999, weight decay 1e-6, eps 1e-8), a cosine learning-rate
schedule with 500 warm-up steps over the run, gradient-norm clipping at 1.0, shuffled epochs,
and EMA weights as its README's command (`--use_ema`: inv_gamma 1, power 3/4, max decay
0.9999, warm-up). Random flips are off, as in Stipple's default run. The network is the same
U-Net as Stipple's (`--config`, diffusers UNet2DModel kwargs from `stipple bench
--print-configs`), so only the recipe differs.

Stops at --steps or after --seconds of training (whichever comes first; the clock runs over
the training steps only), and saves the raw and the EMA weights as diffusers folders.
"""
import argparse
import json
import math
import os
import time


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder of training PNGs")
    p.add_argument("--config", required=True, help="JSON of UNet2DModel kwargs")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, required=True, help="planned steps (the cosine schedule's length)")
    p.add_argument("--seconds", type=float, default=math.inf, help="stop after this much training time")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image
    from diffusers import DDPMScheduler, UNet2DModel
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    files = sorted(f for f in os.listdir(a.data) if f.endswith(".png"))
    # ToTensor + Normalize([0.5], [0.5]); the images already have the training size, so the
    # example's Resize and CenterCrop change nothing.
    pixels = np.stack([np.asarray(Image.open(os.path.join(a.data, f)).convert("RGB"), dtype=np.float32) for f in files])
    data = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous() / 127.5 - 1.0

    with open(a.config) as f:
        model = UNet2DModel(**json.load(f))
    noise_scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", prediction_type="epsilon")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8)
    lr_scheduler = get_scheduler("cosine", optimizer=optimizer, num_warmup_steps=500, num_training_steps=a.steps)
    ema = EMAModel(model.parameters(), decay=0.9999, use_ema_warmup=True, inv_gamma=1.0, power=3 / 4, model_cls=UNet2DModel, model_config=model.config)

    step, trained, losses = 0, 0.0, []
    model.train()
    while step < a.steps and trained < a.seconds:
        order = torch.randperm(len(data))
        for first in range(0, len(data), a.batch_size):
            if step >= a.steps or trained >= a.seconds:
                break
            t0 = time.perf_counter()
            clean = data[order[first:first + a.batch_size]]
            noise = torch.randn(clean.shape)
            timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (clean.shape[0],)).long()
            noisy = noise_scheduler.add_noise(clean, noise, timesteps)
            loss = F.mse_loss(model(noisy, timesteps).sample, noise)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            ema.step(model.parameters())
            trained += time.perf_counter() - t0
            step += 1
            losses.append(loss.item())
            if step % 250 == 0:
                print(f"step {step}: loss {np.mean(losses[-250:]):.4f}, {trained:.0f} s", flush=True)

    os.makedirs(a.out, exist_ok=True)
    model.save_pretrained(os.path.join(a.out, "unet"))
    ema.copy_to(model.parameters())
    model.save_pretrained(os.path.join(a.out, "unet_ema"))
    summary = {"steps": step, "train_seconds": trained, "seconds_per_step": trained / max(step, 1), "final_loss": float(np.mean(losses[-100:]))}
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
