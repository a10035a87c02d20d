"""``ntkgap phase``: mean-field phase diagram to NetCDF and PNG."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register"]


def _grid(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "phase",
        help="mean-field order/chaos phase diagram (NetCDF + PNG)",
        description="Compute q*, c*, chi_1, chi_c, xi_q, xi_c and the phase on a (sigma_w^2, sigma_b^2) "
                    "grid (Schoenholz et al. 2017) and write the Dataset to NetCDF with a PNG beside it.",
    )
    p.add_argument("--activation", default="tanh",
                   help="registry name (tanh, erf, relu, ...) or expression in x (default: tanh)")
    p.add_argument("--sigma-w2", nargs=3, type=_grid, metavar=("START", "STOP", "NUM"), default=[1.0, 4.0, 400],
                   help="weight-variance grid, numpy.linspace(START, STOP, NUM) (default: 1 4 400)")
    p.add_argument("--sigma-b2", nargs=3, type=_grid, metavar=("START", "STOP", "NUM"), default=[0.0, 0.3, 400],
                   help="bias-variance grid, numpy.linspace(START, STOP, NUM) (default: 0 0.3 400)")
    p.add_argument("--out", type=Path, required=True, help="NetCDF file to write (the PNG gets the same stem)")
    p.set_defaults(func=_run)


def _linspace(option: str, spec) -> object:
    import numpy as np

    start, stop, num = spec
    if num != int(num) or num < 2:
        raise ValueError(f"{option} NUM must be an integer >= 2, got {num!r}.")
    if not stop > start:
        raise ValueError(f"{option} needs START < STOP, got START={start!r}, STOP={stop!r}.")
    return np.linspace(start, stop, int(num))


def _run(args: argparse.Namespace) -> int:
    import ntktheory

    from ._plot_phase import plot_phase_diagram

    out = args.out
    if out.suffix != ".nc":
        print(f"ntkgap phase: error: --out must end in .nc, got {str(out)!r}.", file=sys.stderr)
        return 2
    try:
        w = _linspace("--sigma-w2", args.sigma_w2)
        b = _linspace("--sigma-b2", args.sigma_b2)
        ds = ntktheory.phase_diagram(args.activation, sigma_w2=w, sigma_b2=b)
    except (TypeError, ValueError) as err:
        print(f"ntkgap phase: error: {err}", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(out)
    png = plot_phase_diagram(ds, out.with_suffix(".png"))
    counts = {name: int((ds.phase == code).sum()) for code, name in enumerate(("ordered", "critical", "chaotic"))}
    print(f"wrote {out} and {png}: {w.size} x {b.size} grid, activation {ds.attrs['activation']}; "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0
