"""Benchmark: kernel matrices beyond memory, ``ntkgap kernel --out K.zarr`` against the in-memory kernels.

One run measures, side by side:

* the baseline: ``ntktheory.kernels(x[:n0])`` in memory (NTK + NNGP, symmetric), warm, best of 3, in
  a fresh process, before and after the blocked runs (the machine is shared: the two bracket its
  drift); its cost per matrix entry, t / n0^2, scaled to N^2 is the in-memory reference;
* ``ntkgap kernel --inputs X.npy --out K.zarr --block-size B`` (a subprocess, as a user runs it) for
  each Dask configuration: wall time of the whole command (imports and cluster start included),
  time to the first finished block, blocks per second after it, and the peak resident memory
  (VmHWM) of every process of the run (the command and its worker processes, polled every 0.1 s);
* random blocks of the store against ``ntktheory.kernels`` on the same inputs (a block (i, j) is
  compared with the in-memory kernel of rows i and j together, so diagonal and off-diagonal blocks
  are checked against the symmetric computation);
* kill -9 at mid-run: the command is SIGKILLed (its whole process group) once half the blocks are
  flagged, then run again; the finished blocks' chunk files must be untouched (inode, mtime) and
  the store equal, bit for bit, to the uninterrupted one;
* kernel regression from the store (``compare.predict_from_store``, CG, t = inf NTK mean on 500 test
  points computed block-wise) in a fresh process, against a dense Cholesky solve of the same
  problem loaded into memory here;
* an extrapolation to 60,000 points from the measured rate.

Usage::

    python bench/bench_kernel_matrix.py                 # N = 12000, d = 64, relu depth 3, B = 1500
    python bench/bench_kernel_matrix.py --write-readme  # also (re)writes this section of bench/README.md
    python bench/bench_kernel_matrix.py --n 3000 --block-size 500 --skip-cg   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

#: name -> (ntkgap kernel options, environment): the Dask configurations compared.
CONFIGS = {
    "threads-2": (["--scheduler", "threads", "--workers", "1", "--threads-per-worker", "2"], {}),
    "processes-2x1": (["--scheduler", "processes", "--workers", "2", "--threads-per-worker", "1"], {}),
    "processes-1x1-numba2": (["--scheduler", "processes", "--workers", "1", "--threads-per-worker", "1"],
                             {"NTKGAP_NUMBA_THREADS": "2"}),
}
DESCRIPTION = {
    "threads-2": "LocalCluster of 2 threads in the command's process, numba 2 threads per block (the default)",
    "processes-2x1": "LocalCluster of 2 worker processes x 1 thread, numba 1 thread per block",
    "processes-1x1-numba2": "LocalCluster of 1 worker process x 1 thread, numba 2 threads per block",
}
NETWORK = ["--activation", "relu", "--depth", "3"]


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f}"


# --------------------------------------------------------------------------------------------- baseline
def baseline_child(args: argparse.Namespace) -> None:
    import ntktheory

    x = np.load(args.inputs)[: args.n]
    ntktheory.kernels(x[:8], activation="relu", depth=3)  # load the compiled code
    times = []
    for _ in range(3):
        t = time.perf_counter()
        ntktheory.kernels(x, activation="relu", depth=3)
        times.append(time.perf_counter() - t)
    print(json.dumps({"seconds": min(times), "peak": _vmhwm(os.getpid())}))


def baseline(inputs: Path, n: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", "baseline", "--inputs", str(inputs), "--n", str(n)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------- blocked runs
def _vmhwm(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def _upper_flags(store: Path) -> int:
    flags = store / "block_done"
    if not flags.exists():
        return 0
    n = 0
    for p in flags.iterdir():
        parts = p.name.split(".")
        if len(parts) == 2 and all(k.isdigit() for k in parts) and int(parts[0]) <= int(parts[1]):
            n += 1
    return n


WELL_KNOWN = ("ntkgap kernel (driver, scheduler)", "Dask worker process", "multiprocessing resource tracker")


class Monitor(threading.Thread):
    """Polls a process tree: peak resident memory (VmHWM) per process, and the store's finished blocks."""

    def __init__(self, pid: int, store: Path, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        import psutil

        self.root = psutil.Process(pid)
        self.store, self.interval = store, interval
        self.peaks: dict[int, tuple[str, int]] = {}
        self.flag_times: list[tuple[float, int]] = []
        self.start_time = time.perf_counter()
        self.stop = threading.Event()

    def _label(self, proc) -> str:
        if proc.pid == self.root.pid:
            return "ntkgap kernel (driver, scheduler)"
        try:
            cmd = " ".join(proc.cmdline())
        except Exception:
            return "child"
        if "resource_tracker" in cmd:
            return "multiprocessing resource tracker"
        return "Dask worker process" if "spawn_main" in cmd or "multiprocessing" in cmd else proc.name()

    def run(self) -> None:
        import psutil

        while not self.stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                procs = []
            for proc in procs:
                peak = _vmhwm(proc.pid)
                if peak is not None:
                    old_label, old_peak = self.peaks.get(proc.pid, ("", 0))
                    label = old_label if old_label in WELL_KNOWN else self._label(proc)
                    self.peaks[proc.pid] = (label, max(peak, old_peak))
            n = _upper_flags(self.store)
            if not self.flag_times or n != self.flag_times[-1][1]:
                self.flag_times.append((time.perf_counter() - self.start_time, n))
            self.stop.wait(self.interval)


def run_cli(name: str, inputs: Path, store: Path, block_size: int, *, kill_at: int | None = None) -> dict:
    """Run ``ntkgap kernel`` once (optionally SIGKILL it once ``kill_at`` blocks are flagged)."""
    options, env = CONFIGS[name]
    cmd = [sys.executable, "-m", "compare.cli", "kernel", "--inputs", str(inputs), *NETWORK, "--out", str(store),
           "--block-size", str(block_size), "--no-progress", *options]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, **env}, cwd=ROOT)
    mon = Monitor(proc.pid, store)
    mon.start()
    killed = False
    if kill_at is not None:
        while proc.poll() is None and _upper_flags(store) < kill_at:
            time.sleep(0.01)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    if killed:
        while True:  # the worker processes too
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
    mon.stop.set()
    mon.join()
    if not killed and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    line = next((ln for ln in out.splitlines() if ln.startswith("store:")), "")
    reused = re.search(r"(\d+) reused, (\d+) computed", line)
    flags = [t for t, n in mon.flag_times if n > 0]
    counts = [n for _, n in mon.flag_times]
    first = flags[0] if flags else float("nan")
    last = mon.flag_times[-1][0] if mon.flag_times else float("nan")
    steady = (counts[-1] - counts[next(i for i, c in enumerate(counts) if c > 0)]) / (last - first) \
        if flags and last > first else float("nan")
    return {"wall": wall, "first_block": first, "blocks_per_s": steady, "peaks": sorted(mon.peaks.values()),
            "killed": killed, "reused": int(reused[1]) if reused else None,
            "computed": int(reused[2]) if reused else None, "stdout": line}


