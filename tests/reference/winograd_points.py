"""The interpolation points of crates/stipple-nn/src/ops/conv2d/winograd/f4x4.rs.

Builds Toom-Cook's matrices for F(4, 3) with the points 0, 1, -1, p, q and infinity (as
Lavin's `wincnn` does: A^T[i][j] = p_j^i, G[j][k] = p_j^k / prod_{l != j} (p_j - p_l), row j
of B^T the coefficients of prod_{l != j} (x - p_l), lowest power first, unit rows for
infinity), runs a model of the Winograd F(4x4, 3x3) computation in float32 (transforms
rounded to float32, the sum over 256 input channels accumulated in float32 in order) on a
32x32 map of uniform data, and prints the largest error against the convolution in float64
in units of the largest sum |w|.|x|, for every pair {p, q} of extra points among the
candidates, best first, then for Lavin and Gray's 0, +-1, +-2. Also prints the matrices of the
best set (f4x4.rs orders its points 0, -1, 1, 1/2, -2: the same algorithm, rows 1 and 2 of G
and B^T and columns 1 and 2 of A^T swapped).

Run with numpy (the version of tests/reference/requirements.txt):

    /tmp/refvenv/bin/python tests/reference/winograd_points.py
"""
import itertools
from fractions import Fraction as F

import numpy as np


def polymul(a, b):
    out = [F(0)] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i + j] += x * y
    return out


def toom_cook(points, m=4, r=3):
    """A^T (m, n), G (n, r), B^T (n, n) with n = m + r - 1 for the finite points plus infinity."""
    pts = [F(p) for p in points]
    at = [[p**i for p in pts] + [F(int(i == m - 1))] for i in range(m)]
    g, bt = [], []
    for j, p in enumerate(pts):
        f, num = F(1), [F(1)]
        for l, q in enumerate(pts):
            if l != j:
                f *= p - q
                num = polymul(num, [-q, F(1)])
        g.append([p**k / f for k in range(r)])
        bt.append(num + [F(0)])
    whole = [F(1)]
    for q in pts:
        whole = polymul(whole, [-q, F(1)])
    g.append([F(0)] * (r - 1) + [F(1)])
    bt.append(whole)
    return at, g, bt


rng = np.random.default_rng(1)
C, H = 256, 32
x = rng.uniform(-1, 1, (C, H + 2, H + 2))
x[:, 0, :] = x[:, -1, :] = x[:, :, 0] = x[:, :, -1] = 0
w = rng.uniform(-1, 1, (C, 3, 3))
exact = np.zeros((H, H))
scale = np.zeros((H, H))
for i in range(3):
    for j in range(3):
        exact += np.einsum("c,chw->hw", w[:, i, j], x[:, i : i + H, j : j + H])
        scale += np.einsum("c,chw->hw", abs(w[:, i, j]), abs(x[:, i : i + H, j : j + H]))
f32 = np.float32
T = H // 4
tiles = np.stack([x[:, 4 * ty : 4 * ty + 6, 4 * tx : 4 * tx + 6] for ty in range(T) for tx in range(T)], 1).astype(f32)


def error(points):
    at, g, bt = (np.array([[float(v) for v in row] for row in mat]) for mat in toom_cook(points))
    u = np.einsum("ij,cjk,lk->cil", g, w, g).astype(f32)
    v = np.einsum("ij,ctjk->ctik", bt.astype(f32), tiles).astype(f32)
    v = np.einsum("ctik,lk->ctil", v, bt.astype(f32)).astype(f32)
    acc = np.zeros(v.shape[1:], f32)
    for c in range(C):
        acc = (acc + u[c] * v[c]).astype(f32)
    y = np.einsum("ij,tjk->tik", at.astype(f32), acc).astype(f32)
    y = np.einsum("tik,lk->til", y, at.astype(f32)).astype(f32)
    out = np.zeros((H, H))
    for t in range(T * T):
        ty, tx = divmod(t, T)
        out[4 * ty : 4 * ty + 4, 4 * tx : 4 * tx + 4] = y[t]
    return abs(out - exact).max() / scale.max()


candidates = [F(1, 2), -F(1, 2), 2, -2, F(1, 4), -F(1, 4), 3, -3, F(1, 3), -F(1, 3), F(3, 2), -F(3, 2), F(2, 3), -F(2, 3)]
results = sorted((error([0, 1, -1, p, q]), [str(v) for v in (0, 1, -1, p, q)]) for p, q in itertools.combinations(candidates, 2))
for e, pts in results[:10]:
    print(f"{e:.3e}  {', '.join(pts)}, inf")
print(f"{error([0, 1, -1, 2, -2]):.3e}  0, 1, -1, 2, -2, inf (Lavin and Gray)")
best = [F(v) for v in results[0][1]]
for name, mat in zip(("A^T", "G", "B^T"), toom_cook(best)):
    print(name)
    for row in mat:
        print("  ", [str(v) for v in row])
