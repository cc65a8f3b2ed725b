"""Golden values for crates/stipple-sample/tests/ipndm_conformance.rs, from an independent
high-precision implementation of iPNDM written from the paper.

No installable package carries the reference: k-diffusion 0.1.1.post1 has no iPNDM, and
ComfyUI's `sample_ipndm` (k_diffusion/sampling.py of its fork, after zju-pi/diff-solvers) is
not a package. So this script implements the method from Zhang & Chen 2023, "Fast Sampling of
Diffusion Models with Exponential Integrator" (ICLR), §5 / Appendix: iPNDM is the linear
multistep (Adams-Bashforth) method of PNDM with constant-step coefficients, warmed up with
the lower orders instead of Runge-Kutta steps, applied to the probability-flow ODE in
sigma, dx/dsigma = d(x, sigma) = (x - D(x; sigma)) / sigma (the ODE of Karras et al. 2022,
eq. 3, as diff-solvers and ComfyUI step it):

    x_{i+1} = x_i + (sigma_{i+1} - sigma_i) * sum_j b^(k)_j d_{i-j},   k = min(i + 1, 4),

and, as ComfyUI does, the last step to sigma = 0 returns D. The Adams-Bashforth weights are
not typed in: they are derived here exactly, b^(k)_j = integral_0^1 prod_{m != j, m < k}
(s + m) / (m - j) ds (the Lagrange basis of the equally spaced nodes s = 0, -1, ..., -(k-1)
integrated over one step), in rational arithmetic; they come out as the classical (1),
(3, -1)/2, (23, -16, 5)/12, (55, -59, 37, -9)/24. Everything else runs in mpmath with
50 significant digits; the outputs are rounded to float64 once, at the end.

Toy denoiser (the one of make_sampler_reference.py):
    D(x; sigma) = x * tanh(sigma) / (1 + sigma^2) + 0.1 * sin(x)

Usage (needs only mpmath; requirements.txt):
    python tests/reference/make_ipndm_reference.py \
        > crates/stipple-sample/tests/fixtures/ipndm_mpmath.json
"""

import json
from fractions import Fraction

import mpmath as mp

mp.mp.dps = 50
MAX_ORDER = 4


def poly_mul(p, q):
    out = [Fraction(0)] * (len(p) + len(q) - 1)
    for i, a in enumerate(p):
        for j, b in enumerate(q):
            out[i + j] += a * b
    return out


def adams_bashforth(k):
    """Exact weights b_0..b_{k-1} (newest slope first) of the k-step Adams-Bashforth method."""
    weights = []
    for j in range(k):
        p = [Fraction(1)]  # coefficients in s, lowest degree first
        for m in range(k):
            if m != j:
                p = poly_mul(p, [Fraction(m, m - j), Fraction(1, m - j)])  # (s + m) / (m - j)
        weights.append(sum(c / (n + 1) for n, c in enumerate(p)))  # integral over [0, 1]
    return weights


def denoise(x, sigma):
    return x * mp.tanh(sigma) / (1 + sigma * sigma) + mp.mpf("0.1") * mp.sin(x)


def ipndm(x, sigmas, ab):
    x = [mp.mpf(v) for v in x]
    slopes = []  # newest first, one list per element
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = mp.mpf(sigmas[i]), mp.mpf(sigmas[i + 1])
        d_x = [denoise(v, sigma) for v in x]
        slopes.insert(0, [(v - dv) / sigma for v, dv in zip(x, d_x)])
        slopes = slopes[:MAX_ORDER]
        if sigma_next == 0:
            x = d_x
            continue
        b = ab[len(slopes)]
        x = [v + (sigma_next - sigma) * sum(mp.mpf(b[j].numerator) / b[j].denominator * slopes[j][e]
                                               for j in range(len(slopes)))
             for e, v in enumerate(x)]
    return x


def karras(n, smin, smax, rho=7.0):
    """k-diffusion get_sigmas_karras in float64 (the levels are inputs; only their values matter)."""
    lo, hi = smin ** (1 / rho), smax ** (1 / rho)
    ramp = [i / (n - 1) for i in range(n)] if n > 1 else [0.0]
    return [(hi + r * (lo - hi)) ** rho for r in ramp] + [0.0]


def exponential(n, smin, smax):
    import math
    ramp = [i / (n - 1) for i in range(n)]
    return [math.exp(math.log(smax) + r * (math.log(smin) - math.log(smax))) for r in ramp] + [0.0]


def main():
    ab = {k: adams_bashforth(k) for k in range(1, MAX_ORDER + 1)}
    smin, smax = 0.029167532920837402, 14.614642143249512  # SD 1.x training range
    sigma_lists = {
        "one_step": [smax, 0.0],
        "karras_2": karras(2, smin, smax),
        "karras_5": karras(5, smin, smax),
        "karras_10": karras(10, smin, smax),
        "karras_25": karras(25, smin, smax),
        "exponential_8": exponential(8, smin, smax),
        "ends_at_sigma_min_6": karras(7, smin, smax)[:-1],
    }
    x_unit = [-1.3, -0.45, 0.0, 0.2, 0.8, 2.1]
    runs = []
    for name, sigmas in sigma_lists.items():
        x0 = [v * sigmas[0] for v in x_unit]
        runs.append({"sigmas": name, "x_out": [float(v) for v in ipndm(x0, sigmas, ab)]})
    print(json.dumps({
        "generator": "tests/reference/make_ipndm_reference.py (iPNDM from Zhang & Chen 2023, mpmath, 50 digits)",
        "denoiser": "x * tanh(sigma) / (1 + sigma^2) + 0.1 * sin(x)",
        "adams_bashforth": {str(k): [str(b) for b in w] for k, w in ab.items()},
        "x_unit": x_unit,
        "sigmas": sigma_lists,
        "runs": runs,
    }, indent=1))


if __name__ == "__main__":
    main()
