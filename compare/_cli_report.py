"""``ntkgap report RUN`` and ``ntkgap export RUN --to FILE.nc``.

``RUN`` is the folder ``ntkgap run --out`` wrote (``OUT/``) or the store in it (``OUT/sweep.zarr``).
An unfinished sweep (interrupted, or still running) is shown as far as it got, marked as partial:
the missing configurations are NaN.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register"]


def _open(path: Path):
    import compare  # noqa: F401  (Dataset.ntkgap)

    from ._sweep import open_sweep_store

    return open_sweep_store(path)


def register(subparsers: argparse._SubParsersAction) -> None:
    r = subparsers.add_parser("report", help="figures and summary table from a sweep (finished or partial)",
                              description="Write figures/*.png, summary.txt and summary.csv from a sweep and print "
                                          "the summary table. An unfinished sweep is shown as far as it got, marked "
                                          "as partial.")
    r.add_argument("store", type=Path, metavar="RUN", help="the run folder (ntkgap run --out OUT) or OUT/sweep.zarr")
    r.add_argument("--out", type=Path, default=None, help="output directory (default: the run folder)")
    r.set_defaults(func=_report)
    e = subparsers.add_parser("export", help="export a sweep to NetCDF",
                              description="Write the combined Dataset of a sweep (finished or partial) to NetCDF-4.")
    e.add_argument("store", type=Path, metavar="RUN", help="the run folder (ntkgap run --out OUT) or OUT/sweep.zarr")
    e.add_argument("--to", type=Path, required=True, help="NetCDF file to write (FILE.nc; folders are created)")
    e.set_defaults(func=_export)


def _run_folder(path: Path) -> Path:
    """The folder holding the store (figures and tables go there by default)."""
    return path.parent if (path / ".zgroup").exists() else path


def _report(args: argparse.Namespace) -> int:
    from ._report import write_report

    try:
        ds = _open(args.store)
    except (FileNotFoundError, ValueError) as err:
        print(f"ntkgap report: error: {err}", file=sys.stderr)
        return 2
    try:
        written = write_report(ds, args.out or _run_folder(args.store))
    except OSError as err:
        print(f"ntkgap report: error: cannot write the report: {err.strerror or err}.", file=sys.stderr)
        return 2
    print(written.pop("summary"))
    for path in written.values():
        print(f"figure:  {path}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ._report import export_netcdf, partial_note

    if args.to.suffix not in (".nc", ".nc4"):
        print(f"ntkgap export: error: --to must name a .nc file; got {str(args.to)!r}.", file=sys.stderr)
        return 2
    try:
        ds = _open(args.store)
    except (FileNotFoundError, ValueError) as err:
        print(f"ntkgap export: error: {err}", file=sys.stderr)
        return 2
    try:
        args.to.parent.mkdir(parents=True, exist_ok=True)
        export_netcdf(ds, args.to)
    except OSError as err:
        reason = err.strerror or str(err)
        print(f"ntkgap export: error: cannot write {str(args.to)!r}: {reason}.", file=sys.stderr)
        return 2
    note = partial_note(ds)
    print(f"wrote {args.to}" + (f" ({note})" if note else ""))
    return 0
