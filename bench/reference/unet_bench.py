#!/usr/bin/env python3
"""PyTorch twin of `stipple bench`: the same U-Nets (diffusers' UNet2DModel with the
configs of Stipple's presets), the same three figures, the same JSON keys.

Figures (each measured in its own child process, so every figure has its own peak RSS):
  train    one training step at batch 32: x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps with
           t ~ U{0..999} (DDPM linear betas), loss = MSE(model(x_t, t), eps), backward,
           torch.optim.AdamW(lr=2e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0).
           model.train(): dropout as configured (0.1 in the bench-unet presets).
  forward  one inference forward at batch 16 under torch.inference_mode(), model.eval().
  sample   a complete 20-step DPM++ 2M sample over Karras sigmas (rho = 7) at batch 16,
           eps-prediction preconditioning with log-sigma interpolated timesteps
           (the k-diffusion formulation Stipple's sampler follows). Warm-up: forward passes.

Modes (--modes; each figure in each mode is its own child process):
  nchw           the twin: model and inputs in PyTorch's default (NCHW) memory layout; always run.
  channels_last  model and inputs in channels-last (NHWC) memory layout, the layout oneDNN
                 prefers and PyTorch's CPU performance guide recommends.
  compile        channels-last, and the model wrapped in torch.compile (inductor); the first
                 warm-up run compiles (at least one warm-up run is made). A mode whose child
                 fails (torch.compile needs a C++ compiler) is recorded with its error.
The NCHW results keep their place in the JSON (row[figure]); the other modes go to
row["modes"][mode][figure].

Median over --runs timed runs after --warmup untimed ones. Peak memory: VmHWM of the child
process (/proc/self/status) at its end. FLOPs: counted by forward hooks on every Conv2d,
Linear and attention (2 per multiply-add; attention scores and weighted sum 4*L^2*C);
a training step counts 3x its forward (backward = input grads + weight grads).

Usage: python unet_bench.py [--preset NAME ...] [--runs N] [--warmup N] [--sample-runs N]
                            [--threads N] [--modes MODE ...] [--json FILE]
"""

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

PRESETS = ["bench-unet16", "bench-unet32", "bench-unet64", "emoji16"]
FIGURES = ["train", "forward", "sample"]
TRAIN_BATCH = 32
INFER_BATCH = 16
SAMPLE_STEPS = 20
T_TRAIN = 1000
# Modes besides the NCHW twin, in order.
EXTRA_MODES = ["channels_last", "compile"]


CONFIGS = {}


