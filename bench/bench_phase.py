"""Phase diagram benchmark: ntktheory.phase_diagram on a 400 x 400 tanh grid vs scipy quad per point.

Baseline, measured in the same run: an independent per-point implementation with
scipy.integrate.quad (nested for the bivariate expectations, epsrel 1e-13) and brentq
(xtol 1e-15), run on a random sample of grid points; its time is extrapolated to the full grid.
The worst absolute difference over the sample is printed for every field.

Usage: python bench/bench_phase.py [--sample 12] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "ntktheory"))
import _meanfield_reference as ref

import ntktheory

FIELDS = ("q_star", "c_star", "chi_1", "chi_c", "xi_q", "xi_c")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    w = np.linspace(1.0, 4.0, 400)
    b = np.linspace(0.0, 0.3, 400)
    t0 = time.perf_counter()
    ntktheory.phase_diagram("tanh", sigma_w2=w[:50], sigma_b2=b[:50])  # compile / load caches
    cold = time.perf_counter() - t0
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        ds = ntktheory.phase_diagram("tanh", sigma_w2=w, sigma_b2=b)
        times.append(time.perf_counter() - t0)
    warm = min(times)
    t0 = time.perf_counter()
    ntktheory.phase_diagram("tanh", sigma_w2=w, sigma_b2=b, critical_line=False)
    warm_fields = time.perf_counter() - t0

    rng = np.random.default_rng(args.seed)
    idx = [(int(i), int(j)) for i, j in rng.integers(0, 400, size=(args.sample, 2))]
    # plus the chaotic grid points nearest the critical line (c* close to 1: the hardest case)
    crit = ds.critical_sigma_w2.values
    for j in rng.integers(0, 400, size=4):
        i = int(np.searchsorted(w, crit[j]))
        if i < w.size:
            idx.append((i, int(j)))
    funcs = ref.tanh_functions()
    worst = dict.fromkeys(FIELDS, 0.0)
    t0 = time.perf_counter()
    for i, j in idx:
        r = ref.mean_field(*funcs, float(w[i]), float(b[j]))
        for name in FIELDS:
            got = float(ds[name].values[i, j])
            want = r[name]
            if math.isinf(want) and math.isinf(got):
                continue
            err = abs(got - want) / (max(1.0, abs(want)) if name.startswith("xi") else 1.0)
            worst[name] = max(worst[name], err)
    per_point = (time.perf_counter() - t0) / len(idx)
    scipy_total = per_point * w.size * b.size

    print("phase diagram, tanh, 400 x 400 grid (sigma_w2 in [1, 4], sigma_b2 in [0, 0.3]), "
          f"{os.cpu_count()} CPU cores")
    print()
    print("| method | time | ratio |")
    print("| --- | --- | --- |")
    print(f"| ntktheory.phase_diagram, warm (all fields + critical line) | {warm:.2f} s | 1 |")
    print(f"| ntktheory.phase_diagram, warm, fields only | {warm_fields:.2f} s | |")
    print(f"| ntktheory.phase_diagram, first call incl. compile/load (50 x 50) | {cold:.2f} s | |")
    print(f"| scipy quad + brentq per point, {len(idx)} sampled points (4 next to the critical line) "
          "-> 160000 extrapolated "
          f"({per_point:.2f} s/point) | {scipy_total:.0f} s ({scipy_total / 3600:.1f} h) "
          f"| {scipy_total / warm:.0f}x |")
    print()
    print("worst difference to scipy over the sample (absolute; xi relative when > 1):")
    print("| " + " | ".join(FIELDS) + " |")
    print("| " + " | ".join("---" for _ in FIELDS) + " |")
    print("| " + " | ".join(f"{worst[n]:.1e}" for n in FIELDS) + " |")


if __name__ == "__main__":
    main()
