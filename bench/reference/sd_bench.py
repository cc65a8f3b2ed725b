#!/usr/bin/env python3
"""PyTorch twin of Stipple's `sd_bench` example (crates/stipple-sd/examples/sd_bench.rs):
Stable Diffusion's components built by diffusers and transformers from the same config files
(bench/sd/<model>/*.json, the released architectures) with random weights, the same figures,
the same JSON keys. One figure per process, so that its peak RSS is that figure's.

Figures:
  unet   one U-Net call on (batch, 4, latent, latent) latents with 77 text tokens (SDXL: with
         its pooled embedding and size conditioning), under torch.inference_mode().
  vae    AutoencoderKL.decode of one (1, 4, latent, latent) latent.
  image  a whole guided image as diffusers' pipelines run it: the text encoder on 2 x 77
         token ids (prompt and negative prompt), `steps` steps of EulerDiscreteScheduler
         ("linspace" timesteps, scale_model_input, one U-Net call at batch 2, guidance 7.5,
         step) and the decode of the result. Warm-up: one call of each network.
  gemm   the GEMM peak: the best of 5 f32 2048x2048x2048 torch.mm.
  flops  one U-Net call's FLOPs by kind of layer (3x3 convolutions, 1x1 convolutions, linear
         layers, attention), counted on the meta device: no weights, nothing timed.

diffusers' fastest CPU mode: U-Net and autoencoder in channels-last memory format (inputs too),
attention through torch's scaled_dot_product_attention (diffusers' default AttnProcessor2_0),
inference mode; --compile wraps the U-Net and the decoder in torch.compile (inductor, with
freezing).

FLOPs: counted by forward hooks on every Conv2d, Linear and attention during one extra eager
call before the warm-up (2 per multiply-add; an attention of N queries over M keys of width C adds
4*N*M*C for the scores and the weighted sum). Peak memory: VmHWM of the process at its end.

Usage: python sd_bench.py --configs bench/sd/sd15 --figure unet [--latent 64] [--batch 2]
                          [--steps 20] [--runs 3] [--warmup 1] [--threads 2] [--compile]
                          [--json FILE]
"""

import argparse
import json
import os
import statistics

# The twin's helpers (this folder is on the path when the script runs).
from unet_bench import gemm_peak, rss_mib, timed

GUIDANCE = 7.5
TIMESTEP = 500.0


def load_json(configs, name):
    with open(os.path.join(configs, name)) as f:
        return json.load(f)


class FlopCounter:
    """Forward hooks on Conv2d, Linear and attention modules that add up one call's FLOPs."""

    def __init__(self, torch, *models):
        from diffusers.models.attention_processor import Attention

        self.parts = {}
        self.hooks = []
        for model in models:
            for mod in model.modules():
                if isinstance(mod, torch.nn.Conv2d):
                    self.hooks.append(mod.register_forward_hook(self.conv))
                elif isinstance(mod, torch.nn.Linear):
                    self.hooks.append(mod.register_forward_hook(self.linear))
                elif isinstance(mod, Attention):
                    self.hooks.append(mod.register_forward_hook(self.diffusers_attention, with_kwargs=True))
                elif type(mod).__name__.startswith("CLIP") and type(mod).__name__.endswith("Attention"):
                    self.hooks.append(mod.register_forward_hook(self.clip_attention, with_kwargs=True))

    @property
    def total(self):
        return sum(self.parts.values())

    def add(self, kind, flops):
        self.parts[kind] = self.parts.get(kind, 0) + flops

    def conv(self, m, inp, out):
        cout, cin_g, kh, kw = m.weight.shape
        self.add(f"conv{kh}x{kw}", 2 * cout * cin_g * kh * kw * out.shape[0] * out.shape[-2] * out.shape[-1])

    def linear(self, m, inp, out):
        rows = inp[0].numel() // m.in_features
        self.add("linear", 2 * m.in_features * m.out_features * rows)

    @staticmethod
    def tokens(h):
        return (h.shape[0], h.shape[-2] * h.shape[-1]) if h.ndim == 4 else (h.shape[0], h.shape[1])

    def diffusers_attention(self, m, args, kwargs, out):
        h = args[0] if args else kwargs["hidden_states"]
        ctx = kwargs.get("encoder_hidden_states", args[1] if len(args) > 1 else None)
        b, n = self.tokens(h)
        mm = n if ctx is None else self.tokens(ctx)[1]
        self.add("attention", 4 * b * n * mm * m.to_q.out_features)

    def clip_attention(self, m, args, kwargs, out):
        h = args[0] if args else kwargs["hidden_states"]
        b, n, c = h.shape
        self.add("attention", 4 * b * n * n * c)

    def remove(self):
        for h in self.hooks:
            h.remove()


