"""Reference values for crates/stipple-series: the CRPS of sample ensembles from
`properscoring.crps_ensemble`, quantiles and central-interval coverage from `numpy.quantile`
(its default linear interpolation), the MASE from its definition (Hyndman & Koehler 2006) in
numpy, and the seasonal naive forecast, on fixed random inputs.

Run from the repository root in a venv with tests/reference/requirements-series.txt:
    python tests/reference/make_forecast_scores_reference.py
Writes tests/reference/series/forecast_scores.json.
"""
import json

import numpy as np
import properscoring as ps

rng = np.random.default_rng(20261206)
cases = []
for m, horizon in [(1, 3), (2, 4), (7, 5), (50, 12), (200, 6)]:
    paths = rng.normal(size=(m, horizon)) * rng.uniform(0.5, 2.0) + rng.normal()
    paths[:, 0] = np.round(paths[:, 0], 1)  # ties
    obs = rng.normal(size=horizon) * 1.5
    obs[-1] = paths[:, -1].max() + 1.0  # outside the ensemble
    history = np.cumsum(rng.normal(size=30))
    season = int(rng.integers(1, 8))
    crps = [float(ps.crps_ensemble(obs[t], paths[:, t])) for t in range(horizon)]
    coverage = {}
    for level in [0.5, 0.9]:
        lo = np.quantile(paths, (1 - level) / 2, axis=0)
        hi = np.quantile(paths, (1 + level) / 2, axis=0)
        coverage[str(level)] = float(np.mean((lo <= obs) & (obs <= hi)))
    median = np.quantile(paths, 0.5, axis=0)
    scale = np.mean(np.abs(history[season:] - history[:-season]))
    mase = float(np.mean(np.abs(median - obs)) / scale)
    n = len(history)
    naive = [float(history[n + h - season * ((h - 1) // season + 1) - 1]) for h in range(1, horizon + 1)]
    cases.append(dict(paths=paths.tolist(), obs=obs.tolist(), history=history.tolist(), season=season, crps=crps,
                      quantiles={str(q): np.quantile(paths[:, 1 % horizon], q).tolist() for q in [0.0, 0.05, 0.5, 0.95, 1.0]},
                      coverage=coverage, median=median.tolist(), mase=mase, seasonal_naive=naive))
with open("tests/reference/series/forecast_scores.json", "w") as f:
    json.dump(cases, f, indent=1)
