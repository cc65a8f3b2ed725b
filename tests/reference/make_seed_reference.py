"""Reference values for "same seed, same picture" with PyTorch's CPU generator, the generator
diffusers uses when a `torch.Generator("cpu")` is passed, and the web UI's "CPU" random number
source (one `torch.Generator("cpu").manual_seed(seed + i)` per image, as diffusers does when
given a list of generators).

Run from the repository root in a venv with tests/reference/requirements-sd.txt installed,
after make_sd_fixture.py (it reads the tiny SD 1.x fixture):
    python tests/reference/make_seed_reference.py

Writes tests/reference/sd/goldens-seeds.{json,safetensors}:
- `randn.{seed}.{k}`: the k-th call `torch.randn(n_k, generator=g)` of one generator
  `torch.Generator().manual_seed(seed)`, float32, for sizes below, at and above the 16-value
  blocks of PyTorch's CPU normal kernel, so the generator's state is followed across calls;
- `euler_a.image`: diffusers' StableDiffusionPipeline on tests/fixtures/sd/tiny-sd15 with
  EulerAncestralDiscreteScheduler (trailing spacing, so that the first σ is the largest
  σ of the schedule, as in k-diffusion), 4 steps, guidance 7.5, a negative prompt, two images
  from the generators of seeds 42 and 43: the starting latents and every ancestral noise come
  from those generators; `output_type="np"`, as (B, 3, H, W) in [0, 1];
- `turbo.{steps}.image`: SD-Turbo's recipe on the same fixture (its model card: Euler a with
  trailing spacing, 1 or 2 steps, `guidance_scale=0.0`, which diffusers reads as no
  classifier-free guidance), one image from the CPU generator of seed 7.
"""
import json
import os

import torch
from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline
from safetensors.torch import save_file

FOLDER = "tests/fixtures/sd/tiny-sd15"
OUT = "tests/reference/sd/goldens-seeds"
SEEDS = [0, 42, 123456789, 2**32 + 7]
SIZES = [1024, 37, 7, 16, 3, 64]
PROMPT = "a watercolor lighthouse at dusk"
NEGATIVE = "blurry, low quality"


def main():
    g, meta = {}, {"seeds": SEEDS, "sizes": SIZES, "torch": torch.__version__}
    for seed in SEEDS:
        gen = torch.Generator().manual_seed(seed)
        for k, n in enumerate(SIZES):
            g[f"randn.{seed}.{k}"] = torch.randn(n, generator=gen)

    pipe = StableDiffusionPipeline.from_pretrained(FOLDER, torch_dtype=torch.float32, local_files_only=True)
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing")
    pipe.set_progress_bar_config(disable=True)
    seeds = [42, 43]
    run = dict(prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=4, guidance_scale=7.5, height=32, width=32,
               num_images_per_prompt=len(seeds))
    image = pipe(**run, generator=[torch.Generator().manual_seed(s) for s in seeds], output_type="np").images
    g["euler_a.image"] = torch.from_numpy(image).permute(0, 3, 1, 2).contiguous()
    pipe.scheduler.set_timesteps(4)
    meta["euler_a"] = dict(prompt=PROMPT, negative_prompt=NEGATIVE, steps=4, guidance_scale=7.5, width=32, height=32,
                           seeds=seeds, sigmas=pipe.scheduler.sigmas.tolist())
    for steps in [1, 2]:
        turbo = pipe(prompt=PROMPT, num_inference_steps=steps, guidance_scale=0.0, height=32, width=32,
                     generator=[torch.Generator().manual_seed(7)], output_type="np").images
        g[f"turbo.{steps}.image"] = torch.from_numpy(turbo).permute(0, 3, 1, 2).contiguous()
    meta["turbo"] = dict(prompt=PROMPT, steps=[1, 2], guidance_scale=0.0, seed=7, width=32, height=32)
    # A different seed gives a different picture (the test's comparison can fail).
    other = pipe(**run, generator=[torch.Generator().manual_seed(s) for s in [44, 45]], output_type="np").images
    assert abs(other - image).max() > 1e-2

    save_file(g, OUT + ".safetensors")
    with open(OUT + ".json", "w") as f:
        json.dump(meta, f, indent=1)
    print("wrote", OUT, os.path.getsize(OUT + ".safetensors"), "bytes")


if __name__ == "__main__":
    main()
