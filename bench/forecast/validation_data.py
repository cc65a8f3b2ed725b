#!/usr/bin/env python3
"""The validation series of docs/FORECASTING.md: every CSV of the protocol cut after its
training part (the rows before the first held-out origin), so that the same protocol applied
to them (`forecast_eval export bench/forecast/datasets.json OUT ...`) gives validation windows
inside the training part, for choosing a model's settings without the held-out windows.

Usage: validation_data.py PROTOCOL DATA WINDOWS OUT
  PROTOCOL  bench/forecast/datasets.json      DATA  the series (scripts/timeseries.sh)
  WINDOWS   `forecast_eval export` of DATA    OUT   where the cut CSV files go
"""
import csv
import json
import os
import sys


def main():
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    protocol, data, windows, out = sys.argv[1:]
    os.makedirs(out, exist_ok=True)
    for d in json.load(open(protocol))["datasets"]:
        training = json.load(open(os.path.join(windows, d["name"] + ".json")))["training"]
        with open(os.path.join(data, d["file"]), newline="") as f:
            header, *body = list(csv.reader(f))
        n, column = len(training), header.index(d["column"])
        # The training part is the first n values of the column: its rows, in order.
        if float(body[n - 1][column]) != training[-1]:
            raise SystemExit(f"{d['name']}: row {n} of {d['file']} is not the training part's last value")
        with open(os.path.join(out, d["file"]), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(body[:n])
        print(f"{d['name']}: {n} of {len(body)} rows")


if __name__ == "__main__":
    main()
