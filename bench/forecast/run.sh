#!/usr/bin/env bash
# The baseline table of docs/FORECASTING.md: the held-out windows of bench/forecast/datasets.json
# on the series of scripts/timeseries.sh, forecast by the Rust seasonal naive baseline and by
# statsforecast's AutoETS, AutoARIMA and SeasonalNaive (bench/forecast/baselines.py, in a venv
# with bench/forecast/requirements.txt), all scored by stipple_series::score_forecasts.
#
# Usage: bench/forecast/run.sh [NAME=DIR ...]   adds a row per forecaster whose forecast files
#        (DIR/<data set>.json, stipple_series::ForecastFile) are given, e.g. a diffusion model's.
# Environment (defaults in brackets): DATA [data-work/timeseries]  OUT [target/forecast]
#   VENV [data-work/venv-forecast]
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-data-work/timeseries}
OUT=${OUT:-target/forecast}
VENV=${VENV:-data-work/venv-forecast}
[ -f "$DATA/goog_returns.csv" ] || scripts/timeseries.sh "$DATA"
[ -x "$VENV/bin/python" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q -r bench/forecast/requirements.txt; }
EVAL=(cargo run -q -p stipple-series --example forecast_eval --)
"${EVAL[@]}" export bench/forecast/datasets.json "$DATA" "$OUT/windows"
"$VENV/bin/python" bench/forecast/baselines.py "$OUT/windows" "$OUT/forecasts"
models=(--model "AutoETS=$OUT/forecasts/ets" --model "AutoARIMA=$OUT/forecasts/arima" --model "SeasonalNaive (statsforecast)=$OUT/forecasts/seasonal_naive_sf")
for m in "$@"; do models+=(--model "$m"); done
"${EVAL[@]}" score bench/forecast/datasets.json "$DATA" "${models[@]}" --check-seasonal-naive "SeasonalNaive (statsforecast)" | tee "$OUT/table.md"
