"""Benchmark: ntktheory.predict (one eigendecomposition for all times) against a plain scipy solve per time.

Case (the issue's target): 2,000 training and 10,000 test points, d = 64 standard normal inputs,
relu, depth 3, sigma_w^2 = 2, NTK parameterisation; k = 10 outputs (one-hot targets of a random
labelling); covariance off; gradient flow at 6 times (1, 10, 100, 1e3, 1e4 and inf) with
learning_rate 1 and diag_reg 1e-6 (relative).

Rows:

* ``ntktheory.kernels``: the train-train and test-train blocks (not part of the target);
* ``predict_from_kernels``: the prediction from those blocks, all times at once (the target:
  <= 5 s on the 2-core machine);
* ``ntktheory.predict``: both together, end to end;
* baseline ``scipy expm + solve per time``: for each time, E_t = I - scipy.linalg.expm(-eta Theta_r
  t / (N k)), alpha = scipy.linalg.solve(Theta_r, E_t Y, assume_a="pos"), mean = Theta(x, X) alpha
  (t = inf: the solve alone), from the same blocks;
* baseline ``scipy cho_solve, t = inf only``: the floor of any method (one Cholesky solve).

The error column is max |a - b| / max |b| of the means against the expm baseline (all times).
Times are wall-clock of warm calls (numba compiled by a first small call), the best of 3 when a
call takes under 10 s (every row alike), else one call: the machine is shared, and threaded BLAS
slows down several-fold whenever another process takes a core.

Usage::

    python bench/bench_predict.py              # the target case (~1-2 min with the baseline)
    python bench/bench_predict.py --quick      # N = 500, M = 2,500
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.linalg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import ntktheory  # noqa: E402

TIMES = np.array([1.0, 10.0, 100.0, 1e3, 1e4, np.inf])
NET = dict(activation="relu", depth=3, sigma_w=float(np.sqrt(2.0)), sigma_b=0.0)
DIAG_REG, LEARNING_RATE, OUTPUTS = 1e-6, 1.0, 10


def scipy_per_time(k_train: np.ndarray, k_cross: np.ndarray, y: np.ndarray) -> np.ndarray:
    n, k = y.shape
    th_r = k_train + DIAG_REG * np.trace(k_train) / n * np.eye(n)
    out = []
    for t in TIMES:
        if np.isinf(t):
            rhs = y
        else:
            rhs = y - scipy.linalg.expm(-LEARNING_RATE * th_r * t / (n * k)) @ y
        out.append(k_cross @ scipy.linalg.solve(th_r, rhs, assume_a="pos"))
    return np.stack(out)


def timed(fn, *args, **kwargs):
    """(value, seconds): the best of 3 calls when one takes under 10 s, else one call."""
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        value = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
        if best >= 10.0:
            break
    return value, best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-test", type=int, default=10000)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--quick", action="store_true", help="N = 500, M = 2500")
    args = p.parse_args()
    n, m = (500, 2500) if args.quick else (args.n_train, args.n_test)
    rng = np.random.default_rng(0)
    x, xt = rng.standard_normal((n, args.d)), rng.standard_normal((m, args.d))
    y = np.eye(OUTPUTS)[rng.integers(0, OUTPUTS, n)] - 1.0 / OUTPUTS
    start_load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"# load average at start: {start_load} ({os.cpu_count()} cores)")
    ntktheory.predict(x[:20], y[:20], xt[:5], time=TIMES, covariance=False, **NET)  # compile / load numba

    def blocks():
        return ntktheory.kernels(x, **NET), ntktheory.kernels(xt, x, **NET)

    (k_train, k_cross), t_kernels = timed(blocks)
    opts = dict(time=TIMES, learning_rate=LEARNING_RATE, diag_reg=DIAG_REG, covariance=False)
    pred, t_pred = timed(ntktheory.predict_from_kernels, k_train, k_cross, y, **opts)
    _, t_total = timed(ntktheory.predict, x, y, xt, **opts, **NET)
    th, th_x = k_train.ntk.values, k_cross.ntk.values
    base, t_base = timed(scipy_per_time, th, th_x, y)

    def cho():
        th_r = th + DIAG_REG * np.trace(th) / n * np.eye(n)
        return th_x @ scipy.linalg.cho_solve(scipy.linalg.cho_factor(th_r), y)

    inf_only, t_cho = timed(cho)
    mean = pred["mean"].values
    err = float(np.max(np.abs(mean - base)) / np.max(np.abs(base)))
    err_inf = float(np.max(np.abs(mean[-1] - inf_only)) / np.max(np.abs(inf_only)))

    print(f"\nntktheory.predict, relu depth 3, N = {n} train, M = {m} test, d = {args.d}, k = {OUTPUTS} outputs, "
          f"{TIMES.size} times (1 ... 1e4, inf), diag_reg {DIAG_REG:g}, covariance off; condition number "
          f"{pred.attrs['condition_number']:.3g}\n")
    print("| what | time | ratio to predict_from_kernels | max rel. difference of the means |")
    print("| --- | --- | --- | --- |")
    print(f"| ntktheory.kernels (train-train + test-train blocks) | {t_kernels:.2f} s | | |")
    print(f"| **predict_from_kernels, all {TIMES.size} times** | **{t_pred:.2f} s** | 1 | {err:.1e} (vs expm) |")
    print(f"| ntktheory.predict end to end | {t_total:.2f} s | {t_total / t_pred:.1f} | |")
    print(f"| scipy expm + solve per time ({TIMES.size} times) | {t_base:.2f} s | {t_base / t_pred:.1f} | 0 |")
    print(f"| scipy cho_solve, t = inf only | {t_cho:.2f} s | {t_cho / t_pred:.2f} | {err_inf:.1e} (t = inf) |")
    print(f"\n# load average at end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
