"""``ntkgap run``: the main job (a built-in sweep) or a user sweep from a TOML file."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ._config import ConfigError, DataSpec, InitPoint, SweepConfig, TrainingSpec, load_sweep

__all__ = ["DEFAULT_SWEEP", "register", "run_and_report"]

#: The built-in sweep of ``ntkgap run``: tanh and relu at an ordered, a critical and a chaotic
#: initialisation (sigma_b^2 = 0.05), widths 64..2048, depths 1 and 2, 4 seeds, 48 digits
#: (32 train, 16 test), 20 steps of gradient descent. About 300 tasks; <= 3 minutes on 2 cores.
DEFAULT_SWEEP = SweepConfig(
    name="default",
    activations=("tanh", "relu"),
    points=(
        InitPoint("ordered", "0.5*critical", 0.05),
        InitPoint("critical", "critical", 0.05),
        InitPoint("chaotic", "2*critical", 0.05),
    ),
    widths=(64, 128, 256, 512, 1024, 2048),
    depths=(1, 2),
    seeds=(0, 1, 2, 3),
    data=DataSpec(source="digits", n_train=32, n_test=16, seed=0),
    training=TrainingSpec(steps=20, snapshots=2, relative_learning_rate=0.5),
    measure=("ntk", "nngp", "training"),
)

DEFAULT_OUT = Path("ntkgap-out")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the main job (built-in sweep) or a sweep file; resumable",
        description=(
            "Run a sweep of finite networks against NTK theory on Dask, writing OUT/sweep.zarr "
            "(resumable: rerun the same command after an interruption), OUT/sweep.nc, "
            "OUT/figures/*.png and OUT/summary.txt. With no --config, runs the built-in sweep: tanh and "
            "relu at ordered/critical/chaotic initialisations, widths 64-2048, depths 1 and 2, 4 seeds, "
            "digits, 20 GD steps."
        ),
    )
    p.add_argument("--config", type=Path, help="TOML sweep file (see compare._config for the keys)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT}/)")
    p.add_argument("--scheduler", default=None,
                   help="dask.distributed scheduler ADDRESS, e.g. tcp://host:8786 (default: a LocalCluster of "
                        "worker processes on this machine; 'threads' for one of threads in this process)")
    p.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default: one per core)")
    p.add_argument("--threads-per-worker", type=int, default=1, help="LocalCluster threads per worker (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_main)


def run_and_report(config: SweepConfig, out: Path, *, scheduler: str | None = None, n_workers: int | None = None,
                   threads_per_worker: int = 1, progress: bool = True) -> int:
    """Run (or resume) ``config`` into ``out`` and write the NetCDF export, figures and table."""
    from ._report import export_netcdf, write_report
    from ._sweep import run_sweep

    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    store = out / "sweep.zarr"
    print(f"ntkgap run: sweep {config.name!r}, {config.n_configurations} networks -> {store}", file=sys.stderr)
    res = run_sweep(config, store, scheduler=scheduler, n_workers=n_workers, threads_per_worker=threads_per_worker,
                    progress=progress)
    if res.dataset is None:
        print(f"{res.n_lost} task(s) were lost to crashed workers; run the same command again to finish.",
              file=sys.stderr)
        return 1
    nc = export_netcdf(res.dataset, out / "sweep.nc")
    written = write_report(res.dataset, out)
    print(written.pop("summary"))
    print()
    print(f"store:   {store}   ({res.n_skipped} task(s) reused, {res.n_computed} computed, "
          f"{res.n_failed} failed)")
    print(f"netcdf:  {nc}")
    for path in written.values():
        print(f"figure:  {path}")
    print(f"wall time: {time.perf_counter() - start:.1f} s")
    return 0


def _main(args: argparse.Namespace) -> int:
    from ._store import StoreMismatchError

    try:
        config = load_sweep(args.config) if args.config else DEFAULT_SWEEP
        return run_and_report(config, args.out, scheduler=args.scheduler, n_workers=args.workers,
                              threads_per_worker=args.threads_per_worker, progress=not args.no_progress)
    except (ValueError, FileNotFoundError, NotImplementedError) as err:
        # configuration and store errors are the user's to fix: one line; other ValueErrors are bugs
        if isinstance(err, (ConfigError, StoreMismatchError)) or not isinstance(err, ValueError) \
                or "sweep config" in str(err):
            print(f"ntkgap run: error: {err}", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        print("\nntkgap run: interrupted; finished configurations are saved. Run the same command again to resume.",
              file=sys.stderr)
        return 130
