#!/usr/bin/env bash
# Per-layer convolution times of Stipple (`cargo run -p stipple-nn --example conv_layers`)
# against PyTorch (bench/reference/conv_layers.py), ROUNDS alternating rounds of each side on
# the same threads, for the convolutions of bench-unet32's forward pass at batch 32; prints a
# Markdown table of the medians over the rounds (each round: the fastest of REPS runs).
#
# Environment (defaults in brackets): THREADS [2]  BATCH [32]  REPS [5]  ROUNDS [3]
#   PYTHON (required) the python of a venv with bench/reference/requirements.txt (made as that
#          file says)
#   LAYERS  "count,C,O,H,k,stride ..." [bench-unet32's, below]
#   LAYOUT  PyTorch's memory layout [nchw]: channels_last, or best (the faster of the two per
#           pass; see bench/reference/conv_layers.py)
# The 3×3 layers of the Stable Diffusion VAE decoder and U-Net, at batch 1 (BATCH=1):
#   LAYERS="1,512,512,64,3,1 1,512,512,128,3,1 1,512,256,256,3,1 1,256,256,256,3,1
#   1,256,128,512,3,1 1,128,128,512,3,1 1,320,320,64,3,1 1,640,640,32,3,1 1,1280,1280,16,3,1"
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-2}
BATCH=${BATCH:-32}
REPS=${REPS:-5}
ROUNDS=${ROUNDS:-3}
PYTHON=${PYTHON:?set PYTHON to the python of a venv with bench/reference/requirements.txt}
# bench-unet32 (diffusers' UNet2DModel, channels 64/128/128, 2 layers per block, 32×32): the
# number of layers of each shape in one forward pass, in network order: conv_in; the down
# blocks' ResNet convolutions, 1×1 shortcuts and stride-2 downsamplers; the middle block; the
# up blocks (3 ResNets each, inputs concatenated with the skips) and their upsamplers' convs;
# conv_out.
LAYERS=${LAYERS:-"1,3,64,32,3,1 4,64,64,32,3,1 1,64,64,32,3,2 1,64,128,16,3,1 1,64,128,16,1,1 3,128,128,16,3,1 1,128,128,16,3,2 8,128,128,8,3,1 3,256,128,8,3,1 3,128,128,8,3,1 3,256,128,8,1,1 1,128,128,16,3,1 2,256,128,16,3,1 3,128,128,16,3,1 2,256,128,16,1,1 1,192,128,16,3,1 1,192,128,16,1,1 1,128,128,32,3,1 1,192,64,32,3,1 1,192,64,32,1,1 2,128,64,32,3,1 2,128,64,32,1,1 3,64,64,32,3,1 1,64,3,32,3,1"}

cargo build -q -p stipple-nn --example conv_layers
out=$(mktemp -d)
for r in $(seq "$ROUNDS"); do
  RAYON_NUM_THREADS=$THREADS target/debug/examples/conv_layers "$BATCH" "$REPS" $LAYERS >"$out/stipple-$r.jsonl"
  "$PYTHON" bench/reference/conv_layers.py "$THREADS" "$BATCH" "$REPS" $LAYERS >"$out/pytorch-$r.jsonl"
done
python3 - "$out" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(side):
    runs = [[json.loads(l) for l in open(f"{out}/{side}-{r}.jsonl")] for r in range(1, rounds + 1)]
    return [{k: statistics.median(run[i][k] for run in runs) for k in ("forward_ms", "backward_ms")} | runs[0][i]
            for i in range(len(runs[0]))]
st, pt = load("stipple"), load("pytorch")
print("| layer (C→O, map, kernel, stride) | × | Stipple fwd ms | PyTorch fwd ms | ratio | Stipple bwd ms | PyTorch bwd ms | ratio |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
tot = {"s": [0, 0], "p": [0, 0]}
for s, p in zip(st, pt):
    n, c, o, h, k, stride = map(int, s["layer"].split(","))
    f = (s["forward_ms"], p["forward_ms"]); b = (s["backward_ms"], p["backward_ms"])
    tot["s"][0] += n * f[0]; tot["p"][0] += n * f[1]; tot["s"][1] += n * b[0]; tot["p"][1] += n * b[1]
    print(f"| {c}→{o}, {h}×{h}, {k}×{k}, {stride} | {n} | {f[0]:.2f} | {f[1]:.2f} | {f[0]/f[1]:.2f} | {b[0]:.2f} | {b[1]:.2f} | {b[0]/b[1]:.2f} |")
sf, pf, sb, pb = tot["s"][0], tot["p"][0], tot["s"][1], tot["p"][1]
print(f"| **all, × count** | | **{sf:.0f}** | **{pf:.0f}** | **{sf/pf:.2f}** | **{sb:.0f}** | **{pb:.0f}** | **{sb/pb:.2f}** |")
PY
rm -r "$out"
