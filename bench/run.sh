#!/usr/bin/env bash
# Runs Stipple's benchmark and its PyTorch twin in one session on the same thread count,
# alternating the two sides preset by preset, and writes docs/BENCHMARKS.md.
#
# Environment (defaults in brackets):
#   THREADS [2]  RUNS [3]  WARMUP [1]  SAMPLE_RUNS [1]
#   ROUNDS  [1]  rounds over all presets; each round runs both sides of a preset back to back,
#           Stipple first in odd rounds and PyTorch first in even ones, and the report takes the
#           medians over the runs of all rounds (and shows each round's ratio): on a machine
#           whose speed drifts (a shared host), a drift then falls on both sides alike
#   PRESETS ["bench-unet16 bench-unet32 bench-unet64 emoji16"]
#   PYTHON  (required) the python of a venv with bench/reference/requirements.txt (made as that
#           file says)
#   PERF    [1]  0 skips the perf profile of one bench-unet32 training step
#   STIPPLE_BIN  a stipple binary to use as is (no build; e.g. a copy frozen while others rebuild)
#   CONV1D  [0]  1 also measures the 1-D section (bench/reference/conv1d_bench.py: Stipple's 1-D
#           convolution and DiffWave against PyTorch, after the presets) and rewrites it; with 0
#           the document keeps its 1-D section as it is
#   CONV1D_ARGS [""]  more arguments to conv1d_bench.py (its sizes: --batch --length --channels
#           --layers --cycle --reps, --no-compile); e.g. "--batch 1 --length 256 --channels 8
#           --layers 2 --cycle 2 --reps 1 --no-compile" only checks that it runs
#   OUT     [target/bench]  raw JSON and perf output (not committed)
#   DOC     [docs/BENCHMARKS.md]
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-2}
RUNS=${RUNS:-3}
ROUNDS=${ROUNDS:-1}
WARMUP=${WARMUP:-1}
SAMPLE_RUNS=${SAMPLE_RUNS:-1}
PRESETS=${PRESETS:-"bench-unet16 bench-unet32 bench-unet64 emoji16"}
PYTHON=${PYTHON:?set PYTHON to the python of a venv with bench/reference/requirements.txt}
PERF=${PERF:-1}
CONV1D=${CONV1D:-0}
CONV1D_ARGS=${CONV1D_ARGS:-}
OUT=${OUT:-target/bench}
DOC=${DOC:-docs/BENCHMARKS.md}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
STIPPLE=${STIPPLE_BIN:-"$TARGET_DIR/debug/stipple"}

mkdir -p "$OUT"
rm -f "$OUT"/stipple-*.json "$OUT"/pytorch-*.json

# The dev profile of this workspace is fully optimised (opt-level 3).
build_cmd="cargo build -p stipple"
if [ -z "${STIPPLE_BIN:-}" ]; then
  cargo build -p stipple
else
  build_cmd="cargo build -p stipple; cp target/debug/stipple $STIPPLE_BIN"
fi
"$PYTHON" -c "import torch, diffusers" || { echo "PYTHON=$PYTHON lacks torch/diffusers (see bench/reference/requirements.txt)" >&2; exit 1; }

started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
load_during=""
# The twin builds diffusers' UNet2DModel from Stipple's own preset configs.
"$STIPPLE" bench --preset $PRESETS --print-configs >"$OUT/configs.json"
common="--runs $RUNS --warmup $WARMUP --sample-runs $SAMPLE_RUNS --threads $THREADS"
st_jsons=()
pt_jsons=()
run_stipple() {  # PRESET ROUND
  echo "== $1 (round $2): stipple" >&2
  "$STIPPLE" bench --preset "$1" $common --json "$OUT/stipple-$1-r$2.json"
  st_jsons+=("$OUT/stipple-$1-r$2.json")
}
run_pytorch() {  # PRESET ROUND
  echo "== $1 (round $2): pytorch" >&2
  "$PYTHON" bench/reference/unet_bench.py --configs "$OUT/configs.json" --preset "$1" $common --json "$OUT/pytorch-$1-r$2.json"
  pt_jsons+=("$OUT/pytorch-$1-r$2.json")
}
for r in $(seq "$ROUNDS"); do
  for p in $PRESETS; do
    load_during+="$p: $(cut -d' ' -f1-3 /proc/loadavg); "
    if [ $((r % 2)) = 1 ]; then
      run_stipple "$p" "$r"
      run_pytorch "$p" "$r"
    else
      run_pytorch "$p" "$r"
      run_stipple "$p" "$r"
    fi
  done
done
conv1d_args=()
if [ "$CONV1D" = 1 ]; then
  echo "== 1-D: conv1d and DiffWave, stipple and pytorch" >&2
  conv1d_cmd="$PYTHON bench/reference/conv1d_bench.py --threads $THREADS $CONV1D_ARGS"
  # shellcheck disable=SC2086 # CONV1D_ARGS is a list of arguments
  "$PYTHON" bench/reference/conv1d_bench.py --threads "$THREADS" $CONV1D_ARGS >"$OUT/conv1d.md"
  conv1d_args=(--conv1d "$OUT/conv1d.md" --conv1d-command "$conv1d_cmd")
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

perf_txt=""
perf_cmd="perf record -F 499 -- $STIPPLE bench --child bench-unet32:train --runs 3 --warmup 2 --threads $THREADS"
if [ "$PERF" = 1 ] && command -v perf >/dev/null && perf stat -e task-clock true >/dev/null 2>&1; then
  echo "== perf: bench-unet32 training steps" >&2
  if RAYON_NUM_THREADS=$THREADS perf record -F 499 -o "$OUT/perf.data" -- \
      "$STIPPLE" bench --child bench-unet32:train --runs 3 --warmup 2 --threads "$THREADS" >/dev/null 2>"$OUT/perf-record.log"; then
    perf report -i "$OUT/perf.data" --stdio --no-children --sort dso,symbol --percent-limit 0.3 \
      >"$OUT/perf.txt" 2>/dev/null && perf_txt="$OUT/perf.txt"
  fi
fi
finished=$(date -u '+%Y-%m-%d %H:%M UTC')

commands="# THREADS=$THREADS RUNS=$RUNS WARMUP=$WARMUP SAMPLE_RUNS=$SAMPLE_RUNS ROUNDS=$ROUNDS bench/run.sh runs, per round R and preset P in: $PRESETS
$build_cmd
$STIPPLE bench --preset $PRESETS --print-configs > $OUT/configs.json
$STIPPLE bench --preset P $common --json $OUT/stipple-P-rR.json
$PYTHON bench/reference/unet_bench.py --configs $OUT/configs.json --preset P $common --json $OUT/pytorch-P-rR.json
$perf_cmd"

python3 bench/report.py --stipple "${st_jsons[@]}" --pytorch "${pt_jsons[@]}" \
  --perf "$perf_txt" --perf-command "$perf_cmd" \
  --load-before "$load_before" --load-after "$load_after" --load-during "$load_during" \
  --started "$started" --finished "$finished" --commands "$commands" "${conv1d_args[@]}" --json-dir "$OUT" --out "$DOC"
echo "wrote $DOC" >&2
