#!/usr/bin/env bash
# Stable Diffusion against diffusers on the CPU: the released SD 1.5 and SDXL base
# architectures (bench/sd/*/*.json) with random weights, Stipple's `sd_bench` example and its
# PyTorch twin bench/reference/sd_bench.py alternating figure by figure in one session, one
# process per (side, figure) so that each peak RSS is that figure's. Writes the raw JSON to
# $OUT and the section "Stable Diffusion" of $DOC (between the markers bench/report.py keeps).
#
# Environment (defaults in brackets):
#   THREADS [2]  RUNS [3]  WARMUP [1]  IMAGE_RUNS [1]  STEPS [20]
#   SD15_LATENT [64]   SD 1.5 U-Net and image latents (64 = 512×512 pixels)
#   SDXL_LATENT [128]  SDXL U-Net latents (128 = 1024×1024, SDXL's size; 96 = 768×768)
#   VAE_LATENT [64]    the decoded latent (64 = one 512×512 image)
#   FIGURES ["sd15:unet sdxl:unet sd15:vae sd15:image"]
#   COMPILE [0]  1 runs the PyTorch side with torch.compile (inductor) on the U-Net and decoder
#   PYTHON  (required) the python of a venv with bench/reference/requirements.txt + transformers
#   STIPPLE_BENCH  a built sd_bench example to use as is (no build)
#   OUT     [target/bench/sd]  DOC [docs/BENCHMARKS.md]  (DOC=- prints the section instead)
# Each side builds its networks afresh in every process (random weights: some seconds for SD 1.5,
# about a minute for SDXL's U-Net), then runs WARMUP + RUNS calls (the image: one call of each
# network, then IMAGE_RUNS images). At the defaults that is 4 SD 1.5 U-Net calls, 4 SDXL U-Net
# calls at 1024×1024 and 20 + 1 U-Net calls for the image per side; the SDXL calls and the images
# take most of the run. `SD15_LATENT=8 SDXL_LATENT=8 VAE_LATENT=8 STEPS=2 RUNS=1 DOC=-` tests the
# script end to end in a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-2}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-1}
IMAGE_RUNS=${IMAGE_RUNS:-1}
STEPS=${STEPS:-20}
SD15_LATENT=${SD15_LATENT:-64}
SDXL_LATENT=${SDXL_LATENT:-128}
VAE_LATENT=${VAE_LATENT:-64}
FIGURES=${FIGURES:-"sd15:unet sdxl:unet sd15:vae sd15:image"}
COMPILE=${COMPILE:-0}
PYTHON=${PYTHON:?set PYTHON to the python of a venv with bench/reference/requirements.txt + transformers}
OUT=${OUT:-target/bench/sd}
DOC=${DOC:-docs/BENCHMARKS.md}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

mkdir -p "$OUT"
rm -f "$OUT"/stipple-*.json "$OUT"/pytorch-*.json
if [ -z "${STIPPLE_BENCH:-}" ]; then
  cargo build -p stipple-sd --example sd_bench  # the dev profile is optimised (Cargo.toml)
  STIPPLE_BENCH="$TARGET_DIR/debug/examples/sd_bench"
fi
"$PYTHON" -c "import torch, diffusers, transformers" ||
  { echo "PYTHON=$PYTHON lacks torch/diffusers/transformers (see bench/reference/requirements.txt)" >&2; exit 1; }

export RAYON_NUM_THREADS=$THREADS
compile_flag=""
[ "$COMPILE" = 1 ] && compile_flag="--compile"
started=$(date -u '+%Y-%m-%d %H:%M UTC')
t0=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
load_during=""

# args_for MODEL FIGURE: the figure's size arguments, identical on both sides.
args_for() {
  case "$2" in
    unet) if [ "$1" = sdxl ]; then echo "--latent $SDXL_LATENT --batch 2 --runs $RUNS"; else echo "--latent $SD15_LATENT --batch 2 --runs $RUNS"; fi ;;
    vae) echo "--latent $VAE_LATENT --runs $RUNS" ;;
    image) echo "--latent $SD15_LATENT --steps $STEPS --runs $IMAGE_RUNS" ;;
  esac
}

commands="# THREADS=$THREADS RUNS=$RUNS WARMUP=$WARMUP IMAGE_RUNS=$IMAGE_RUNS STEPS=$STEPS COMPILE=$COMPILE bench/sd.sh
export RAYON_NUM_THREADS=$THREADS"
run_pair() {  # MODEL FIGURE ARGS...
  local m=$1 f=$2; shift 2
  local st="$STIPPLE_BENCH --configs bench/sd/$m --figure $f $* --json $OUT/stipple-$m-$f.json"
  local pt="$PYTHON bench/reference/sd_bench.py --configs bench/sd/$m --figure $f $* --threads $THREADS $compile_flag --json $OUT/pytorch-$m-$f.json"
  echo "== $m $f: stipple" >&2
  $st
  echo "== $m $f: pytorch" >&2
  $pt
  commands+="
$st
$pt"
}

run_pair gemm gemm --runs 5 --warmup 1
for mf in $FIGURES; do
  m=${mf%%:*} f=${mf#*:}
  load_during+="$m $f: $(cut -d' ' -f1-3 /proc/loadavg); "
  # shellcheck disable=SC2046
  run_pair "$m" "$f" $(args_for "$m" "$f") --warmup "$WARMUP"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
finished=$(date -u '+%Y-%m-%d %H:%M UTC')
took=$(( $(date +%s) - t0 ))

python3 bench/sd_report.py --dir "$OUT" --figures "$FIGURES" --commands "$commands" \
  --started "$started" --finished "$finished" --seconds "$took" \
  --load-before "$load_before" --load-during "$load_during" --load-after "$load_after" --doc "$DOC"
echo "bench/sd.sh took ${took} s" >&2