def unet_config(preset):
    """diffusers UNet2DModel kwargs equal to Stipple's UNetConfig of the same preset.

    `--configs FILE` (written by `stipple bench --print-configs`, as bench/run.sh does) takes
    the configs from Stipple itself; the copies below are the fallback for standalone use."""
    if preset in CONFIGS:
        return dict(CONFIGS[preset])
    bench = dict(
        in_channels=3,
        out_channels=3,
        center_input_sample=False,
        flip_sin_to_cos=True,
        freq_shift=0,
        down_block_types=("DownBlock2D",) * 3,
        up_block_types=("UpBlock2D",) * 3,
        block_out_channels=(64, 128, 128),
        layers_per_block=2,
        mid_block_scale_factor=1.0,
        dropout=0.1,
        attention_head_dim=None,
        norm_num_groups=32,
        norm_eps=1e-5,
        add_attention=True,
    )
    if preset in ("bench-unet16", "bench-unet32", "bench-unet64"):
        return dict(bench, sample_size=int(preset[len("bench-unet"):]))
    if preset == "emoji16":
        # UNetConfig::emoji16() as of 2026-12 (1,113,955 parameters). The demo config changes;
        # bench/run.sh passes Stipple's current one with --configs.
        return dict(
            bench,
            sample_size=16,
            block_out_channels=(32, 64, 64),
            down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
            layers_per_block=1,
            dropout=0.0,
        )
    if preset == "tiny":
        # UNetConfig::tiny(): the 8x8 test network.
        return dict(
            sample_size=8,
            down_block_types=("DownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "UpBlock2D"),
            block_out_channels=(8, 16),
            layers_per_block=1,
            attention_head_dim=8,
            norm_num_groups=4,
        )
    raise SystemExit(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")


def rss_mib(key="VmHWM"):
    """VmHWM (peak) or VmRSS (current) of this process, MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build(preset, torch):
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    model = UNet2DModel(**unet_config(preset))
    return model


def count_forward_flops(model, size, torch):
    """FLOPs of one forward at batch 1, from hooks on Conv2d, Linear and Attention."""
    from diffusers.models.attention_processor import Attention

    total = [0]
    hooks = []

    def conv_hook(m, inp, out):
        cout, cin_g, kh, kw = m.weight.shape
        total[0] += 2 * cout * cin_g * kh * kw * out.shape[-2] * out.shape[-1]

    def linear_hook(m, inp, out):
        rows = inp[0].numel() // m.in_features
        total[0] += 2 * m.in_features * m.out_features * rows

    def attn_hook(m, inp, out):
        h = inp[0]
        tokens = h.shape[-2] * h.shape[-1] if h.ndim == 4 else h.shape[1]
        total[0] += 4 * tokens * tokens * m.to_q.out_features

    for mod in model.modules():
        if isinstance(mod, torch.nn.Conv2d):
            hooks.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, torch.nn.Linear):
            hooks.append(mod.register_forward_hook(linear_hook))
        elif isinstance(mod, Attention):
            hooks.append(mod.register_forward_hook(attn_hook))
    with torch.inference_mode():
        model.eval()
        device = next(model.parameters()).device
        model(torch.zeros(1, 3, size, size, device=device), torch.tensor([10], device=device))
    for h in hooks:
        h.remove()
    return total[0]


def alphas_cumprod(torch):
    betas = torch.linspace(1e-4, 0.02, T_TRAIN, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, 0)


def karras_sigmas(n, sigma_min, sigma_max, rho=7.0):
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    s = [(hi + i / (n - 1) * (lo - hi)) ** rho for i in range(n)]
    return s + [0.0]


def sample_dpmpp_2m(model, x, sigmas, log_sigmas, torch):
    """DPM++ 2M (Lu et al. 2022, as in k-diffusion) with eps-prediction preconditioning."""

    def sigma_to_t(s):
        ls = math.log(s)
        # log sigmas increase with t; interpolate between the neighbours.
        idx = int(torch.searchsorted(log_sigmas, torch.tensor(ls, dtype=torch.float64)).clamp(1, T_TRAIN - 1))
        lo, hi = log_sigmas[idx - 1].item(), log_sigmas[idx].item()
        w = min(max((ls - lo) / (hi - lo), 0.0), 1.0)
        return idx - 1 + w

    def denoise(x, s):
        c_in = 1.0 / math.sqrt(s * s + 1.0)
        t = torch.full((x.shape[0],), sigma_to_t(s), dtype=torch.float32, device=x.device)
        eps = model(x * c_in, t).sample
        return x - eps * s

    old = None
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        d = denoise(x, s)
        if s_next == 0.0:
            x = d
        else:
            t, t_next = -math.log(s), -math.log(s_next)
            h = t_next - t
            if old is None:
                dd = d
            else:
                h_last = t - (-math.log(sigmas[i - 1]))
                r = h_last / h
                dd = (1 + 1 / (2 * r)) * d - (1 / (2 * r)) * old
            x = (s_next / s) * x - math.expm1(-h) * dd
        old = d
    return x


BASE_RSS = [float("nan")]


def timed(fn, runs, warmup, warm_fn=None, sync=lambda: None):
    """Seconds per call of `fn`, each timed run ending with `sync()` (the device's
    synchronisation: GPU work is asynchronous)."""
    BASE_RSS[0] = rss_mib("VmRSS")
    for _ in range(warmup):
        (warm_fn or fn)()
    sync()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def child(preset, figure, mode, args):
    import torch

    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    fmt = torch.contiguous_format if mode == "nchw" else torch.channels_last
    model = build(preset, torch).to(dev, memory_format=fmt)
    cfg = unet_config(preset)
    size = cfg["sample_size"]
    params = sum(p.numel() for p in model.parameters())
    fwd1 = count_forward_flops(model, size, torch)
    # `net` is what the figures call; the optimizer updates `model`'s parameters (shared).
    net = torch.compile(model) if mode == "compile" else model
    warmup = max(args.warmup, 1) if mode == "compile" else args.warmup

    def inp(t):
        """An input tensor on the device, in the mode's memory layout."""
        return t.to(dev, memory_format=fmt)

    gen = torch.Generator().manual_seed(1)
    runs = args.runs
    if figure == "train":
        batch = TRAIN_BATCH
        model.train()
        abar = alphas_cumprod(torch).float().to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=2e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

        def step():
            x0 = inp(torch.randn(batch, 3, size, size, generator=gen).clamp(-1, 1))
            eps = inp(torch.randn(batch, 3, size, size, generator=gen))
            t = torch.randint(0, T_TRAIN, (batch,), generator=gen).to(dev)
            a = abar[t].view(batch, 1, 1, 1)
            x = a.sqrt() * x0 + (1 - a).sqrt() * eps
            out = net(x, t).sample
            loss = torch.nn.functional.mse_loss(out, eps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        times = timed(step, runs, warmup, sync=sync)
        flops = 3 * fwd1 * batch
        extra = {"optimizer": "torch.optim.AdamW (lr 2e-4, weight_decay 0)"}
    elif figure == "forward":
        batch = INFER_BATCH
        model.eval()
        x = inp(torch.randn(batch, 3, size, size, generator=gen))
        t = torch.full((batch,), 500.0, device=dev)

        def fwd():
            with torch.inference_mode():
                net(x, t).sample

        times = timed(fwd, runs, warmup, sync=sync)
        flops = fwd1 * batch
        extra = {}
    else:
        batch = INFER_BATCH
        runs = args.sample_runs
        model.eval()
        abar = alphas_cumprod(torch)
        sig = ((1 - abar) / abar).sqrt()
        log_sigmas = sig.log()
        sigmas = karras_sigmas(SAMPLE_STEPS, sig[0].item(), sig[-1].item())
        x = inp(torch.randn(batch, 3, size, size, generator=gen))

        def smp():
            with torch.inference_mode():
                sample_dpmpp_2m(net, x * sigmas[0], sigmas, log_sigmas, torch)

        def warm():
            # Inputs made under inference mode, as in the sample (plain tensors would make
            # torch.compile compile the model a second time, inside the first timed sample).
            with torch.inference_mode():
                net(x * sigmas[0], torch.full((batch,), 500.0, device=dev)).sample

        times = timed(smp, runs, warmup, warm, sync=sync)
        flops = SAMPLE_STEPS * fwd1 * batch
        extra = {"steps": SAMPLE_STEPS, "sampler": "dpmpp_2m", "schedule": "karras"}
    med = statistics.median(times)
    return {
        "preset": preset,
        "figure": figure,
        "mode": mode,
        "parameters": params,
        "image_size": size,
        "forward_gflop_per_image": fwd1 / 1e9,
        "batch": batch,
        "runs": runs,
        "warmup": warmup,
        "times_s": times,
        "median_s": med,
        "gflop": flops / 1e9,
        "gflops": flops / 1e9 / med,
        "peak_rss_mib": rss_mib("VmHWM"),
        "base_rss_mib": BASE_RSS[0],
        **extra,
    }


def gemm_peak(threads, n=2048, runs=5):
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    c = a @ b
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)
        times.append(time.perf_counter() - t0)
    flop = 2.0 * n ** 3
    return {"n": n, "runs": runs, "best_gflops": flop / min(times) / 1e9,
            "median_gflops": flop / statistics.median(times) / 1e9, "implementation": "torch.mm (f32)", "times_s": times}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", nargs="+", default=PRESETS, choices=PRESETS + ["tiny"])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--sample-runs", type=int, default=None, help="runs of the sample figure (default: --runs)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--figure", nargs="+", default=FIGURES, choices=FIGURES)
    p.add_argument("--modes", nargs="*", default=EXTRA_MODES, choices=EXTRA_MODES,
                   help="modes to time besides the NCHW twin (none: the twin only)")
    p.add_argument("--device", default="cpu", help="cpu, or cuda / cuda:N (each timed run ends with "
                   "torch.cuda.synchronize(); memory is still the host process's)")
    p.add_argument("--json", default=None)
    p.add_argument("--configs", default=None, help="JSON {preset: UNet2DModel kwargs} from `stipple bench --print-configs`")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.sample_runs is None:
        args.sample_runs = args.runs
    if args.runs < 1 or args.sample_runs < 1 or args.threads < 1 or args.warmup < 0:
        raise SystemExit("--runs, --sample-runs and --threads must be >= 1, --warmup >= 0")
    if args.configs:
        with open(args.configs) as f:
            CONFIGS.update(json.load(f))
    if args.child:
        preset, figure, mode = args.child.split(":")
        print(json.dumps(child(preset, figure, mode, args)))
        return

    import torch
    import diffusers

    rows = []
    for preset in args.preset:
        row = {"preset": preset, "modes": {m: {} for m in args.modes}}
        for figure in args.figure:
            for mode in ["nchw", *args.modes]:
                cmd = [sys.executable, os.path.abspath(__file__), "--child", f"{preset}:{figure}:{mode}",
                       *(["--configs", args.configs] if args.configs else []),
                       "--runs", str(args.runs), "--warmup", str(args.warmup),
                       "--sample-runs", str(args.sample_runs), "--threads", str(args.threads),
                       "--device", args.device]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    if mode == "nchw":
                        sys.stderr.write(proc.stderr)
                        raise SystemExit(f"the twin failed on {preset}:{figure}")
                    # A mode that does not build here (torch.compile without a C++ compiler).
                    err = (proc.stderr.strip().splitlines() or ["exit status %d" % proc.returncode])[-1]
                    row["modes"][mode][figure] = {"error": err[:300]}
                    print(f"{preset:>13} {figure:>8} {mode:>13}: failed: {err[:200]}", file=sys.stderr)
                    continue
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                for k in ("parameters", "image_size", "forward_gflop_per_image"):
                    row[k] = res.pop(k)
                res.pop("preset"), res.pop("figure"), res.pop("mode")
                if mode == "nchw":
                    row[figure] = res
                else:
                    row["modes"][mode][figure] = res
                print(f"{preset:>13} {figure:>8} {mode:>13}: median {res['median_s']:.3f} s  "
                      f"({res['gflops']:.1f} GFLOP/s, peak {res['peak_rss_mib']:.0f} MiB)", file=sys.stderr)
        rows.append(row)
    report = {
        "tool": "pytorch",
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                     "python": platform.python_version()},
        "threads": args.threads,
        "device": args.device,
        "runs": args.runs,
        "sample_runs": args.sample_runs,
        "warmup": args.warmup,
        "modes": ["nchw", *args.modes],
        "peak_memory": "VmHWM of one child process per (preset, figure)",
        "gemm_peak": gemm_peak(args.threads) if args.device == "cpu" else None,
        "presets": rows,
    }
    print_table(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


def print_table(r):
    peak = f"; CPU GEMM peak {r['gemm_peak']['best_gflops']:.1f} GFLOP/s" if r["gemm_peak"] else ""
    print(f"pytorch on {r['device']}: {r['threads']} threads, median of {r['runs']} runs "
          f"({r['sample_runs']} for sample) after {r['warmup']} warm-up{peak}")
    print(f"{'preset':<13} {'params':>10} {'figure':<8} {'mode':<13} {'batch':>5} {'median s':>9} {'GFLOP/s':>8} {'peak MiB':>9}")
    for row in r["presets"]:
        for fig in FIGURES:
            if fig not in row:
                continue
            results = [("nchw", row[fig])] + [(m, figs[fig]) for m, figs in row.get("modes", {}).items() if fig in figs]
            for mode, f in results:
                if "error" in f:
                    print(f"{row['preset']:<13} {row['parameters']:>10,} {fig:<8} {mode:<13} failed: {f['error'][:60]}")
                    continue
                print(f"{row['preset']:<13} {row['parameters']:>10,} {fig:<8} {mode:<13} {f['batch']:>5} "
                      f"{f['median_s']:>9.3f} {f['gflops']:>8.1f} {f['peak_rss_mib']:>9.0f}")


if __name__ == "__main__":
    main()
