"""Benchmark: analytic NTK + NNGP (ntktheory.kernels) against fixed-degree Gauss-Hermite and numpy.

Cases (d = 32, depth 10, NTK parameterisation, sigma_w = 1.5, sigma_b = 0.1 unless said otherwise):

* tanh, N = 200 and N = 1000, random Gaussian inputs and inputs on the sphere of radius sqrt(d);
* tanh near saturation (sigma_w = 4, pre-activation variances ~16), N = 200;
* relu, N = 4000 (sigma_w^2 = 2), against a straightforward numpy arc-cosine implementation.

Baseline for tanh: neural-tangents' method, a fixed 25 x 25 Gauss-Hermite rule on the Cholesky
factor of each pair's 2 x 2 covariance, written here in numpy and vectorised over pairs (chunked
over rows to bound memory). Errors: max relative error of ~20 kernel entries (both NNGP and NTK,
off-diagonal and diagonal) against an independent scipy reference: the recursion of a single
pair (x_i, x_j) needs only (q_i, q_j, c_ij) per layer, computed with nested
``scipy.integrate.quad`` (epsrel 1e-12 / 1e-13, breakpoints at every unit of the activation's
variable). Entries are drawn among the first 200 inputs, so N = 200 and N = 1000 share them.
Times are wall-clock of a warm call (one call first), with the process's CPU time (all
threads) in parentheses. The ``fallback`` column counts pairs over
all layers that left the row-vectorised series (per-pair series / direct 2-D quadrature).

Usage::

    python bench/bench_kernels.py            # everything (~5 min with the baselines)
    python bench/bench_kernels.py --quick    # N = 200 cases only
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numba
import numpy as np
from scipy import integrate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import ntktheory  # noqa: E402

D, DEPTH = 32, 10
SQRT2PI = math.sqrt(2.0 * math.pi)


# ---------------------------------------------------------------------- inputs
def gaussian_inputs(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((n, D))


def sphere_inputs(n: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal((n, D))
    return x / np.linalg.norm(x, axis=1, keepdims=True) * math.sqrt(D)


# ---------------------------------------------------------------------- baseline: Gauss-Hermite
def gauss_hermite_kernels(x, f, df, sw, sb, depth, degree=25, chunk=20):
    """neural-tangents' ElementwiseNumerical: 2-D Gauss-Hermite on each pair's Cholesky factor."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(degree)
    weights = weights / weights.sum()
    z1 = nodes[:, None]
    z2 = nodes[None, :]
    w2 = weights[:, None] * weights[None, :]
    d = x.shape[1]
    sigma = sw**2 * x @ x.T / d + sb**2
    theta = sigma.copy()
    n = x.shape[0]
    for _ in range(depth):
        var = np.diag(sigma).copy()
        pp = np.empty_like(sigma)
        dd = np.empty_like(sigma)
        for start in range(0, n, chunk):
            rows = slice(start, min(start + chunk, n))
            q1 = var[rows, None, None, None]
            q2 = var[None, :, None, None]
            q12 = sigma[rows, :, None, None]
            s1 = np.sqrt(q1)
            c = np.clip(q12 / np.sqrt(q1 * q2), -1.0, 1.0)
            u = s1 * z1
            v = np.sqrt(q2) * (c * z1 + np.sqrt(1.0 - c * c) * z2)
            pp[rows] = np.einsum("ijab,ab->ij", f(u) * f(v), w2)
            dd[rows] = np.einsum("ijab,ab->ij", df(u) * df(v), w2)
        sigma = sw**2 * pp + sb**2
        theta = sigma + sw**2 * dd * theta
    return sigma, theta


def numpy_relu_kernels(x, sw, sb, depth):
    """Straightforward numpy arc-cosine recursion (full matrices, arccos)."""
    d = x.shape[1]
    sigma = sw**2 * x @ x.T / d + sb**2
    theta = sigma.copy()
    for _ in range(depth):
        var = np.sqrt(np.diag(sigma))
        norm = var[:, None] * var[None, :]
        c = np.clip(sigma / norm, -1.0, 1.0)
        t = np.arccos(c)
        pp = norm / (2 * np.pi) * (np.sin(t) + (np.pi - t) * np.cos(t))
        dd = (np.pi - t) / (2 * np.pi)
        sigma = sw**2 * pp + sb**2
        theta = sigma + sw**2 * dd * theta
    return sigma, theta


