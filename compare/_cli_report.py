"""``ntkgap report STORE`` and ``ntkgap export STORE --to FILE.nc``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register"]


def _open(store: Path):
    import xarray as xr

    import compare  # noqa: F401  (Dataset.ntkgap)

    if not (store / ".zgroup").exists():
        raise FileNotFoundError(f"{str(store)!r} is not a Zarr store written by `ntkgap run`.")
    has_data = (store / "ntk_empirical").exists() or (store / "ntk_theory").exists()
    finished = (store / ".zmetadata").exists() and has_data
    if not finished:
        raise ValueError(f"{str(store)!r} holds an unfinished sweep; run the same `ntkgap run` command to finish it.")
    return xr.open_zarr(str(store)).load()


def register(subparsers: argparse._SubParsersAction) -> None:
    r = subparsers.add_parser("report", help="figures and summary table from an existing sweep store",
                              description="Write figures/*.png, summary.txt and summary.csv from a finished "
                                          "sweep store and print the summary table.")
    r.add_argument("store", type=Path, help="sweep store (OUT/sweep.zarr)")
    r.add_argument("--out", type=Path, default=None, help="output directory (default: the store's folder)")
    r.set_defaults(func=_report)
    e = subparsers.add_parser("export", help="export a sweep store to NetCDF",
                              description="Write the combined Dataset of a finished sweep store to NetCDF-4.")
    e.add_argument("store", type=Path, help="sweep store (OUT/sweep.zarr)")
    e.add_argument("--to", type=Path, required=True, help="NetCDF file to write (FILE.nc)")
    e.set_defaults(func=_export)


def _report(args: argparse.Namespace) -> int:
    from ._report import write_report

    try:
        ds = _open(args.store)
    except (FileNotFoundError, ValueError) as err:
        print(f"ntkgap report: error: {err}", file=sys.stderr)
        return 2
    written = write_report(ds, args.out or args.store.parent)
    print(written.pop("summary"))
    for path in written.values():
        print(f"figure:  {path}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ._report import export_netcdf

    if args.to.suffix not in (".nc", ".nc4"):
        print(f"ntkgap export: error: --to must name a .nc file; got {str(args.to)!r}.", file=sys.stderr)
        return 2
    try:
        ds = _open(args.store)
    except (FileNotFoundError, ValueError) as err:
        print(f"ntkgap export: error: {err}", file=sys.stderr)
        return 2
    export_netcdf(ds, args.to)
    print(f"wrote {args.to}")
    return 0
