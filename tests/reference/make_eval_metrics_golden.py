"""Golden values of the sample-quality metrics on fixed feature arrays, computed by the
reference tools, for crates/stipple-eval/tests/metrics_golden.rs.

Run from the repository root in a venv with tests/reference/requirements-eval.txt:
    python tests/reference/make_eval_metrics_golden.py

Writes crates/stipple-eval/tests/fixtures/metrics_golden.json: for each case, two float32
feature sets (as lists of rows) and
- fid_pytorch_fid: pytorch-fid's calculate_frechet_distance on the statistics its
  calculate_activation_statistics takes (np.mean of the float32 features, np.cov),
- fid_float64: the same formula on float64 statistics (scipy sqrtm),
- fid_clean_fid: clean-fid's frechet_distance on float64 statistics,
- fid_exact: the same distance with tr (Σ₁Σ₂)^{1/2} taken as the nuclear norm of the
  centred cross product X₁X₂ᵀ/(n−1) (its singular values squared are the eigenvalues of
  Σ₁Σ₂): well conditioned even where the covariances are singular, so the reference for the
  rank-deficient case,
- kid_torch_fidelity: torch-fidelity's KID mean with the subset size equal to both set sizes
  (each draw is then a permutation, so the value is deterministic),
- kid_clean_fid: clean-fid's kernel_distance with the same subset size,
- precision / recall: torch-fidelity's calculate_precision_recall_full with k = 3
  (features_1 generated, features_2 real).
"""
import json

import numpy as np
import torch
from cleanfid.fid import frechet_distance as clean_frechet_distance
from cleanfid.fid import kernel_distance as clean_kernel_distance
from pytorch_fid.fid_score import calculate_frechet_distance
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import calculate_precision_recall_full

OUT = "crates/stipple-eval/tests/fixtures/metrics_golden.json"


def case(name, a, b):
    a = a.astype(np.float32)
    b = b.astype(np.float32)
    fid_tool = calculate_frechet_distance(np.mean(a, axis=0), np.cov(a, rowvar=False), np.mean(b, axis=0), np.cov(b, rowvar=False))
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    stats = (np.mean(a64, axis=0), np.cov(a64, rowvar=False), np.mean(b64, axis=0), np.cov(b64, rowvar=False))
    fid64 = calculate_frechet_distance(*stats)
    fid_clean = clean_frechet_distance(*stats)
    m = len(a)
    assert len(b) == m
    xa, xb = a64 - a64.mean(axis=0), b64 - b64.mean(axis=0)
    nuclear = np.linalg.svd(xa @ xb.T, compute_uv=False).sum() / (m - 1)
    fid_exact = ((stats[0] - stats[2]) ** 2).sum() + np.trace(stats[1]) + np.trace(stats[3]) - 2 * nuclear
    kid = kid_features_to_metric(torch.from_numpy(a), torch.from_numpy(b), kid_subsets=3, kid_subset_size=m, kid_kernel="poly",
                                 kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1, rng_seed=2020, verbose=False)
    np.random.seed(0)
    kid_clean = clean_kernel_distance(a64, b64, num_subsets=2, max_subset_size=m)
    precision, recall = calculate_precision_recall_full(torch.from_numpy(a), torch.from_numpy(b), neighborhood=3, batch_size=10000)
    return {
        "name": name,
        "a": a.tolist(),
        "b": b.tolist(),
        "fid_pytorch_fid": float(fid_tool),
        "fid_float64": float(fid64),
        "fid_clean_fid": float(fid_clean),
        "fid_exact": float(fid_exact),
        "kid_torch_fidelity": kid["kernel_inception_distance_mean"],
        "kid_clean_fid": float(kid_clean),
        "precision": precision,
        "recall": recall,
    }


def main():
    rng = np.random.default_rng(18)
    cases = []
    # Full rank: more samples than dimensions; shifted, scaled and correlated.
    mix = rng.normal(size=(8, 8))
    a = rng.normal(size=(200, 8))
    b = rng.normal(size=(200, 8)) @ (0.3 * mix + np.eye(8)) + 0.4
    cases.append(case("full_rank", a, b))
    # Rank deficient: fewer samples than dimensions, as with a few images in Inception space.
    a = np.abs(rng.normal(size=(24, 64))) * 0.5
    b = np.abs(rng.normal(size=(24, 64)) + 0.2) * 0.6
    cases.append(case("rank_deficient", a, b))
    with open(OUT, "w") as f:
        json.dump(cases, f)
    for c in cases:
        print(c["name"], {k: v for k, v in c.items() if k not in ("a", "b", "name")})


if __name__ == "__main__":
    main()
