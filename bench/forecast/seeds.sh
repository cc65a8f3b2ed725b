#!/usr/bin/env bash
# A seed ensemble of bench/forecast/diffusion.py: the same configuration trained and forecast
# with seeds 0 … N−1 (`diffusion.py --seed K`, each model PATHS sample paths), then every path
# of every model pooled into one ensemble (`pool.py --all`: N × PATHS paths per window).
#
# Usage: bench/forecast/seeds.sh WINDOWS OUT N PATHS [diffusion.py options ...]
#   writes OUT/seed-K/<data set>.json per model and OUT/pool/<data set>.json
# Environment: STIPPLE [target/debug/stipple]
set -euo pipefail
cd "$(dirname "$0")/../.."
windows=$1 out=$2 n=$3 paths=$4
shift 4
dirs=()
for ((k = 0; k < n; k++)); do
  python3 bench/forecast/diffusion.py "$windows" "$out/seed-$k" --stipple "${STIPPLE:-target/debug/stipple}" \
    --samples "$paths" --seed "$k" "$@"
  dirs+=("$out/seed-$k")
done
python3 bench/forecast/pool.py --all "$out/pool" "Stipple diffusion (seed ensemble of $n)" "${dirs[@]}"
