#!/usr/bin/env bash
# Stipple's default training recipe against diffusers' train_unconditional recipe, same U-Net
# (UNetConfig::emoji16), same 1,588 built-in emoji at 16×16, same CPU threads:
#   1. the built-in set exported as the PNGs both trainers read;
#   2. Stipple's default run on them (`stipple train`, its defaults), timed;
#   3. diffusers' recipe (bench/recipe/diffusers_train.py) for the same number of steps, and
#      for the same training time as Stipple's whole run;
#   4. every model sampled with DPM++ 2M on Karras σ's, 20 steps, R sets of N images with
#      different seeds (Stipple: `stipple sample`; diffusers: its DPMSolverMultistepScheduler),
#      and diffusers' EMA weights also with its DDIMScheduler (x̂₀ clipped), 20 steps;
#   5. one evaluator: the emoji feature network of `stipple eval train-features`, Fréchet
#      distance and precision/recall of each set against the training images; mean and 95%
#      Student-t interval over the R sets (bench/recipe/report.py).
#
# Environment (defaults in brackets): OUT [target/recipe-compare]  PYTHON [python3] (with
#   bench/reference/requirements.txt)  STEPS [2500]  N [1588]  R [3]  THREADS [2]
#   FEATURE_STEPS [600]
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=${OUT:-target/recipe-compare}
PYTHON=${PYTHON:-python3}
STEPS=${STEPS:-2500}
N=${N:-1588}
R=${R:-3}
THREADS=${THREADS:-2}
FEATURE_STEPS=${FEATURE_STEPS:-600}
export RAYON_NUM_THREADS=$THREADS

cargo build -q -p stipple
cargo build -q -p stipple-train --example export_emoji
S=target/debug/stipple
mkdir -p "$OUT"
rm -rf "$OUT/data" && target/debug/examples/export_emoji "$OUT/data" 16
"$S" bench --preset emoji16 --print-configs | "$PYTHON" -c 'import json,sys; json.dump(json.load(sys.stdin)["emoji16"], sys.stdout)' >"$OUT/emoji16.json"
grep -c . "$OUT/emoji16.json" >/dev/null

# 2. Stipple's default run, timed from the command line (sample grids and checkpoints included).
rm -rf "$OUT/stipple"
start=$(date +%s.%N)
"$S" train --data "$OUT/data" --out "$OUT/stipple" --steps "$STEPS" >"$OUT/stipple-train.log"
stipple_seconds=$(echo "$(date +%s.%N) - $start" | bc)
echo "stipple: $STEPS steps in $stipple_seconds s" | tee "$OUT/stipple-time.txt"

# 3. diffusers' recipe: the same steps, and the same time (its cosine schedule planned for
# the steps that the time allows at the same-steps run's speed; the clock ends the run).
"$PYTHON" bench/recipe/diffusers_train.py --data "$OUT/data" --config "$OUT/emoji16.json" --out "$OUT/diffusers-steps" \
  --steps "$STEPS" --threads "$THREADS" | tee "$OUT/diffusers-steps.log"
per_step=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds_per_step"])' "$OUT/diffusers-steps/summary.json")
planned=$("$PYTHON" -c 'import sys; print(int(float(sys.argv[1]) / float(sys.argv[2])))' "$stipple_seconds" "$per_step")
"$PYTHON" bench/recipe/diffusers_train.py --data "$OUT/data" --config "$OUT/emoji16.json" --out "$OUT/diffusers-time-planned" \
  --steps "$planned" --seconds "$stipple_seconds" --threads "$THREADS" | tee "$OUT/diffusers-time-planned.log"

# 4. Samples: R sets of N per model.
for r in $(seq 0 $((R - 1))); do
  seed=$((100000 * (r + 1)))
  rm -rf "$OUT/samples/stipple/$r"
  "$S" sample --model "$OUT/stipple" --sampler dpmpp_2m --schedule karras --steps 20 -n "$N" --batch-size 64 \
    --seed "$seed" --separate --out "$OUT/samples/stipple/$r" >/dev/null
  for run in diffusers-steps diffusers-time-planned; do
    for weights in unet unet_ema; do
      rm -rf "$OUT/samples/$run-$weights/$r"
      "$PYTHON" bench/recipe/diffusers_sample.py --unet "$OUT/$run/$weights" --out "$OUT/samples/$run-$weights/$r" \
        -n "$N" --seed "$seed" --steps 20 --threads "$THREADS"
    done
    # Also as diffusers' own DDIM pipeline samples (x̂₀ clipped), at the same 20 steps.
    rm -rf "$OUT/samples/$run-unet_ema-ddim/$r"
    "$PYTHON" bench/recipe/diffusers_sample.py --unet "$OUT/$run/unet_ema" --out "$OUT/samples/$run-unet_ema-ddim/$r" \
      -n "$N" --seed "$seed" --steps 20 --threads "$THREADS" --scheduler ddim
  done
done

# 5. One evaluator.
[ -f "$OUT/features.safetensors" ] || "$S" eval train-features --size 16 --steps "$FEATURE_STEPS" --out "$OUT/features.safetensors" >"$OUT/features.txt"
for model in "$OUT"/samples/*; do
  for r in $(seq 0 $((R - 1))); do
    "$S" eval folders "$model/$r" "$OUT/data" --features "$OUT/features.safetensors" --json "$model/eval-$r.json" >/dev/null
  done
done
"$PYTHON" bench/recipe/report.py "$OUT" | tee "$OUT/report.md"
