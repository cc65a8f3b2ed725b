#!/usr/bin/env python3
"""Writes docs/BENCHMARKS.md from the JSON of `stipple bench` and of the PyTorch twin.

Called by bench/run.sh; standard library only. Each side may come as several JSON files
(run.sh alternates the two sides preset by preset, in one or more rounds); their presets are
merged in order, and a preset measured in several rounds becomes one row whose figures hold the
runs of all rounds (`merge_figure`).
"""

import argparse
import json
import re
import statistics
import subprocess

FIGURES = ["train", "forward", "sample"]
FIGURE_NAMES = {
    "train": "training step",
    "forward": "inference forward",
    "sample": "20-step sample",
}
# Issue 3's targets: Stipple / PyTorch time ratio per figure (train: 1.0, at the very least 1.5).
TARGET = {"train": 1.0, "forward": 1.0, "sample": 1.0}
TRAIN_FLOOR = 1.5
# Issue 19's targets against the fastest PyTorch mode of each figure.
TARGET_BEST = {"train": 1.0, "forward": 0.9, "sample": 0.9}
MODE_NAMES = {
    "nchw": "NCHW (the twin)",
    "channels_last": "channels-last",
    "compile": "channels-last + torch.compile",
}
# /proc/cpuinfo flags named in the report: the vector and matrix extensions.
VECTOR_FLAGS = ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl",
                "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8"]

# perf symbol -> bucket, first match wins.
BUCKETS = [
    ("thread-pool wait (BarrierGuard / rayon spin / yield)", r"BarrierGuard|rayon_core|crossbeam|sched_yield|spin"),
    ("GEMM micro-kernels (gemm crate)", r"gemm_f32|gemm_common|gemm::|microkernel"),
    ("direct convolution kernels (stipple conv2d::direct)", r"conv2d::direct"),
    ("im2col / col2im (stipple conv2d)", r"im2col|col2im"),
    ("GroupNorm(+SiLU), attention (stipple ops; `pulp` = their vectorised loops)", r"group_norm|ops::attention|pulp::"),
    ("candle element-wise / reductions / copies", r"candle_core|StridedIndex|_mm256|vec_sum|binary_map|unary_map|copy_strided"),
    ("memcpy / memset (libc)", r"memmove|memcpy|memset"),
    ("kernel: page faults, zeroing, scheduling", r"\[k\]|clear_page|kallsyms"),
    ("malloc / free", r"malloc|free|_int_|cfree"),
]


def merge_figure(a, b):
    """One figure's results measured in two rounds, as one: all timed runs, their median (and
    the GFLOP/s at it), the larger peak and base memory, and each round's median in
    `round_medians`. A mode that failed in one round keeps the other round's results."""
    if "error" in b:
        return a
    if "error" in a:
        return b
    m = dict(a)
    m["round_medians"] = a.get("round_medians", [a["median_s"]]) + [b["median_s"]]
    m["times_s"] = a["times_s"] + b["times_s"]
    m["runs"] = len(m["times_s"])
    m["median_s"] = statistics.median(m["times_s"])
    if "gflop" in m:
        m["gflops"] = m["gflop"] / m["median_s"]
    for key in ("peak_rss_mib", "base_rss_mib"):
        if key in a and key in b:
            m[key] = max(a[key], b[key])
    return m


def merge_preset(a, b):
    """A preset's row from two rounds (`merge_figure` per figure and, for PyTorch, per mode)."""
    for fig in FIGURES:
        if fig in a and fig in b:
            a[fig] = merge_figure(a[fig], b[fig])
    for mode, figs in b.get("modes", {}).items():
        mine = a.setdefault("modes", {}).setdefault(mode, {})
        for fig, r in figs.items():
            mine[fig] = merge_figure(mine[fig], r) if fig in mine else r
    a["rounds"] = a.get("rounds", 1) + 1
    return a


