#!/usr/bin/env bash
# Times the forward pass and the input gradient of 3×3 stride-1 "same" layers under each
# Winograd choice (`STIPPLE_CONV_WINOGRAD=none|f2x2|f4x4`: the direct kernels, F(2×2, 3×3),
# F(4×4, 3×3)), alternating the three in each of ROUNDS rounds, and prints a Markdown table of
# the medians over the rounds (each round: the fastest of REPS runs) and their ratios to the
# direct kernels: what `WINOGRAD_*` in crates/stipple-nn/src/ops/conv2d/geometry.rs is chosen
# from. Times are wall-clock on THREADS threads; with THREADS=1 they equal the CPU time.
#
# Environment (defaults in brackets): THREADS [1]  BATCH [2]  REPS [3]  ROUNDS [3]
#   LAYERS "C,O,H ..." [the 3×3 layers of the Stable Diffusion 1.5 U-Net]
# The other sets timed for the thresholds:
#   SDXL U-Net, BATCH=2: LAYERS="320,320,128 640,640,64 1280,1280,32"
#   VAE decoder, BATCH=1: LAYERS="512,512,64 512,512,128 512,256,256 256,256,256 256,128,512
#   128,128,512"
#   bench-unet32 and bench-unet64, BATCH=32: LAYERS="64,64,32 128,128,32 192,128,16 256,128,16
#   128,128,16 256,128,8 128,128,8 192,64,32 128,64,32"
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-1}
BATCH=${BATCH:-2}
REPS=${REPS:-3}
ROUNDS=${ROUNDS:-3}
LAYERS=${LAYERS:-"320,320,64 640,320,64 960,320,64 640,640,32 1280,640,32 1280,1280,16 2560,1280,16 1280,1280,8"}

cargo build -q -p stipple-nn --example winograd_layers
bin=${CARGO_TARGET_DIR:-target}/debug/examples/winograd_layers
out=$(mktemp -d)
for r in $(seq "$ROUNDS"); do
  for layer in $LAYERS; do
    for v in none f2x2 f4x4; do
      STIPPLE_CONV_WINOGRAD=$v RAYON_NUM_THREADS=$THREADS "$bin" "$BATCH" "$REPS" "$layer" >>"$out/$v.jsonl"
    done
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
runs = {v: [json.loads(l) for l in open(f"{out}/{v}.jsonl")] for v in ("none", "f2x2", "f4x4")}
layers = list(dict.fromkeys(r["layer"] for r in runs["none"]))
med = lambda v, layer, key: statistics.median(r[key] for r in runs[v] if r["layer"] == layer)
print("| C→O, map | pass | direct ms | F(2×2) ms | ratio | F(4×4) ms | ratio |")
print("|---|---|---:|---:|---:|---:|---:|")
for layer in layers:
    c, o, h = layer.split(",")
    for key, name in (("forward_ms", "forward"), ("input_gradient_ms", "input gradient")):
        d, f2, f4 = (med(v, layer, key) for v in ("none", "f2x2", "f4x4"))
        print(f"| {c}→{o}, {h}×{h} | {name} | {d:.1f} | {f2:.1f} | {f2/d:.2f} | {f4:.1f} | {f4/d:.2f} |")
PY
rm -r "$out"
