#!/usr/bin/env python3
"""The table of bench/recipe/compare.sh: for each model, the Fréchet distance and
precision/recall of its R sample sets (eval-R.json from `stipple eval folders`), as mean ± the
half-width of the 95% Student-t interval over the sets; with each run's steps and time."""
import json
import os
import statistics
import sys

# Student's t 97.5% quantiles by degrees of freedom (any statistics table; e.g. NIST/SEMATECH
# e-Handbook, table 1.3.6.7.2).
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def ci(values):
    if len(values) < 2:
        return statistics.mean(values), 0.0
    if len(values) - 1 not in T975:
        raise SystemExit(f"{len(values)} sets: extend T975 to {len(values) - 1} degrees of freedom")
    return statistics.mean(values), T975[len(values) - 1] * statistics.stdev(values) / len(values) ** 0.5


def run_of(out, model):
    """Steps and training seconds of the run behind a samples folder."""
    if model == "stipple":
        steps = json.loads(open(os.path.join(out, "stipple", "train.jsonl")).read().splitlines()[-1]).get("step")
        seconds = open(os.path.join(out, "stipple-time.txt")).read().split(" in ")[1].split(" s")[0]
        return steps, float(seconds), "Stipple default (v-prediction, min-SNR γ=5, lr 1e-3, EMA 0.995), DPM++ 2M Karras"
    sampler = "DDIM with x̂₀ clipping" if model.endswith("-ddim") else "DPM++ 2M Karras"
    run, weights = model.removesuffix("-ddim").rsplit("-unet", 1)
    s = json.load(open(os.path.join(out, run, "summary.json")))
    what = {"diffusers-steps": "same steps", "diffusers-time-planned": "same time"}[run]
    return s["steps"], s["train_seconds"], f"diffusers train_unconditional ({what}), {'EMA' if weights == '_ema' else 'raw'} weights, {sampler}"


def main():
    out = sys.argv[1]
    root = os.path.join(out, "samples")
    rows = []
    for model in sorted(os.listdir(root), key=lambda m: (m != "stipple", m)):
        evals = sorted(f for f in os.listdir(os.path.join(root, model)) if f.startswith("eval-") and f.endswith(".json"))
        reports = [json.load(open(os.path.join(root, model, f))) for f in evals]
        if not reports:
            continue
        fd = ci([r["fd"] for r in reports])
        p = ci([r["precision_recall"]["precision"] for r in reports])
        rc = ci([r["precision_recall"]["recall"] for r in reports])
        steps, seconds, what = run_of(out, model)
        rows.append((what, steps, seconds, len(reports), reports[0]["generated"], fd, p, rc))
    print("| recipe | steps | training time | sets × images | FD ↓ | precision ↑ | recall ↑ |")
    print("|---|---|---|---|---|---|---|")
    for what, steps, seconds, sets, n, fd, p, rc in rows:
        print(f"| {what} | {steps} | {seconds:.0f} s | {sets} × {n} | {fd[0]:.2f} ± {fd[1]:.2f} | {p[0]:.3f} ± {p[1]:.3f} | {rc[0]:.3f} ± {rc[1]:.3f} |")


if __name__ == "__main__":
    main()