def load(paths):
    merged = None
    for p in paths:
        with open(p) as f:
            d = json.load(f)
        presets = d["presets"]
        if merged is None:
            merged = dict(d, presets=[], gemm_peaks=[])
        merged["gemm_peaks"].append(d["gemm_peak"])
        rows = {r["preset"]: r for r in merged["presets"]}
        for row in presets:
            if row["preset"] in rows:
                merge_preset(rows[row["preset"]], row)
            else:
                merged["presets"].append(row)
    # Peak = best over every measurement made during the session.
    merged["gemm_peak"] = max(merged["gemm_peaks"], key=lambda g: g["best_gflops"])
    return merged


def round_ratios(s, best):
    """Stipple's median ÷ the PyTorch mode's median, round by round ("" after a single round)."""
    a, b = s.get("round_medians", [s["median_s"]]), best.get("round_medians", [best["median_s"]])
    return ", ".join(f"{x / y:.2f}" for x, y in zip(a, b)) if len(a) > 1 and len(a) == len(b) else ""


def cpu_info():
    """(model name, vendor, the vector extensions among VECTOR_FLAGS) from /proc/cpuinfo."""
    model, vendor, flags = "?", "?", set()
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model == "?":
                model = value.strip()
            elif key == "vendor_id" and vendor == "?":
                vendor = value.strip()
            elif key == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return model, vendor, [f for f in VECTOR_FLAGS if f in flags]


def pytorch_modes(q, fig):
    """[(mode, result)] of figure `fig` in PyTorch's row `q`: the NCHW twin first, then the
    other modes that ran (failed ones carry an "error" key)."""
    out = [("nchw", q[fig])] if fig in q else []
    for mode, figs in q.get("modes", {}).items():
        if fig in figs:
            out.append((mode, figs[fig]))
    return out


def fastest(q, fig):
    """(mode, result) of the fastest PyTorch mode (by median) of figure `fig`."""
    ok = [(m, r) for m, r in pytorch_modes(q, fig) if "error" not in r]
    return min(ok, key=lambda mr: mr[1]["median_s"]) if ok else (None, None)


def fmt_s(x):
    return f"{x:.3f}" if x < 10 else f"{x:.2f}"


def verdict(fig, ratio):
    if ratio <= TARGET[fig]:
        return "met"
    if fig == "train" and ratio <= TRAIN_FLOOR:
        return "only ≤ 1.5×"
    return "missed"


def perf_summary(path):
    if not path:
        return None, None
    try:
        text = open(path).read()
    except OSError:
        return None, None
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+(\[[.k]\])\s+(.*?)\s*(?:-\s+-\s*)?$", line)
        if m:
            rows.append((float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()))
    if not rows:
        return None, None
    buckets = {name: 0.0 for name, _ in BUCKETS}
    buckets["other"] = 0.0
    for pct, dso, kind, sym in rows:
        key = f"{dso} {kind} {sym}"
        for name, pat in BUCKETS:
            if re.search(pat, key):
                buckets[name] += pct
                break
        else:
            buckets["other"] += pct
    return rows, buckets


# Sections of the document between `<!-- NAME: begin -->` and `<!-- NAME: end -->` that a run
# of this script keeps from the previous document, in this order.
CONV1D_SECTION = "bench/run.sh 1-D"
KEPT_SECTIONS = ["bench/sd.sh", CONV1D_SECTION]


