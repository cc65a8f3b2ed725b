"""Renders the Fluent Emoji flat icons (Iconify JSON package) to SIZE x SIZE RGB PNGs on white.

Usage: render_fluent_emoji.py PACKAGE_DIR SIZE DEST RESVG
Skin-tone variants (names ending -light/-medium-light/-medium/-medium-dark/-dark, or containing
"tone") and hidden icons are skipped: 1,588 icons remain for version 1.2.6, in name order.
Writes DEST/<index>.png and DEST/labels.csv (index,name,caption,category,codepoints).
"""
import csv, json, os, re, subprocess, sys, tempfile

from PIL import Image

pkg, size, dest, resvg = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
os.makedirs(dest, exist_ok=True)
d = json.load(open(os.path.join(pkg, "icons.json")))
W, H = d.get("width", 16), d.get("height", 16)
cat = {}
for c, names in json.load(open(os.path.join(pkg, "metadata.json"))).get("categories", {}).items():
    for n in names:
        cat.setdefault(n, c)
chars = {}
for cp, n in json.load(open(os.path.join(pkg, "chars.json"))).items():
    chars.setdefault(n, cp)
tone = re.compile(r"(-(light|medium-light|medium|medium-dark|dark)$)|tone")
names = [n for n, v in sorted(d["icons"].items()) if not v.get("hidden") and not tone.search(n)]
tmp = tempfile.mkdtemp()
rows = []
for i, name in enumerate(names):
    v = d["icons"][name]
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
           'viewBox="%s %s %s %s">%s</svg>') % (v.get("left", 0), v.get("top", 0),
                                                 v.get("width", W), v.get("height", H), v["body"])
    sp = os.path.join(tmp, "t.svg")
    open(sp, "w").write(svg)
    out = os.path.join(dest, "%d.png" % i)
    subprocess.run([resvg, "-w", size, "-h", size, "--background", "white", sp, out],
                   check=True, stderr=subprocess.DEVNULL)
    Image.open(out).convert("RGB").save(out)
    rows.append([i, name, name.replace("-", " "), cat.get(name, ""), chars.get(name, "")])
with open(os.path.join(dest, "labels.csv"), "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["index", "name", "caption", "category", "codepoints"])
    w.writerows(rows)
print(len(rows), "icons ->", dest)
