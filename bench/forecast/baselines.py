"""Classical probabilistic forecasts on the held-out windows that `forecast_eval export` wrote:
statsforecast's AutoETS and AutoARIMA (Hyndman & Khandakar 2008 model selection) and
SeasonalNaive (a cross-check of the Rust seasonal naive forecast), each fitted on every
window's history alone, at the data set's season.

Their Gaussian prediction intervals at levels 1, 3, ..., 99 % give the quantiles
q_i = (i + 0.5)/100, i = 0..99, of each step's forecast distribution; the 100 quantiles are
written as 100 paths (path i = quantile q_i at every step), an ensemble whose empirical
distribution approximates the forecast distribution, which the Rust scorer scores exactly as
it scores a model's sample paths.

Usage (in a venv with bench/forecast/requirements.txt):
    python bench/forecast/baselines.py WINDOWS_DIR OUT_DIR
writes OUT_DIR/<model>/<data set>.json (stipple_series::ForecastFile).
"""
import json
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsforecast import StatsForecast
from statsforecast.models import AutoARIMA, AutoETS, SeasonalNaive

# statsforecast inserts one DataFrame column per interval bound; pandas warns about it.
warnings.simplefilter("ignore", pd.errors.PerformanceWarning)

windows_dir, out_dir = sys.argv[1], sys.argv[2]
LEVELS = list(range(1, 100, 2))

# How well 100 quantiles stand in for a Gaussian: the ensemble CRPS (the estimator of
# properscoring and stipple_series::crps_ensemble) of the quantiles q_i of N(0, 1) against the
# closed form y(2Φ(y) − 1) + 2φ(y) − 1/√π (the CRPS of a normal distribution, Gneiting & Raftery 2007).
q = norm.ppf((np.arange(100) + 0.5) / 100)
for y in [0.0, 1.0, 2.5]:
    ensemble = np.mean(np.abs(q - y)) - 0.5 * np.mean(np.abs(q[:, None] - q[None, :]))
    exact = y * (2 * norm.cdf(y) - 1) + 2 * norm.pdf(y) - 1 / np.sqrt(np.pi)
    assert abs(ensemble / exact - 1) < 1e-3, (y, ensemble, exact)
    print("CRPS of 100 Gaussian quantiles at y = %.1f: %.5f, closed form %.5f" % (y, ensemble, exact))
MODELS = {"AutoETS": "ets", "AutoARIMA": "arima", "SeasonalNaive": "seasonal_naive_sf"}

for file in sorted(os.listdir(windows_dir)):
    if not file.endswith(".json"):
        continue
    data = json.load(open(os.path.join(windows_dir, file)))
    spec, windows = data["spec"], data["windows"]
    season, horizon = spec["season"], spec["horizon"]
    frames = [pd.DataFrame({"unique_id": w["origin"], "ds": np.arange(len(w["history"])), "y": w["history"]}) for w in windows]
    df = pd.concat(frames, ignore_index=True)
    start = time.time()
    sf = StatsForecast(models=[AutoETS(season_length=season), AutoARIMA(season_length=season), SeasonalNaive(season_length=season)],
                       freq=1, n_jobs=1)
    fc = sf.forecast(df=df, h=horizon, level=LEVELS)
    print("%-14s %3d windows, %.1f s" % (data["dataset"], len(windows), time.time() - start), flush=True)
    for model, folder in MODELS.items():
        out = {"dataset": data["dataset"], "model": model, "windows": []}
        for w in windows:
            rows = fc[fc["unique_id"] == w["origin"]].sort_values("ds")
            assert len(rows) == horizon
            lows = [rows["%s-lo-%d" % (model, l)].to_numpy() for l in reversed(LEVELS)]  # q = 0.005 .. 0.495
            highs = [rows["%s-hi-%d" % (model, l)].to_numpy() for l in LEVELS]  # q = 0.505 .. 0.995
            paths = np.array(lows + highs)
            assert np.isfinite(paths).all(), (data["dataset"], model, w["origin"])
            out["windows"].append({"origin": w["origin"], "paths": paths.tolist()})
        os.makedirs(os.path.join(out_dir, folder), exist_ok=True)
        json.dump(out, open(os.path.join(out_dir, folder, file), "w"))
