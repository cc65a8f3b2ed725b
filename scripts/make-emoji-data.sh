#!/usr/bin/env bash
# Builds the embedded default training set, assets/emoji/: the 1,588 Microsoft Fluent Emoji (flat)
# icons without skin-tone variants (MIT), rendered at 32x32 RGB on white into ONE atlas PNG
# (40 columns, row-major, unused cells white) + labels.csv (index,name,caption,category,codepoints).
# Usage (from the repository root): bash scripts/make-emoji-data.sh
# Needs: npm, python3. Work files go to ${DATA_WORK:-./data-work}/emoji (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/fluent-emoji-common.sh
emoji_prepare
emoji_render 32 "$WORK/png-32"
ASSETS=assets/emoji
mkdir -p "$ASSETS"
"$WORK/.venv/bin/python" - "$WORK/png-32" "$ASSETS" <<'PY'
import csv, os, shutil, sys
from PIL import Image
src, dst = sys.argv[1], sys.argv[2]
tile, cols = 32, 40
rows = list(csv.DictReader(open(os.path.join(src, "labels.csv"))))
atlas = Image.new("RGB", (cols * tile, -(-len(rows) // cols) * tile), "white")
for r in rows:
    i = int(r["index"])
    atlas.paste(Image.open(os.path.join(src, "%d.png" % i)).convert("RGB"), ((i % cols) * tile, (i // cols) * tile))
atlas.save(os.path.join(dst, "fluent-emoji-flat-32.png"), optimize=True)
shutil.copy(os.path.join(src, "labels.csv"), os.path.join(dst, "labels.csv"))
print(len(rows), "icons, atlas", atlas.size, os.path.getsize(os.path.join(dst, "fluent-emoji-flat-32.png")), "bytes")
PY
emoji_license > "$ASSETS/LICENSE"
cat > "$ASSETS/README.md" <<MD
# Fluent Emoji (flat), 32×32: the embedded default training set

- Source: the npm package \`$EMOJI_PKG@$EMOJI_VERSION\` (Iconify JSON of Microsoft's
  Fluent Emoji, flat style; author Microsoft Corporation, licence MIT as stated in the package's
  \`package.json\` and \`info.json\`; see \`LICENSE\` here).
- $(($(wc -l < "$ASSETS/labels.csv") - 1)) icons: every icon of the set except hidden ones and skin-tone variants (names ending
  \`-light\`, \`-medium-light\`, \`-medium\`, \`-medium-dark\`, \`-dark\`, or containing \`tone\`), in name order.
- \`fluent-emoji-flat-32.png\`: one RGB atlas, 40 columns of 32×32 tiles, row-major (icon \`i\` at
  column \`i % 40\`, row \`i / 40\`); cells after the last icon are white.
- \`labels.csv\`: \`index,name,caption,category,codepoints\` (index = position in the atlas,
  caption = name with dashes replaced by spaces, category from the package's \`metadata.json\`,
  codepoints from its \`chars.json\`, hex, empty where none).

How it was made: each icon's SVG rendered at 32×32 on a white background with the resvg CLI
(\`resvg-cli\` from PyPI, in a venv), pasted into the atlas with Pillow and saved with
\`optimize=True\`. From the repository root:

\`\`\`sh
bash scripts/make-emoji-data.sh
\`\`\`
MD
