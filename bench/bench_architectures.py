"""Benchmark: kernels of convolutional architectures (ntktheory) and the empirical CNN NTK (empirical).

Cases (the targets; NTK parameterisation, sigma_w = 1.5, sigma_b = 0.1, images 8x8x1, inputs
drawn N(0, 1) per pixel):

* relu CNN-GAP: 5 x (3x3 'same' conv + relu), GlobalAvgPool, Dense; N = 128 (target <= 1 s warm);
* the same with tanh (quadrature; target <= 60 s and <= 4 GB peak resident memory, measured in a
  fresh subprocess);
* the same relu network with Flatten instead of GlobalAvgPool (target <= 0.1 s);
* fully-connected tanh, N = 200, d = 32, depth 10 (small-kernel latency; target <= 60 ms);
* empirical NTK of a CNN-GAP with 2 conv layers of 64 channels, N = 64, float64: structured
  derivatives against torch.func Jacobian contraction (target >= 5x faster, equal to 1e-10).

Baselines measured in the same run: the plain numpy implementation of the same kernel maps on
dense 6-D arrays (``tests/ntktheory/reference_cnn.py``: np.pad and shifted sums, no symmetry),
timed at a smaller N and extrapolated by N^2 (every entry costs the same), and compared entry by
entry with ntktheory at that N; torch.func Jacobian contraction (PyTorch's NTK tutorial) for the
empirical case. neural-tangents' own figures on this machine are in bench/README.md
(``bench/nt_architectures.py`` measures them in its separate environment).

Usage::

    python bench/bench_architectures.py            # everything (~2-3 min on 2 idle cores)
    python bench/bench_architectures.py --quick    # skip the tanh CNN-GAP case
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(ROOT / "tests" / "ntktheory"))

import reference_cnn  # noqa: E402

import ntktheory  # noqa: E402
from ntktheory import layers as L  # noqa: E402

SW, SB, DEPTH = 1.5, 0.1, 5


def cnn_specs(activation: str, readout: str) -> list[dict]:
    conv = {"type": "conv", "channels": 1, "kernel_size": 3, "padding": "same", "sigma_w": SW, "sigma_b": SB}
    layers = []
    for _ in range(DEPTH):
        layers += [conv, {"type": "act", "name": activation}]
    return [*layers, {"type": readout}, {"type": "dense", "features": 1, "sigma_w": SW, "sigma_b": SB}]


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 1, 8, 8))


def best_of(fn, repeats: int = 3) -> tuple[float, float, object]:
    """(best wall time, its CPU time, result) of warm calls."""
    best, cpu, out = np.inf, 0.0, None
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        if dt < best:
            best, cpu = dt, time.process_time() - c0
    return best, cpu, out


def analytic_case(activation: str, readout: str, n: int, n_baseline: int, repeats: int) -> dict:
    specs = cnn_specs(activation, readout)
    arch = L.from_spec(specs)
    x = images(n)
    ntktheory.kernels(x[:4], architecture=arch)  # compile / load caches
    t, cpu, ds = best_of(lambda: ntktheory.kernels(x, architecture=arch), repeats)
    xb = x[:n_baseline]
    t0 = time.perf_counter()
    nngp_ref, ntk_ref = reference_cnn.kernels(specs, xb)
    t_base = (time.perf_counter() - t0) * (n / n_baseline) ** 2
    ours = ntktheory.kernels(xb, architecture=arch)
    err = max(float(np.abs(ours.ntk.values - ntk_ref).max() / np.abs(ntk_ref).max()),
              float(np.abs(ours.nngp.values - nngp_ref).max() / np.abs(nngp_ref).max()))
    return {"case": f"{activation} CNN-{readout.upper()} (5 x conv 3x3 + {activation}), N = {n}", "time": t,
            "cpu": cpu, "baseline": t_base, "baseline_n": n_baseline, "max_rel_err": err,
            "form": ds.attrs["spatial_form"]}


def tanh_gap_subprocess() -> dict:
    """The tanh CNN-GAP in a fresh process: warm wall time and peak resident memory (ru_maxrss)."""
    code = (
        f"import sys, time, json, resource; sys.path.insert(0, {str(ROOT)!r}); import numpy as np, ntktheory;"
        "from ntktheory import layers as L;"
        "x = np.random.default_rng(0).standard_normal((128, 1, 8, 8));"
        f"arch = L.cnn(depth=5, kernel_size=3, activation='tanh', sigma_w={SW!r}, sigma_b={SB!r}, readout='gap');"
        "ntktheory.kernels(x[:4], architecture=arch);"
        "t = time.perf_counter(); c = time.process_time(); ds = ntktheory.kernels(x, architecture=arch);"
        "dt = time.perf_counter() - t; cpu = time.process_time() - c;"
        "print(json.dumps({'time': dt, 'cpu': cpu, 'peak_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss"
        " / 2**20, 'quadrature': ds.attrs['quadrature']}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def fc_latency(repeats: int = 7) -> dict:
    x = np.random.default_rng(1).standard_normal((200, 32))
    ntktheory.kernels(x, activation="tanh", depth=10, sigma_w=SW, sigma_b=SB)
    t, cpu, _ = best_of(lambda: ntktheory.kernels(x, activation="tanh", depth=10, sigma_w=SW, sigma_b=SB), repeats)
    return {"time": t, "cpu": cpu}


def empirical_case(repeats: int) -> dict:
    import torch

    import empirical

    arch = L.serial(L.Conv(channels=64, kernel_size=3, sigma_w=SW, sigma_b=SB), L.Activation("relu"),
                    L.Conv(channels=64, kernel_size=3, sigma_w=SW, sigma_b=SB), L.Activation("relu"),
                    L.GlobalAvgPool(), L.Dense(features=1, sigma_w=SW, sigma_b=SB))
    net = empirical.build(arch, (1, 8, 8), seed=0, device="cpu", dtype=torch.float64)
    x = torch.as_tensor(images(64, seed=2))
    empirical.ntk(net, x[:4], method="structured")
    t_s, cpu_s, k_s = best_of(lambda: empirical.ntk(net, x, method="structured"), repeats)
    t_j, cpu_j, k_j = best_of(lambda: empirical.ntk(net, x, method="jacobian"), max(1, repeats - 1))
    return {"structured": t_s, "structured_cpu": cpu_s, "jacobian": t_j, "jacobian_cpu": cpu_j,
            "max_abs_diff": float((k_s - k_j).abs().max()), "scale": float(k_j.abs().max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the tanh CNN-GAP case")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"load average at start: {load:.2f} on {os.cpu_count()} CPUs; numba threads "
          f"{__import__('numba').get_num_threads()}")
    rows = [analytic_case("relu", "gap", 128, 24, args.repeats), analytic_case("relu", "flatten", 128, 32,
                                                                                 args.repeats)]
    print("\n| case | spatial form | ntktheory warm (CPU) | numpy dense baseline (extrapolated from N) | ratio | "
          "max rel. diff at baseline N |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['case']} | {r['form']} | {r['time']:.3f} s ({r['cpu']:.2f} s) | {r['baseline']:.2f} s "
              f"(N = {r['baseline_n']}) | {r['baseline'] / r['time']:.1f}x | {r['max_rel_err']:.1e} |")
    if not args.quick:
        tanh = tanh_gap_subprocess()
        stats = json.loads(tanh["quadrature"])
        print(f"| tanh CNN-GAP (5 x conv 3x3 + tanh), N = 128 | full | {tanh['time']:.1f} s ({tanh['cpu']:.1f} s), "
              f"peak RSS {tanh['peak_gb']:.2f} GB | - | - | max Mehler degree {max(s.get('kmax', 0) for s in stats)}, "
              f"direct-quadrature pairs {sum(s.get('direct', 0) for s in stats)} |")
    fc = fc_latency()
    print(f"\nfully-connected tanh, N = 200, d = 32, depth 10: {fc['time'] * 1e3:.1f} ms warm "
          f"({fc['cpu'] * 1e3:.0f} ms CPU; target 60 ms)")
    emp = empirical_case(args.repeats)
    print("\n| empirical CNN-GAP NTK, 2 x conv(64 channels), N = 64, 8x8, float64 | time (CPU) | ratio |")
    print("| --- | --- | --- |")
    print(f"| structured derivatives | {emp['structured']:.3f} s ({emp['structured_cpu']:.2f} s) | 1 |")
    print(f"| torch.func Jacobian contraction | {emp['jacobian']:.3f} s ({emp['jacobian_cpu']:.2f} s) | "
          f"{emp['jacobian'] / emp['structured']:.1f}x |")
    print(f"max |structured - jacobian| = {emp['max_abs_diff']:.1e} (entries up to {emp['scale']:.2f})")
    print(f"load average at end: {os.getloadavg()[0]:.2f}; peak RSS of this process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB")


if __name__ == "__main__":
    main()
