#!/usr/bin/env bash
# Builds the CI test fixture, tests/fixtures/ (a few hundred kB of real data, licences beside it):
#   emoji16/    192 Microsoft Fluent Emoji (flat, MIT) 16x16 RGB PNGs on white, evenly spread over the
#               1,588 non-skin-tone icons (icon i*1588/192), + labels.csv (file,caption,category)
#   digits8x8/  uci_digits.csv.gz: the UCI optical digits file as shipped in the scikit-learn wheel
#               (sklearn/datasets/data/digits.csv.gz; 1,797 rows of 64 pixels 0..16 + label; BSD-3)
# Usage (from the repository root): bash scripts/make-fixture.sh [N_EMOJI]
# Needs: npm, pip, unzip, python3. Work files go to ${DATA_WORK:-./data-work} (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-192}
FIX=tests/fixtures
source scripts/fluent-emoji-common.sh
emoji_prepare
emoji_render 16 "$WORK/png-16"

DIGITS=$(dirname "$WORK")/digits
mkdir -p "$DIGITS"
ls "$DIGITS"/scikit_learn-*.whl >/dev/null 2>&1 ||
  pip download -q --no-deps --only-binary :all: -d "$DIGITS" scikit-learn
WHL=$(ls "$DIGITS"/scikit_learn-*.whl | head -1)

rm -rf "$FIX/emoji16" "$FIX/digits8x8"
mkdir -p "$FIX/emoji16" "$FIX/digits8x8"
unzip -q -j -o "$WHL" sklearn/datasets/data/digits.csv.gz -d "$FIX/digits8x8"
mv "$FIX/digits8x8/digits.csv.gz" "$FIX/digits8x8/uci_digits.csv.gz"
unzip -p "$WHL" '*.dist-info/COPYING' '*.dist-info/LICENSE' '*.dist-info/licenses/COPYING' 2>/dev/null |
  awk 'NR == 1, /SUCH DAMAGE/' > "$FIX/digits8x8/LICENSE" || true
[ -s "$FIX/digits8x8/LICENSE" ] || { echo "no licence file found in $WHL" >&2; exit 1; }
basename "$WHL" > "$FIX/digits8x8/SOURCE"

"$WORK/.venv/bin/python" - "$WORK/png-16" "$FIX/emoji16" "$N" <<'PY'
import csv, os, shutil, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = list(csv.DictReader(open(os.path.join(src, "labels.csv"))))
pick = [rows[k * len(rows) // n] for k in range(n)]
with open(os.path.join(dst, "labels.csv"), "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["file", "caption", "category"])
    for r in pick:
        shutil.copy(os.path.join(src, r["index"] + ".png"), os.path.join(dst, r["name"] + ".png"))
        w.writerow([r["name"] + ".png", r["caption"], r["category"]])
print(len(pick), "emoji ->", dst)
PY
emoji_license > "$FIX/emoji16/LICENSE"
du -sb "$FIX"/*; du -sb "$FIX"
