#!/usr/bin/env python3
"""Stipple's diffusion forecasts on the held-out windows of bench/forecast/datasets.json, as
forecast files that bench/forecast/run.sh scores beside the classical baselines.

For each data set exported by `forecast_eval export` (WINDOWS/<name>.json): a 1-D U-Net is
trained (`stipple train`) on the values before the first held-out origin only, with windows
of the protocol's horizon and a context of at least the protocol's (lengthened to the next
multiple of 4, which the U-Net's three levels need); then every held-out window is forecast
(`stipple forecast`, N sample paths) from its history, and the paths of the horizon are
written to OUT/<name>.json (`stipple_series::ForecastFile`).

--conditioning picks how the model reads the history (`stipple train --conditioning`):
inpaint (an unconditional model of windows, the history imposed at every sampler step) or
csdi (the history and its mask as input channels, trained on random forecast masks; Tashiro
et al. 2021).

--epochs caps the training steps at E passes over the data set's windows (E × windows / 32,
rounded up, at most --steps): a short series has few windows, and 1,500 steps of 32 are
hundreds of passes over them, which teaches a conditional model its training futures. It is
one number for every data set, or NAME=E pairs (comma-separated; 0 or a data set not named:
no cap).

--seed K trains with `stipple train --seed K` (initialisation, data order and noise) and
forecasts path i of the window at origin o from seed o + K·SEED_STRIDE + i, so that the
models of a seed ensemble (pooled by pool.py --all) draw different noise; K = 0 is the
default run.

--log and --difference LAG (`stipple train --log`, `--difference`; several lags joined by +,
e.g. 1+12) train on the log and/or differenced series; the model file records the
transform, so `stipple forecast` applies it to each window's history and inverts it on the
paths (integrating the differences from the last observed values, then exp). The windows
counted by --epochs are those of the transformed series (the differences consume the sum of
their lags). Both are one setting for every data set, or NAME=... pairs like --epochs
(`--log airline=1,lynx=1`; `--difference airline=1+12,nile=1`; a data set not named: none).

--channels W,W,W sets the 1-D U-Net's widths per level (`stipple train --channels`; default
32,64,64, `UNet1DConfig::small`).

--global DIR:NAME,NAME,... trains a global model (one model of many series, as Montero-Manso
& Hyndman 2021 argue for short series): the training CSV holds, beside the data set's own
training part (column "value"), the training part of each named data set from the exports in
DIR (DIR/NAME.json, the same split: everything before that data set's own first held-out
origin), as columns of different lengths. The windows are the data set's own context and
horizon; every window is scaled by its own context, so series of any level share the model.
The named data set that is being forecast is not added twice, and a named series too short
for one window (after the differences) is left out of that model (the run says which).
--epochs counts the windows of all columns.

Usage: diffusion.py WINDOWS OUT --stipple BIN [--runs DIR] [--steps 1500] [--samples 100]
                    [--conditioning inpaint|csdi] [--epochs E | --epochs NAME=E,...] [--seed K]
                    [--log [NAME=1,...]] [--difference LAG | --difference NAME=LAG,...]
                    [--global DIR:NAME,NAME,...] [--channels W,W,W]
"""
import argparse
import csv
import json
import os
import subprocess
import tempfile


def window_context(context, horizon, multiple=4):
    """The smallest context ≥ `context` whose window context + horizon is a multiple of `multiple`."""
    return context + (-(context + horizon)) % multiple


BATCH = 32  # stipple train's default batch size
SEED_STRIDE = 10_000_000  # forecast seeds of model K start here (origins are far below it)


