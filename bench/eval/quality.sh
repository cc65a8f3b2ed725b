#!/usr/bin/env bash
# The figures of docs/QUALITY.md: a domain feature network trained on the built-in emoji's
# categories at 16×16; sanity figures of its metrics on the emoji16 fixture (its odd-numbered
# images as they are, blurred and replaced by noise, against its even-numbered ones); and a
# sampler sweep of the shipped model (prompted with
# the fixture's 192 captions, so image i is drawn for reference image i) against the fixture.
#
# Environment (defaults in brackets): OUT [target/eval-out]  PYTHON [python3] (with pillow and numpy)
#   FEATURE_STEPS [600]  SAMPLERS [euler,heun,dpmpp_2m]  STEPS [4,8,16,32]
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=${OUT:-target/eval-out}
PYTHON=${PYTHON:-python3}
FEATURE_STEPS=${FEATURE_STEPS:-600}
SAMPLERS=${SAMPLERS:-euler,heun,dpmpp_2m}
STEPS=${STEPS:-4,8,16,32}
DATA=tests/fixtures/emoji16

cargo build -q -p stipple
S=target/debug/stipple
mkdir -p "$OUT"
"$PYTHON" bench/eval/make_sets.py "$DATA" "$OUT/sets"
$S eval train-features --size 16 --steps "$FEATURE_STEPS" --out "$OUT/features.safetensors" | tee "$OUT/features.txt"

# Sanity: FD, KID and precision/recall of each set against the even half.
for set in odd odd-blur1 odd-blur2 noise; do
  echo "== $set against even"
  $S eval folders "$OUT/sets/$set" "$OUT/sets/even" --features "$OUT/features.safetensors" --kid-subset-size 96 --json "$OUT/sanity-$set.json"
done | tee "$OUT/sanity.txt"

# The sweep: one caption per reference image, in the fixture's order.
prompts=()
while IFS=, read -r file caption category; do
  prompts+=(--prompt "$caption")
done < <(tail -n +2 "$DATA/labels.csv")
$S eval sweep --samplers "$SAMPLERS" --steps "$STEPS" --count 192 "${prompts[@]}" \
  --data "$DATA" --features "$OUT/features.safetensors" --out "$OUT/sweep" | tee "$OUT/sweep.txt"