# ------------------------------------------------------------------------------------------------ checks
def check_blocks(store: Path, x: np.ndarray, block_size: int, rng: np.random.Generator, n_pairs: int = 5) -> float:
    """Max relative difference (to the block's largest entry) of random blocks against ntktheory.kernels."""
    import zarr

    import ntktheory

    nb = -(-x.shape[0] // block_size)
    pairs = {(0, 0), (nb - 1, nb - 1), (0, nb - 1), (nb - 1, 0)}
    pairs |= {tuple(sorted(rng.integers(nb, size=2))) for _ in range(n_pairs)}
    worst = 0.0
    arrays = {v: zarr.open_array(str(store / v), mode="r") for v in ("nngp", "ntk")}
    for i, j in sorted(pairs):
        ri = np.arange(i * block_size, min((i + 1) * block_size, x.shape[0]))
        rj = np.arange(j * block_size, min((j + 1) * block_size, x.shape[0]))
        idx = ri if i == j else np.concatenate([ri, rj])
        ref = ntktheory.kernels(x[idx], activation="relu", depth=3)
        for v, arr in arrays.items():
            want = ref[v].values[: len(ri), : len(ri)] if i == j else ref[v].values[: len(ri), len(ri):]
            got = arr[ri[0]:ri[-1] + 1, rj[0]:rj[-1] + 1]
            worst = max(worst, float(np.abs(got - want).max() / np.abs(want).max()))
    return worst


def stores_identical(a: Path, b: Path, block_size: int, n: int) -> bool:
    """Every chunk of nngp, ntk and block_done equal, bit for bit, read one chunk at a time."""
    import zarr

    for v in ("nngp", "ntk", "block_done"):
        za, zb = zarr.open_array(str(a / v), mode="r"), zarr.open_array(str(b / v), mode="r")
        if za.shape != zb.shape:
            return False
        step = 1 if v == "block_done" else block_size
        for r in range(0, za.shape[0], step):
            for c in range(0, za.shape[1], step):
                if not np.array_equal(za[r:r + step, c:c + step], zb[r:r + step, c:c + step], equal_nan=True):
                    return False
    return True


def _chunk_stamps(store: Path, block_size: int, n: int) -> dict:
    import zarr

    done = zarr.open_array(str(store / "block_done"), mode="r")[...]
    out = {}
    for i, j in zip(*np.nonzero(np.triu(done))):
        for v in ("nngp", "ntk"):
            st = (store / v / f"{i}.{j}").stat()
            out[(v, int(i), int(j))] = (st.st_ino, st.st_mtime_ns)
    return out


# -------------------------------------------------------------------------------------------- regression
def cg_child(args: argparse.Namespace) -> None:
    import compare

    x = np.load(args.inputs)
    rng = np.random.default_rng(1)
    y = np.sin(x @ (rng.standard_normal(x.shape[1]) / np.sqrt(x.shape[1])))
    x_test = rng.standard_normal((500, x.shape[1]))
    rss0 = _vmhwm(os.getpid())
    t = time.perf_counter()
    fit = compare.predict_from_store(args.store, y, x_test=x_test, x_train=x, kernel="ntk", rtol=args.rtol,
                                     activation="relu", depth=3)
    seconds = time.perf_counter() - t
    np.save(Path(args.store).parent / "cg_mean.npy", fit["mean"].values[:, 0])
    print(json.dumps({"seconds": seconds, "iterations": fit.attrs["iterations"],
                      "residual": fit.attrs["relative_residual"], "rss_before": rss0,
                      "peak": _vmhwm(os.getpid())}))


def regression(store: Path, inputs: Path, rtol: float) -> dict:
    import scipy.linalg
    import xarray as xr

    import ntktheory

    out = subprocess.run([sys.executable, __file__, "--child", "cg", "--inputs", str(inputs), "--store", str(store),
                          "--rtol", str(rtol)], capture_output=True, text=True, check=True, cwd=ROOT)
    cg = json.loads(out.stdout.strip().splitlines()[-1])
    x = np.load(inputs)
    rng = np.random.default_rng(1)
    y = np.sin(x @ (rng.standard_normal(x.shape[1]) / np.sqrt(x.shape[1])))
    x_test = rng.standard_normal((500, x.shape[1]))
    t = time.perf_counter()
    k = xr.open_zarr(store).ntk.values  # N^2 float64 in memory: the dense reference
    factor = scipy.linalg.cho_factor(k, lower=True, overwrite_a=True, check_finite=False)
    alpha = scipy.linalg.cho_solve(factor, y, check_finite=False)
    del k, factor
    mean = ntktheory.kernels(x_test, x, activation="relu", depth=3).ntk.values @ alpha
    dense_seconds = time.perf_counter() - t
    cg_mean = np.load(store.parent / "cg_mean.npy")
    cg["dense_seconds"] = dense_seconds
    cg["agreement"] = float(np.abs(cg_mean - mean).max() / np.abs(mean).max())
    return cg


# ------------------------------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=12000)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--block-size", type=int, default=1500)
    ap.add_argument("--baseline-n", type=int, default=3000)
    ap.add_argument("--configs", default="threads-2,processes-2x1",
                    help=f"comma-separated, of {', '.join(CONFIGS)}; the first is used for kill -9 and CG")
    ap.add_argument("--extrapolate", type=int, default=60000)
    ap.add_argument("--rtol", type=float, default=1e-10)
    ap.add_argument("--skip-cg", action="store_true")
    ap.add_argument("--skip-kill", action="store_true")
    ap.add_argument("--workdir", type=Path, default=None, help="where the stores go (default: a temporary directory)")
    ap.add_argument("--write-readme", action="store_true")
    ap.add_argument("--child", choices=["baseline", "cg"], help=argparse.SUPPRESS)
    ap.add_argument("--inputs", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "baseline":
        return baseline_child(args)
    if args.child == "cg":
        return cg_child(args)

    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-kmatrix-"))
    work.mkdir(parents=True, exist_ok=True)
    n, b = args.n, args.block_size
    x = np.random.default_rng(0).standard_normal((n, args.d))
    inputs = work / "x.npy"
    np.save(inputs, x)
    nb = -(-n // b)
    n_blocks = nb * (nb + 1) // 2
    load0 = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# N = {n}, d = {args.d}, relu depth 3, block {b} ({n_blocks} blocks on and above the diagonal); "
          f"workdir {work}; load average {load0:.1f}", flush=True)

    base = [baseline(inputs, args.baseline_n)]
    print(f"baseline (before): {base[0]['seconds']:.3f} s at N = {args.baseline_n}", flush=True)
    runs = {}
    for name in names:
        store = work / f"K-{name}.zarr"
        shutil.rmtree(store, ignore_errors=True)
        runs[name] = run_cli(name, inputs, store, b)
        print(f"{name}: {runs[name]['wall']:.1f} s; {runs[name]['stdout']}", flush=True)
    base.append(baseline(inputs, args.baseline_n))
    print(f"baseline (after): {base[1]['seconds']:.3f} s", flush=True)
    per_entry = [r["seconds"] / args.baseline_n**2 for r in base]
    mean_entry = float(np.mean(per_entry))
    ref_store = work / f"K-{names[0]}.zarr"
    block_err = check_blocks(ref_store, x, b, np.random.default_rng(2))
    print(f"random blocks vs ntktheory.kernels: max relative difference {block_err:.1e}", flush=True)

    kills = {}
    for name in [] if args.skip_kill else names:
        kstore = work / "K-killed.zarr"
        shutil.rmtree(kstore, ignore_errors=True)
        first = run_cli(name, inputs, kstore, b, kill_at=n_blocks // 2)
        flagged = _upper_flags(kstore)
        stamps = _chunk_stamps(kstore, b, n)
        second = run_cli(name, inputs, kstore, b)
        untouched = _chunk_stamps(kstore, b, n)
        kills[name] = {"first": first, "second": second, "flagged": flagged,
                       "untouched": all(untouched.get(k) == v for k, v in stamps.items()),
                       "identical": stores_identical(kstore, work / f"K-{name}.zarr", b, n),
                       "partials": len(list(kstore.glob("*/*.partial")))}
        print(f"kill -9 ({name}) after {flagged} blocks: rerun {second['wall']:.1f} s, {second['stdout']}; finished "
              f"chunks untouched: {kills[name]['untouched']}; identical to the uninterrupted store: "
              f"{kills[name]['identical']}", flush=True)
        shutil.rmtree(kstore, ignore_errors=True)
    same = all(stores_identical(ref_store, work / f"K-{name}.zarr", b, n) for name in names[1:])

    cg = None
    if not args.skip_cg:
        cg = regression(ref_store, inputs, args.rtol)
        print(f"CG: {cg['iterations']} iterations, {cg['seconds']:.1f} s, residual {cg['residual']:.1e}, "
              f"agreement with dense {cg['agreement']:.1e}", flush=True)

    text = report(args, names, runs, base, mean_entry, block_err, kills, same, cg, n_blocks, load0, started)
    print()
    print(text)
    if args.write_readme:
        _write_readme(text)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


def report(args, names, runs, base, per_entry, block_err, kills, same, cg, n_blocks, load0, started) -> str:
    n, b, m = args.n, args.block_size, args.extrapolate
    in_memory = per_entry * n**2
    lines = [
        f"N = {n}, d = {args.d}, relu, depth 3, NNGP + NTK, block size {b} ({n_blocks} blocks computed, "
        f"{2 * n * n * 8 / 2**30:.2f} GiB stored); {platform.machine()}, {os.cpu_count()} CPU cores, load average "
        f"{load0:.1f} at start / {os.getloadavg()[0]:.1f} at end; run {started}",
        "",
        "| method | wall time | per entry | ratio to in-memory | first block after | blocks/s | peak RSS per "
        "process (GiB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for label, r in zip(("before", "after"), base):
        lines.append(f"| in memory, ntktheory.kernels, N = {args.baseline_n} ({label}) | {r['seconds']:.2f} s | "
                     f"{r['seconds'] / args.baseline_n**2 * 1e9:.1f} ns | | | | {_gib(r['peak'])} |")
    lines.append(f"| in memory, scaled to N = {n} (mean per-entry cost) | {in_memory:.1f} s | {per_entry * 1e9:.1f} ns "
                 f"| 1 | | | (needs >= {2 * n * n * 8 / 2**30:.1f} for the two matrices) |")
    for name in names:
        r = runs[name]
        peaks = ", ".join(f"{label} {_gib(p)}" for label, p in r["peaks"])
        lines.append(f"| `ntkgap kernel`, {DESCRIPTION[name]} | {r['wall']:.1f} s | {r['wall'] / n**2 * 1e9:.1f} ns | "
                     f"{r['wall'] / in_memory:.2f} | {r['first_block']:.1f} s | {r['blocks_per_s']:.2f} | {peaks} |")
    best = min(names, key=lambda k: runs[k]["wall"])
    r = runs[best]
    steady = r["blocks_per_s"]
    m_blocks = (-(-m // b)) * (-(-m // b) + 1) // 2
    lines += [
        "",
        f"Random blocks (the four corners and up to 5 random ones, NNGP and NTK) against ntktheory.kernels on the "
        f"same inputs: max difference {block_err:.1e} relative to each block's largest entry.",
        "",
        f"Extrapolation to N = {m} ({best}, from the measured {steady:.2f} blocks/s after the first block, "
        f"{m_blocks} blocks of {b}): {r['first_block'] + m_blocks / steady:.0f} s "
        f"({(r['first_block'] + m_blocks / steady) / 3600:.2f} h); disk {2 * m * m * 8 / 2**30:.1f} GiB "
        f"(nngp + ntk, float64, uncompressed); memory per process as above (bounded by the block size); "
        f"in memory the two matrices alone would take {2 * m * m * 8 / 2**30:.1f} GiB.",
    ]
    if len(names) > 1:
        lines += ["", f"Stores written by the {len(names)} configurations bit-identical: {same}."]
    for name, k in kills.items():
        lines += [
            "",
            f"kill -9 ({name}): SIGKILL of the command's whole process group after {k['flagged']} of {n_blocks} "
            f"blocks ({k['first']['wall']:.1f} s); the same command again: {k['second']['reused']} blocks reused, "
            f"{k['second']['computed']} computed, {k['second']['wall']:.1f} s (peak RSS "
            f"{', '.join(f'{label} {_gib(p)}' for label, p in k['second']['peaks'])} GiB); chunk files of the "
            f"finished blocks "
            f"untouched (inode and mtime): {k['untouched']}; store bit-identical to the uninterrupted one: "
            f"{k['identical']}; half-written chunk files left: {k['partials']}.",
        ]
    if cg is not None:
        per_iter = cg["seconds"] / max(cg["iterations"], 1)
        lines += [
            "",
            f"Kernel regression from the store (`compare.predict_from_store`, kernel='ntk', diag_reg=0, rtol="
            f"{args.rtol:g}, 500 test points, test kernel computed block-wise): {cg['iterations']} CG iterations in "
            f"{cg['seconds']:.1f} s ({per_iter:.2f} s each: one pass over the {n_blocks} blocks on and above the "
            f"diagonal), relative residual {cg['residual']:.1e}, peak RSS {_gib(cg['peak'])} GiB; predictions "
            f"against a dense Cholesky solve of the same problem ({cg['dense_seconds']:.1f} s, the N x N kernel in "
            f"memory): max difference {cg['agreement']:.1e} relative to the largest prediction. At N = {m} a CG "
            f"iteration would read {m_blocks} blocks: about {per_iter * m_blocks / n_blocks:.0f} s each at this "
            f"rate.",
        ]
    return "\n".join(lines) + "\n"


NOTES = (
    "The baseline is `ntktheory.kernels` in memory at N = 3000 (warm, best of 3, numba on both cores), measured "
    "before and after the blocked runs in fresh processes; its per-entry cost t / N^2, scaled to N = 12000, is "
    "the reference (the in-memory N = 12000 computation itself needs the 2.1 GiB of results plus its working "
    "arrays). The blocked times are the whole `ntkgap kernel` command, imports, cluster start and shutdown "
    "included. Peak memory is each process's VmHWM (polled every 0.1 s; not getrusage, whose ru_maxrss "
    "carries the parent's size across fork and exec). The machine is shared; load averages are "
    "printed with the run.\n\n"
    "Why threads are the default. The two cores of this machine give little parallel throughput: two processes "
    "computing a 1500 x 1500 block at once each took twice as long as one alone (and pure-Python loops ran 1.3x "
    "faster in aggregate), so worker processes cannot win on compute; they pay for their start instead (two "
    "interpreters importing the scientific stack and loading numba's compiled code: 5-20 s before the first block "
    "here, depending on the load). A LocalCluster of two threads in the command's own process starts at once, "
    "gives numba both cores for each block, and overlaps one block's write (fsync included) with the next "
    "block's computation: numba holds the GIL, so only one block computes at a time, which is what these cores "
    "can do anyway. One thread instead of two was 1.3x slower (no overlap). Memory is bounded by the block "
    "size in both: about 10 B^2 float64 per block in flight (two in flight with threads). Both configurations "
    "write bit-identical stores (one BLAS thread per block everywhere). On a machine with many real cores, or "
    "several machines, `--scheduler processes` or a scheduler address spreads blocks over processes."
)


def _write_readme(text: str) -> None:
    readme = ROOT / "bench" / "README.md"
    begin, end = "<!-- bench_kernel_matrix begin -->", "<!-- bench_kernel_matrix end -->"
    section = (f"{begin}\n## Kernel matrices beyond memory (`bench/bench_kernel_matrix.py`)\n\n"
               f"`python bench/bench_kernel_matrix.py --write-readme`\n\n{NOTES}\n\n{text}{end}\n")
    old = readme.read_text() if readme.exists() else "# Benchmarks\n\n"
    if begin in old and end in old:
        new = old[: old.index(begin)] + section + old[old.index(end) + len(end) + 1:]
    else:
        new = old.rstrip("\n") + "\n\n" + section
    readme.write_text(new)


if __name__ == "__main__":
    main()
