#!/usr/bin/env python3
"""Pools the sample paths of several forecasters of the same held-out windows into one
ensemble (an equal-weight mixture: an even share of the N paths of each, N the first's count;
with --all, every path of every forecaster, e.g. the 20 paths of each of five seeds),
written as one forecast file per data set that bench/forecast/run.sh scores.

Usage: pool.py [--all] OUT NAME DIR1 DIR2 [DIR3 ...]   pools DIRk/<data set>.json for every
       data set that all DIRs hold; NAME is the pooled model's name in the files
"""
import json
import os
import sys


def main():
    args = sys.argv[1:]
    keep_all = args[:1] == ["--all"]
    args = args[keep_all:]
    if len(args) < 4:
        raise SystemExit(__doc__)
    out, name, dirs = args[0], args[1], args[2:]
    os.makedirs(out, exist_ok=True)
    sets = set.intersection(*(set(f for f in os.listdir(d) if f.endswith(".json")) for d in dirs))
    for f in sorted(sets):
        files = [json.load(open(os.path.join(d, f))) for d in dirs]
        windows = []
        for per_model in zip(*(x["windows"] for x in files)):
            origins = {w["origin"] for w in per_model}
            if len(origins) != 1:
                raise SystemExit(f"{f}: the forecasters disagree on the windows' origins {sorted(origins)}")
            n = len(per_model[0]["paths"])
            shares = [len(w["paths"]) if keep_all else n // len(dirs) + (k < n % len(dirs))
                      for k, w in enumerate(per_model)]
            paths = [p for w, s in zip(per_model, shares) for p in w["paths"][:s]]
            windows.append({"origin": per_model[0]["origin"], "paths": paths})
        with open(os.path.join(out, f), "w") as fh:
            json.dump({"dataset": files[0]["dataset"], "model": name, "windows": windows}, fh)
        print(f"{f[:-5]}: {len(windows)} windows pooled from {len(dirs)} forecasters")


if __name__ == "__main__":
    main()
