#!/usr/bin/env bash
# Stipple's benchmark and its PyTorch twin on a CUDA GPU, alternating preset by preset, with a
# Markdown table of the medians and ratios on stdout (raw JSON in OUT). The figures are the
# CPU benchmark's (docs/BENCHMARKS.md); each timed run ends with a device synchronisation.
#
# Environment (defaults in brackets): RUNS [7]  WARMUP [2]  SAMPLE_RUNS [3]  DEVICE [cuda]
#   PRESETS ["bench-unet16 bench-unet32 bench-unet64 emoji16"]  OUT [target/bench/gpu]
#   STIPPLE_BIN  a stipple built with `--features cuda` [built here: needs nvcc (e.g. the
#                toolkit scripts/cuda_check.sh unpacks, with PATH, CUDA_HOME and
#                CUDARC_CUDA_VERSION=13020 as there) and, to link, the CUDA libraries of a GPU
#                machine (libcuda, cuBLAS, cuRAND, NVRTC)]
#   PYTHON [python3]  with torch (CUDA) and diffusers (bench/reference/requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-7}
WARMUP=${WARMUP:-2}
SAMPLE_RUNS=${SAMPLE_RUNS:-3}
DEVICE=${DEVICE:-cuda}
PRESETS=${PRESETS:-"bench-unet16 bench-unet32 bench-unet64 emoji16"}
OUT=${OUT:-target/bench/gpu}
PYTHON=${PYTHON:-python3}
if [ -z "${STIPPLE_BIN:-}" ]; then
  cargo build -p stipple --features cuda
  STIPPLE_BIN=target/debug/stipple
fi

mkdir -p "$OUT"
"$STIPPLE_BIN" bench --preset $PRESETS --print-configs >"$OUT/configs.json"
common="--runs $RUNS --warmup $WARMUP --sample-runs $SAMPLE_RUNS --device $DEVICE"
for p in $PRESETS; do
  "$STIPPLE_BIN" bench --preset "$p" $common --json "$OUT/stipple-$p.json" >&2
  "$PYTHON" bench/reference/unet_bench.py --configs "$OUT/configs.json" --preset "$p" $common --json "$OUT/pytorch-$p.json" >&2
done
"$PYTHON" - "$OUT" $PRESETS <<'PY'
import json, sys
out, presets = sys.argv[1], sys.argv[2:]
print("| preset | figure | Stipple s | PyTorch s | ratio |")
print("|---|---|---:|---:|---:|")
for p in presets:
    st = json.load(open(f"{out}/stipple-{p}.json"))["presets"][0]
    pt = json.load(open(f"{out}/pytorch-{p}.json"))["presets"][0]
    for fig in ("train", "forward", "sample"):
        s, t = st[fig]["median_s"], pt[fig]["median_s"]
        print(f"| {p} | {fig} | {s:.4g} | {t:.4g} | {s / t:.2f}× |")
PY
