"""Benchmark: empirical NTK of an MLP, structured factorisation vs PyTorch's NTK-tutorial methods.

Methods side by side, same network, same inputs, same run:

* ``structured`` — empirical.ntk(method="structured"): per-layer Gram factorisation;
* ``jacobian``   — PyTorch tutorial "Jacobian contraction" (vmap(jacrev) + einsum), chunked over
  inputs so the per-example Jacobians fit in memory;
* ``ntk_vp``     — PyTorch tutorial "NTK-vector products" (vjp + jvp per output basis vector).

Each measurement runs in a fresh subprocess: time is wall-clock of the ntk() call after two small
warm-up calls (best of 3 calls when one takes under 10 s, for every method alike), memory the peak
resident set size (CPU: ru_maxrss) above the RSS just before the call (the network's own weights are
already allocated then), or torch.cuda.max_memory_allocated on CUDA. float64, TF32 off.

ntk_vp costs O(N^2) vector products; at N = 256 it would run for about an hour here, so it is
measured at ``--n-small`` points (with the other two methods, for the agreement check) and its time
at N is extrapolated by (N / n_small)^2, labelled as such.

Usage::

    python bench/bench_empirical.py                 # CPU, writes nothing
    python bench/bench_empirical.py --write-readme  # also (re)writes this benchmark's section of bench/README.md
    python bench/bench_empirical.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(args: argparse.Namespace) -> None:
    """Build the net, compute one NTK, print JSON {seconds, peak_bytes}, save K to --out."""
    import torch

    import empirical

    device = empirical.resolve_device(args.device)
    torch.manual_seed(1234)
    x = torch.randn(args.n, args.in_features, dtype=torch.float64).to(device)
    net = empirical.MLP(args.in_features, width=args.width, depth=args.depth, activation="relu", sigma_w=2**0.5,
                        sigma_b=0.1,
                        seed=0, device=device)
    for _ in range(2):  # warm-up (thread pool, allocator, vmap tracing)
        empirical.ntk(net, x[:4], method=args.method)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_bytes()
    times = []
    while True:  # best of 3 for calls under 10 s (the machine is shared); a single call otherwise
        start = time.perf_counter()
        K = empirical.ntk(net, x, method=args.method)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        if times[0] >= 10.0 or len(times) == 3:
            break
    seconds = min(times)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    if args.out:
        torch.save(K.cpu(), args.out)
    print(json.dumps({"seconds": seconds, "peak_bytes": max(peak, 0), "total_rss": _rss_bytes()}))


def training_case(width: int, depth: int, n: int, steps: int, device: str) -> dict:
    """Time empirical.train: full-batch GD, MSE, linearised model alongside, default snapshots
    (11: loss, outputs, parameter change, empirical NTK of the N training inputs)."""
    import torch

    import empirical

    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 16, dtype=torch.float64, generator=g)
    xt = torch.randn(64, 16, dtype=torch.float64, generator=g)
    y = torch.sin(x[:, :1])
    net = empirical.MLP(16, width=width, depth=depth, activation="relu", sigma_w=2**0.5, sigma_b=0.1, device=device)
    start = time.perf_counter()
    ds = empirical.train(net, x, y, steps=steps, lr_factor=0.5, x_test=xt)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "snapshots": ds.sizes["step"], "loss0": float(ds.loss[0]),
            "loss": float(ds.loss[-1]), "distance": float(ds.function_distance_test[-1]),
            "ntk_change": float(ds.ntk_relative_change[-1])}


def run(method: str, n: int, width: int, depth: int, device: str, in_features: int, out: str | None):
    cmd = [sys.executable, __file__, "--worker", "--method", method, "--n", str(n), "--width", str(width),
           "--depth", str(depth), "--device", device, "--in-features", str(in_features)]
    if out:
        cmd += ["--out", out]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{method} at N={n} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--n-small", type=int, default=32, help="N at which ntk_vp is measured")
    p.add_argument("--in-features", type=int, default=32)
    p.add_argument("--large", default="4096,10,1024", help="width,depth,N of the structured-only case; '' skips")
    p.add_argument("--train", default="2048,1;2048,2", help="width,depth;... of training cases ('' skips)")
    p.add_argument("--train-steps", type=int, default=500)
    p.add_argument("--train-n", type=int, default=128)
    p.add_argument("--write-readme", action="store_true")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--method", default="structured", help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return

    import torch

    import empirical

    device = str(empirical.resolve_device(args.device))
    load = os.getloadavg()[0]
    print(f"load average at start: {load:.1f} on {os.cpu_count()} cores", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        def measure(method, n):
            path = os.path.join(tmp, f"{method}_{n}.pt")
            r = run(method, n, args.width, args.depth, device, args.in_features, path)
            r["K"] = torch.load(path)
            print(f"  measured {method:<10} N = {n:<5} {r['seconds']:9.3f} s  peak {r['peak_bytes'] / 2**20:8.0f} MiB",
                  flush=True)
            return r

        small = {m: measure(m, args.n_small) for m in ("structured", "jacobian", "ntk_vp")}
        big = {m: measure(m, args.n) for m in ("structured", "jacobian")}
    ref_small, ref_big = small["structured"]["K"], big["structured"]["K"]
    t_jac = big["jacobian"]["seconds"]
    scale = (args.n / args.n_small) ** 2
    cfg = f"width {args.width}, depth {args.depth}, d = {args.in_features}, relu, float64, {device}"
    for name, r, n, note in (
        ("structured", big["structured"], args.n, ""),
        ("jacobian (tutorial)", big["jacobian"], args.n, ""),
        ("ntk_vp (tutorial)", {**small["ntk_vp"], "seconds": small["ntk_vp"]["seconds"] * scale}, args.n,
         f"time extrapolated x{scale:g} from N = {args.n_small} ({small['ntk_vp']['seconds']:.2f} s); "
         f"memory and diff at N = {args.n_small}"),
    ):
        ref = ref_big if r["K"].shape == ref_big.shape else ref_small
        diff = (r["K"] - ref).abs().max().item()
        rows.append((name, n, r["seconds"], r["peak_bytes"] / 2**20, t_jac / r["seconds"], diff, note))
    small_rows = [
        (f"{m} (N = {args.n_small})", args.n_small, small[m]["seconds"], small[m]["peak_bytes"] / 2**20,
         small["jacobian"]["seconds"] / small[m]["seconds"], (small[m]["K"] - ref_small).abs().max().item(), "")
        for m in ("structured", "jacobian", "ntk_vp")
    ]
    large_rows = []
    if args.large:
        w, d, n = (int(v) for v in args.large.split(","))
        r = run("structured", n, w, d, device, args.in_features, None)
        print(f"  measured large case {r['seconds']:.1f} s, peak {r['peak_bytes'] / 2**20:.0f} MiB", flush=True)
        large_rows.append((f"structured, width {w}, depth {d}", n, r["seconds"], r["peak_bytes"] / 2**20,
                           float("nan"), float("nan"), f"total RSS at end {r['total_rss'] / 2**30:.2f} GiB"))

    train_lines = []
    if args.train:
        train_lines = ["| training case | steps | N | snapshots | seconds | loss 0 -> end | f - f_lin (test, RMS) |"
                       " NTK relative change |", "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |"]
        for case in args.train.split(";"):
            w, d = (int(v) for v in case.split(","))
            r = training_case(w, d, args.train_n, args.train_steps, device)
            print(f"  measured training width {w} depth {d}: {r['seconds']:.1f} s", flush=True)
            train_lines.append(
                f"| MLP width {w}, depth {d}, relu, full-batch GD at 0.5 x critical rate, linearised model alongside "
                f"| {args.train_steps} | {args.train_n} | {r['snapshots']} | {r['seconds']:.1f} "
                f"| {r['loss0']:.3g} -> {r['loss']:.3g} | {r['distance']:.2e} | {r['ntk_change']:.2e} |")

    header = "| method | N | seconds | peak memory (MiB) | speed-up vs jacobian | max abs diff vs structured | note |"
    lines = [header, "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, n, s, mem, ratio, diff, note in rows + small_rows + large_rows:
        ratio_s = "" if ratio != ratio else f"{ratio:.1f}x"
        diff_s = "" if diff != diff else f"{diff:.1e}"
        lines.append(f"| {name} | {n} | {s:.3f} | {mem:.0f} | {ratio_s} | {diff_s} | {note} |")
    table = "\n".join(lines)
    machine = (f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
               f"load average {load:.1f} at start / {os.getloadavg()[0]:.1f} at end")
    text = f"Empirical NTK, {cfg} ({machine}; run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n\n{table}\n"
    if train_lines:
        text += "\nTraining with measurements (`empirical.train`, float64):\n\n" + "\n".join(train_lines) + "\n"
    print(text)
    if args.write_readme:
        _write_readme(text, device)


NOTES = (
    "Each case runs in a fresh subprocess after two warm-up calls; times are the best of 3 calls when a "
    "call takes under 10 s (every method alike), else one call. Memory is the peak RSS above the RSS "
    "just before the call (CUDA: max_memory_allocated), so the network's weights (1.2 GiB for the "
    "width-4096, depth-10 case) are excluded there and included in its total RSS. The Jacobian "
    "contraction is PyTorch's tutorial code per chunk of inputs (each chunk's Jacobians computed once, "
    "symmetry used), chunked to ~1 GiB of Jacobians. NTK-vector products cost O(N^2) vjp+jvp pairs "
    "(about an hour at N = 256 here), so they are timed at N = 32 and extrapolated by (N/32)^2. "
    "The machine is shared: the load average is printed with each run."
)


def _write_readme(text: str, device: str) -> None:
    readme = ROOT / "bench" / "README.md"
    kind = device.split(":")[0]
    begin, end = f"<!-- bench_empirical:{kind} begin -->", f"<!-- bench_empirical:{kind} end -->"
    section = (f"{begin}\n## empirical: structured NTK vs PyTorch's NTK-tutorial methods ({device})\n\n"
               f"`python bench/bench_empirical.py --device {kind} --write-readme`\n\n{NOTES}\n\n{text}{end}\n")
    old = readme.read_text() if readme.exists() else "# Benchmarks\n\n"
    if begin in old and end in old:
        new = old[: old.index(begin)] + section + old[old.index(end) + len(end) + 1 :]
    else:
        new = old.rstrip("\n") + "\n\n" + section
    readme.write_text(new)


if __name__ == "__main__":
    main()