def conv1d_section(a, cpu):
    """The 1-D section from the Markdown table of bench/reference/conv1d_bench.py: the table,
    the command that made it, and the Stipple ÷ PyTorch-eager ratios in words."""
    text = open(a.conv1d).read().strip()
    ratios = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"\d+\.\d+", cells[3]):
            ratios.append(f"{cells[0]} {cells[3]}×")
    out = [
        f"<!-- {CONV1D_SECTION}: begin -->",
        "## 1-D: the dilated convolution and DiffWave (`bench/reference/conv1d_bench.py`)",
        "",
        "Stipple's 1-D convolution (`stipple_nn::ops::conv1d`, one GEMM per kernel tap on strided",
        "views, forward and both gradients) and DiffWave (Kong et al. 2021, the network of sound",
        "models) against their PyTorch twins (the model of `tests/reference/make_diffwave_reference.py`),",
        f"side by side in one run of `bench/run.sh` with `CONV1D=1`, {a.finished}, {cpu}; PyTorch eager",
        "and under `torch.compile` (– where it was not measured):",
        "",
        "```",
        a.conv1d_command,
        "```",
        "",
        text,
        "",
        "Stipple's time ÷ PyTorch eager's (below 1: Stipple is faster): " + "; ".join(ratios) + ".",
        f"<!-- {CONV1D_SECTION}: end -->",
        "",
    ]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stipple", nargs="+", required=True)
    ap.add_argument("--pytorch", nargs="+", required=True)
    ap.add_argument("--perf", default=None)
    ap.add_argument("--perf-command", default="")
    ap.add_argument("--load-before", default="?")
    ap.add_argument("--load-after", default="?")
    ap.add_argument("--load-during", default="")
    ap.add_argument("--commands", default="")
    ap.add_argument("--started", default="")
    ap.add_argument("--finished", default="")
    ap.add_argument("--conv1d", default=None, help="the table printed by bench/reference/conv1d_bench.py, for the 1-D section")
    ap.add_argument("--conv1d-command", default="")
    ap.add_argument("--out", required=True)
    ap.add_argument("--json-dir", default="target/bench", help="where run.sh wrote the raw JSON (named in the report)")
    a = ap.parse_args()
    st, pt = load(a.stipple), load(a.pytorch)
    pt_rows = {r["preset"]: r for r in pt["presets"]}

    cpu, vendor, vector = cpu_info()
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit, changed = "?", ""
    dirty = " (plus uncommitted changes to tracked files)" if changed else ""

    out = []
    w = out.append
    w("# Benchmarks: Stipple vs PyTorch on the CPU")
    w("")
    w("Generated by `bench/run.sh` (rerun the script rather than editing; a \"Notes on this run\" section")
    w("at the end, if present, was written by hand after the run). Issue 3's targets: Stipple's")
    w("training step ≤ 1.0× PyTorch's time (at the very least ≤ 1.5×), inference and sampling ≤ 1.0×,")
    w("peak memory no higher than PyTorch's. Issue 19's targets, against the fastest PyTorch mode")
    w("(NCHW, channels-last, torch.compile): training step ≤ 1.0×, inference and sampling ≤ 0.9×")
    w("(section \"Against PyTorch at its best\").")
    w("")
    w("## Machine and session")
    w("")
    w(f"- CPU: {cpu} ({vendor}), {cores} cores visible (`nproc`), {mem} RAM.")
    w(f"- Vector and matrix extensions (`/proc/cpuinfo`): {', '.join(vector) or 'none of ' + ', '.join(VECTOR_FLAGS)}.")
    w(f"- f32 GEMM peak on {st['threads']} threads: {st['gemm_peak']['best_gflops']:.1f} GFLOP/s for Stipple "
      f"({st['gemm_peak']['implementation']}), {pt['gemm_peak']['best_gflops']:.1f} GFLOP/s for PyTorch "
      f"({pt['gemm_peak']['implementation']}); see below.")
    w(f"- Run: {a.started} → {a.finished}, at commit `{commit}`{dirty}.")
    w(f"- Load average (1, 5, 15 min) before: `{a.load_before}`; after: `{a.load_after}`.")
    if a.load_during:
        w(f"- Load average sampled between the runs: `{a.load_during}`.")
    loads = [float(x) for x in re.findall(r"(?:^|; |: )(\d+\.\d+)", " ".join([a.load_before, a.load_during, a.load_after]))]
    try:
        ncores = int(cores)
    except ValueError:
        ncores = 0
    if loads and ncores and max(loads) > ncores:
        w(f"- **Warning: the 1-minute load average reached {max(loads):.1f} on {ncores} cores** — both sides")
        w("  competed with other jobs for the CPU, and a thread pool that spins at barriers (candle's,")
        w("  PyTorch's OpenMP) loses more than its share when the machine is oversubscribed. Treat these")
        w("  figures as indicative only and rerun `bench/run.sh` on an idle machine for the record.")
    w("- The machine is **shared**: other jobs (builds, training runs) may run at the same time, so")
    w("  absolute times are noisy. Both sides run alternately, preset by preset, in the same session,")
    w("  so the ratios are fairer than the absolute numbers.")
    w(f"- Threads: {st['threads']} for Stipple (`RAYON_NUM_THREADS`: rayon's pool, on whose workers the")
    w("  command computes, `stipple_nn::process::on_workers`, and which runs Stipple's kernels and the")
    w("  GEMMs; candle's element-wise ops on candle's own pool of the same size, whose workers spin at")
    w("  most 2,000 rounds before they sleep: `stipple_nn::process::configure`),")
    w(f"  {pt['threads']} for PyTorch (`torch.set_num_threads`).")
    w(f"- Versions: Stipple {st['versions'].get('stipple')} on candle {st['versions'].get('candle')}; "
      f"PyTorch {pt['versions'].get('torch')}, diffusers {pt['versions'].get('diffusers')}, "
      f"Python {pt['versions'].get('python')}.")
    rounds = max(r.get("rounds", 1) for r in st["presets"])
    each = f"{rounds} rounds of " if rounds > 1 else ""
    w(f"- Median of {each}{st['runs']} timed runs ({st['sample_runs']} for the sample) after {st['warmup']} "
      f"untimed warm-up run(s) (for the sample: warm-up = single forwards), on both sides.")
    if rounds > 1:
        w(f"  The {rounds} rounds each ran both sides of a preset back to back, Stipple first in odd rounds and "
          "PyTorch first in even ones; the medians are over the runs of all rounds, and the table against "
          "PyTorch at its best also gives each round's ratio.")
    w("")
    w("## Commands")
    w("")
    w("```sh")
    w(a.commands.strip())
    w("```")
    w("")
    w("## Results")
    w("")
    w("Times are medians in seconds; ratio = Stipple / PyTorch (below 1 = Stipple faster); the")
    w("targets are judged on that ratio of medians. \"best ratio\" = the ratio of the fastest runs of")
    w("each side, which a noisy shared machine disturbs less (a run can only be slowed by it).")
    w("Memory = peak resident set (VmHWM) of the child process that ran only that figure;")
    w("\"base\" = the resident set of that process after imports and building the network, before the")
    w("figure's first run (PyTorch's includes importing torch and diffusers).")
    w("")
    w("| preset | params (Stipple / PyTorch) | figure | batch | Stipple s | PyTorch s | ratio | target | best ratio | "
      "Stipple GFLOP/s | PyTorch GFLOP/s | Stipple MiB (base) | PyTorch MiB (base) | mem ratio |")
    w("|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    summary = []
    for row in st["presets"]:
        p = row["preset"]
        q = pt_rows.get(p)
        if q is None:
            continue
        same = "" if row["parameters"] == q["parameters"] else " **(differ)**"
        for fig in FIGURES:
            if fig not in row or fig not in q:
                continue
            s, t = row[fig], q[fig]
            ratio = s["median_s"] / t["median_s"]
            mr = s["peak_rss_mib"] / t["peak_rss_mib"]
            v = verdict(fig, ratio)
            summary.append((p, fig, ratio, v, mr))
            w(f"| {p} | {row['parameters']:,} / {q['parameters']:,}{same} | {FIGURE_NAMES[fig]} | {s['batch']} | "
              f"{fmt_s(s['median_s'])} | {fmt_s(t['median_s'])} | **{ratio:.2f}×** | {v} | "
              f"{min(s['times_s']) / min(t['times_s']):.2f}× | {s['gflops']:.1f} | {t['gflops']:.1f} | {s['peak_rss_mib']:.0f} ({s.get('base_rss_mib', float('nan')):.0f}) | "
              f"{t['peak_rss_mib']:.0f} ({t.get('base_rss_mib', float('nan')):.0f}) | {mr:.2f} |")
    w("")
    met = sum(1 for x in summary if x[3] == "met")
    mem_ok = sum(1 for x in summary if x[4] <= 1.0)
    w(f"Time targets met: {met} of {len(summary)} (preset, figure) pairs; peak memory at or below "
      f"PyTorch's: {mem_ok} of {len(summary)}.")
    w("")
    modes = pt.get("modes", ["nchw"])
    w("## Against PyTorch at its best")
    w("")
    w("The table above compares with the twin in PyTorch's default NCHW layout. Here each figure is")
    w("compared with the fastest PyTorch mode the twin ran (`--modes`): " +
      "; ".join(f"{m} = {MODE_NAMES.get(m, m)}" for m in modes) + ". channels-last puts the model and")
    w("the inputs in NHWC memory layout (`memory_format=torch.channels_last`), the layout oneDNN prefers;")
    w("torch.compile wraps the channels-last model (inductor; its compilation falls in the warm-up).")
    w(f"Targets (issue 19): training step ≤ {TARGET_BEST['train']}×, inference and sampling ≤ "
      f"{TARGET_BEST['forward']}× the fastest mode's median; peak memory no higher than that mode's.")
    w("")
    by_round = " per round |" if rounds > 1 else ""
    w("| preset | figure | Stipple s | " + " | ".join(f"PyTorch {MODE_NAMES.get(m, m)} s" for m in modes) +
      " | fastest | ratio to fastest |" + by_round + " target | Stipple MiB | fastest MiB | mem ratio |")
    w("|---|---|---:|" + "---:|" * len(modes) + "---|---:|" + ("---|" if by_round else "") + "---|---:|---:|---:|")
    best_summary = []
    for row in st["presets"]:
        q = pt_rows.get(row["preset"])
        if q is None:
            continue
        for fig in FIGURES:
            if fig not in row or fig not in q:
                continue
            s = row[fig]
            by_mode = dict(pytorch_modes(q, fig))
            cells = []
            for m in modes:
                r = by_mode.get(m)
                cells.append("—" if r is None else ("failed" if "error" in r else fmt_s(r["median_s"])))
            mode, best = fastest(q, fig)
            ratio = s["median_s"] / best["median_s"]
            mr = s["peak_rss_mib"] / best["peak_rss_mib"]
            ok = "met" if ratio <= TARGET_BEST[fig] else "missed"
            best_summary.append((row["preset"], fig, ratio, ok, mr, mode))
            w(f"| {row['preset']} | {FIGURE_NAMES[fig]} | {fmt_s(s['median_s'])} | " + " | ".join(cells) +
              f" | {MODE_NAMES.get(mode, mode)} | **{ratio:.2f}×** |" + (f" {round_ratios(s, best)} |" if by_round else "") +
              f" {ok} (≤ {TARGET_BEST[fig]}) | "
              f"{s['peak_rss_mib']:.0f} | {best['peak_rss_mib']:.0f} | {mr:.2f} |")
    w("")
    failed = sorted({(m, r["error"]) for q in pt["presets"] for m, figs in q.get("modes", {}).items()
                     for r in figs.values() if "error" in r})
    for m, err in failed:
        w(f"- {MODE_NAMES.get(m, m)} did not run here: `{err}`")
    if failed:
        w("")
    met_best = sum(1 for x in best_summary if x[3] == "met")
    mem_best = sum(1 for x in best_summary if x[4] <= 1.0)
    w(f"Targets against the fastest mode met: {met_best} of {len(best_summary)}; peak memory at or below "
      f"that mode's: {mem_best} of {len(best_summary)}.")
    w("")
    w("## GFLOP/s against the GEMM peak")
    w("")
    sg, pg = st["gemm_peak"], pt["gemm_peak"]
    w(f"The peak is the best of {sg['runs']} timed {sg['n']}×{sg['n']}×{sg['n']} f32 GEMMs on the same threads "
      f"(best over the {len(st['gemm_peaks'])} measurements of the session):")
    w("")
    w("| side | GEMM | best GFLOP/s | median GFLOP/s |")
    w("|---|---|---:|---:|")
    w(f"| Stipple | {sg['implementation']} | {sg['best_gflops']:.1f} | {sg['median_gflops']:.1f} |")
    w(f"| PyTorch | {pg['implementation']} | {pg['best_gflops']:.1f} | {pg['median_gflops']:.1f} |")
    w("")
    w("Achieved GFLOP/s as a share of that side's own GEMM peak:")
    w("")
    w("| preset | figure | GFLOP per run | Stipple | PyTorch |")
    w("|---|---|---:|---:|---:|")
    for row in st["presets"]:
        q = pt_rows.get(row["preset"])
        if q is None:
            continue
        for fig in FIGURES:
            if fig in row and fig in q:
                w(f"| {row['preset']} | {FIGURE_NAMES[fig]} | {row[fig]['gflop']:.1f} | "
                  f"{100 * row[fig]['gflops'] / sg['best_gflops']:.0f}% | "
                  f"{100 * q[fig]['gflops'] / pg['best_gflops']:.0f}% |")
    w("")
    w("FLOPs are counted analytically (2 per multiply-add) from the network's parameter shapes")
    w("(`forward_flops` in `crates/stipple-bench/src/flops.rs`): a k×k convolution with `cout × cin`")
    w("weights writing an r×r map costs `2·cout·cin·k²·r²`; a linear layer `2·in·out` per row (one")
    w("row per image for the time-embedding MLP and each ResBlock's `time_emb_proj`, `L = r²` rows")
    w("inside an attention); each attention adds `4·L²·C` for `QKᵀ` and the weighted sum. Norms,")
    w("activations and element-wise ops are not counted. A training step counts 3× its forward")
    w("(backward = gradients to the inputs + to the weights), a sample 20× a forward. The PyTorch")
    w("twin counts the same quantity independently with forward hooks on every `Conv2d`, `Linear`")
    w("and `Attention` of diffusers' model; the per-image forward counts agree:")
    w("")
    w("| preset | forward GFLOP / image (Stipple, analytic) | (PyTorch, hooks) |")
    w("|---|---:|---:|")
    for row in st["presets"]:
        q = pt_rows.get(row["preset"])
        if q is not None:
            w(f"| {row['preset']} | {row['forward_gflop_per_image']:.4f} | {q['forward_gflop_per_image']:.4f} |")
    w("")
    rows, buckets = perf_summary(a.perf)
    w("## Where the time goes")
    w("")
    if rows is None:
        w("`perf` was not available or recorded nothing in this run.")
    else:
        w(f"`{a.perf_command}` (flat self time per symbol, whole child process: model set-up, the")
        w("warm-up steps and the timed steps of bench-unet32 at batch 32). By bucket:")
        w("")
        w("| bucket | share of samples |")
        w("|---|---:|")
        for name, pct in sorted(buckets.items(), key=lambda kv: -kv[1]):
            if pct > 0:
                w(f"| {name} | {pct:.1f}% |")
        w("")
        w("Without call graphs, self time in `FnOnce::call_once`, `call_mut` and")
        w("`__rust_begin_short_backtrace` is code inlined into closures and thread entry points (rayon")
        w("worker loops, candle's element-wise closures); `perf record -g` would attribute it.")
        w("")
        w("Top symbols:")
        w("")
        w("| self % | object | symbol |")
        w("|---:|---|---|")
        for pct, dso, kind, sym in rows[:15]:
            sym = sym.replace("|", "\\|")
            if len(sym) > 90:
                sym = sym[:87] + "…"
            w(f"| {pct:.1f} | {dso} | `{sym}` |")
    w("")
    w("## What is measured, and how")
    w("")
    w("- **Networks.** Both sides build diffusers' `UNet2DModel` layout from the same config (Stipple's")
    w("  `UNetConfig` presets; the twin passes the same keys to `diffusers.UNet2DModel`), so they are the")
    w("  same network by construction; the parameter counts above are printed by each side. bench-unet32")
    w("  is the issue's net; diffusers' up blocks have `layers_per_block + 1` ResBlocks, hence 6,140,675")
    w("  parameters rather than the issue's 4,662,083. bench-unet16/64 are the same widths at 16×16 and")
    w("  64×64; emoji16 is the demo's config (`UNetConfig::emoji16`, attention at 8×8); dropout 0.1 in")
    w("  the bench presets, 0 in emoji16, active in the training step on both sides.")
    w("- **Training step** (batch 32 for every preset): random x₀ and ε, t ~ U{0…999}, x_t = √ᾱ·x₀ +")
    w("  √(1−ᾱ)·ε (DDPM linear β), loss = MSE(net(x_t, t), ε), backward, one AdamW update (lr 2e-4,")
    w("  β = (0.9, 0.999), ε = 1e-8, weight decay 0). Stipple: the trainer's own calls —")
    w("  `stipple_train::diffusion_loss` (ε-prediction, uniform MSE; it draws t and ε on the host with the")
    w("  trainer's `NoiseDraw`), candle autograd, `stipple_train::AdamW` (in place, fused, on rayon's threads).")
    w("  PyTorch: `model.train()`, `loss.backward()`, `torch.optim.AdamW` (its default CPU implementation).")
    w("- **Inference forward**: batch 16, one call. Stipple: `UNet2D::forward` on plain tensors (no")
    w("  autograd graph, as for a loaded model file); PyTorch: `model.eval()` under `torch.inference_mode()`.")
    w("- **Sample**: 16 images in one batch, 20 steps of DPM++ 2M over Karras σ (ρ = 7) of the DDPM")
    w("  schedule, ε-prediction. Stipple: `stipple_pipeline::generate`, the call every front end makes")
    w("  (seeded noise, the guided denoiser's preconditioning, `stipple_sample`'s `dpmpp_2m`); PyTorch: the same")
    w("  algorithm written out in the twin (k-diffusion formulation, log-σ interpolated timesteps).")
    w("  20 network evaluations on both sides.")
    w("- **Peak memory**: each (preset, figure) runs in its own child process, which reads its VmHWM from")
    w("  `/proc/self/status` at the end.")
    w("- Sources: `crates/stipple-bench` (the timed figures; `stipple bench` is its front end),")
    w("  `bench/reference/unet_bench.py`, `bench/run.sh`,")
    w(f"  `bench/report.py`. Raw JSON of this run: `{a.json_dir.rstrip('/')}/` (not committed).")
    w("")
    w("## Raw times (s)")
    w("")
    w("| preset | figure | Stipple runs | PyTorch runs (NCHW) | PyTorch runs (fastest mode) |")
    w("|---|---|---|---|---|")
    for row in st["presets"]:
        q = pt_rows.get(row["preset"])
        if q is None:
            continue
        for fig in FIGURES:
            if fig in row and fig in q:
                mode, best = fastest(q, fig)
                w(f"| {row['preset']} | {fig} | {', '.join(fmt_s(x) for x in row[fig]['times_s'])} | "
                  f"{', '.join(fmt_s(x) for x in q[fig]['times_s'])} | "
                  f"{MODE_NAMES.get(mode, mode)}: {', '.join(fmt_s(x) for x in best['times_s'])} |")
    w("")
    # The Stable Diffusion section that bench/sd.sh writes (bench/sd_report.py) stays, and so
    # does the 1-D section unless this run measured it again (CONV1D=1).
    try:
        previous = open(a.out).read()
    except OSError:
        previous = ""
    for name in KEPT_SECTIONS:
        if name == CONV1D_SECTION and a.conv1d:
            w(conv1d_section(a, cpu))
            continue
        kept = re.search(rf"<!-- {re.escape(name)}: begin -->.*?<!-- {re.escape(name)}: end -->\n", previous, re.S)
        if kept:
            w(kept.group(0))
    with open(a.out, "w") as f:
        f.write("\n".join(out))
    for p, fig, ratio, v, mr in summary:
        print(f"{p:>13} {fig:>8}: Stipple/PyTorch NCHW {ratio:.2f}x ({v}), memory {mr:.2f}x")
    for p, fig, ratio, v, mr, mode in best_summary:
        print(f"{p:>13} {fig:>8}: Stipple/fastest PyTorch ({mode}) {ratio:.2f}x ({v}), memory {mr:.2f}x")


if __name__ == "__main__":
    main()