# ---------------------------------------------------------------------- reference: scipy
def _quad(func, pts):
    val, _ = integrate.quad(func, -10.0, 10.0, points=sorted(pts) or None, epsabs=1e-15, epsrel=1e-12, limit=400)
    return val / SQRT2PI


def _scipy_univariate(f, g, q):
    s = math.sqrt(q)
    pts = {k / s for k in range(-12, 13) if s > 0 and abs(k / s) < 10}
    return _quad(lambda z: f(s * z) * g(s * z) * math.exp(-0.5 * z * z), pts)


def _scipy_bivariate(f, g, q1, q2, c):
    s1, s2 = math.sqrt(q1), math.sqrt(q2)
    s = s2 * math.sqrt(max((1.0 - c) * (1.0 + c), 0.0))
    slope = s2 * c

    def inner(z1):
        m = slope * z1
        if s == 0.0:
            return g(m)
        pts = {(k - m) / s for k in range(-12, 13) if abs((k - m) / s) < 10}
        val, _ = integrate.quad(lambda z2: g(m + s * z2) * math.exp(-0.5 * z2 * z2), -10.0, 10.0,
                                points=sorted(pts) or None, epsabs=1e-15, epsrel=1e-13, limit=400)
        return val / SQRT2PI

    pts = {k / s1 for k in range(-12, 13) if abs(k / s1) < 10}
    if slope:
        pts |= {k / slope for k in range(-12, 13) if abs(k / slope) < 10}
    return _quad(lambda z1: f(s1 * z1) * inner(z1) * math.exp(-0.5 * z1 * z1), pts)


def scipy_entry(xi, xj, f, df, sw, sb, depth):
    """(NNGP, NTK) of one pair by the 2-point recursion with scipy adaptive quadrature."""
    d = xi.size
    qi, qj, qij = (sw**2 * float(a @ b) / d + sb**2 for a, b in ((xi, xi), (xj, xj), (xi, xj)))
    same = bool(np.array_equal(xi, xj))
    theta = qij
    for _ in range(depth):
        if same:
            pp = _scipy_univariate(f, f, qi)
            dd = _scipy_univariate(df, df, qi)
        else:
            c = max(-1.0, min(1.0, qij / math.sqrt(qi * qj)))
            pp = _scipy_bivariate(f, f, qi, qj, c)
            dd = _scipy_bivariate(df, df, qi, qj, c)
        new_qi = sw**2 * _scipy_univariate(f, f, qi) + sb**2
        new_qj = new_qi if same else sw**2 * _scipy_univariate(f, f, qj) + sb**2
        qij = sw**2 * pp + sb**2
        theta = qij + sw**2 * dd * theta
        qi, qj = new_qi, new_qj
    return qij, theta


