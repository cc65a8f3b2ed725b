#!/usr/bin/env bash
# Real series shipped inside Python packages, as CSV files for training and for the held-out
# forecast evaluation of bench/forecast/ (bench/forecast/datasets.json names file and column):
#   statsmodels wheel (BSD-3; its data files say public domain):
#     co2_monthly.csv  month,co2        Mauna Loa CO2 (ppm), weekly 1958-2001 averaged by month,
#                                       the months without a reading linearly interpolated (526 rows)
#     sunspots.csv     year,sunactivity yearly sunspot numbers 1700-2008 (309 rows)
#     nile.csv         year,volume      yearly Nile flow at Aswan 1871-1970 (100 rows)
#     macrodata.csv    year,quarter,realgdp,...,unemp,...  US quarterly macro data 1959-2009 (203 rows)
#   aeon wheel (BSD-3):
#     airline.csv      month,passengers monthly airline passengers 1949-1960 (144 rows)
#     lynx.csv         year,trappings   yearly Canadian lynx trappings 1821-1934 (114 rows)
#     italy_power_demand.csv day,hour,demand  the 1,029 test days of ItalyPowerDemand (24 hourly
#                                       values each, z-normalised per day as the UCR archive
#                                       ships them) laid end to end in file order (24,696 rows)
#   matplotlib wheel (mpl-data/sample_data, PSF-based licence):
#     goog_returns.csv date,close,log_return_pct  Google daily adjusted close 2004-08-19 to
#                                       2008-10-14 and its daily log return in percent,
#                                       100*ln(P_t/P_{t-1}) (the first day has none, so it is dropped)
# Usage: scripts/timeseries.sh [OUT]   (default data-work/timeseries)
# Needs: pip (wheels are downloaded with --no-deps and only unzipped), python3 with venv (numpy
#        is installed into OUT/.venv to read the matplotlib .npz file).
set -euo pipefail
OUT=${1:-data-work/timeseries}
mkdir -p "$OUT/raw"
OUT=$(cd "$OUT" && pwd)
cd "$OUT/raw"
for spec in statsmodels==0.15.0 aeon==1.6.0 matplotlib==3.11.2; do
  name=${spec%%==*}
  ls ${name}-*.whl >/dev/null 2>&1 || pip download -q --no-deps --only-binary :all: -d . "$spec"
done
unzip -q -o statsmodels-*.whl 'statsmodels/datasets/*/*.csv'
unzip -q -o aeon-*.whl 'aeon/datasets/data/Airline/*' 'aeon/datasets/data/Lynx/*' 'aeon/datasets/data/ItalyPowerDemand/*'
unzip -q -o matplotlib-*.whl 'matplotlib/mpl-data/sample_data/goog.npz'
[ -x "$OUT/.venv/bin/python" ] || { python3 -m venv "$OUT/.venv" && "$OUT/.venv/bin/pip" install -q numpy==2.4.6; }
RAW="$OUT/raw" OUT="$OUT" "$OUT/.venv/bin/python" - <<'PY'
import csv, os
import numpy as np

raw, out = os.environ["RAW"], os.environ["OUT"]
sm = os.path.join(raw, "statsmodels/datasets")
ae = os.path.join(raw, "aeon/datasets/data")


def write(name, header, rows):
    with open(os.path.join(out, name), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    print("%-24s %6d rows  %s" % (name, len(rows), ",".join(header)))


def read(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


# co2: weekly readings (some missing) -> monthly means; months without any reading interpolated.
weekly = read(os.path.join(sm, "co2/co2.csv"))[1:]
months = {}
for date, v in weekly:
    if v not in ("", "NA", "nan"):
        months.setdefault(date[:6], []).append(float(v))
first, last = min(months), max(months)
keys, y, m = [], int(first[:4]), int(first[4:])
while "%04d%02d" % (y, m) <= last:
    keys.append("%04d%02d" % (y, m))
    y, m = (y + 1, 1) if m == 12 else (y, m + 1)
known = np.array([i for i, k in enumerate(keys) if k in months])
vals = np.interp(np.arange(len(keys)), known, [np.mean(months[keys[i]]) for i in known])
write("co2_monthly.csv", ["month", "co2"], [[k[:4] + "-" + k[4:], "%.4f" % v] for k, v in zip(keys, vals)])
write("sunspots.csv", ["year", "sunactivity"], read(os.path.join(sm, "sunspots/sunspots.csv"))[1:])
write("nile.csv", ["year", "volume"], read(os.path.join(sm, "nile/nile.csv"))[1:])
macro = read(os.path.join(sm, "macrodata/macrodata.csv"))
write("macrodata.csv", macro[0], macro[1:])
write("airline.csv", ["month", "passengers"], read(os.path.join(ae, "Airline/Airline.csv"))[1:])
write("lynx.csv", ["year", "trappings"], read(os.path.join(ae, "Lynx/Lynx.csv"))[1:])
rows = []
with open(os.path.join(ae, "ItalyPowerDemand/ItalyPowerDemand_TEST.ts")) as f:
    days = [l.strip() for l in f if l.strip() and not l.startswith(("#", "@"))]
for d, line in enumerate(days):
    values = line.split(":")[0].split(",")
    assert len(values) == 24, line
    rows += [[d, h, v] for h, v in enumerate(values)]
write("italy_power_demand.csv", ["day", "hour", "demand"], rows)
g = np.load(os.path.join(raw, "matplotlib/mpl-data/sample_data/goog.npz"))["price_data"]
close = g["adj_close"].astype(np.float64)
ret = 100 * np.diff(np.log(close))
write("goog_returns.csv", ["date", "close", "log_return_pct"],
      [[str(d), "%.4f" % c, "%.6f" % r] for d, c, r in zip(g["date"][1:], close[1:], ret)])
PY