def token_ids(torch, batch):
    """The framing of Stipple's side: begin-of-text, 8 word ids, end-of-text padded to 77."""
    rows = []
    for b in range(batch):
        words = [320 + 97 * b + 13 * i for i in range(8)]
        rows.append([49406] + words + [49407] * (77 - 1 - len(words)))
    return torch.tensor(rows, dtype=torch.long)


def build_unet(torch, configs):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(1)
    return UNet2DConditionModel.from_config(load_json(configs, "unet.json")).eval()


def build_vae(torch, configs):
    from diffusers import AutoencoderKL

    torch.manual_seed(2)
    return AutoencoderKL.from_config(load_json(configs, "vae.json")).eval()


def build_text_encoder(torch, configs):
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(3)
    cfg = CLIPTextConfig.from_dict(load_json(configs, "text_encoder.json"))
    cfg._attn_implementation = "sdpa"
    return CLIPTextModel(cfg).eval()


def params(*models):
    return sum(p.numel() for m in models for p in m.parameters())


def fastest(torch, model, compile_it, **compile_kwargs):
    """channels-last weights, and torch.compile when asked."""
    model = model.to(memory_format=torch.channels_last)
    return torch.compile(model, **compile_kwargs) if compile_it else model


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="bench/sd/sd15")
    p.add_argument("--figure", choices=["unet", "vae", "image", "gemm", "flops"], default="unet")
    p.add_argument("--latent", type=int, default=64)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--compile", action="store_true", help="torch.compile the U-Net and the decoder")
    p.add_argument("--json", default=None)
    a = p.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    if a.compile:
        # Inductor's CPU inference setting: weights folded into the graph as constants and
        # pre-packed for oneDNN (PyTorch's inductor CPU documentation).
        import torch._inductor.config

        torch._inductor.config.freezing = True
    cl = torch.channels_last
    gen = torch.Generator().manual_seed(0)
    out = {}
    mode = torch.inference_mode

    def counted(models):
        def run(fn):
            c = FlopCounter(torch, *models)
            try:
                with mode():
                    fn()
            finally:
                c.remove()
            return c.total

        return run

    def unet_inputs(cfg, gen):
        """Latents, timesteps, text states and (SDXL) added conditioning of one U-Net call."""
        b = a.batch
        x = torch.randn(b, cfg.in_channels, a.latent, a.latent, generator=gen).to(memory_format=cl)
        t = torch.full((b,), TIMESTEP)
        ctx = torch.randn(b, 77, cfg.cross_attention_dim, generator=gen)
        added = None
        if cfg.addition_embed_type == "text_time":
            pooled = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
            side = 8.0 * a.latent
            added = {
                "text_embeds": torch.randn(b, pooled, generator=gen),
                "time_ids": torch.tensor([[side, side, 0.0, 0.0, side, side]] * b),
            }
        return x, t, ctx, added

    if a.figure == "flops":
        with torch.device("meta"):
            unet = build_unet(torch, a.configs)
            x, t, ctx, added = unet_inputs(unet.config, None)
            c = FlopCounter(torch, unet)
            unet(x, t, encoder_hidden_states=ctx, added_cond_kwargs=added)
        parts = {k: v / 1e9 for k, v in sorted(c.parts.items())}
        print(json.dumps({"model": os.path.basename(os.path.normpath(a.configs)), "latent": a.latent, "batch": a.batch,
                          "gflop": c.total / 1e9, "gflop_by_kind": parts,
                          "share_by_kind": {k: v / (c.total / 1e9) for k, v in parts.items()}}, indent=2))
        return
    if a.figure == "unet":
        unet = build_unet(torch, a.configs)
        n_params = params(unet)
        x, t, ctx, added = unet_inputs(unet.config, gen)
        eager = unet.to(memory_format=cl)
        net = fastest(torch, eager, a.compile)
        out["base_rss_mib"] = rss_mib("VmRSS")

        def call(model=net):
            with mode():
                model(x, t, encoder_hidden_states=ctx, added_cond_kwargs=added).sample

        # FLOPs counted on the eager module (hooks do not run inside a compiled graph).
        flops = counted([eager])(lambda: call(eager))
        times = timed(call, a.runs, a.warmup, call)
    elif a.figure == "vae":
        vae = build_vae(torch, a.configs)
        n_params = params(vae)
        z = torch.randn(1, vae.config.latent_channels, a.latent, a.latent, generator=gen).to(memory_format=cl)
        eager = vae.to(memory_format=cl)
        decode = torch.compile(eager.decode) if a.compile else eager.decode
        out["base_rss_mib"] = rss_mib("VmRSS")

        def call(fn=decode):
            with mode():
                fn(z).sample

        flops = counted([eager])(lambda: call(eager.decode))
        times = timed(call, a.runs, a.warmup, call)
    elif a.figure == "image":
        from diffusers import EulerDiscreteScheduler

        text, unet, vae = build_text_encoder(torch, a.configs), build_unet(torch, a.configs), build_vae(torch, a.configs)
        n_params = params(text, unet, vae)
        unet_eager, vae_eager = unet.to(memory_format=cl), vae.to(memory_format=cl)
        net = fastest(torch, unet_eager, a.compile)
        decode = torch.compile(vae_eager.decode) if a.compile else vae_eager.decode
        # The released SD 1.x scheduler config (scaled-linear betas), diffusers' default spacing.
        sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       num_train_timesteps=1000, steps_offset=1)
        ids = token_ids(torch, 2)
        noise = torch.randn(1, unet.config.in_channels, a.latent, a.latent, generator=gen)
        out["base_rss_mib"] = rss_mib("VmRSS")

        def image():
            with mode():
                states = text(ids)[0]
                sched.set_timesteps(a.steps)
                lat = noise * sched.init_noise_sigma
                for ts in sched.timesteps:
                    inp = sched.scale_model_input(torch.cat([lat, lat]), ts).to(memory_format=cl)
                    eps = net(inp, ts, encoder_hidden_states=states).sample
                    c, u = eps.chunk(2)
                    lat = sched.step(u + GUIDANCE * (c - u), ts, lat).prev_sample
                img = decode((lat / vae.config.scaling_factor).to(memory_format=cl)).sample
                (img / 2 + 0.5).clamp(0, 1)

        def warm(u=net, d=decode):
            with mode():
                states = text(ids)[0]
                u(torch.cat([noise, noise]).to(memory_format=cl), torch.full((2,), TIMESTEP), encoder_hidden_states=states).sample
                d(noise.to(memory_format=cl)).sample

        # One warm-up call of each network: text encoder + U-Net + decoder (FLOPs per part).
        with mode():
            c = FlopCounter(torch, text)
            states = text(ids)[0]
            c.remove()
        f_text = c.total
        f_unet = counted([unet_eager])(lambda: unet_eager(torch.cat([noise, noise]).to(memory_format=cl), torch.full((2,), TIMESTEP), encoder_hidden_states=states).sample)
        f_vae = counted([vae_eager])(lambda: vae_eager.decode(noise.to(memory_format=cl)).sample)
        flops = f_text + a.steps * f_unet + f_vae
        out.update({"steps": a.steps, "sampler": "euler", "schedule": "linspace", "guidance": GUIDANCE,
                    "flops_parts_gflop": {"text_encoder": f_text / 1e9, "unet_call": f_unet / 1e9, "vae_decode": f_vae / 1e9}})
        times = timed(image, a.runs, a.warmup, warm)
    else:
        out["gemm_peak"] = gemm_peak(a.threads, runs=max(a.runs, 5))
        times = out["gemm_peak"]["times_s"]
        flops, n_params = None, None

    med = statistics.median(times)
    out.update({
        "side": "pytorch",
        "model": os.path.basename(os.path.normpath(a.configs)),
        "figure": a.figure,
        "latent": a.latent,
        "batch": a.batch if a.figure == "unet" else 1,
        "runs": a.runs,
        "warmup": a.warmup,
        "times_s": times,
        "median_s": med,
        "parameters": n_params,
        "gflop": None if flops is None else flops / 1e9,
        "gflops": None if flops is None else flops / 1e9 / med,
        "peak_rss_mib": rss_mib("VmHWM"),
        "threads": a.threads,
        "compile": a.compile,
        "memory_format": "channels_last",
        "attention": "scaled_dot_product_attention",
        "versions": {"torch": torch.__version__, "diffusers": __import__("diffusers").__version__,
                     "transformers": __import__("transformers").__version__},
    })
    text = json.dumps(out, indent=2)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