def reference_entries(x, f, df, sw, sb, rng, count=20):
    pairs = [tuple(sorted(rng.choice(200, 2, replace=False))) for _ in range(count - 2)]
    pairs += [(int(i), int(i)) for i in rng.choice(200, 2, replace=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        values = [scipy_entry(x[i], x[j], f, df, sw, sb, DEPTH) for i, j in pairs]
    return pairs, np.array(values)


def max_rel_error(nngp, ntk, pairs, ref):
    got = np.array([[nngp[i, j], ntk[i, j]] for i, j in pairs])
    return float(np.max(np.abs(got - ref) / np.abs(ref)))


# ---------------------------------------------------------------------- runs
def timed(fn, repeat=1):
    """Best wall-clock time of ``repeat`` warm calls (one call first), and the last result.

    The CPU time of the best call (all threads of this process) is kept in ``timed.cpu``: on a
    shared machine it shows what the call costs when the wall-clock time is inflated by waiting
    for cores (numba's parallel regions synchronise both threads at every call)."""
    fn()  # warm
    best = math.inf
    out = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall = time.perf_counter() - t0
        if wall < best:
            best, timed.cpu = wall, time.process_time() - c0
    return best, out


def tanh_case(label, x_all, n, sw, sb, ref, gh_max_n, rows):
    x = x_all[:n]
    t_ours, ds = timed(lambda: ntktheory.kernels(x, activation="tanh", depth=DEPTH, sigma_w=sw, sigma_b=sb))
    cpu_ours = timed.cpu
    layers = json.loads(ds.attrs["quadrature"])
    fallback = sum(layer.get("per_pair", 0) for layer in layers), sum(layer.get("direct", 0) for layer in layers)
    degree = max(layer.get("mean_row_degree", 0) for layer in layers)
    pairs, values = ref
    err_ours = max_rel_error(ds.nngp.values, ds.ntk.values, pairs, values)
    if n <= gh_max_n:
        t_gh, (s_gh, t_gh_k) = timed(lambda: gauss_hermite_kernels(x, np.tanh, lambda u: 1 - np.tanh(u) ** 2, sw, sb,
                                                                    DEPTH))
        err_gh = f"{max_rel_error(s_gh, t_gh_k, pairs, values):.1e}"
        gh_time = f"{t_gh:.2f} s"
        ratio = f"{t_gh / t_ours:.0f}x"
    else:
        gh_time, err_gh, ratio = "(skipped: --gh-max-n)", "", ""
    rows.append((label, n, f"{t_ours:.2f} s ({cpu_ours:.2f} s)", f"{err_ours:.1e}", f"{degree}",
                 f"{fallback[0]} / {fallback[1]}", gh_time, err_gh, ratio))
    print(" | ".join(str(v) for v in rows[-1]), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 200 cases only")
    parser.add_argument("--gh-max-n", type=int, default=1000, help="largest N for the Gauss-Hermite baseline")
    parser.add_argument("--entries", type=int, default=20, help="reference entries per input set")
    args = parser.parse_args(argv)
    print(f"# load average at start: {' '.join(f'{v:.1f}' for v in os.getloadavg())} "
          f"(2 cores); numba threads: {numba.get_num_threads()}")

    rng = np.random.default_rng(0)
    inputs = {"gaussian": gaussian_inputs(1000, rng), "sphere": sphere_inputs(1000, rng)}
    tanh_f = math.tanh

    def dtanh(u):
        return 1.0 - math.tanh(u) ** 2

    rows: list[tuple] = []
    header = ("case", "N", "ntktheory wall (cpu)", "max rel err", "mean row degree (max layer)",
              "fallback pairs (series / direct)", "Gauss-Hermite deg 25", "GH max rel err", "speed-up")
    print("| " + " | ".join(header) + " |")
    settings = [("tanh, gaussian x", "gaussian", 1.5, 0.1), ("tanh, sphere x", "sphere", 1.5, 0.1),
                ("tanh saturated (sigma_w=4), gaussian x", "gaussian", 4.0, 0.1)]
    for label, key, sw, sb in settings:
        t0 = time.perf_counter()
        ref = reference_entries(inputs[key], tanh_f, dtanh, sw, sb, np.random.default_rng(1), args.entries)
        print(f"# scipy reference for {label}: {time.perf_counter() - t0:.0f} s", flush=True)
        sizes = (200,) if (args.quick or sw > 2) else (200, 1000)
        for n in sizes:
            tanh_case(label, inputs[key], n, sw, sb, ref, args.gh_max_n, rows)

    x = gaussian_inputs(4000, rng)
    sw, sb = math.sqrt(2.0), 0.0
    t_ours, ds = timed(lambda: ntktheory.kernels(x, activation="relu", depth=DEPTH, sigma_w=sw, sigma_b=sb))
    cpu_ours = timed.cpu
    t_np, (s_np, t_np_k) = timed(lambda: numpy_relu_kernels(x, sw, sb, DEPTH))
    err = max(float(np.max(np.abs(ds.nngp.values - s_np) / np.abs(s_np))),
              float(np.max(np.abs(ds.ntk.values - t_np_k) / np.abs(t_np_k))))
    rows.append(("relu (vs numpy closed form)", 4000, f"{t_ours:.2f} s ({cpu_ours:.2f} s)", f"{err:.1e} (vs numpy)",
                 "closed form", "0 / 0", f"numpy: {t_np:.2f} s", "", f"{t_np / t_ours:.1f}x"))
    print(" | ".join(str(v) for v in rows[-1]))
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row) + " |")


if __name__ == "__main__":
    main()