def training_steps(steps, epochs, windows):
    """`steps`, capped at `epochs` passes over `windows` windows of BATCH (0: no cap)."""
    return steps if epochs == 0 else min(steps, -(-epochs * windows // BATCH))


def epochs_for(spec, name):
    """The cap of data set `name` from --epochs: one number for all, or NAME=E pairs."""
    if spec is None:
        return 0
    if "=" not in spec:
        return int(spec)
    pairs = dict(p.split("=") for p in spec.split(","))
    return int(pairs.get(name, 0))


def per_dataset(spec, name):
    """The value for data set `name` of a setting given as one value for all or NAME=V pairs
    (a data set not named: None)."""
    if spec is None or "=" not in spec:
        return spec
    return dict(p.split("=") for p in spec.split(",")).get(name)


def write_columns(path, columns):
    """Writes `columns` (name → values) side by side; a shorter column ends in empty cells."""
    names = list(columns)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for t in range(max(len(v) for v in columns.values())):
            w.writerow([repr(float(columns[n][t])) if t < len(columns[n]) else "" for n in names])


def global_series(spec, name):
    """The other data sets' training parts of --global DIR:NAME,... (name → values)."""
    if spec is None:
        return {}
    folder, names = spec.split(":", 1)
    return {n: json.load(open(os.path.join(folder, n + ".json")))["training"] for n in names.split(",") if n != name}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("windows")
    p.add_argument("out")
    p.add_argument("--stipple", required=True)
    p.add_argument("--runs", default=None, help="run folders [OUT/runs]")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--conditioning", choices=["inpaint", "csdi"], default="inpaint")
    p.add_argument("--epochs", default=None, help="cap on passes over the windows: E, or NAME=E,...")
    p.add_argument("--seed", type=int, default=0, help="training seed K; forecast seeds origin + K·SEED_STRIDE + i")
    p.add_argument("--log", nargs="?", const="1", default=None, help="train on the log of the series (all, or NAME=1,...)")
    p.add_argument("--difference", default=None, help="difference at lag LAG before windowing: LAG (several: LAG+LAG), or NAME=LAG,...")
    p.add_argument("--channels", default=None, help="the U-Net's widths per level, W,W,W [32,64,64]")
    p.add_argument("--global", dest="pooled", default=None, help="DIR:NAME,...: also train on these data sets' training parts")
    a = p.parse_args()
    runs = a.runs or os.path.join(a.out, "runs")
    os.makedirs(a.out, exist_ok=True)
    for name in sorted(f[:-5] for f in os.listdir(a.windows) if f.endswith(".json")):
        data = json.load(open(os.path.join(a.windows, name + ".json")))
        spec, windows, training = data["spec"], data["windows"], data["training"]
        horizon = spec["horizon"]
        context = window_context(spec["context"], horizon)
        if len(training) < context + horizon:
            raise SystemExit(f"{name}: {len(training)} training values do not make one window of {context + horizon}")
        log = per_dataset(a.log, name) == "1"
        lags = [int(d) for d in (per_dataset(a.difference, name) or "").split("+") if d]
        transform = (["--log"] if log else []) + [f for d in lags for f in ("--difference", str(d))]
        if len(training) - sum(lags) < context + horizon:
            raise SystemExit(f"{name}: {len(training)} training values less {sum(lags)} differenced away do not make one window of {context + horizon}")
        pooled = global_series(a.pooled, name)
        short = [n for n, v in pooled.items() if len(v) - sum(lags) < context + horizon]
        columns = {"value": training, **{n: v for n, v in pooled.items() if n not in short}}
        count = sum(len(v) - sum(lags) - (context + horizon) + 1 for v in columns.values())
        steps = training_steps(a.steps, epochs_for(a.epochs, name), count)
        run = os.path.join(runs, name)
        with tempfile.TemporaryDirectory() as tmp:
            train_csv = os.path.join(tmp, "train.csv")
            write_columns(train_csv, columns)
            # A finished run is kept (its model.safetensors and a "trained" mark); an interrupted
            # one resumes from its checkpoint.
            done = os.path.join(run, "trained")
            if not os.path.exists(done):
                resume = ["--resume"] if os.path.isdir(os.path.join(run, "checkpoint")) else []
                subprocess.run([a.stipple, "train", "--data", train_csv, "--column", ",".join(columns), "--context", str(context),
                                "--horizon", str(horizon), "--steps", str(steps), "--sample-every", "0",
                                "--conditioning", a.conditioning, "--seed", str(a.seed), "--out", run] + transform + resume
                               + (["--channels", a.channels] if a.channels else []),
                               check=True, stdout=subprocess.DEVNULL)
                open(done, "w").close()
            forecasts = []
            for w in windows:
                history = os.path.join(tmp, "history.csv")
                write_columns(history, {"value": w["history"]})
                out = os.path.join(tmp, "forecast")
                subprocess.run([a.stipple, "forecast", "--model", run, "--data", history, "--horizon", str(horizon),
                                "--samples", str(a.samples), "--seed", str(w["origin"] + a.seed * SEED_STRIDE), "--out", out],
                               check=True, stdout=subprocess.DEVNULL)
                with open(os.path.join(out, "paths.csv")) as f:
                    rows = list(csv.reader(f))
                header, body = rows[0], rows[1:]
                first_path = header.index("observed") + 1
                future = body[-horizon:]
                paths = [[float(r[c]) for r in future] for c in range(first_path, len(header))]
                forecasts.append({"origin": w["origin"], "paths": paths})
        with open(os.path.join(a.out, name + ".json"), "w") as f:
            model = "Stipple diffusion (1-D U-Net" + (", CSDI)" if a.conditioning == "csdi" else ")")
            json.dump({"dataset": name, "model": model, "windows": forecasts}, f)
        shown = " ".join(transform) or "no transform"
        values = f"{sum(len(v) for v in columns.values())} values of {len(columns)} series" if len(columns) > 1 else f"{len(training)} values"
        if short:
            values += f", {', '.join(short)} left out (shorter than one window)"
        print(f"{name}: trained on {values} ({shown}; windows of {context} + {horizon}) for {steps} steps, {len(windows)} forecasts", flush=True)


if __name__ == "__main__":
    main()
